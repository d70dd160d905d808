"""
WAMP over WebSocket: Autobahn's WAMP server factory, wired to a router.

* Connection limits are counted from ``connectionMade`` (``Router.admit``):
  one over a limit gets HTTP 503 and is closed, nothing it sent read; the
  upgrade must be done within the HELLO timeout (the router's sweep).
* The WebSocket path (``/ws`` by default; other paths get HTTP 404); a plain
  HTTP request gets 404 (426 on the WebSocket path), a WebSocket version other
  than 13 gets 426 with ``Sec-WebSocket-Version: 13``, and no answer carries
  a ``Server`` header.
* Subprotocols ``wamp.2.json``, ``wamp.2.msgpack``, ``wamp.2.cbor`` and their
  ``.batched`` variants, and permessage-deflate (:mod:`router.wire.wsmodes`) (a client
  that offers none gets JSON, one that offers only unknown ones gets HTTP 400).
* A message over ``max_message_size`` closes the connection with 1009.
* Payloads are decoded here with the factory's shared codec; the session gets
  message objects, and what it sends is encoded here (:meth:`send`).
* Pings come from the shared :class:`~router.wire.ping.PingSweeper`.

The handshake's common case is answered by :mod:`router.wire._handshake` (the
rest by Autobahn's); a connection keeps only what differs from its class's
defaults (:mod:`router.wire._lean`); the Autobahn internals used here are in
:mod:`router.wire._autobahn`, each with a test.
"""

from __future__ import annotations

import struct

from autobahn.twisted.websocket import WampWebSocketServerFactory, WampWebSocketServerProtocol
from autobahn.wamp import message as _message
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.error import ConnectionDone
from zope.interface import implementer

from router.errors import BadRequest, UriError, WireError
from router.events import Reject
from router.interfaces import IPeer
from router.wire import _autobahn
from router.wire._address import describe, peer_host
from router.wire._handshake import FastHandshake, http_refusal
from router.wire._lean import Lean, protocol_for
from router.wire.checks import refuse
from router.wire.codec import codecs
from router.wire.outbound import _UNLIMITED, MemoryReleaser, _OutboundLimit
from router.wire.ping import PingSweeper
from router.wire.forwarded import behind_proxy
from router.wire.tls import client_certificate
from router.wire.wsmodes import choose_subprotocol, deflate_accept, install as install_modes

__all__ = ["WebSocketFactory", "WebSocketProtocol"]

_HEADER16 = struct.Struct("!BBH")
_HEADER64 = struct.Struct("!BBQ")
_DECODE_ERRORS = (WireError, UriError, BadRequest)


_HTTP_503 = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"  # over a limit at accept


@implementer(IPeer)
class WebSocketProtocol(_OutboundLimit, FastHandshake, Lean, WampWebSocketServerProtocol):
    """One WAMP-over-WebSocket connection."""

    wampd_session = None
    ping_sent: float | None = None
    # Autobahn copies its config attributes from the factory at every connection
    # and pretty-prints them for a debug line whether or not debug is on (about a
    # third of a join's cost); we copy them ourselves and give it nothing to print.
    _AUTOBAHN_CONFIG_ATTRS = _autobahn.CONFIG_ATTRS
    CONFIG_ATTRS = ()
    last_heard: float = 0.0
    max_send = _UNLIMITED  # WebSocket peers announce no limit

    _refused_at_accept = False
    batched = False  # a wamp.2.*.batched subprotocol (router.wire.wsmodes)

    def connectionMade(self):
        # counted from here (router.admit), not from the upgrade request: a
        # connection over a limit is answered 503 and closed before anything
        # it sent is read, and Autobahn never sees it
        router = self.factory.router
        host = peer_host(self.transport)
        trust = self.factory.proxy_trust
        # a trusted proxy's client is counted per address once its upgrade request names it
        refusal = router.admit(self, None if trust is not None and trust.trusts(host) else host)
        if refusal is None:
            super().connectionMade()
            return
        self._refused_at_accept = True
        self.wampd_session = router.refused_at_accept(
            self,
            refusal,
            transport="websocket",
            peer_address=describe(self.transport.getPeer()),
            host=host,
            endpoint=self.factory.endpoint,
        )
        self.transport.write(_HTTP_503)
        self.transport.loseConnection()

    def _connectionMade(self):  # Autobahn's private hook (_autobahn.CONNECTION_MADE); see Lean
        super()._connectionMade()
        # Autobahn registers no producer of its own (it only unregisters ours in dropConnection)
        self._start_producing()

    def connectionLost(self, reason=None):
        try:
            if self._refused_at_accept:  # Autobahn never saw it: report it as RawSocket does
                orderly = reason is None or reason.check(ConnectionDone) is not None
                self.wampd_session.lost(orderly, None, None if orderly else reason.getErrorMessage())
            else:
                super().connectionLost(reason)
        finally:
            self.factory.router.release(self)

    def onConnect(self, request):
        factory = self.factory
        if factory.path is not None and request.path != factory.path:
            raise ConnectionDeny(
                ConnectionDeny.NOT_FOUND,
                f"no WAMP endpoint at {request.path!r}; connect to {factory.path!r}",
            )
        chosen, serializer = choose_subprotocol(request.protocols)  # raises ConnectionDeny (400) for none we speak
        self.batched = chosen.endswith(".batched")
        self.codec = factory.codecs[serializer]
        host, peer = peer_host(self.transport), request.peer
        if factory.proxy_trust is not None:  # behind a reverse proxy: router.wire.proxy
            host, peer, refusal = behind_proxy(self, factory, host, peer, request.headers)
            if refusal is not None:
                self.wampd_session = factory.router.refused_at_accept(
                    self, refusal, transport="websocket", peer_address=peer, host=host, endpoint=factory.endpoint
                )
                raise ConnectionDeny(ConnectionDeny.SERVICE_UNAVAILABLE, refusal.message)
        self.traffic = factory.traffic and factory.traffic[serializer]  # counters, when metrics are on
        session = factory.router.connect(
            self,
            transport="websocket",
            peer_address=peer,
            host=host,
            serializer=serializer,
            endpoint=factory.endpoint,
            origin=request.origin or None,  # Autobahn gives "" when there is no Origin header
            path=request.path,
            headers=dict(request.headers),
            client_cert=client_certificate(self.transport) if factory.client_ca else None,
        )
        self.wampd_session = session
        d = session.opened()
        if d is None:
            return chosen
        return d.addCallbacks(lambda _: chosen, self._refused)

    def failHandshake(self, reason, code=400, responseHeaders=None):
        """Autobahn refuses a handshake request: answered as RFC 6455 and RFC 9110 say (_handshake.http_refusal)."""
        super().failHandshake(*http_refusal(self, reason, code, responseHeaders))

    @staticmethod
    def _refused(failure):
        failure.trap(Reject)
        raise ConnectionDeny(ConnectionDeny.FORBIDDEN, failure.value.message)

    def onOpen(self):
        self._settle()
        self.last_heard = self.factory.router.clock.seconds()
        self.factory.sweeper.add(self)
        if self.batched or self._perMessageCompress is not None:  # _autobahn.PER_MESSAGE_COMPRESS
            install_modes(self)

    # -- hot path: skip Autobahn's per-message debug formatting and "message"
    #    signal (a Deferred per message); frames are written directly.

    def dataReceived(self, data):
        """
        Fast path for the common case: complete, unfragmented, masked text or
        binary frames while the connection is open, parsed here; anything
        else (control frames, fragments, partial frames, oversize messages,
        closing) goes through Autobahn's own frame machine, which keeps the
        protocol's full rules.  The frame machine's attributes read here are
        listed in :mod:`router.wire._autobahn` (``FRAME_MACHINE``, ``DATA_RECEIVED``).
        """
        if self.state != self.STATE_OPEN or self.data or self.current_frame is not None or self.inside_message:
            self._dataReceived(data)
            return
        size = len(data)
        at = 0
        limit = self.maxMessagePayloadSize
        session = self.wampd_session
        decode = self.codec.decode
        traffic = self.traffic
        while at < size and self.state == self.STATE_OPEN:
            if size - at < 6:
                break
            first, second = data[at], data[at + 1]
            opcode = first & 0x0F
            if first & 0xF0 != 0x80 or opcode not in (1, 2) or not second & 0x80:
                break  # fragment, reserved bits, control frame or unmasked: Autobahn decides
            length = second & 0x7F
            head = at + 2
            if length == 126:
                if size - head < 2:
                    break
                length = int.from_bytes(data[head : head + 2], "big")
                head += 2
            elif length == 127:
                if size - head < 8:
                    break
                length = int.from_bytes(data[head : head + 8], "big")
                head += 8
            if 0 < limit < length or size - head - 4 < length:
                break
            mask = data[head : head + 4]
            start = head + 4
            at = start + length
            if length:
                key = int.from_bytes((mask * (length // 4 + 1))[:length], "little")
                payload = (int.from_bytes(data[start:at], "little") ^ key).to_bytes(length, "little")
            else:
                payload = b""
            self.messages_in += 1
            self.bytes_in += length
            try:
                msg = decode(payload)
            except _DECODE_ERRORS as exc:
                refuse(session, exc, self.factory.router.clock)
            else:
                if traffic is not None:  # router.ops.meter: messages and bytes by type
                    kind = msg.MESSAGE_TYPE
                    traffic.in_msgs[kind] += 1
                    traffic.in_bytes[kind] += length
                session.receive(msg)
        if at < size:
            # the rest, also when a message just read changed the state (our close
            # after the peer's GOODBYE, an ABORT): the peer's Close frame often
            # shares the read with its GOODBYE and must reach the closing handshake
            self._dataReceived(data[at:] if at else data)

    def onMessageEnd(self):
        # a fragmented message is complete (message_data, failedByMe: see _autobahn)
        data, self.message_data = self.message_data, None
        if not self.failedByMe:
            self.onMessage(b"".join(data), None)

    def onMessage(self, payload, isBinary):
        session = self.wampd_session
        self.messages_in += 1
        self.bytes_in += len(payload)
        try:
            msg = self.codec.decode(payload)
        except _DECODE_ERRORS as exc:
            refuse(session, exc, self.factory.router.clock)
        else:
            traffic = self.traffic
            if traffic is not None:  # router.ops.meter
                traffic.in_msgs[msg.MESSAGE_TYPE] += 1
                traffic.in_bytes[msg.MESSAGE_TYPE] += len(payload)
            session.receive(msg)

    def onPing(self, payload):
        """
        Answer a PING with a PONG of the same payload (at most 125 bytes: the
        frame machine refuses longer control frames), counted against
        ``max_outbound_buffer`` like any message (Autobahn's own answer
        writes past it): a peer that pings but never reads meets the
        slow-consumer policy.
        """
        if self.state == self.STATE_OPEN:
            self._write_control(bytes((0x8A, len(payload))) + payload)

    def onPong(self, payload):
        self.ping_sent = None
        self.last_heard = self.factory.router.clock.seconds()

    def onClose(self, wasClean, code, reason):
        self.factory.sweeper.discard(self)
        session = self.wampd_session
        if session is not None:
            if self.closedByMe and self.localCloseCode is not None:  # _autobahn.CLOSE_STATE
                # report why *we* closed (e.g. 1009 message too big), not the echo
                code, reason = self.localCloseCode, self.localCloseReason or reason
            session.lost(wasClean, code, self._drop_reason or reason)
        self._gone()

    def ping_timed_out(self, waited: float) -> None:
        self._drop_reason = f"no pong within {waited:.1f}s"
        self.factory.sweeper.discard(self)
        self.dropConnection(abort=True)

    # -- the peer interface the session uses --------------------------------

    def send(self, msg: _message.Message) -> bool:
        """
        Encode ``msg`` (once per serializer: the bytes are cached on the
        message) and write one unfragmented, uncompressed server frame (no
        mask) directly.  False, writing nothing and setting ``send_failure``,
        when it cannot be encoded; past the outbound limit the slow-consumer
        policy acts instead (see :class:`_OutboundLimit`).
        """
        codec = self.codec
        try:
            data = codec.encode(msg)
        except Exception as exc:
            return self._unencodable(msg, exc)
        if self.state != self.STATE_OPEN:
            # dropped by the router (slow consumer, no pong): the session's
            # cleanup answers what is pending, so report the message as taken
            return self._drop_reason is not None
        size = len(data)
        first = 0x82 if codec.binary else 0x81
        if size < 126:
            header = bytes((first, size))
        elif size < 65536:
            header = _HEADER16.pack(first, 126, size)
        else:
            header = _HEADER64.pack(first, 127, size)
        held = self.held
        if held is not None:
            held += size + len(header)
            if held > self.max_outbound:
                return self._overflow(msg, size + len(header))
            self.held = held
        self.transport.write(header + data)
        self.messages_out += 1
        self.bytes_out += size
        traffic = self.traffic
        if traffic is not None:  # router.ops.meter
            traffic.out_msgs[msg.MESSAGE_TYPE] += 1
            traffic.out_bytes[msg.MESSAGE_TYPE] += size
        return True

    def close(self):
        if self.state == self.STATE_OPEN:
            self.sendClose(1000)
        else:
            self.dropConnection(abort=False)

    def abort(self, reason: str | None = None):
        """Drop the connection at once; ``reason`` is reported in ``client_disconnected``."""
        if reason is not None:
            self._drop_reason = reason
        self.dropConnection(abort=True)


class WebSocketFactory(WampWebSocketServerFactory):
    """Autobahn's WAMP WebSocket server factory, wired to a router."""

    protocol = WebSocketProtocol
    noisy = False
    traffic = None  # serializer -> counters, set by router.ops.meter when metrics are on
    client_ca = None  # a listen's TLS client CA file (router.wire.tls)

    def __init__(
        self,
        router,
        sweeper: PingSweeper,
        *,
        url: str | None = None,
        path: str | None = "/ws",
        endpoint: str = "",
        max_message_size: int = 1048576,
        max_outbound_buffer: int = 1048576,
        slow_consumer: str = "disconnect",
        max_nesting_depth: int | None = None,
        deflate: bool = False,
    ) -> None:
        """``max_nesting_depth``: for the codecs; None takes the router's. ``deflate``: offer permessage-deflate."""
        serializers = [JsonSerializer(), MsgPackSerializer(), CBORSerializer()]
        super().__init__(lambda: None, serializers=serializers, url=url)
        self.server = None  # no Server header: HTTP answers do not name the software or its version
        self.router = router
        self.proxy_trust = None  # a router.wire.proxy.ProxyTrust when trusted_proxies is set
        self.sweeper = sweeper
        self.path = path
        self.endpoint = endpoint
        self.max_outbound_buffer = max_outbound_buffer
        self.slow_consumer = slow_consumer
        self.releaser = MemoryReleaser(router.clock)
        self.codecs = codecs(router, max_nesting_depth)
        self.setProtocolOptions(
            versions=[13],  # RFC 6455 only; others get 426 (WebSocketProtocol.failHandshake)
            webStatus=False,  # no status page: a plain HTTP request gets 404 or 426
            # Autobahn would answer "Origin: null" with 400 itself; the router's
            # policy decides (allowed_origins may list null; if not, 403)
            allowNullOrigin=True,
            maxMessagePayloadSize=max_message_size,
            maxFramePayloadSize=max_message_size,
            autoPingInterval=0,
            failByDrop=False,
            # the HTTP upgrade request must arrive within the HELLO timeout, which the
            # router's sweep checks (Autobahn's own timer rounds to whole seconds);
            # Autobahn's, 10 s, only when the HELLO timeout is off
            openHandshakeTimeout=0 if router.hello_timeout > 0 else 10.0,
            closeHandshakeTimeout=2,
        )
        if deflate:  # router.wire.wsmodes
            self.setProtocolOptions(perMessageCompressionAccept=deflate_accept(max_message_size))

    def setProtocolOptions(self, **options):
        super().setProtocolOptions(**options)
        self.protocol = protocol_for(self, WebSocketProtocol)  # the options as class attributes (router.wire._lean)
