"""
The per-connection WAMP state machine.

A :class:`RouterSession` sits between one transport connection (its *peer*:
a :class:`router.interfaces.IPeer`: send a message, close, abort) and the router.  It
never sees sockets; the transport hands it parsed messages and tells it when
the connection is gone.

States::

    AWAIT_HELLO --HELLO--> JOINING --listeners ok--> JOINED --GOODBYE--> AWAIT_HELLO
         |                    |                         |
         |                    +--refused: ABORT---------+--> CLOSED (transport lost)
         +--anything else: ABORT protocol_violation --> CLOSED

A joined session's messages go to the router function its realm bound at
join (:mod:`router.realm`: a dict keyed on the message class; no Deferred
per routed message).  The session's other parts: :mod:`router.connection`
(the connection's lifecycle events) and :mod:`router.joining` (HELLO to
WELCOME); its states are in :mod:`router.states`.
"""

from __future__ import annotations

from typing import Any

from autobahn.wamp import message
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from router.connection import ConnectionLifecycle
from router.dispatcher import Chain
from router.errors import ProtocolViolation
from router.events import ClientError, ConnectionInfo, SessionInfo, SessionLeft
from router.interfaces import IRoutedSession
from router.joining import Joining
from router.realm import ANSWERABLE as _ANSWERABLE, MESSAGE_NAMES, RefusedRequest
from router.states import (  # noqa: F401  (the states are re-exported here)
    AUTHENTICATING,
    AWAIT_HELLO,
    CHALLENGED,
    CLOSED,
    CLOSING,
    JOINED,
    JOINING,
    PAYLOAD_SIZE_EXCEEDED,
    PROTOCOL_VIOLATION,
    SLOW_CONSUMER,
)
from router.uri import Counter
from router.errors import BadRequest, UriError

__all__ = ["RouterSession", "ProtocolViolation", "SLOW_CONSUMER"]  # ProtocolViolation lives in router.errors

_log = Logger(namespace="wampd.session")

_PUBLISH = message.Publish.MESSAGE_TYPE


@implementer(IRoutedSession)
class RouterSession(ConnectionLifecycle, Joining):
    __slots__ = (
        # the connection
        "router", "peer", "connection", "codec", "chain", "last_seen", "handshake_since",
        "_lost",
        # the session on it: identity, state, and (while joining) the authentication
        "state", "session_id", "info", "last_info", "realm", "roles", "request_ids", "route", "_gate",
        "_pending", "_challenge", "_authextra", "_closing_reason", "_said_goodbye",
    )

    def __init__(self, router: Any, peer: Any, connection: ConnectionInfo, codec) -> None:
        self.router = router
        self.peer = peer
        self.connection = connection
        self.codec = codec
        self.chain = Chain()
        self.state = AWAIT_HELLO
        self.session_id: int | None = None
        self.info: SessionInfo | None = None
        self.last_info: SessionInfo | None = None
        self.realm: Any = None  # joined: its router.realm.Realm
        self.roles: dict = {}
        self.request_ids = Counter()  # session-scope IDs (INVOCATION requests) for this peer
        self.last_seen = connection.opened_at  # last message received (the ping sweeper spares busy peers)
        self._pending = None  # (realm, hello) while authenticating
        self._challenge = None
        self._authextra = None
        self.route = None  # joined: its realm's router function, bound at join (Realm.attach)
        self._gate = None  # joined: its realm's authorization gate; None: no checks needed
        self.handshake_since = connection.opened_at
        self._closing_reason: str | None = None
        self._lost = False
        self._said_goodbye = False  # the last session ended with a GOODBYE exchange
        # the error URI explaining why the last send() returned False (the dealer answers callers with it)

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
            self.route(self, msg)  # the realm routes it (router.realm)
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

    def bad_request(self, exc: BadRequest) -> None:
        """
        A well-formed request with refused values (see :mod:`router.wire.codec`):
        answered with ERROR ``invalid_argument`` in order with the session's
        other messages, or ABORT ``protocol_violation`` when nothing can be
        answered (not joined, or a message without a request).
        """
        if self.state is CLOSING:
            return  # after our GOODBYE only the peer's GOODBYE (or ABORT) matters
        refusal = RefusedRequest.of(exc)
        if refusal is None or self.state is not JOINED:
            self.protocol_violation(str(exc), None, exc)
            return
        self.dispatch(refusal)

    def may(self, action: str, uri: str, *, fresh: bool = False, match: str | None = None) -> bool | Deferred:
        """
        Whether this joined session's role may ``action`` on ``uri``, as if it
        sent the message itself: True or False, or a Deferred of one (a
        dynamic authorizer; it never fails, and denies on error or timeout).
        ``fresh`` asks a dynamic authorizer again even when it has a cached
        answer (testaments are checked again as the session leaves).
        """
        gate = self._gate
        if gate is None:
            return True  # an open realm's anonymous session: no checks, as for its own messages
        return gate.may(self.info, action, uri, fresh, match)

    def reattach(self) -> None:
        """Its realm's authorizer changed (a reload): a gate, where the new one needs one, asks it from now on."""
        if self._gate is None:
            self.route, self._gate = self.realm.attach(self)
        else:
            self._gate.reauthorize(self.info)

    def discloses(self, action: str, uri: str) -> bool:
        """Whether the realm's roles disclose this session's identity for ``action`` on ``uri``."""
        gate = self._gate
        return gate is not None and gate.discloses(self.info, action, uri)

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

    # -- leaving --------------------------------------------------------------

    def on_goodbye(self, msg: message.Goodbye) -> None:
        self.send(message.Goodbye(reason="wamp.close.goodbye_and_out"))
        self._said_goodbye = True
        self._leave(msg.reason)
        self.state = AWAIT_HELLO
        self.router.awaiting_hello(self)

    def on_abort(self, msg: message.Abort) -> None:
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
            try:
                realm.detach(self, self._gate)
            except Exception:  # the realm logs and survives its own steps' failures; this is the last guard
                _log.failure("session {session} leaving realm {realm} failed; going on", session=self.session_id, realm=realm.name)
        self._gate = None
        self.route = None
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
        self.report_error(exc or ProtocolViolation(text), msg)
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

    def report_error(self, exc: Exception, msg) -> None:
        """Fire ``client_error`` for ``exc``, raised while handling ``msg`` (or a payload that was not one)."""
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

    def send_paced(self, msgs: list) -> None:
        """
        Hand ``msgs`` to the peer to write as the peer reads them (a
        SUBSCRIBE's retained events): whatever is sent after waits behind
        them, so the order is that of ``send``.
        """
        if not self._lost:
            self.peer.send_paced(msgs)

    def slow_consumer(self, full) -> None:
        """
        The peer stopped reading and its outbound buffer is over the limit:
        drop the connection at once (a GOODBYE could not get through), so what
        was buffered for it is released.  ``session_left`` says
        :data:`SLOW_CONSUMER`, ``client_disconnected`` names the limit and
        the bytes waiting.  The session leaves when the transport reports the
        loss (not now: this runs inside a delivery loop).
        """
        text = getattr(full, "text", None) or (
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
