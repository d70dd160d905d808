"""
The router's own session in a realm, and the API server-side code uses.

:class:`InternalSession` stands where a client session would for the broker
and the dealer: it is the callee of router-side procedures (so they route,
fail, time out and show in the registration meta API exactly like client
callees) and the caller/publisher behind :class:`RealmApi`.  It never sees
bytes: ``send`` receives message objects.

:class:`~router.api.RealmApi` and :class:`~router.hooks.TopicHooks` live in
their own modules; both are re-exported here.
"""

from __future__ import annotations

from typing import Any, Callable

from autobahn.wamp import message, role
from autobahn.wamp.exception import ApplicationError
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from router.api import RealmApi
from router.app import CallInfo, Result, Route
from router.events import ConnectionInfo, SessionInfo
from router.hooks import TopicHooks, as_deferred
from router.interfaces import IPeer, IRoutedSession
from router.uri import Counter


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


@implementer(IRoutedSession, IPeer)
class InternalSession:
    """
    The router's session in one realm (authid ``wampd``, authrole ``router``).
    It is its own peer: ``send`` takes the message objects.
    """

    send_failure = "wamp.error.invalid_argument"  # what the dealer tells a caller when send() is False

    def __init__(self, realm: Any) -> None:
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
        self.request_ids = Counter()
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

    def may(self, action: str, uri: str, *, fresh: bool = False) -> bool:
        return True  # the router may do anything in its own realm

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

    def send_paced(self, msgs) -> None:
        """The router's own session takes every message at once."""
        for msg in msgs:
            self.send(msg)

    def send(self, msg) -> bool:
        kind = type(msg)
        if kind is message.Invocation or isinstance(msg, message.Invocation):
            self._invoke(msg)
        elif kind is message.Interrupt:
            running = self._running.pop(msg.request, None)
            if running is not None:
                running.cancel()
        elif kind is message.Result or isinstance(msg, message.Result):
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
        pending = self.realm.dealer.invocation(self, msg.request)
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
        d = as_deferred(result)
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
