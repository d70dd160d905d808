"""
The router's own session in a realm, and the API server-side code uses.

:class:`InternalSession` stands where a client session would for the broker
and the dealer: it is the callee of router-side procedures (so they route,
fail, time out and show in the registration meta API exactly like client
callees) and the caller/publisher behind :class:`RealmApi`.  It never sees
bytes: ``send`` receives message objects.

:class:`TopicHooks` runs an App's topic handlers for one realm.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable

from autobahn.wamp import message, role
from autobahn.wamp.exception import ApplicationError
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, maybeDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from router.app import CallInfo, Refuse, Result, Route
from router.events import ClientError, ConnectionInfo, SessionInfo
from router.interfaces import IPeer
from router.uri import Counter

if TYPE_CHECKING:
    from router.realm import Realm
    from router.session import RouterSession

__all__ = ["InternalSession", "RealmApi", "TopicHooks"]

_log = Logger(namespace="wampd.app")
_INVOCATION = message.Invocation.MESSAGE_TYPE


class _NoCodec:
    name = "internal"
    binary = False

    @staticmethod
    def check(msg) -> None:
        """Everything reaches the router's own session as objects."""
        return None


def _as_deferred(result) -> Deferred | None:
    if inspect.isawaitable(result) and not isinstance(result, Deferred):
        return ensureDeferred(result)
    return result if isinstance(result, Deferred) else None


@implementer(IPeer)
class InternalSession:
    """
    The router's session in one realm (authid ``wampd``, authrole ``router``).
    It is its own peer: ``send`` takes the message objects.
    """

    send_failure = "wamp.error.invalid_argument"  # what the dealer tells a caller when send() is False

    def __init__(self, realm: Realm) -> None:
        router = realm.router
        self.realm = realm
        self.session_id = realm.new_session_id()
        now = router.clock.seconds()
        connection = ConnectionInfo(
            id=0, transport="internal", peer="internal", host=None, serializer=None, endpoint="internal", opened_at=now
        )
        self.info = SessionInfo(self.session_id, realm.name, "wampd", "router", "internal", "wampd", connection, now)
        self.roles = {
            "callee": role.RoleCalleeFeatures(call_canceling=True, progressive_call_results=False),
            "caller": role.RoleCallerFeatures(),
        }
        self.codec = _NoCodec()
        self.subscriptions: set[int] = set()
        self.registrations: set[int] = set()
        self.calls: dict = {}
        self.invocations: dict = {}
        self.request_ids = Counter()
        self.testaments = None
        self.state = "joined"
        self._procedures: dict[int, tuple[Route, Callable]] = {}  # registration id -> (route, fn)
        self._running: dict[int, Deferred] = {}  # invocation request -> running call
        self._api_calls: dict[int, Deferred] = {}  # our CALL request -> caller's Deferred
        self._call_ids = Counter()
        self.api = RealmApi(self)

    def __repr__(self) -> str:
        return f"<InternalSession realm={self.realm.name} session={self.session_id}>"

    def send_error(self, request_type: int, request: int, uri: str, text: str | None = None, **extra) -> bool:
        return self.send(message.Error(request_type, request, uri, args=[text] if text else None))

    def discloses(self, action: str, uri: str) -> bool:
        return False

    def goodbye(self, reason: str, text: str | None = None) -> None:
        """The router's own session cannot be killed."""

    def close(self) -> None:
        """The router's own session cannot be closed."""

    def abort(self, reason: str | None = None) -> None:
        """The router's own session cannot be dropped."""

    # -- procedures ---------------------------------------------------------------

    def add_procedure(self, route: Route, fn: Callable, invoke: str = "single") -> int:
        reg = self.realm.dealer.register_local(self, route.wamp_pattern, route.match, invoke)
        self._procedures[reg.id] = (route, fn)
        return reg.id

    def send(self, msg) -> bool:
        kind = type(msg)
        if kind is message.Invocation or isinstance(msg, message.Invocation):
            self._invoke(msg)
        elif kind is message.Interrupt:
            running = self._running.pop(msg.request, None)
            if running is not None:
                running.cancel()
        elif kind is message.Result:
            d = self._api_calls.pop(msg.request, None)
            if d is not None:
                args = msg.args or []
                if msg.kwargs or len(args) > 1:
                    d.callback(Result(list(args), msg.kwargs))
                else:
                    d.callback(args[0] if args else None)
        elif kind is message.Error:
            d = self._api_calls.pop(msg.request, None)
            if d is not None:
                d.errback(ApplicationError(msg.error, *(msg.args or ()), **(msg.kwargs or {})))
        return True

    def _invoke(self, msg: message.Invocation) -> None:
        route, fn = self._procedures[msg.registration]
        pending = self.invocations.get(msg.request)
        procedure = msg.procedure or (pending.registration.uri if pending else route.pattern)
        params = route.params(procedure) if route.names else {}
        request = msg.request
        if params is None:
            self._answer_error(request, "wamp.error.no_such_procedure", f"{procedure!r} does not meet {route.pattern!r}")
            return
        caller = pending.caller.info if pending is not None else None
        call = CallInfo(caller, procedure, params, self.api)
        try:
            result = fn(call, *(msg.args or ()), **(msg.kwargs or {}))
        except Exception:
            self._failed(request, Failure())
            return
        d = _as_deferred(result)
        if d is None:
            self._answer(request, result)
            return
        self._running[request] = d

        def done(value):
            self._running.pop(request, None)
            if isinstance(value, Failure):
                self._failed(request, value)  # dropped by the dealer if the call already ended
            else:
                self._answer(request, value)
            return None

        d.addBoth(done)

    def _answer(self, request: int, value) -> None:
        if isinstance(value, Result):
            reply = message.Yield(request, args=value.args, kwargs=value.kwargs)
        else:
            reply = message.Yield(request, args=None if value is None else [value])
        self.realm.dealer.yield_(self, reply)

    def _answer_error(self, request: int, uri: str, text: str, args=None, kwargs=None) -> None:
        error = message.Error(_INVOCATION, request, uri, args=args if args is not None else [text], kwargs=kwargs)
        self.realm.dealer.callee_error(self, error)

    def _failed(self, request: int, failure: Failure) -> None:
        exc = failure.value
        if isinstance(exc, ApplicationError):
            self._answer_error(request, exc.error, str(exc), list(exc.args), exc.kwargs or None)
        elif isinstance(exc, CancelledError):
            self._answer_error(request, "wamp.error.canceled", "the call was canceled")
        else:
            _log.failure("router-side procedure failed", failure=failure)
            self._answer_error(request, "wamp.error.runtime_error", f"{type(exc).__name__}: {exc}")

    # -- calls made by the API -------------------------------------------------------

    def call(self, procedure: str, args, kwargs, timeout_ms: int | None = None) -> Deferred:
        d = Deferred()
        request = self._call_ids.next()
        self._api_calls[request] = d
        options = {}
        if timeout_ms:
            options["timeout"] = timeout_ms
        msg = message.Call(request, procedure, args=list(args) or None, kwargs=dict(kwargs) or None)
        msg._router_internal = options
        self.realm.dealer.call(self, msg)
        return d


class RealmApi:
    """What listeners, handlers and embedding code use to act on one realm."""

    def __init__(self, internal: InternalSession) -> None:
        self._internal = internal
        self.realm = internal.realm.name

    def publish(self, topic: str, *args, options: dict | None = None, **kwargs) -> int:
        """
        Publish an event as the router; returns the publication id.  ``options``
        take the PUBLISH options ``exclude``, ``exclude_authid``,
        ``exclude_authrole``, ``eligible``, ``eligible_authid``,
        ``eligible_authrole`` and ``retain``.
        """
        from router.broker import _compile_filters

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
            internal, topic, list(args) or None, kwargs or None, _compile_filters(options), options.get("retain") is True
        )

    def call(self, procedure: str, *args, timeout_ms: int | None = None, **kwargs) -> Deferred:
        """Call a procedure (a client's or the router's); fires with its result or fails with ApplicationError."""
        return self._internal.call(procedure, args, kwargs, timeout_ms)

    def subscribers(self, topic: str) -> list[int]:
        """Session ids subscribed to ``topic`` exactly."""
        sub = self._internal.realm.broker.lookup(topic, "exact")
        return [s.session_id for s in sub.subscribers] if sub else []

    def session_count(self) -> int:
        return len(self._internal.realm.sessions)

    @property
    def meta(self):
        """The realm's meta API (sessions(), session(), kill(), ...)."""
        return self._internal.realm.meta


class TopicHooks:
    """One realm's topic handlers: routes, hooks and per-topic timers."""

    def __init__(self, realm: Realm, specs, api: RealmApi) -> None:
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

    def _guard(self, session: RouterSession, run: Callable[[], Any], proceed: Callable, refuse: Callable, kind: str):
        """Run a hook; call ``proceed(result)`` or ``refuse(uri, text)``; failures fail closed."""
        try:
            result = run()
        except Refuse as exc:
            refuse(exc.uri, exc.message)
            return
        except Exception:
            self._hook_failed(session, Failure(), refuse, kind)
            return
        d = _as_deferred(result)
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
        d = _as_deferred(result)
        if d is not None:
            d.addErrback(lambda f: _log.failure("topic handler failed on unsubscribe", failure=f))

    def topic_active(self, topic: str) -> None:
        """The first exact subscriber of ``topic`` arrived: start its timer, if its handler wants one."""
        found = self.find(topic)
        if found is None:
            return
        handler, params = found
        interval = getattr(handler, "interval", None)
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

