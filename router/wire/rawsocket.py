"""
WAMP over RawSocket: the spec's framing, handshake and pings.

The handshake picks the serializer; from then on each frame's payload is
decoded with the factory's shared codec and handed to the session as a
message object, and each message the session sends is encoded here.  A
payload over ``max_message_size`` gets ABORT ``wamp.error.protocol_violation``
naming the size and the limit, then the connection closes.
"""

from __future__ import annotations

import math

from autobahn.wamp import message as _message
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from router.errors import BadRequest, UriError, WireError
from router.events import Reject
from router.interfaces import IPeer
from router.wire._address import describe
from router.wire.checks import refuse
from router.wire.codec import RAWSOCKET_IDS, codecs
from router.wire.outbound import _UNLIMITED, MemoryReleaser, _OutboundLimit, tcp_keepalive
from router.wire.ping import PING_PAYLOAD, PingSweeper
from router.wire.tls import client_certificate

__all__ = ["RawSocketProtocol", "RawSocketFactory"]

_DECODE_ERRORS = (WireError, UriError, BadRequest)

_RS_MAGIC = 0x7F
_RS_ERR_SERIALIZER = 1
_RS_ERR_RESERVED = 3
_RS_ERR_LIMIT = 4


@implementer(IPeer)
class RawSocketProtocol(_OutboundLimit, Protocol):
    """
    One WAMP-over-RawSocket connection (the spec's framing, pings included).

    **Limits the peer announced.** The handshake gives the largest message the
    peer accepts (``max_send``, 512 bytes to 16 MiB).  A message over it is
    never sent: a WELCOME that does not fit is an ABORT, an oversize RESULT or
    ERROR becomes an ERROR ``wamp.error.payload_size_exceeded`` for the
    caller, an oversize EVENT is dropped and counted (see :meth:`send`).

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
                self, refusal, transport="rawsocket", peer_address=describe(peer), host=host,
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
        self.codec = factory.codecs[serializer]
        self.traffic = factory.traffic and factory.traffic[serializer]  # counters, when metrics are on
        peer = self.transport.getPeer()
        session = factory.router.connect(
            self,
            transport="rawsocket",
            peer_address=describe(peer),
            host=getattr(peer, "host", None),
            serializer=serializer,
            endpoint=factory.endpoint,
            client_cert=client_certificate(self.transport) if factory.client_ca else None,
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
            tcp_keepalive(self.transport, sweeper.interval, sweeper.timeout)
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
        decode = self.codec.decode
        traffic = self.traffic
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
                self.messages_in += 1
                self.bytes_in += length
                try:
                    msg = decode(payload)
                except _DECODE_ERRORS as exc:
                    refuse(session, exc, self.factory.router.clock)
                else:
                    if traffic is not None:  # router.ops.meter: messages and bytes by type
                        traffic.in_msgs[msg.MESSAGE_TYPE] += 1
                        traffic.in_bytes[msg.MESSAGE_TYPE] += length
                    session.receive(msg)
            elif kind == 1:
                self._pinged(payload)
            elif self.ping_sent is not None and payload == PING_PAYLOAD:
                self.ping_sent = None
                self.last_heard = self.factory.router.clock.seconds()
        self._buffer = buf[at:] if self._state == "open" else b""

    def _pinged(self, payload: bytes) -> None:
        """Answer a PING with a PONG of the same payload; the peer speaks pings, so it will be pinged too."""
        self.last_heard = self.factory.router.clock.seconds()
        if not self._write_control(b"\x02" + len(payload).to_bytes(3, "big") + payload):
            return
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

    def send(self, msg: _message.Message) -> bool:
        """
        Encode ``msg`` (once per serializer: the bytes are cached on the
        message) and write one RawSocket frame.  False, writing nothing and
        setting ``send_failure``, when it cannot be encoded or is over what
        the peer announced it accepts; past the outbound limit the
        slow-consumer policy acts instead (see :class:`_OutboundLimit`).
        """
        try:
            data = self.codec.encode(msg)
        except Exception as exc:
            return self._unencodable(msg, exc)
        if self._state == "closed":
            # dropped by the router (slow consumer, no pong): the session's
            # cleanup answers what is pending, so report the message as taken
            return self._drop_reason is not None
        size = len(data)
        if size > self.max_send:
            return self._oversize(msg, size, self.max_send)
        held = self.held
        if held is not None:
            held += size + 4
            if held > self.max_outbound:
                return self._overflow(msg, size + 4)
            self.held = held
        self.transport.write(b"\x00" + size.to_bytes(3, "big") + data)
        self.messages_out += 1
        self.bytes_out += size
        traffic = self.traffic
        if traffic is not None:  # router.ops.meter
            traffic.out_msgs[msg.MESSAGE_TYPE] += 1
            traffic.out_bytes[msg.MESSAGE_TYPE] += size
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


class RawSocketFactory(Factory):
    protocol = RawSocketProtocol
    noisy = False
    traffic = None  # serializer -> counters, set by router.ops.meter when metrics are on
    client_ca = None  # a listen's TLS client CA file (router.wire.tls)

    def __init__(
        self,
        router,
        *,
        endpoint: str = "",
        max_message_size: int = 1048576,
        sweeper: PingSweeper | None = None,
        max_outbound_buffer: int = 1048576,
        slow_consumer: str = "disconnect",
        max_nesting_depth: int | None = None,
    ) -> None:
        """``max_nesting_depth``: for the codecs; None takes the router's."""
        self.router = router
        self.endpoint = endpoint
        self.sweeper = sweeper
        self.max_outbound_buffer = max_outbound_buffer
        self.slow_consumer = slow_consumer
        self.releaser = MemoryReleaser(router.clock)
        self.set_max_message_size(max_message_size)
        self.codecs = codecs(router, max_nesting_depth)

    def set_max_message_size(self, size: int) -> None:
        """The largest message accepted (at most the spec's 16 MiB), and the exponent the handshake announces."""
        self.max_message_size = min(size, 2**24)
        self.max_exponent = max(0, min(15, math.ceil(math.log2(self.max_message_size)) - 9))
