"""
The per-connection WAMP state machine.

A :class:`RouterSession` sits between one transport connection (its *peer*,
a :class:`router.interfaces.IPeer`: send a message, close, abort) and the
router.  It never sees bytes or sockets; the transport decodes, hands it
message objects and tells it when the connection is gone.  Outbound, the peer
encodes and writes (:meth:`RouterSession.send`).

States::

    AWAIT_HELLO --HELLO--> JOINING --listeners ok--> JOINED --GOODBYE--> AWAIT_HELLO
         |                    |                         |
         |                    +--refused: ABORT---------+--> CLOSED (transport lost)
         +--anything else: ABORT protocol_violation --> CLOSED

Messages are dispatched by a dict keyed on the message class; there is no
Deferred per routed message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autobahn.wamp import message
from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger

from router.dispatcher import Chain
from router.events import (
    ClientConnected,
    ClientDisconnected,
    ClientError,
    ClientRejected,
    ConnectionInfo,
    Reject,
    SessionInfo,
    SessionJoined,
    SessionJoining,
    SessionLeft,
)
from router.uri import Counter
from router.auth import AUTHENTICATION_FAILED, NO_AUTH_METHOD, Accept, Challenge, HelloInfo
from router.errors import BadRequest, UriError
from router.messages import MESSAGE_NAMES, FastCall, FastYield

if TYPE_CHECKING:
    from router.core import Router
    from router.realm import Realm

__all__ = ["RouterSession", "ProtocolViolation", "SLOW_CONSUMER"]

_log = Logger(namespace="wampd.session")

AWAIT_HELLO = "await_hello"
AUTHENTICATING = "authenticating"  # waiting for the realm's authenticator
CHALLENGED = "challenged"  # CHALLENGE sent, waiting for AUTHENTICATE
JOINING = "joining"
JOINED = "joined"
CLOSING = "closing"
CLOSED = "closed"

TRANSPORT_LOST = "wamp.close.transport_lost"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
RATE_LIMITED_TEXT = "authentication failed: too many failed attempts; try again later"
#: ``session_left`` reason when the router dropped a session that stopped reading
#: (the spec defines none; outside ``wamp.*`` on purpose).
SLOW_CONSUMER = "wampd.close.slow_consumer"
PAYLOAD_SIZE_EXCEEDED = "wamp.error.payload_size_exceeded"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
#: Ends a call the router failed to handle (a bug, not the client's fault).
RUNTIME_ERROR = "wamp.error.runtime_error"

_CALL = message.Call.MESSAGE_TYPE
_YIELD = message.Yield.MESSAGE_TYPE
_ERROR = message.Error.MESSAGE_TYPE
_PUBLISH = message.Publish.MESSAGE_TYPE
_INVOCATION = message.Invocation.MESSAGE_TYPE

# Message types that carry a request the router answers with ERROR.
_ANSWERABLE = {
    message.Subscribe.MESSAGE_TYPE,
    message.Unsubscribe.MESSAGE_TYPE,
    message.Publish.MESSAGE_TYPE,
    message.Register.MESSAGE_TYPE,
    message.Unregister.MESSAGE_TYPE,
    message.Call.MESSAGE_TYPE,
}


class ProtocolViolation(Exception):
    """A peer broke the protocol; its connection is aborted."""


class RouterSession:
    __slots__ = (
        "router",
        "peer",
        "connection",
        "codec",
        "chain",
        "state",
        "session_id",
        "info",
        "last_info",
        "realm",
        "roles",
        "subscriptions",
        "registrations",
        "calls",
        "invocations",
        "request_ids",
        "last_seen",
        "testaments",
        "_pending",
        "_challenge",
        "_authextra",
        "_authorizer",
        "_queue",
        "handshake_since",
        "_closing_reason",
        "_lost",
        "_said_goodbye",
    )

    def __init__(self, router: Router, peer: Any, connection: ConnectionInfo, codec) -> None:
        self.router = router
        self.peer = peer
        self.connection = connection
        self.codec = codec
        self.chain = Chain()
        self.state = AWAIT_HELLO
        self.session_id: int | None = None
        self.info: SessionInfo | None = None
        self.last_info: SessionInfo | None = None
        self.realm: Realm | None = None
        self.roles: dict = {}
        # what this session owns, so leaving costs what it owns, not a scan
        self.subscriptions: set[int] = set()
        self.registrations: set[int] = set()
        self.calls: dict[int, Any] = {}  # as caller: CALL request id -> PendingCall
        self.invocations: dict[int, Any] = {}  # as callee: INVOCATION request id -> PendingCall
        self.request_ids = Counter()
        self.last_seen = connection.opened_at  # last message received (the ping sweeper spares busy peers)
        self.testaments: dict | None = None  # scope -> [(topic, args, kwargs, options)]
        self._pending = None  # (realm, hello) while authenticating
        self._challenge = None
        self._authextra = None
        self._authorizer = None  # None: this session needs no authorization checks
        self._queue: list | None = None  # messages held behind a pending (async) authorization
        self.handshake_since = connection.opened_at
        self._closing_reason: str | None = None
        self._lost = False
        self._said_goodbye = False  # the last session ended with a GOODBYE exchange

    @property
    def send_failure(self) -> str:
        """The error URI explaining why the last send() returned False (the dealer answers callers with it)."""
        return self.peer.send_failure

    @property
    def oversize_dropped(self) -> int:
        """Messages over the size the peer announced (RawSocket), never sent."""
        return getattr(self.peer, "oversize_dropped", 0)

    def __repr__(self) -> str:
        return f"<RouterSession conn={self.connection.id} session={self.session_id} {self.state}>"

    # -- connection lifecycle (called by the transport) ---------------------

    def opened(self):
        """
        The transport connected: fire ``client_connected``.  Returns None, or a
        Deferred, that fails with :class:`Reject` when a listener refused.
        A refusal has already fired ``client_rejected`` when this returns/fails.
        """
        refusal = self.router.track(self)
        d = self.router.dispatcher.emit(ClientConnected(self.connection), self.chain)
        if refusal is not None:
            # the router's policy refuses it: listeners were told it connected, their say does not matter
            if d is not None:
                d.addErrback(lambda failure: failure.trap(Reject))
            self.reject(refusal.reason, refusal.message)
            return fail(refusal)
        if d is None:
            return None
        return d.addErrback(self._connect_refused)

    def refused_at_accept(self, refusal: Reject) -> None:
        """Refused when accepted (a connection limit): ``client_connected``, then ``client_rejected``."""
        d = self.router.dispatcher.emit(ClientConnected(self.connection), self.chain)
        if d is not None:  # listeners are told it connected; their say does not matter
            d.addErrback(lambda failure: failure.trap(Reject))
        self.reject(refusal.reason, refusal.message)

    def _connect_refused(self, failure):
        failure.trap(Reject)
        reject = failure.value
        self.reject(reject.reason, reject.message)
        return failure

    def reject(self, reason: str, text: str, realm: str | None = None, authid: str | None = None) -> None:
        self.router.dispatcher.emit(
            ClientRejected(reason, text, self.connection, realm, authid), self.chain
        )

    def lost(self, orderly: bool, code: int | None = None, reason: str | None = None) -> None:
        """
        The transport is gone (any way at all). Exactly once per connection.

        ``orderly``: WebSocket, the close handshake completed; RawSocket, TCP
        closed without an error.  ``client_disconnected.was_clean`` says
        whether the WAMP session ended properly: with a session still joined
        it is clean only if the WebSocket close handshake completed (a
        RawSocket peer that drops TCP while joined is not clean); otherwise
        it is clean when the last session ended with a GOODBYE exchange (in
        either direction), or when the transport closed in order.
        """
        if self._lost:
            return
        self._lost = True
        if self.state in (JOINED, CLOSING):
            was_clean = orderly and self.connection.transport == "websocket"
            self._leave(self._closing_reason or TRANSPORT_LOST)
            if not was_clean and reason is None:
                reason = "the connection closed while a session was joined, without GOODBYE"
        else:
            was_clean = orderly or self._said_goodbye
        self.state = CLOSED
        now = self.router.clock.seconds()
        self.router.dispatcher.emit(
            ClientDisconnected(
                self.connection,
                was_clean,
                code,
                reason,
                self.last_info,
                now - self.connection.opened_at,
            ),
            self.chain,
        )
        # last: untracking may complete a shutdown that waits for every connection
        self.router.untrack(self)

    # -- inbound --------------------------------------------------------------

    def receive(self, msg: message.Message) -> None:
        """One message from the transport, decoded (a payload it cannot decode goes to
        :meth:`bad_uri`, :meth:`bad_request` or :meth:`protocol_violation` instead)."""
        self.last_seen = self.router.clock.seconds()
        self.dispatch(msg)

    def dispatch(self, msg: message.Message) -> None:
        """Route one parsed message according to the session state."""
        state = self.state
        if state is JOINED:
            if self._queue is not None:
                self._queue.append(msg)  # keep order behind a pending authorization
                return
            handler = _JOINED.get(type(msg))
            if handler is None:
                self.protocol_violation(
                    f"{MESSAGE_NAMES[msg.MESSAGE_TYPE]} is not allowed from a client",
                    msg,
                )
                return
            if self._authorizer is not None:
                action = _ACTIONS.get(type(msg))
                if action is not None:
                    self._authorize(msg, action, handler)
                    return
            self._handle(handler, msg)
            return
        if state is CHALLENGED:
            if type(msg) is message.Authenticate:
                self._on_authenticate(msg)
            elif type(msg) is message.Abort:
                self._pending = self._challenge = None
                self.session_id = None
                self.state = AWAIT_HELLO
                self.peer.close()
            else:
                self.protocol_violation(f"{MESSAGE_NAMES[msg.MESSAGE_TYPE]} received instead of AUTHENTICATE", msg)
            return
        if state is AWAIT_HELLO:
            if type(msg) is message.Hello:
                self._on_hello(msg)
            elif type(msg) is message.Abort:
                self.peer.close()
            else:
                self.protocol_violation(
                    f"{MESSAGE_NAMES[msg.MESSAGE_TYPE]} received before HELLO", msg
                )
            return
        if state is CLOSING:
            # after our GOODBYE only the peer's GOODBYE (or ABORT) matters
            if type(msg) in (message.Goodbye, message.Abort):
                self._said_goodbye = type(msg) is message.Goodbye
                self._leave(self._closing_reason or msg.reason)
                self.state = AWAIT_HELLO
                self.peer.close()
            return
        if state is JOINING or state is AUTHENTICATING:
            self.protocol_violation(
                f"{MESSAGE_NAMES[msg.MESSAGE_TYPE]} received before WELCOME", msg
            )

    def _handle(self, handler, msg) -> None:
        try:
            handler(self, msg)
        except ProtocolViolation as exc:
            self.protocol_violation(str(exc), msg, exc)
        except Exception as exc:
            _log.failure("internal error handling {msg}", msg=MESSAGE_NAMES[msg.MESSAGE_TYPE])
            self._report_error(exc, msg)
            self._unanswered(msg)

    def _unanswered(self, msg) -> None:
        """
        A handler failed: every CALL still ends in RESULT or ERROR.  A CALL (or
        the YIELD/ERROR answering one) that was being handled ends with ERROR
        ``wamp.error.runtime_error`` and its state (pending call, timer) goes.
        """
        realm = self.realm
        if realm is None or self.state is not JOINED or type(msg) is _Refusal:
            return
        kind = msg.MESSAGE_TYPE
        text = f"the router failed handling this {MESSAGE_NAMES[kind]}"
        try:
            if kind == _CALL:
                realm.dealer.end_call(self, msg.request, RUNTIME_ERROR, text)
            elif kind == _YIELD or (kind == _ERROR and msg.request_type == _INVOCATION):
                realm.dealer.end_invocation(self, msg.request, RUNTIME_ERROR, text)
        except Exception:
            _log.failure("could not end the call after an internal error")

    def bad_request(self, exc: BadRequest) -> None:
        """
        A well-formed request with refused values (see :mod:`router.wire.codec`):
        answered with ERROR ``invalid_argument`` in order with the session's
        other messages, or ABORT ``protocol_violation`` when nothing can be
        answered (not joined, or a message without a request).
        """
        if self.state is CLOSING:
            return  # after our GOODBYE only the peer's GOODBYE (or ABORT) matters
        refusal = _Refusal.of(exc)
        if refusal is None or self.state is not JOINED:
            self.protocol_violation(str(exc), None, exc)
            return
        self.dispatch(refusal)

    def _authorize(self, msg, action: tuple[str, str], handler) -> None:
        name, field = action
        # a pattern (prefix/wildcard SUBSCRIBE or REGISTER) is allowed only if every URI it can match is
        allowed = self._authorizer.authorize(self.info, name, getattr(msg, field), getattr(msg, "match", None))
        if isinstance(allowed, Deferred):
            self._queue = []
            allowed.addCallback(self._authorized, msg, action, handler)
            return
        self._decided(allowed, msg, action, handler)

    def _authorized(self, allowed, msg, action, handler) -> None:
        queue, self._queue = self._queue, None
        if self.state is not JOINED or queue is None:
            return  # left meanwhile
        self._decided(allowed, msg, action, handler)
        for index, queued in enumerate(queue):
            if self._queue is not None:  # blocked again: keep the rest in order
                self._queue.extend(queue[index:])
                break
            self.dispatch(queued)

    def _decided(self, allowed: bool, msg, action, handler) -> None:
        if allowed is True:
            self._handle(handler, msg)
            return
        name, field = action
        text = f"role {self.info.authrole!r} may not {name} {getattr(msg, field)!r}"
        if type(msg) is message.Publish:
            from router.broker import refuse_publish

            refuse_publish(self, msg, "wamp.error.not_authorized", text)
        else:
            self.send_error(msg.MESSAGE_TYPE, msg.request, "wamp.error.not_authorized", text)

    def may(self, action: str, uri: str, *, fresh: bool = False) -> bool | Deferred:
        """
        Whether this joined session's role may ``action`` on ``uri``, as if it
        sent the message itself: True or False, or a Deferred of one (a
        dynamic authorizer; it never fails, and denies on error or timeout).
        ``fresh`` asks a dynamic authorizer again even when it has a cached
        answer (testaments are checked again as the session leaves).
        """
        authorizer = self._authorizer
        if authorizer is None:
            return True  # an open realm's anonymous session: no checks, as for its own messages
        return authorizer.authorize(self.info, action, uri, fresh=fresh)

    def discloses(self, action: str, uri: str) -> bool:
        """Whether the realm's roles disclose this session's identity for ``action`` on ``uri``."""
        authorizer = self._authorizer
        return authorizer is not None and authorizer.disclose(self.info, action, uri)

    def bad_uri(self, exc: UriError) -> None:
        """A well-formed message with an invalid URI: ERROR ``invalid_uri`` where it can be answered."""
        request = exc.request
        if (
            self.state is JOINED
            and exc.message_type in _ANSWERABLE
            and type(request) is int
            and 1 <= request <= 2**53
        ):
            if exc.message_type == _PUBLISH and exc.options.get("acknowledge") is not True:
                return  # as refuse_publish: only an acknowledged PUBLISH hears of its refusal
            self.send_error(exc.message_type, request, "wamp.error.invalid_uri", str(exc))
        elif exc.message_type == message.Hello.MESSAGE_TYPE and self.state is AWAIT_HELLO:
            self.reject("realm", str(exc))
            self.abort("wamp.error.invalid_uri", str(exc))
        else:
            self.protocol_violation(str(exc), None, exc)

    # -- joining --------------------------------------------------------------

    def _on_hello(self, hello: message.Hello) -> None:
        realm = self.router.realms.get(hello.realm)
        if realm is None:
            text = f"no realm {hello.realm!r} on this router"
            self.reject("realm", text, hello.realm, hello.authid)
            self.abort("wamp.error.no_such_realm", text)
            return
        limiter = self.router.login_limiter
        if limiter.enabled:
            why = limiter.refusal(realm.name, hello.authid, self.connection.host)
            if why is not None:  # before any credential is looked at, known authid or not
                self._rate_limited(realm.name, hello.authid, why)
                return
        self.roles = _announced_roles(hello)
        self.state = AUTHENTICATING
        # allocated first: wampcra puts it in the challenge
        self.session_id = realm.new_session_id()
        self._pending = (realm, hello)
        hello_info = HelloInfo.from_hello(hello, self.connection, self.session_id)
        self._authenticated(realm.authenticator.start(hello_info))

    def _on_authenticate(self, msg: message.Authenticate) -> None:
        realm, hello = self._pending
        challenge, self._challenge = self._challenge, None
        limiter = self.router.login_limiter
        if limiter.enabled:
            # checked again: attempts started in parallel must not all get their secret checked
            why = limiter.refusal(realm.name, hello.authid, self.connection.host)
            if why is not None:
                self._pending = None
                self.session_id = None
                self.state = AWAIT_HELLO
                self._rate_limited(realm.name, hello.authid, why)
                return
        self.state = AUTHENTICATING
        self._authenticated(realm.authenticator.verify(challenge, msg.signature, msg.extra or {}))

    def _authenticated(self, outcome) -> None:
        """The authenticator's answer (Accept, Challenge, Deny, or a Deferred of one)."""
        if isinstance(outcome, Deferred):
            outcome.addCallback(self._authenticated)
            return
        if self.state is not AUTHENTICATING:  # transport lost or protocol violation meanwhile
            return
        realm, hello = self._pending
        if isinstance(outcome, Challenge):
            challenge = message.Challenge(outcome.method, dict(outcome.extra))
            if not self._fits(challenge, realm.name, hello.authid):
                return
            self._challenge = outcome
            self.state = CHALLENGED
            self.send(challenge)
            return
        if not isinstance(outcome, Accept):
            text = getattr(outcome, "message", "authentication failed")
            uri = getattr(outcome, "uri", "wamp.error.not_authorized")
            if uri != NO_AUTH_METHOD:  # a refused credential (not a method the realm lacks): counted
                self.router.login_limiter.failed(realm.name, hello.authid, self.connection.host)
            self._pending = None
            self.session_id = None
            self.state = AWAIT_HELLO
            self.reject("authentication", text, realm.name, hello.authid)
            self.abort(uri, text)
            return
        self._pending = None
        self.state = JOINING
        if outcome.authmethod != "anonymous":
            self.router.login_limiter.succeeded(realm.name, outcome.authid)
        now = self.router.clock.seconds()
        info = SessionInfo(
            session_id=self.session_id,
            realm=realm.name,
            authid=outcome.authid,
            authrole=outcome.authrole,
            authmethod=outcome.authmethod,
            authprovider=outcome.authprovider,
            connection=self.connection,
            joined_at=now,
        )
        self.info = info
        self._authextra = dict(outcome.authextra) if outcome.authextra else None
        details = hello._router_internal if isinstance(hello._router_internal, dict) else {}
        d = self.router.dispatcher.emit(SessionJoining(info, details), self.chain)
        if d is None:
            self._welcome(realm)
        else:
            d.addCallbacks(lambda _: self._welcome(realm), self._join_refused)

    def _rate_limited(self, realm: str, authid: str | None, why: str) -> None:
        """ABORT an attempt over the failed-login limit: the same answer whether the authid exists or not."""
        self.reject("rate_limited", why, realm, authid)
        self.abort(AUTHENTICATION_FAILED, RATE_LIMITED_TEXT)

    def _join_refused(self, failure) -> None:
        failure.trap(Reject)
        reject = failure.value
        info = self.info
        self.info = None
        self.session_id = None
        if self.state is not JOINING:  # transport lost meanwhile
            return
        self.state = AWAIT_HELLO
        self.reject(reject.reason, reject.message, info.realm, info.authid)
        self.abort(reject.uri, reject.message)

    def _welcome(self, realm: Realm) -> None:
        if self.state is not JOINING:  # transport lost while listeners ran
            self.info = None
            return
        info = self.info
        welcome = message.Welcome(
            session=self.session_id,
            roles=self.router.roles,
            realm=realm.name,
            authid=info.authid,
            authrole=info.authrole,
            authmethod=info.authmethod,
            authprovider=info.authprovider,
            authextra=self._authextra,
            custom={"x_router_agent": self.router.agent},
        )
        if not self._fits(welcome, info.realm, info.authid):
            return
        self.state = JOINED
        self._said_goodbye = False
        self.realm = realm
        self.last_info = info
        self.router.joined(self)
        authorizer = realm.authorizer
        # a realm with no roles and no authorizer is open to anonymous sessions: no checks at all
        self._authorizer = None if (authorizer.open_anonymous and info.authrole == "anonymous") else authorizer
        realm.attach(self)
        self.send(welcome)
        realm.meta.session_joined(self)
        self.router.dispatcher.emit(SessionJoined(info), self.chain)

    def _fits(self, msg: message.Message, realm: str, authid: str | None) -> bool:
        """
        Whether a CHALLENGE or WELCOME fits in what the peer accepts (a
        RawSocket peer may announce as little as 512 bytes).  If not, the
        join is refused (``client_rejected``, reason ``limit``) with a short
        ABORT that fits, before the session counts as joined.
        """
        try:
            size = len(self.codec.encode(msg))  # cached on the message for the send that follows
        except Exception:
            return True  # send() reports it
        limit = self.peer.max_send
        if size <= limit:
            return True
        self.info = None
        self.session_id = None
        self._pending = self._challenge = None
        self.state = AWAIT_HELLO
        text = f"{MESSAGE_NAMES[msg.MESSAGE_TYPE]} is {size} bytes; this client accepts at most {limit}"
        self.reject("limit", text, realm, authid)
        self.abort(PAYLOAD_SIZE_EXCEEDED, text)
        return False

    # -- leaving --------------------------------------------------------------

    def _on_goodbye(self, msg: message.Goodbye) -> None:
        self.send(message.Goodbye(reason="wamp.close.goodbye_and_out"))
        self._said_goodbye = True
        self._leave(msg.reason)
        self.state = AWAIT_HELLO
        self.router.awaiting_hello(self)

    def handshake_timed_out(self, limit: float) -> None:
        """No joined session within the HELLO timeout: close the connection."""
        if self._lost or self.state is JOINED or self.state is CLOSING:
            return
        text = f"no session joined within {limit:g}s of connecting"
        if self.last_info is None:  # never joined: a refused connection; else just an idle one
            self.reject("protocol", text)
        self.state = AWAIT_HELLO
        self._pending = self._challenge = None
        self.session_id = None
        self.peer.close()

    def _on_abort(self, msg: message.Abort) -> None:
        self._leave(msg.reason)
        self.state = AWAIT_HELLO
        self.peer.close()

    def goodbye(self, reason: str, text: str | None = None) -> None:
        """Router-initiated close: send GOODBYE and wait for the peer's."""
        if self.state is not JOINED:
            return
        self._closing_reason = reason
        self.state = CLOSING
        self.send(message.Goodbye(reason=reason, message=text))

    def _leave(self, reason: str) -> None:
        realm = self.realm
        info = self.info
        self._closing_reason = None
        if realm is not None:
            realm.detach(self)
            if self._authorizer is not None and info is not None:
                self._authorizer.forget(info.session_id)
        self._authorizer = None
        self._queue = None
        self.realm = None
        self.info = None
        self.session_id = None
        self.roles = {}
        if info is not None:
            duration = self.router.clock.seconds() - info.joined_at
            self.router.dispatcher.emit(SessionLeft(info, reason, duration), self.chain)

    # -- errors -----------------------------------------------------------------

    def protocol_violation(self, text: str, msg=None, exc: Exception | None = None) -> None:
        """Tell the peer with ABORT protocol_violation and end this connection only."""
        if self.state is CLOSED:
            return
        self._report_error(exc or ProtocolViolation(text), msg)
        if self.state in (JOINED, CLOSING):
            self._closing_reason = PROTOCOL_VIOLATION
            self._leave(PROTOCOL_VIOLATION)
        elif self.state in (JOINING, AUTHENTICATING, CHALLENGED):
            self.info = None
            self.session_id = None
            self._pending = self._challenge = None
        self.state = AWAIT_HELLO
        self.abort(PROTOCOL_VIOLATION, text)

    def abort(self, reason: str, text: str) -> None:
        """Send ABORT and close the transport (the connection ends)."""
        self.send(message.Abort(reason=reason, message=text))
        self.peer.close()

    def _report_error(self, exc: Exception, msg) -> None:
        # the offending message's type: from the message, or (one Autobahn refused to
        # parse, e.g. a client-sent WELCOME) from the type code the payload carried
        code = msg.MESSAGE_TYPE if msg is not None else getattr(exc, "message_type", None)
        name = MESSAGE_NAMES.get(code) if type(code) is int else None
        self.router.dispatcher.emit(
            ClientError(self.connection, self.info or self.last_info, exc, name), self.chain
        )

    # -- outbound ---------------------------------------------------------------

    def send(self, msg: message.Message) -> bool:
        """
        Hand ``msg`` to the peer, which encodes and writes it.  False when the
        message cannot be sent (it cannot be encoded, it is over the size the
        peer accepts, or the peer is gone); ``send_failure`` then holds the
        error URI for a caller.  A peer that stopped reading is handled by the
        slow-consumer policy (:meth:`slow_consumer`, called by the peer).
        """
        if self._lost:
            return False
        return self.peer.send(msg)

    def slow_consumer(self, full) -> None:
        """
        The peer stopped reading and its outbound buffer is over the limit
        (``full``: a :class:`router.wire.OutboundFull`, with ``held``, ``size``, ``limit``):
        drop the connection at once (a GOODBYE could not get through), so what
        was buffered for it is released.  ``session_left`` says
        :data:`SLOW_CONSUMER`, ``client_disconnected`` names the limit and
        the bytes waiting.  The session leaves when the transport reports the
        loss (not now: this runs inside a delivery loop).
        """
        text = (
            f"slow consumer: {full.held + full.size} bytes waiting to be sent would pass "
            f"max_outbound_buffer ({full.limit} bytes)"
        )
        if self.state is JOINED or self.state is CLOSING:
            self.state = CLOSING  # nothing more is read from it
            self._closing_reason = SLOW_CONSUMER
        _log.warn("dropping connection {conn}: {text}", conn=self.connection.id, text=text)
        self.peer.abort(text)

    def send_error(self, request_type: int, request: int, uri: str, text: str | None = None, **extra) -> bool:
        return self.send(
            message.Error(request_type, request, uri, args=[text] if text else None, **extra)
        )


def _announced_roles(hello: message.Hello) -> dict:
    """
    The client's roles and features as HELLO announced them.  Autobahn's
    feature classes drop features they do not know (such as
    ``progressive_call_invocations``); those are copied back from the raw
    HELLO details, so the dealer sees every boolean feature the client sent.
    """
    roles = hello.roles or {}
    details = hello._router_internal if isinstance(hello._router_internal, dict) else {}
    for name, features in roles.items():
        raw = details.get("roles", {}).get(name, {}).get("features", {})
        for feature, value in raw.items():
            if type(value) is bool and not hasattr(features, feature):
                setattr(features, feature, value)
    return roles


# -- message table for joined sessions -------------------------------------


class _Refusal:
    """A request :mod:`router.wire.codec` refused, queued like a message so its ERROR keeps the session's order."""

    __slots__ = ("MESSAGE_TYPE", "request", "options", "text")

    @classmethod
    def of(cls, exc: BadRequest) -> "_Refusal | None":
        raw = exc.raw
        code = raw[0]
        at = 1
        if code == _ERROR:
            if len(raw) < 3 or raw[1] != _INVOCATION:
                return None
            at = 2
        elif code not in _ANSWERABLE and code != _YIELD:
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


def _refused(session: RouterSession, refusal: _Refusal) -> None:
    code, request, text = refusal.MESSAGE_TYPE, refusal.request, refusal.text
    dealer = session.realm.dealer
    if code == _CALL:
        dealer.end_call(session, request, INVALID_ARGUMENT, text)
    elif code == _YIELD or code == _ERROR:
        dealer.end_invocation(session, request, INVALID_ARGUMENT, f"the callee's answer was refused: {text}")
    elif code == _PUBLISH:
        if refusal.options.get("acknowledge") is True:  # as refuse_publish: only an acknowledged one hears
            session.send_error(code, request, INVALID_ARGUMENT, text)
    else:
        session.send_error(code, request, INVALID_ARGUMENT, text)


def _publish(session, msg):
    session.realm.broker.publish(session, msg)


def _subscribe(session, msg):
    session.realm.broker.subscribe(session, msg)


def _unsubscribe(session, msg):
    session.realm.broker.unsubscribe(session, msg)


def _call(session, msg):
    session.realm.dealer.call(session, msg)


def _yield(session, msg):
    session.realm.dealer.yield_(session, msg)


def _register(session, msg):
    session.realm.dealer.register(session, msg)


def _unregister(session, msg):
    session.realm.dealer.unregister(session, msg)


def _cancel(session, msg):
    session.realm.dealer.cancel(session, msg)


def _on_error(session: RouterSession, msg: message.Error) -> None:
    if msg.request_type != message.Invocation.MESSAGE_TYPE:
        raise ProtocolViolation(
            f"ERROR for {MESSAGE_NAMES.get(msg.request_type, msg.request_type)} is not allowed from a client"
        )
    session.realm.dealer.callee_error(session, msg)


# messages that need authorization: (action, the message field holding the URI)
_ACTIONS = {
    message.Subscribe: ("subscribe", "topic"),
    message.Publish: ("publish", "topic"),
    message.Register: ("register", "procedure"),
    message.Call: ("call", "procedure"),
    FastCall: ("call", "procedure"),
}

_JOINED = {
    _Refusal: _refused,
    message.Publish: _publish,
    message.Subscribe: _subscribe,
    message.Unsubscribe: _unsubscribe,
    message.Call: _call,
    FastCall: _call,
    message.Yield: _yield,
    FastYield: _yield,
    message.Register: _register,
    message.Unregister: _unregister,
    message.Cancel: _cancel,
    message.Error: _on_error,
    message.Goodbye: RouterSession._on_goodbye,
    message.Abort: RouterSession._on_abort,
}
