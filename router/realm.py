"""
A realm: its joined sessions, its broker, dealer and meta API, and the routing
of its sessions' messages.

The session's state machine (:mod:`router.session`) hands every message of a
joined session to the router function the realm bound for it at join
(:meth:`Realm.attach`): :meth:`Realm.route` for a session that needs no
authorization checks, else the ``route`` of its :class:`_Gate`, which
authorizes SUBSCRIBE, PUBLISH, REGISTER and CALL first and holds the session's
later messages, in order, behind an asynchronous answer.  Either way it is one
dict lookup by message class and a call to a bound method of the broker or the
dealer: no Deferred, no extra layer per message.
"""

from __future__ import annotations

from typing import Any

from autobahn.wamp import message
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from router.auth import open_realm_auth
from router.broker import Broker, refuse_publish
from router.dealer import Dealer
from router.errors import ProtocolViolation
from router.internal import InternalSession
from router.messages import MESSAGE_NAMES
from router.meta import Meta
from router.uri import ScopeIds

__all__ = ["Realm", "RefusedRequest", "ANSWERABLE", "MESSAGE_NAMES"]

_log = Logger(namespace="wampd.session")

_CALL = message.Call.MESSAGE_TYPE
_YIELD = message.Yield.MESSAGE_TYPE
_ERROR = message.Error.MESSAGE_TYPE
_PUBLISH = message.Publish.MESSAGE_TYPE
_INVOCATION = message.Invocation.MESSAGE_TYPE
INVALID_ARGUMENT = "wamp.error.invalid_argument"
#: Ends a call the router failed to handle (a bug, not the client's fault).
RUNTIME_ERROR = "wamp.error.runtime_error"

#: Message types that carry a request the router answers with ERROR.
ANSWERABLE = frozenset(
    cls.MESSAGE_TYPE
    for cls in (message.Subscribe, message.Unsubscribe, message.Publish, message.Register, message.Unregister, message.Call)
)

# messages that need authorization, by type code: (action, the message field holding the URI)
_ACTIONS = {
    message.Subscribe.MESSAGE_TYPE: ("subscribe", "topic"),
    _PUBLISH: ("publish", "topic"),
    message.Register.MESSAGE_TYPE: ("register", "procedure"),
    _CALL: ("call", "procedure"),
}

# the messages a joined client may send
_JOINED = (
    message.Publish,
    message.Subscribe,
    message.Unsubscribe,
    message.Call,
    message.Yield,
    message.Register,
    message.Unregister,
    message.Cancel,
    message.Error,
    message.Goodbye,
    message.Abort,
)


class RefusedRequest:
    """A request the wire refused (a BadRequest), routed like a message so its ERROR keeps the session's order."""

    __slots__ = ("MESSAGE_TYPE", "request", "options", "text")

    @classmethod
    def of(cls, exc) -> "RefusedRequest | None":
        raw = exc.raw
        code = raw[0]
        at = 1
        if code == _ERROR:
            if len(raw) < 3 or raw[1] != _INVOCATION:
                return None
            at = 2
        elif code not in ANSWERABLE and code != _YIELD:
            return None
        if len(raw) <= at:
            return None
        request = raw[at]
        if type(request) is not int or not 1 <= request <= 2**53:
            return None
        refusal = cls()
        refusal.MESSAGE_TYPE = code
        refusal.request = request
        options = raw[at + 1] if len(raw) > at + 1 else None
        refusal.options = options if type(options) is dict else {}
        refusal.text = str(exc)
        return refusal


def _goodbye(session, msg) -> None:
    session.on_goodbye(msg)


def _abort(session, msg) -> None:
    session.on_abort(msg)


class Realm:
    def __init__(self, name: str, router: Any, authenticator=None, authorizer=None) -> None:
        # built by whoever configures the realm (router.config.auth); the open anonymous pair by default
        if authenticator is None or authorizer is None:
            open_authenticator, open_authorizer = open_realm_auth(name, router.clock)
            authenticator = authenticator if authenticator is not None else open_authenticator
            authorizer = authorizer if authorizer is not None else open_authorizer
        self.authenticator, self.authorizer = authenticator, authorizer
        self.name = name
        self.router = router
        self.sessions: dict[int, Any] = {}  # session id -> joined session
        # router-scope IDs (subscriptions, registrations), derived per realm (router.uri.ScopeIds)
        self.scope_ids = ScopeIds(router.global_ids.next() if router.seeded else None, name)
        self.broker = Broker(self)
        self.dealer = Dealer(self)
        self.meta = Meta(self)
        self.topic_hooks = None  # router.hooks.TopicHooks once an App adds topic handlers
        self._bind()
        self.internal = InternalSession(self)
        self.api = self.internal.api  # publish/call as the router: router.api.RealmApi

    def __repr__(self) -> str:
        return f"<Realm {self.name} sessions={len(self.sessions)}>"

    def _bind(self) -> None:
        """The message table: each client message's handler, a bound method, looked up once per message."""
        broker, dealer = self.broker, self.dealer
        by_code = {
            _PUBLISH: broker.publish,
            message.Subscribe.MESSAGE_TYPE: broker.subscribe,
            message.Unsubscribe.MESSAGE_TYPE: broker.unsubscribe,
            _CALL: dealer.call,
            _YIELD: dealer.yield_,
            message.Register.MESSAGE_TYPE: dealer.register,
            message.Unregister.MESSAGE_TYPE: dealer.unregister,
            message.Cancel.MESSAGE_TYPE: dealer.cancel,
            _ERROR: self._callee_error,
            message.Goodbye.MESSAGE_TYPE: _goodbye,
            message.Abort.MESSAGE_TYPE: _abort,
        }
        self._by_code = by_code
        self._table: dict[type, Any] = {cls: by_code[cls.MESSAGE_TYPE] for cls in _JOINED}
        self._table[RefusedRequest] = self._refused
        # CALL/YIELD the wire parsed in full (never the fast path's) may be in payload passthru mode
        self._table[message.Call] = dealer.call_parsed
        self._table[message.Yield] = dealer.yield_parsed
        self._actions: dict[type, tuple[str, str]] = {
            cls: _ACTIONS[cls.MESSAGE_TYPE] for cls in _JOINED if cls.MESSAGE_TYPE in _ACTIONS
        }

    def _resolve(self, msg):
        """
        A message class not seen yet (the wire's fast CALL and YIELD classes):
        its handler by type code, remembered for its class, or None when a
        client may not send it.
        """
        kind = type(msg)
        code = msg.MESSAGE_TYPE
        handler = self._by_code.get(code)
        if handler is not None:
            self._table[kind] = handler
            if code in _ACTIONS:
                self._actions[kind] = _ACTIONS[code]
        return handler

    # -- sessions ---------------------------------------------------------------------

    def new_session_id(self) -> int:
        """A random global-scope ID not used by a live session of this router."""
        router = self.router
        while True:
            candidate = router.global_ids.next()
            if not router.session_id_taken(candidate):
                return candidate

    def attach(self, session) -> "tuple[Any, _Gate | None]":
        """
        ``session`` joined.  Returns its router function, bound once here
        (``route(session, msg)``, for each of its messages), and its
        authorization gate, or None when it needs no checks (an open realm's
        anonymous session).
        """
        self.sessions[session.session_id] = session
        authorizer = self.authorizer
        if authorizer.open_anonymous and session.info.authrole == "anonymous":
            return self.route, None
        gate = _Gate(self, authorizer)
        return gate.route, gate

    def reconfigure(self, authenticator, authorizer) -> None:
        """
        A reload (router.reload): joins from now on use ``authenticator``, and
        every joined session's next messages are authorized by ``authorizer``
        (one waiting on an answer of the old one keeps its queue, in order).
        """
        self.authenticator, self.authorizer = authenticator, authorizer
        for session in list(self.sessions.values()):
            session.reattach()

    def detach(self, session, gate: "_Gate | None" = None) -> None:
        """
        Everything the session owned goes, at once; then its testaments are
        published and ``wamp.session.on_leave`` (which it no longer receives);
        then its gate forgets it.  A step that raises is logged and the next
        one runs: leaving always completes (``session_left`` and
        ``client_disconnected`` still fire, shutdown is not held up).
        """
        info = session.info
        self.sessions.pop(session.session_id, None)
        self._step("removing its subscriptions", self.broker.remove_session, session)
        self._step("removing its registrations and calls", self.dealer.remove_session, session)
        self._step("publishing its testaments", self.meta.publish_testaments, session)
        self._step("publishing wamp.session.on_leave", self.meta.session_left, info)
        if gate is not None:
            self._step("closing its authorization gate", gate.close, info)

    def _step(self, what: str, step, arg) -> None:
        try:
            step(arg)
        except Exception:
            _log.failure("session leaving realm {realm}: {what} failed; going on", realm=self.name, what=what)

    # -- routing ---------------------------------------------------------------------

    def route(self, session, msg) -> None:
        """One message of a joined session that needs no authorization checks."""
        handler = self._table.get(type(msg))
        if handler is None:
            handler = self._resolve(msg)
            if handler is None:
                session.protocol_violation(f"{MESSAGE_NAMES[msg.MESSAGE_TYPE]} is not allowed from a client", msg)
                return
        try:
            handler(session, msg)
        except ProtocolViolation as exc:
            session.protocol_violation(str(exc), msg, exc)
        except Exception as exc:
            self._failed(session, msg, exc)

    def handle(self, session, handler, msg) -> None:
        """Run one message's handler (after its authorization)."""
        try:
            handler(session, msg)
        except ProtocolViolation as exc:
            session.protocol_violation(str(exc), msg, exc)
        except Exception as exc:
            self._failed(session, msg, exc)

    def _failed(self, session, msg, exc: Exception) -> None:
        _log.failure("internal error handling {msg}", msg=MESSAGE_NAMES[msg.MESSAGE_TYPE])
        session.report_error(exc, msg)
        self._unanswered(session, msg)

    def _unanswered(self, session, msg) -> None:
        """
        A handler failed: every CALL still ends in RESULT or ERROR.  A CALL (or
        the YIELD/ERROR answering one) that was being handled ends with ERROR
        ``wamp.error.runtime_error`` and its state (pending call, timer) goes.
        """
        if session.state != "joined" or type(msg) is RefusedRequest:
            return
        kind = msg.MESSAGE_TYPE
        text = f"the router failed handling this {MESSAGE_NAMES[kind]}"
        try:
            if kind == _CALL:
                self.dealer.end_call(session, msg.request, RUNTIME_ERROR, text)
            elif kind == _YIELD or (kind == _ERROR and msg.request_type == _INVOCATION):
                self.dealer.end_invocation(session, msg.request, RUNTIME_ERROR, text)
        except Exception:
            _log.failure("could not end the call after an internal error")

    def _refused(self, session, refusal: RefusedRequest) -> None:
        code, request, text = refusal.MESSAGE_TYPE, refusal.request, refusal.text
        dealer = self.dealer
        if code == _CALL:
            dealer.end_call(session, request, INVALID_ARGUMENT, text)
        elif code == _YIELD or code == _ERROR:
            dealer.end_invocation(session, request, INVALID_ARGUMENT, f"the callee's answer was refused: {text}")
        elif code == _PUBLISH:
            if refusal.options.get("acknowledge") is True:  # as refuse_publish: only an acknowledged one hears
                session.send_error(code, request, INVALID_ARGUMENT, text)
        else:
            session.send_error(code, request, INVALID_ARGUMENT, text)

    def _callee_error(self, session, msg: message.Error) -> None:
        if msg.request_type != _INVOCATION:
            raise ProtocolViolation(
                f"ERROR for {MESSAGE_NAMES.get(msg.request_type, msg.request_type)} is not allowed from a client"
            )
        self.dealer.callee_error_parsed(session, msg)


class _Gate:
    """
    The authorization gate of one joined session: SUBSCRIBE, PUBLISH, REGISTER
    and CALL are authorized before they are handled; behind an asynchronous
    answer the session's later messages wait, in order.
    """

    __slots__ = ("realm", "authorizer", "queue")

    def __init__(self, realm: Realm, authorizer) -> None:
        self.realm = realm
        self.authorizer = authorizer
        self.queue: list | None = None  # messages held behind a pending (async) authorization

    def route(self, session, msg) -> None:
        queue = self.queue
        if queue is not None:
            limit = self.realm.router.max_queued_messages
            if limit and len(queue) >= limit:
                # bounded: a client may not pile up messages behind an authorizer that is slow to answer
                session.protocol_violation(
                    f"more than {limit} messages sent while an authorization was pending (max_queued_messages)", msg
                )
                return
            queue.append(msg)  # keep order behind a pending authorization
            return
        realm = self.realm
        kind = type(msg)
        handler = realm._table.get(kind)
        if handler is None:
            handler = realm._resolve(msg)
            if handler is None:
                session.protocol_violation(f"{MESSAGE_NAMES[msg.MESSAGE_TYPE]} is not allowed from a client", msg)
                return
        action = realm._actions.get(kind)
        if action is None:
            realm.handle(session, handler, msg)
            return
        name, field = action
        # a pattern (prefix/wildcard SUBSCRIBE or REGISTER) is allowed only if every URI it can match is
        allowed = self.authorizer.authorize(session.info, name, getattr(msg, field), getattr(msg, "match", None))
        if isinstance(allowed, Deferred):
            self.queue = []
            allowed.addCallback(self._authorized, session, msg, action, handler)
            return
        self._decided(allowed, session, msg, action, handler)

    def _authorized(self, allowed, session, msg, action, handler) -> None:
        queue, self.queue = self.queue, None
        if session.state != "joined" or queue is None:
            return  # left meanwhile
        self._decided(allowed, session, msg, action, handler)
        for index, queued in enumerate(queue):
            if self.queue is not None:  # blocked again: keep the rest in order
                self.queue.extend(queue[index:])
                break
            session.dispatch(queued)

    def _decided(self, allowed: bool, session, msg, action, handler) -> None:
        if allowed is True:
            self.realm.handle(session, handler, msg)
            return
        name, field = action
        text = f"role {session.info.authrole!r} may not {name} {getattr(msg, field)!r}"
        if type(msg) is message.Publish:
            refuse_publish(session, msg, "wamp.error.not_authorized", text)
        else:
            session.send_error(msg.MESSAGE_TYPE, msg.request, "wamp.error.not_authorized", text)

    def reauthorize(self, info) -> None:
        """The realm's authorizer was replaced (a reload): the next messages ask the new one."""
        self.authorizer.forget(info.session_id)
        self.authorizer = self.realm.authorizer

    def may(self, info, action: str, uri: str, fresh: bool = False, match: str | None = None):
        return self.authorizer.authorize(info, action, uri, match, fresh=fresh)

    def discloses(self, info, action: str, uri: str) -> bool:
        return self.authorizer.disclose(info, action, uri)

    def close(self, info) -> None:
        """The session left: nothing more is routed through this gate."""
        self.queue = None
        if info is not None:
            self.authorizer.forget(info.session_id)
