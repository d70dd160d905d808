"""
:class:`TopicHooks`: one realm's topic handlers (an App's
:class:`~router.app.TopicHandler` objects) run around clients' exact
SUBSCRIBE and PUBLISH, with a timer per concrete topic.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from router.app import Refuse, timer_seconds
from router.events import ClientError, SessionInfo

__all__ = ["TopicHooks", "as_deferred"]

_log = Logger(namespace="wampd.app")


def as_deferred(result) -> Deferred | None:
    """A Deferred for a Deferred or an awaitable result; None for a plain value."""
    if inspect.isawaitable(result) and not isinstance(result, Deferred):
        return ensureDeferred(result)
    return result if isinstance(result, Deferred) else None


class TopicHooks:
    """One realm's topic handlers: routes, hooks and per-topic timers."""

    def __init__(self, realm: Any, specs, api: Any) -> None:
        self.realm = realm
        self.api = api
        self._specs = list(specs)
        for spec in self._specs:
            spec.handler.api = api
        self._timers: dict[str, LoopingCall] = {}

    def find(self, topic: str):
        for spec in self._specs:
            params = spec.route.params(topic)
            if params is not None:
                return spec.handler, params
        return None

    def _guard(self, session, run: Callable[[], Any], proceed: Callable, refuse: Callable, kind: str):
        """Run a hook; call ``proceed(result)`` or ``refuse(uri, text)``; failures fail closed."""
        try:
            result = run()
        except Refuse as exc:
            refuse(exc.uri, exc.message)
            return
        except Exception:
            self._hook_failed(session, Failure(), refuse, kind)
            return
        d = as_deferred(result)
        if d is None:
            proceed(result)
            return

        def done(value):
            if session.state != "joined":
                return None  # the client left meanwhile
            if isinstance(value, Failure):
                if value.check(Refuse):
                    refuse(value.value.uri, value.value.message)
                else:
                    self._hook_failed(session, value, refuse, kind)
            else:
                proceed(value)
            return None

        d.addBoth(done)

    def _hook_failed(self, session, failure: Failure, refuse, kind: str) -> None:
        _log.failure("topic handler failed on {kind}", failure=failure, kind=kind)
        session.router.dispatcher.emit(
            ClientError(session.connection, session.info, failure.value, kind), session.chain
        )
        refuse("wamp.error.runtime_error", f"the topic handler failed: {type(failure.value).__name__}")

    def subscribe(self, session, topic: str, proceed: Callable[[], None], refuse: Callable[[str, str], None]) -> None:
        found = self.find(topic)
        if found is None:
            proceed()
            return
        handler, params = found
        self._guard(session, lambda: handler.on_subscribe(session.info, topic, params), lambda _: proceed(), refuse, "SUBSCRIBE")

    def publish(self, session, topic: str, args, kwargs, proceed: Callable, refuse: Callable) -> None:
        found = self.find(topic)
        if found is None:
            proceed(args, kwargs)
            return
        handler, params = found

        def through(result):
            if result is None:
                proceed(args, kwargs)
            else:
                new_args, new_kwargs = result
                proceed(list(new_args) if new_args is not None else None, dict(new_kwargs) if new_kwargs else None)

        self._guard(
            session, lambda: handler.on_publish(session.info, topic, params, args, kwargs), through, refuse, "PUBLISH"
        )

    def unsubscribed(self, info: SessionInfo, topic: str) -> None:
        found = self.find(topic)
        if found is None:
            return
        handler, params = found
        try:
            result = handler.on_unsubscribe(info, topic, params)
        except Exception:
            _log.failure("topic handler failed on unsubscribe from {topic}", topic=topic)
            return
        d = as_deferred(result)
        if d is not None:
            d.addErrback(lambda f: _log.failure("topic handler failed on unsubscribe", failure=f))

    def topic_active(self, topic: str) -> None:
        """The first exact subscriber of ``topic`` arrived: start its timer, if its handler wants one."""
        found = self.find(topic)
        if found is None:
            return
        handler, params = found
        interval = timer_seconds(handler)
        if not interval or topic in self._timers:
            return

        def tick():
            d = maybeDeferred(handler.on_timer, topic, params)
            d.addErrback(lambda f: _log.failure("timer of {topic} failed", failure=f, topic=topic))
            return d

        loop = LoopingCall(tick)
        loop.clock = self.realm.router.clock
        self._timers[topic] = loop
        loop.start(interval, now=False)

    def topic_idle(self, topic: str) -> None:
        """The last exact subscriber of ``topic`` left: stop its timer."""
        loop = self._timers.pop(topic, None)
        if loop is not None and loop.running:
            loop.stop()

    @property
    def timers(self) -> tuple[str, ...]:
        """Concrete topics whose timers are running."""
        return tuple(self._timers)

    def stop(self) -> None:
        for topic in list(self._timers):
            self.topic_idle(topic)
