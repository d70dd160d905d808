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
* pings from one sweeping timer (:class:`PingSweeper`), not a timer per
  connection: an idle connection is pinged every ``ping_interval`` seconds
  and dropped when no pong comes within ``ping_timeout`` (RawSocket: see
  :class:`RawSocketProtocol` for which peers are pinged);
* backpressure (:class:`_OutboundLimit`): each connection is a streaming
  producer on its transport, so Twisted tells it when the socket's send
  buffer is full; what is written after that is counted, and past
  ``max_outbound_buffer`` bytes the session's slow-consumer policy acts.
"""

from __future__ import annotations

import math
import socket
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
from router.session import OutboundFull, TooBig
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
_PING_PAYLOAD = b"wampd"

_SUBPROTOCOLS = {"wamp.2.json": "json", "wamp.2.msgpack": "msgpack", "wamp.2.cbor": "cbor"}

# the whole answer to a WebSocket connection refused when accepted (over a limit)
_HTTP_503 = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


def _peer_host(transport) -> str | None:
    try:
        return getattr(transport.getPeer(), "host", None)
    except Exception:
        return None


class PingSweeper:
    """
    One timer for all connections' pings and pong timeouts.  A member has
    ``ping_sent``, ``last_heard``, ``wampd_session``, ``sendPing(payload)``
    and ``ping_timed_out(waited)``: WebSocket connections, and RawSocket
    connections that answer RawSocket pings.
    """

    def __init__(self, clock: Any, interval: float, timeout: float) -> None:
        self.clock = clock
        self.interval = interval
        self.timeout = timeout
        self._members: set = set()
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

    def add(self, proto) -> None:
        self._members.add(proto)

    def discard(self, proto) -> None:
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
                proto.sendPing(_PING_PAYLOAD)


_UNLIMITED = 2**63


def _find_malloc_trim():
    """glibc's ``malloc_trim`` (returns freed heap pages to the OS), or None elsewhere."""
    try:
        import ctypes
        import ctypes.util

        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (AttributeError, OSError, TypeError):
        return None


class MemoryReleaser:
    """
    Gives memory back to the OS after the router dropped connections that
    were holding a full outbound buffer.  A dropped connection's protocol and
    transport refer to each other, so what they buffered waits for the cyclic
    garbage collector (its oldest generation runs rarely); and glibc keeps
    freed small blocks in its heap.  So, once the drops are over: a full
    collection, then ``malloc_trim(0)`` where glibc has it.  Coalesced: at
    most one run per ``delay`` seconds, and only after such drops.
    """

    _trim = None
    _trim_looked_up = False

    def __init__(self, clock, delay: float = 1.0) -> None:
        self.clock = clock
        self.delay = delay
        self._call = None
        self.runs = 0

    def schedule(self) -> None:
        if self._call is None:
            self._call = self.clock.callLater(self.delay, self._release)

    def _release(self) -> None:
        import gc

        self._call = None
        self.runs += 1
        gc.collect()
        cls = type(self)
        if not cls._trim_looked_up:
            cls._trim, cls._trim_looked_up = _find_malloc_trim(), True
        if cls._trim is not None:
            cls._trim(0)


class _OutboundLimit:
    """
    Backpressure for one connection, mixed into both protocols.

    The protocol registers itself as a streaming producer on its transport
    (TCP and unix sockets directly; TLS through ``TLSMemoryBIOProtocol``,
    which hands the registration down to the socket).  Twisted calls
    :meth:`pauseProducing` when the transport's send buffer passes its mark
    (64 KiB) and :meth:`resumeProducing` once it has written all of it out.
    While paused, ``held`` counts the bytes written since; a write that would
    take it past ``max_outbound_buffer`` raises
    :class:`~router.session.OutboundFull` instead, unwritten, and the session
    applies the slow-consumer policy.  So one connection holds at most about
    ``max_outbound_buffer`` + 64 KiB + one message.  When not paused a send
    costs one check (``held is None``).
    """

    held: int | None = None
    max_outbound: int = _UNLIMITED
    drop_events = False
    dropped_events = 0  # EVENTs dropped over the limit (policy "drop"), for the whole connection
    _stall_drops = 0
    _overflowed = False  # went over the limit at least once: its memory is worth giving back when it goes
    _drop_reason: str | None = None  # why the router dropped the connection (client_disconnected.reason)

    def _start_producing(self) -> None:
        factory = self.factory
        self.max_outbound = factory.max_outbound_buffer or _UNLIMITED
        self.drop_events = factory.slow_consumer == "drop"
        self.transport.registerProducer(self, True)

    def pauseProducing(self) -> None:
        if self.held is None:
            self.held = 0

    def resumeProducing(self) -> None:
        self.held = None
        if self._stall_drops:
            _log.info(
                "connection {conn} is reading again; {count} events were dropped while its buffer was full",
                conn=self._connection_id(),
                count=self._stall_drops,
            )
            self._stall_drops = 0

    def stopProducing(self) -> None:
        """The transport is gone; connectionLost does the rest."""

    def _full(self, size: int) -> OutboundFull:
        self._overflowed = True
        return OutboundFull(self.held, size, self.max_outbound, self.drop_events)

    def _gone(self) -> None:
        """The connection is closed: if it ever filled its buffer, let the factory's releaser give the memory back."""
        if self._overflowed:
            self.factory.releaser.schedule()

    def event_dropped(self) -> None:
        """An EVENT was not sent because the buffer is over the limit (policy "drop"): count it, log once per stall."""
        self.dropped_events += 1
        if not self._stall_drops:
            _log.warn(
                "connection {conn} is not reading: its outbound buffer is over max_outbound_buffer "
                "({limit} bytes); dropping its events until it drains",
                conn=self._connection_id(),
                limit=self.max_outbound,
            )
        self._stall_drops += 1

    def _connection_id(self):
        session = self.wampd_session
        return session.connection.id if session is not None else None


class WebSocketProtocol(_OutboundLimit, WampWebSocketServerProtocol):
    """One WAMP-over-WebSocket connection."""

    wampd_session = None
    ping_sent: float | None = None
    # Autobahn copies its config attributes from the factory at every connection
    # and pretty-prints them for a debug line whether or not debug is on (about a
    # third of a join's cost); we copy them ourselves and give it nothing to print.
    _AUTOBAHN_CONFIG_ATTRS = WampWebSocketServerProtocol.CONFIG_ATTRS
    CONFIG_ATTRS = ()
    last_heard: float = 0.0
    max_send = _UNLIMITED  # WebSocket peers announce no limit

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
        self._gone()

    def ping_timed_out(self, waited: float) -> None:
        self._drop_reason = f"no pong within {waited:.1f}s"
        self.factory.sweeper.discard(self)
        self.dropConnection(abort=True)

    # -- the peer interface the session uses --------------------------------

    def send_bytes(self, data: bytes, binary: bool) -> bool:
        """
        One unfragmented, uncompressed server frame (no mask), written
        directly.  Raises :class:`~router.session.OutboundFull` (writing
        nothing) when it would take the outbound buffer past its limit.
        """
        if self.state != self.STATE_OPEN:
            # dropped by the router (slow consumer, no pong): the session's
            # cleanup answers what is pending, so report the message as taken
            return self._drop_reason is not None
        size = len(data)
        first = 0x82 if binary else 0x81
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
                raise self._full(size + len(header))
            self.held = held
        self.transport.write(header + data)
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
    ) -> None:
        serializers = [JsonSerializer(), MsgPackSerializer(), CBORSerializer()]
        super().__init__(lambda: None, serializers=serializers, url=url)
        self.server = None  # no Server header: HTTP answers do not name the software or its version
        self.router = router
        self.sweeper = sweeper
        self.path = path
        self.endpoint = endpoint
        self.max_outbound_buffer = max_outbound_buffer
        self.slow_consumer = slow_consumer
        self.releaser = MemoryReleaser(router.clock)
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


class RawSocketProtocol(_OutboundLimit, Protocol):
    """
    One WAMP-over-RawSocket connection (the spec's framing, pings included).

    **Limits the peer announced.** The handshake gives the largest message the
    peer accepts (``max_send``, 512 bytes to 16 MiB).  A message over it is
    never sent: a WELCOME that does not fit is an ABORT, an oversize RESULT or
    ERROR becomes an ERROR ``wamp.error.payload_size_exceeded`` for the
    caller, an oversize EVENT is dropped and counted (see
    :meth:`router.session.RouterSession.send`).

    **Pings.** Twisted Autobahn-Python's RawSocket client has no pings: it
    reads a PING frame's header as a 16 MiB length and drops the connection.
    So a peer is pinged (by the shared :class:`PingSweeper`, with
    ``ping_interval`` and ``ping_timeout``, and dropped when no PONG with the
    same payload comes) once it has shown that it speaks RawSocket pings by
    sending a PING of its own.  Every TCP peer also gets kernel keepalive
    probes after ``ping_interval`` seconds of silence, so a peer whose host
    vanished is dropped whatever its library.
    """

    wampd_session = None
    ping_sent: float | None = None
    last_heard: float = 0.0
    max_send = _UNLIMITED

    def connectionMade(self) -> None:
        self._buffer = b""
        self._state = "handshake"  # -> "vetting" -> "open" -> "closed"
        self.max_send = 0
        self.wampd_session = None
        self.oversize_dropped = 0
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
        self._start_producing()

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
        self.max_send = 2 ** (9 + (head[1] >> 4))
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
        sweeper = self.factory.sweeper
        if sweeper is not None and sweeper.interval > 0:
            _tcp_keepalive(self.transport, sweeper.interval, sweeper.timeout)
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
            kind = buf[at]
            length = int.from_bytes(buf[at + 1 : at + 4], "big")
            if kind > 2:
                self._buffer = b""
                if kind > 7:
                    session.protocol_violation(
                        f"reserved bits set in a RawSocket frame header (first byte 0x{kind:02x})"
                    )
                else:
                    session.protocol_violation(f"unknown RawSocket frame type {kind}")
                return
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
                self._pinged(payload)
            elif self.ping_sent is not None and payload == _PING_PAYLOAD:
                self.ping_sent = None
                self.last_heard = self.factory.router.clock.seconds()
        self._buffer = buf[at:] if self._state == "open" else b""

    def _pinged(self, payload: bytes) -> None:
        """Answer a PING with a PONG of the same payload; the peer speaks pings, so it will be pinged too."""
        self.last_heard = self.factory.router.clock.seconds()
        frame = b"\x02" + len(payload).to_bytes(3, "big") + payload
        held = self.held
        if held is not None:
            held += len(frame)
            if held > self.max_outbound:
                self.wampd_session.slow_consumer(self._full(len(frame)))
                return
            self.held = held
        self.transport.write(frame)
        sweeper = self.factory.sweeper
        if sweeper is not None and sweeper.interval > 0:
            sweeper.add(self)

    def sendPing(self, payload: bytes) -> None:
        """A RawSocket PING frame (type 1); the sweeper waits for the PONG."""
        self.transport.write(b"\x01" + len(payload).to_bytes(3, "big") + payload)

    def ping_timed_out(self, waited: float) -> None:
        self.factory.sweeper.discard(self)
        self.abort(f"no pong within {waited:.1f}s")

    def connectionLost(self, reason) -> None:
        self._state = "closed"
        sweeper = self.factory.sweeper
        if sweeper is not None:
            sweeper.discard(self)
        session = self.wampd_session
        try:
            if session is not None:
                # a connection the router dropped (slow consumer, no pong) is never clean
                clean = self._drop_reason is None and reason.check(ConnectionDone) is not None
                session.lost(clean, None, self._drop_reason or (None if clean else reason.getErrorMessage()))
            self._gone()
        finally:
            self.factory.router.release(self)

    # -- the peer interface the session uses --------------------------------

    def send_bytes(self, data: bytes, binary: bool) -> bool:
        """
        One RawSocket frame.  Raises :class:`~router.session.TooBig` when the
        message is over what the peer announced it accepts, and
        :class:`~router.session.OutboundFull` when it would take the outbound
        buffer past its limit; either way nothing is written.
        """
        if self._state == "closed":
            # dropped by the router (slow consumer, no pong): the session's
            # cleanup answers what is pending, so report the message as taken
            return self._drop_reason is not None
        size = len(data)
        if size > self.max_send:
            raise TooBig(size, self.max_send)
        held = self.held
        if held is not None:
            held += size + 4
            if held > self.max_outbound:
                raise self._full(size + 4)
            self.held = held
        self.transport.write(b"\x00" + size.to_bytes(3, "big") + data)
        return True

    def close(self) -> None:
        self._state = "closed"
        self.transport.loseConnection()

    def abort(self, reason: str | None = None) -> None:
        """Drop the connection at once; ``reason`` is reported in ``client_disconnected``."""
        if reason is not None:
            self._drop_reason = reason
        self._state = "closed"
        self.transport.abortConnection()


def _tcp_keepalive(transport, idle: float, timeout: float) -> bool:
    """
    Turn on kernel keepalive probes for a TCP (or TLS over TCP) connection:
    the first after ``idle`` seconds of silence, the connection dropped when
    three probes over ``timeout`` seconds go unanswered.  Unix sockets and
    anything else are left alone.
    """
    while getattr(transport, "transport", None) is not None:  # TLS wraps the TCP transport
        transport = transport.transport
    try:
        sock = transport.getHandle()
        if not isinstance(sock, socket.socket) or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, max(1, round(idle)))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, round(timeout / 3)))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    except (AttributeError, OSError):
        return False
    return True


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

    def __init__(
        self,
        router,
        *,
        endpoint: str = "",
        max_message_size: int = 1048576,
        sweeper: PingSweeper | None = None,
        max_outbound_buffer: int = 1048576,
        slow_consumer: str = "disconnect",
    ) -> None:
        self.router = router
        self.endpoint = endpoint
        self.sweeper = sweeper
        self.max_outbound_buffer = max_outbound_buffer
        self.slow_consumer = slow_consumer
        self.releaser = MemoryReleaser(router.clock)
        self.max_message_size = min(max_message_size, 2**24)
        self.max_exponent = max(0, min(15, math.ceil(math.log2(self.max_message_size)) - 9))
