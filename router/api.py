"""
:class:`RealmApi`: what listeners, topic handlers, router-side procedures and
embedding code use to act on one realm as the router (publish, call, look).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from router.filters import compile_filters

__all__ = ["RealmApi"]


class RealmApi:
    """What listeners, handlers and embedding code use to act on one realm."""

    def __init__(self, internal: Any) -> None:
        # internal: the realm's router.internal.InternalSession
        self._internal = internal
        self.realm = internal.realm.name

    def publish(self, topic: str, *args: Any, options: dict | None = None, **kwargs: Any) -> int:
        """
        Publish an event as the router; returns the publication id.  ``options``
        take the PUBLISH options ``exclude``, ``exclude_authid``,
        ``exclude_authrole``, ``eligible``, ``eligible_authid``,
        ``eligible_authrole`` and ``retain``.
        """
        options = dict(options or {})
        unknown = set(options) - {
            "exclude", "exclude_authid", "exclude_authrole", "eligible", "eligible_authid", "eligible_authrole", "retain"
        }
        if unknown:
            raise ValueError(f"unknown publish options {sorted(unknown)}")
        for name, value in options.items():
            if name == "retain":
                if not isinstance(value, bool):
                    raise ValueError("publish option 'retain' must be a bool")
            elif not isinstance(value, list):
                raise ValueError(f"publish option {name!r} must be a list")
        internal = self._internal
        return internal.realm.broker.publish_from(
            internal, topic, list(args) or None, kwargs or None, compile_filters(options), options.get("retain") is True
        )

    def call(self, procedure: str, *args: Any, timeout_ms: int | None = None, **kwargs: Any) -> Deferred:
        """Call a procedure (a client's or the router's); fires with its result or fails with ApplicationError."""
        return self._internal.call(procedure, args, kwargs, timeout_ms)

    def subscribers(self, topic: str) -> list[int]:
        """Session ids subscribed to ``topic`` exactly."""
        sub = self._internal.realm.broker.lookup(topic, "exact")
        return [s.session_id for s in sub.subscribers] if sub else []

    def session_count(self) -> int:
        return len(self._internal.realm.sessions)

    @property
    def meta(self) -> Any:
        """The realm's meta API (sessions(), session(), kill(), ...)."""
        return self._internal.realm.meta
