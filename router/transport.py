"""
Transports: WAMP over WebSocket (Autobahn's WAMP server factory) and WAMP
over RawSocket, plus the ping sweeper.

Both hand the router parsed messages through a
:class:`~router.session.RouterSession` and act as its *peer*
(``send_bytes``, ``close``, ``abort``).  Policy lives here:

* connection limits, counted from ``connectionMade`` (``Router.admit``):
  one over a limit is closed at once, nothing it sent read (WebSocket: 503,
  RawSocket: handshake error 4), and the transport handshake must be done
  within the HELLO timeout (the router's sweep);
* the WebSocket path (``/ws`` by default; other paths get HTTP 404); a plain
  HTTP request gets 404 (426 on the WebSocket path), a WebSocket version other
  than 13 gets 426 with ``Sec-WebSocket-Version: 13``, and no answer carries
  a ``Server`` header;
* subprotocols ``wamp.2.json``, ``wamp.2.msgpack``, ``wamp.2.cbor`` (a client
  that offers none gets JSON, one that offers only unknown ones gets HTTP 400);
* a maximum message size for what clients send: WebSocket closes with 1009,
  RawSocket answers with ABORT ``wamp.error.protocol_violation`` naming the
  size and the limit, then closes;
* WebSocket pings from one sweeping timer (:class:`PingSweeper`), not a timer
  per connection: an idle connection is pinged every ``ping_interval``
  seconds and dropped when no pong comes within ``ping_timeout``.  RawSocket
  peers may ping the router (it answers) but are not pinged.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from autobahn.twisted.websocket import WampWebSocketServerFactory, WampWebSocketServerProtocol
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from router.events import Reject
from router.wire import RAWSOCKET_IDS

__all__ = [
    "WebSocketFactory",
    "WebSocketProtocol",
    "RawSocketFactory",
    "RawSocketProtocol",
    "PingSweeper",
]

_log = Logger(namespace="wampd.transport")

_HEADER16 = struct.Struct("!BBH")
_HEADER64 = struct.Struct("!BBQ")

_SUBPROTOCOLS = {"wamp.2.json": "json", "wamp.2.msgpack": "msgpack", "wamp.2.cbor": "cbor"}

# the whole answer to a WebSocket connection refused when accepted (over a limit)
_HTTP_503 = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def _peer_host(transport) -> str | None:
    try:
        return getattr(transport.getPeer(), "host", None)
    except Exception:
        return None


class PingSweeper:
    """One timer for all WebSocket connections' pings and pong timeouts."""

    def __init__(self, clock: Any, interval: float, timeout: float) -> None:
        self.clock = clock
        self.interval = interval
        self.timeout = timeout
        self._members: set[WebSocketProtocol] = set()
        self._loop: LoopingCall | None = None

    def start(self) -> None:
        if self.interval <= 0 or self._loop is not None:
            return
        self._loop = LoopingCall(self.sweep)
        self._loop.clock = self.clock
        tick = max(0.05, min(self.interval, self.timeout) / 4)
        self._loop.start(tick, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def add(self, proto: WebSocketProtocol) -> None:
        self._members.add(proto)

    def discard(self, proto: WebSocketProtocol) -> None:
        self._members.discard(proto)

    def sweep(self) -> None:
        now = self.clock.seconds()
        interval, timeout = self.interval, self.timeout
        for proto in list(self._members):
            sent = proto.ping_sent
            if sent is not None:
                if now - sent >= timeout:
                    proto.ping_timed_out(now - sent)
            elif now - max(proto.last_heard, proto.wampd_session.last_seen) >= interval:
                # silent (no message, no pong) for a whole interval: ping it
                proto.ping_sent = now
                proto.sendPing(b"wampd")


class WebSocketProtocol(WampWebSocketServerProtocol):
    """One WAMP-over-WebSocket connection."""

    wampd_session = None
    ping_sent: float | None = None
    # Autobahn copies its config attributes from the factory at every connection
    # and pretty-prints them for a debug line whether or not debug is on (about a
    # third of a join's cost); we copy them ourselves and give it nothing to print.
    _AUTOBAHN_CONFIG_ATTRS = WampWebSocketServerProtocol.CONFIG_ATTRS
    CONFIG_ATTRS = ()
    last_heard: float = 0.0
    _drop_reason: str | None = None

    _refused_at_accept = False

    def connectionMade(self):
        # counted from here (router.admit), not from the upgrade request: a
        # connection over a limit is answered 503 and closed before anything
        # it sent is read, and Autobahn never sees it
        router = self.factory.router
        host = _peer_host(self.transport)
        refusal = router.admit(self, host)
        if refusal is None:
            super().connectionMade()
            return
        self._refused_at_accept = True
        self.wampd_session = router.refused_at_accept(
            self,
            refusal,
            transport="websocket",
            peer_address=_describe(self.transport.getPeer()),
            host=host,
            endpoint=self.factory.endpoint,
        )
        self.transport.write(_HTTP_503)
        self.transport.loseConnection()

    def _connectionMade(self):
        factory = self.factory
        for name in self._AUTOBAHN_CONFIG_ATTRS:
            setattr(self, name, getattr(factory, name))
        super()._connectionMade()

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
        chosen = None
        for offered in request.protocols:
            if offered in _SUBPROTOCOLS:
                chosen = offered
                break
        if chosen is None:
            if request.protocols:
                raise ConnectionDeny(
                    ConnectionDeny.BAD_REQUEST,
                    f"none of the offered subprotocols {request.protocols} is supported; "
                    f"use one of {sorted(_SUBPROTOCOLS)}",
                )
            chosen = "wamp.2.json"
        serializer = _SUBPROTOCOLS[chosen]
        session = factory.router.connect(
            self,
            transport="websocket",
            peer_address=request.peer,
            host=_peer_host(self.transport),
            serializer=serializer,
            endpoint=factory.endpoint,
            origin=request.origin or None,  # Autobahn gives "" when there is no Origin header
            path=request.path,
            headers=dict(request.headers),
        )
        self.wampd_session = session
        d = session.opened()
        if d is None:
            return chosen
        return d.addCallbacks(lambda _: chosen, self._refused)

    def failHandshake(self, reason, code=400, responseHeaders=None):
        """
        Autobahn refuses a handshake request: answer as RFC 6455 and RFC 9110 say.

        * Another WebSocket version than 13: 426 Upgrade Required with
          ``Sec-WebSocket-Version: 13`` (RFC 6455 4.2.2 and 4.4).
        * A plain HTTP request (no ``Upgrade`` header): 404 Not Found outside
          the WebSocket path (no page is served anywhere), 426 Upgrade Required
          on it, naming the upgrade it needs.
        """
        headers = getattr(self, "http_headers", None) or {}
        if responseHeaders and any(name.lower() == "sec-websocket-version" for name, _ in responseHeaders):
            code, responseHeaders = 426, [("Sec-WebSocket-Version", "13")]
        elif code == 426 and "upgrade" not in headers:
            wanted = self.factory.path
            if wanted is not None and getattr(self, "http_request_path", None) != wanted:
                code, reason, responseHeaders = 404, "Not Found", None
            else:
                reason = "Upgrade Required: this is a WAMP WebSocket endpoint"
                responseHeaders = [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")]
        super().failHandshake(reason, code, responseHeaders)

    @staticmethod
    def _refused(failure):
        failure.trap(Reject)
        raise ConnectionDeny(ConnectionDeny.FORBIDDEN, failure.value.message)

    def onOpen(self):
        self.last_heard = self.factory.router.clock.seconds()
        self.factory.sweeper.add(self)

    # -- hot path: skip Autobahn's per-message debug formatting and "message"
    #    signal (a Deferred per message); frames are written directly.

    def dataReceived(self, data):
        """
        Fast path for the common case: complete, unfragmented, masked text or
        binary frames while the connection is open, parsed here; anything
        else (control frames, fragments, partial frames, oversize messages,
        closing) goes through Autobahn's own frame machine, which keeps the
        protocol's full rules.
        """
        if self.state != self.STATE_OPEN or self.data or self.current_frame is not None or self.inside_message:
            self._dataReceived(data)
            return
        size = len(data)
        at = 0
        limit = self.maxMessagePayloadSize
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
            self.wampd_session.receive(payload)
        if at < size and self.state == self.STATE_OPEN:
            self._dataReceived(data[at:] if at else data)

    def onMessageEnd(self):
        data, self.message_data = self.message_data, None
        if not self.failedByMe:
            self.wampd_session.receive(b"".join(data))

    def onMessage(self, payload, isBinary):
        self.wampd_session.receive(payload)

    def onPong(self, payload):
        self.ping_sent = None
        self.last_heard = self.factory.router.clock.seconds()

    def onClose(self, wasClean, code, reason):
        self.factory.sweeper.discard(self)
        session = self.wampd_session
        if session is not None:
            if self.closedByMe and self.localCloseCode is not None:
                # report why *we* closed (e.g. 1009 message too big), not the echo
                code, reason = self.localCloseCode, self.localCloseReason or reason
            session.lost(wasClean, code, self._drop_reason or reason)

    def ping_timed_out(self, waited: float) -> None:
        self._drop_reason = f"no pong within {waited:.1f}s"
        self.factory.sweeper.discard(self)
        self.dropConnection(abort=True)

    # -- the peer interface the session uses --------------------------------

    def send_bytes(self, data: bytes, binary: bool) -> bool:
        """One unfragmented, uncompressed server frame (no mask), written directly."""
        if self.state != self.STATE_OPEN:
            return False
        size = len(data)
        first = 0x82 if binary else 0x81
        if size < 126:
            header = bytes((first, size))
        elif size < 65536:
            header = _HEADER16.pack(first, 126, size)
        else:
            header = _HEADER64.pack(first, 127, size)
        self.transport.write(header + data)
        return True

    def close(self):
        if self.state == self.STATE_OPEN:
            self.sendClose(1000)
        else:
            self.dropConnection(abort=False)

    def abort(self):
        self.dropConnection(abort=True)


class WebSocketFactory(WampWebSocketServerFactory):
    """Autobahn's WAMP WebSocket server factory, wired to a router."""

    protocol = WebSocketProtocol
    noisy = False

    def __init__(
        self,
        router,
        sweeper: PingSweeper,
        *,
        url: str | None = None,
        path: str | None = "/ws",
        endpoint: str = "",
        max_message_size: int = 1048576,
    ) -> None:
        serializers = [JsonSerializer(), MsgPackSerializer(), CBORSerializer()]
        super().__init__(lambda: None, serializers=serializers, url=url)
        self.server = None  # no Server header: HTTP answers do not name the software or its version
        self.router = router
        self.sweeper = sweeper
        self.path = path
        self.endpoint = endpoint
        self.setProtocolOptions(
            versions=[13],  # RFC 6455 only; others get 426 (WebSocketProtocol.failHandshake)
            webStatus=False,  # no status page: a plain HTTP request gets 404 or 426
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


# -- RawSocket ----------------------------------------------------------------

_RS_MAGIC = 0x7F
_RS_ERR_SERIALIZER = 1
_RS_ERR_RESERVED = 3
_RS_ERR_LIMIT = 4


class RawSocketProtocol(Protocol):
    """One WAMP-over-RawSocket connection (the spec's framing, pings included)."""

    wampd_session = None

    def connectionMade(self) -> None:
        self._buffer = b""
        self._state = "handshake"  # -> "vetting" -> "open" -> "closed"
        self._max_send = 0
        self.wampd_session = None
        router = self.factory.router
        peer = self.transport.getPeer()
        host = getattr(peer, "host", None)
        refusal = router.admit(self, host)
        if refusal is not None:
            # over a limit: the spec's "maximum connection count reached" and
            # close, before the client's handshake is even read
            self._state = "closed"
            self.wampd_session = router.refused_at_accept(
                self, refusal, transport="rawsocket", peer_address=_describe(peer), host=host,
                endpoint=self.factory.endpoint,
            )
            self.transport.write(bytes([_RS_MAGIC, _RS_ERR_LIMIT << 4, 0, 0]))
            self.transport.loseConnection()
            return
        # the 4 handshake bytes must come within the HELLO timeout: the router's
        # sweep (Router.admit) aborts the connection when they do not

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        if self._state == "open":
            self._frames()
        elif self._state == "handshake" and len(self._buffer) >= 4:
            self._handshake()

    def _handshake(self) -> None:
        head, self._buffer = self._buffer[:4], self._buffer[4:]
        if head[0] != _RS_MAGIC:
            self._state = "closed"
            self.transport.loseConnection()
            return
        if head[2] or head[3]:
            self._handshake_error(_RS_ERR_RESERVED)
            return
        serializer = RAWSOCKET_IDS.get(head[1] & 0x0F)
        if serializer is None:
            self._handshake_error(_RS_ERR_SERIALIZER)
            return
        self._max_send = 2 ** (9 + (head[1] >> 4))
        self._serializer_code = head[1] & 0x0F
        factory = self.factory
        peer = self.transport.getPeer()
        session = factory.router.connect(
            self,
            transport="rawsocket",
            peer_address=_describe(peer),
            host=getattr(peer, "host", None),
            serializer=serializer,
            endpoint=factory.endpoint,
        )
        self.wampd_session = session
        self._state = "vetting"
        d = session.opened()
        if d is None:
            self._accepted()
        else:
            d.addCallbacks(lambda _: self._accepted(), self._refused)

    def _accepted(self) -> None:
        if self._state != "vetting":
            return
        exponent = self.factory.max_exponent
        self.transport.write(bytes([_RS_MAGIC, (exponent << 4) | self._serializer_code, 0, 0]))
        self._state = "open"
        if self._buffer:
            self._frames()

    def _refused(self, failure) -> None:
        failure.trap(Reject)
        if self._state == "vetting":
            code = _RS_ERR_LIMIT if failure.value.reason == "limit" else 0
            self._handshake_error(code)

    def _handshake_error(self, code: int) -> None:
        self._state = "closed"
        self.transport.write(bytes([_RS_MAGIC, code << 4, 0, 0]))
        self.transport.loseConnection()

    def _frames(self) -> None:
        buf = self._buffer
        limit = self.factory.max_message_size
        at = 0
        end = len(buf)
        session = self.wampd_session
        while end - at >= 4 and self._state == "open":
            kind = buf[at] & 0x07
            length = int.from_bytes(buf[at + 1 : at + 4], "big")
            if length > limit:
                self._buffer = b""
                session.abort(
                    "wamp.error.protocol_violation",
                    f"message of {length} bytes exceeds the limit of {limit} bytes",
                )
                return
            if end - at - 4 < length:
                break
            payload = buf[at + 4 : at + 4 + length]
            at += 4 + length
            if kind == 0:
                session.receive(payload)
            elif kind == 1:
                self.transport.write(b"\x02" + length.to_bytes(3, "big") + payload)
            elif kind == 2:
                pass
            else:
                self._buffer = b""
                session.protocol_violation(f"unknown RawSocket frame type {kind}")
                return
        self._buffer = buf[at:] if self._state == "open" else b""

    def connectionLost(self, reason) -> None:
        self._state = "closed"
        session = self.wampd_session
        try:
            if session is not None:
                clean = reason.check(ConnectionDone) is not None
                session.lost(clean, None, None if clean else reason.getErrorMessage())
        finally:
            self.factory.router.release(self)

    # -- the peer interface the session uses --------------------------------

    def send_bytes(self, data: bytes, binary: bool) -> bool:
        if self._state == "closed":
            return False
        if len(data) > self._max_send:
            _log.warn(
                "not sending {size} bytes to connection {conn}: its limit is {limit}",
                size=len(data),
                conn=self.wampd_session.connection.id,
                limit=self._max_send,
            )
            return False
        self.transport.write(b"\x00" + len(data).to_bytes(3, "big") + data)
        return True

    def close(self) -> None:
        self._state = "closed"
        self.transport.loseConnection()

    def abort(self) -> None:
        self._state = "closed"
        self.transport.abortConnection()


def _describe(address) -> str:
    host = getattr(address, "host", None)
    if host is not None:
        kind = "tcp6" if ":" in host else "tcp4"
        return f"{kind}:{host}:{address.port}"
    name = getattr(address, "name", None)
    return f"unix:{name.decode() if isinstance(name, bytes) else name}"


class RawSocketFactory(Factory):
    protocol = RawSocketProtocol
    noisy = False

    def __init__(self, router, *, endpoint: str = "", max_message_size: int = 1048576) -> None:
        self.router = router
        self.endpoint = endpoint
        self.max_message_size = min(max_message_size, 2**24)
        self.max_exponent = max(0, min(15, math.ceil(math.log2(self.max_message_size)) - 9))
