"""
Server-side WAMP code, the GosWebSocketBundle way: topic handlers,
router-side procedures and periodic services, collected in an :class:`App`.

::

    from router.app import App, Refuse, TopicHandler

    app = App()

    @app.topic("chat.room.{room}", room=r"[a-z0-9_]+")
    class Room(TopicHandler):
        interval_ms = 10_000                 # on_timer per concrete topic

        def on_subscribe(self, session, topic, params):
            if params["room"] == "staff" and session.authrole != "staff":
                raise Refuse("staff only")   # ERROR wamp.error.not_authorized

        def on_publish(self, session, topic, params, args, kwargs):
            if not args:
                raise Refuse("empty message", uri="chat.error.empty")
            return [f"{session.authid}: {args[0]}"], kwargs   # changed event

        def on_timer(self, topic, params):
            self.api.publish(topic, "tick")

    @app.procedure("chat.room.{room}.members")
    def members(call, *args, **kwargs):
        return len(call.api.subscribers(f"chat.room.{call.params['room']}"))

    @app.periodic(5000)
    def stats(api):
        api.publish("chat.stats", api.session_count())

Plug an App in with ``--app mymodule:app``, ``[[app]] plugin = "mymodule:app"``
in the config, or an entry point in the ``wampd.apps`` group.

Rules:

* A placeholder ``{name}`` matches one URI component; ``name=regex`` sets a
  requirement (the whole component must match).  The first handler whose
  pattern matches a topic handles it.
* Topic handlers see exact subscriptions and publications from clients.
  Publications made by the router itself (``api.publish``) skip them.
* A hook may be sync or return a Deferred/coroutine.  ``on_subscribe`` and
  ``on_publish`` may raise :class:`Refuse` (the client gets ERROR
  ``wamp.error.not_authorized`` or the given URI; the session stays).  A hook
  that raises anything else fails closed: the client gets ERROR
  ``wamp.error.runtime_error``, nothing is broadcast, the failure is logged
  and a ``client_error`` event fires.
* ``on_publish`` returns None (let the event through unchanged) or
  ``(args, kwargs)`` (send this instead).
* ``interval_ms`` with ``on_timer(topic, params)``: one timer per concrete
  topic, started with its first subscriber, stopped with its last.
* Router-side procedures are called as ``fn(call, *args, **kwargs)`` where
  ``call`` has ``session`` (the caller's SessionInfo), ``procedure``,
  ``params`` and ``api``.  Return a value, a tuple ``(args, kwargs)`` via
  :class:`Result`, or raise ``autobahn.wamp.exception.ApplicationError``:
  exactly what a client callee could do.  They appear in the registration
  meta API like any callee.
* Every duration of this API is in milliseconds, as in WAMP itself
  (``interval_ms``, ``@app.periodic(interval_ms)``, ``api.call(...,
  timeout_ms=)``).  A topic handler's ``interval`` in seconds still works
  and warns (DeprecationWarning): set ``interval_ms``.
* Periodic services run ``fn(api)`` every ``interval_ms`` from
  ``server_launched`` until shutdown; a failing tick is logged and the next
  one runs.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from zope.interface import implementer

from router.errors import Refusal
from router.interfaces import ITopicHandler
from router.uri import is_reserved

__all__ = [
    "App",
    "Refuse",
    "TopicHandler",
    "Route",
    "Result",
    "CallInfo",
    "ProcedureSpec",
    "PeriodicSpec",
]

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Refuse(Refusal):
    """Raised by a topic hook to refuse a subscribe or publish."""

    def __init__(self, message: str = "refused", uri: str = "wamp.error.not_authorized") -> None:
        super().__init__(uri, message)


@dataclass(frozen=True)
class Result:
    """What a router-side procedure returns when it wants positional and keyword results."""

    args: list | None = None
    kwargs: dict | None = None


@dataclass(frozen=True)
class CallInfo:
    session: Any  # router.events.SessionInfo of the caller
    procedure: str
    params: dict
    api: Any  # router.internal.RealmApi


class Route:
    """A URI pattern with ``{placeholders}`` and per-placeholder requirements."""

    __slots__ = ("pattern", "names", "regex", "wamp_pattern", "match")

    def __init__(self, pattern: str, requirements: dict[str, str] | None = None) -> None:
        requirements = dict(requirements or {})
        parts = pattern.split(".")
        if not pattern or any(not p for p in parts):
            raise ValueError(f"route {pattern!r}: empty URI component")
        names: list[str] = []
        regex_parts = []
        wamp_parts = []
        for part in parts:
            m = _PLACEHOLDER.fullmatch(part)
            if m:
                name = m.group(1)
                if name in names:
                    raise ValueError(f"route {pattern!r}: placeholder {{{name}}} appears twice")
                names.append(name)
                rule = requirements.pop(name, r"[^.]+")
                try:
                    re.compile(rule)
                except re.error as exc:
                    raise ValueError(f"route {pattern!r}: requirement for {name!r} is not a regex: {exc}") from None
                regex_parts.append(f"(?P<{name}>(?:{rule}))")
                wamp_parts.append("")
            elif "{" in part or "}" in part or any(c.isspace() for c in part) or "#" in part:
                raise ValueError(f"route {pattern!r}: bad component {part!r}")
            else:
                regex_parts.append(re.escape(part))
                wamp_parts.append(part)
        if requirements:
            raise ValueError(f"route {pattern!r}: requirements for unknown placeholders {sorted(requirements)}")
        self.pattern = pattern
        self.names = tuple(names)
        self.regex = re.compile(r"\.".join(regex_parts))
        self.wamp_pattern = ".".join(wamp_parts)
        self.match = "wildcard" if names else "exact"

    def params(self, uri: str) -> dict[str, str] | None:
        """The placeholder values for ``uri``, or None when it does not match."""
        m = self.regex.fullmatch(uri)
        if m is None or any("." in v for v in m.groupdict().values()):
            return None
        return m.groupdict()


@implementer(ITopicHandler)
class TopicHandler:
    """Base class for topic handlers: every hook is optional."""

    interval_ms: int | None = None  # milliseconds between on_timer calls per concrete topic
    interval: float | None = None  # deprecated: seconds; set interval_ms
    api: Any = None  # set to the realm's RealmApi when the handler is installed

    def on_subscribe(self, session: Any, topic: str, params: dict) -> Any:
        return None

    def on_unsubscribe(self, session: Any, topic: str, params: dict) -> Any:
        return None

    def on_publish(self, session: Any, topic: str, params: dict, args: list | None, kwargs: dict | None) -> Any:
        return None

    def on_timer(self, topic: str, params: dict) -> Any:
        return None


def timer_seconds(handler: Any) -> float | None:
    """Seconds between a handler's ``on_timer`` calls: its ``interval_ms``, or the deprecated ``interval``."""
    interval_ms = getattr(handler, "interval_ms", None)
    if interval_ms:
        return interval_ms / 1000.0
    return getattr(handler, "interval", None) or None


@dataclass(frozen=True)
class TopicSpec:
    route: Route
    handler: Any
    realm: str | None


@dataclass(frozen=True)
class ProcedureSpec:
    route: Route
    fn: Callable
    realm: str | None
    invoke: str = "single"


@dataclass(frozen=True)
class PeriodicSpec:
    interval_ms: int
    fn: Callable
    realm: str | None
    name: str = ""


@dataclass
class App:
    """A collection of topic handlers, procedures and periodic services."""

    name: str = "app"
    topics: list[TopicSpec] = field(default_factory=list)
    procedures: list[ProcedureSpec] = field(default_factory=list)
    periodics: list[PeriodicSpec] = field(default_factory=list)

    def add_topic(self, pattern: str, handler: Any, realm: str | None = None, **requirements: str) -> None:
        if isinstance(handler, type):
            handler = handler()
        if getattr(handler, "interval", None) and not getattr(handler, "interval_ms", None):
            warnings.warn(
                f"topic handler {type(handler).__qualname__}: 'interval' (seconds) is deprecated; "
                "set 'interval_ms' (milliseconds, like every duration of the App API)",
                DeprecationWarning,
                stacklevel=2,
            )
        self.topics.append(TopicSpec(Route(pattern, requirements), handler, realm))

    def add_procedure(
        self, pattern: str, fn: Callable, realm: str | None = None, invoke: str = "single", **requirements: str
    ) -> None:
        if not callable(fn):
            raise TypeError(f"procedure {pattern!r}: {fn!r} is not callable")
        if is_reserved(pattern):
            raise ValueError(f"procedure {pattern!r}: wamp.* URIs are reserved")
        self.procedures.append(ProcedureSpec(Route(pattern, requirements), fn, realm, invoke))

    def add_periodic(self, interval_ms: int, fn: Callable, realm: str | None = None) -> None:
        if not isinstance(interval_ms, int) or isinstance(interval_ms, bool) or interval_ms <= 0:
            raise ValueError(f"periodic {getattr(fn, '__name__', fn)!r}: interval_ms must be a positive integer")
        self.periodics.append(PeriodicSpec(interval_ms, fn, realm, getattr(fn, "__qualname__", repr(fn))))

    # decorators

    def topic(self, pattern: str, realm: str | None = None, **requirements: str) -> Callable[[_T], _T]:
        def register(handler: _T) -> _T:
            self.add_topic(pattern, handler, realm, **requirements)
            return handler

        return register

    def procedure(
        self, pattern: str, realm: str | None = None, invoke: str = "single", **requirements: str
    ) -> Callable[[_F], _F]:
        def register(fn: _F) -> _F:
            self.add_procedure(pattern, fn, realm, invoke, **requirements)
            return fn

        return register

    def periodic(self, interval_ms: int, realm: str | None = None) -> Callable[[_F], _F]:
        def register(fn: _F) -> _F:
            self.add_periodic(interval_ms, fn, realm)
            return fn

        return register
