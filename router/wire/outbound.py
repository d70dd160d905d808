"""
The outbound side of a connection, shared by both protocols: encoding a
message for the peer, backpressure (Twisted's producer API and the
slow-consumer policy), giving memory back after dropped connections, and
TCP keepalive.
"""

from __future__ import annotations

import gc
import socket
from collections import deque

from autobahn.wamp import message
from twisted.logger import Logger

from router.messages import MESSAGE_NAMES
from router.wire._flush import gather

__all__ = ["OutboundFull", "MemoryReleaser", "INVALID_ARGUMENT", "PAYLOAD_SIZE_EXCEEDED"]

_log = Logger(namespace="wampd.transport")
# what the session logged when it encoded and sent; the same namespace, now that the peer does
_send_log = Logger(namespace="wampd.session")

_UNLIMITED = 2**63
_EVENT = message.Event
INVALID_ARGUMENT = "wamp.error.invalid_argument"
#: The backlog of paced sending holds at most this many x max_retained_topics messages.
BACKLOG_TOPICS = 4
PAYLOAD_SIZE_EXCEEDED = "wamp.error.payload_size_exceeded"


class OutboundFull(Exception):
    """
    A message of ``size`` bytes would take the bytes waiting for a peer that
    stopped reading past ``limit``: ``held`` were already waiting beyond the
    transport's own buffer.  ``drop_events``: the slow-consumer policy is
    "drop" rather than "disconnect".  The session's ``slow_consumer`` gets it.
    """

    def __init__(self, held: int, size: int, limit: int, drop_events: bool, text: str | None = None) -> None:
        super().__init__(held, size, limit, drop_events)
        self.held = held
        self.size = size
        self.limit = limit
        self.drop_events = drop_events
        self.text = text  # why, when it is not the byte limit (the backlog's length)


def _find_malloc_trim():
    """glibc's ``malloc_trim`` (returns freed heap pages to the OS), or None elsewhere."""
    try:
        import ctypes  # lazy: only once a slow consumer was dropped; most routers never load it
        import ctypes.util  # lazy: as above

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
    The peer side of sending, and backpressure, mixed into both protocols.

    ``codec`` (set at the handshake) encodes; a message it cannot encode is
    logged and not sent, and ``send_failure`` says why (the dealer answers a
    caller with it).

    The protocol registers itself as a streaming producer on its transport
    (TCP and unix sockets directly; TLS through ``TLSMemoryBIOProtocol``,
    which hands the registration down to the socket).  Twisted calls
    :meth:`pauseProducing` when the transport's send buffer passes its mark
    (64 KiB) and :meth:`resumeProducing` once it has written all of it out.
    While paused, ``held`` counts the bytes written since; a write that would
    take it past ``max_outbound_buffer`` is not made: an EVENT is dropped
    (policy "drop") or the session applies the slow-consumer policy.  So one
    connection holds at most about ``max_outbound_buffer`` + 64 KiB + one
    message.  When not paused a send costs one check (``held is None``).

    Paced sending (:meth:`send_paced`, a SUBSCRIBE's retained events): the
    messages are written while the transport is not paused; the rest wait
    as message objects in a backlog and are written on resume.  While a
    backlog waits, ``send`` is shadowed on the instance by
    :meth:`_send_behind`, which appends every later message behind it (so
    the order on the connection is unchanged) and counts its encoded bytes
    against ``max_outbound_buffer``; without a backlog ``send`` costs
    nothing more.  Paced messages join the backlog only while it is
    shorter than :data:`BACKLOG_TOPICS` x ``max_retained_topics`` (0:
    unbounded, as that setting); past it the slow-consumer policy acts.
    """

    codec = None
    send_failure = INVALID_ARGUMENT  # why the last send() returned False: an error URI for a caller
    oversize_dropped = 0  # messages over the size the peer announced (RawSocket), never sent
    held: int | None = None
    # per-connection counters (wamp.session.get_stats: router.meta._stats): WAMP messages and their
    # serialized bytes, framing not included; plain int increments on the hot path
    messages_in = messages_out = bytes_in = bytes_out = 0
    max_outbound: int = _UNLIMITED
    drop_events = False
    dropped_events = 0  # EVENTs dropped over the limit (policy "drop"), for the whole connection
    traffic = None  # router.ops.meter's counters for this transport and serializer, when metrics are on
    _stall_drops = 0
    _overflowed = False  # went over the limit at least once: its memory is worth giving back when it goes
    _drop_reason: str | None = None  # why the router dropped the connection (client_disconnected.reason)
    _backlog: deque | None = None  # (message, bytes counted) waiting behind paced sending; None: none
    _backlog_bytes = 0  # encoded bytes of the live messages in the backlog (paced ones count 0)
    max_backlog: int = _UNLIMITED
    max_send: int = _UNLIMITED

    def _start_producing(self) -> None:
        factory = self.factory
        self.max_outbound = factory.max_outbound_buffer or _UNLIMITED
        self.drop_events = factory.slow_consumer == "drop"
        self.max_backlog = BACKLOG_TOPICS * factory.router.max_retained_topics or _UNLIMITED
        self.transport.registerProducer(self, True)
        gather(self.transport)  # one send per reactor turn (router.wire._flush)

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
        if self._backlog is not None:
            self._drain()

    # -- paced sending ----------------------------------------------------------

    def send_paced(self, msgs) -> None:
        """
        Send ``msgs`` (a list of message objects) as the peer reads them:
        written while the transport is not paused, the rest kept as objects
        in the backlog until :meth:`resumeProducing`.  Messages that cannot
        be encoded are logged and skipped, as by ``send``.
        """
        backlog = self._backlog
        at = 0
        if backlog is None:
            send = type(self).send
            count = len(msgs)
            while at < count and self.held is None:
                send(self, msgs[at])
                at += 1
            if at == count:
                return
            backlog = self._backlog = deque()
            self.send = self._send_behind  # shadows the class's send until the backlog drains
        room = self.max_backlog - len(backlog)
        take = msgs[at : at + max(room, 0)]
        backlog.extend((msg, 0) for msg in take)
        rest = len(msgs) - at - len(take)
        if rest:
            self._backlog_full(msgs[at + len(take)], rest)

    def _send_behind(self, msg) -> bool:
        """``send`` while a backlog waits: the message joins it, its encoded bytes counted against the limit."""
        try:
            size = len(self.codec.encode(msg))  # cached on the message: the later write reuses it
        except Exception as exc:
            return self._unencodable(msg, exc)
        if size > self.max_send:
            return self._oversize(msg, size, self.max_send)
        waiting = self._backlog_bytes + size
        if waiting + (self.held or 0) > self.max_outbound:
            return self._overflow(msg, size)
        self._backlog_bytes = waiting
        self._backlog.append((msg, size))
        return True

    def _backlog_full(self, msg, count: int) -> bool:
        """``count`` messages (the first ``msg``) would take the backlog past its length: the policy acts."""
        self._overflowed = True
        if self.drop_events and type(msg) is _EVENT:
            for _ in range(count):
                self.event_dropped()
        else:
            text = (
                f"slow consumer: {len(self._backlog) + count} messages waiting to be sent would pass "
                f"{self.max_backlog} ({BACKLOG_TOPICS} x max_retained_topics)"
            )
            full = OutboundFull(self.held or 0, 0, self.max_outbound, self.drop_events, text)
            self.wampd_session.slow_consumer(full)
        return True

    def _drain(self) -> None:
        """Write the backlog while the transport is not paused; once empty, ``send`` is the class's again."""
        backlog = self._backlog
        send = type(self).send
        while backlog and self.held is None:
            msg, size = backlog.popleft()
            self._backlog_bytes -= size
            send(self, msg)
        if not backlog:
            self._drop_backlog()

    def _drop_backlog(self) -> None:
        self._backlog = None
        self._backlog_bytes = 0
        self.__dict__.pop("send", None)

    def stopProducing(self) -> None:
        """The transport is gone; connectionLost does the rest."""

    def _unencodable(self, msg, exc: Exception) -> bool:
        _send_log.error(
            "cannot encode {kind} for connection {conn} ({codec}): {error}",
            kind=MESSAGE_NAMES.get(msg.MESSAGE_TYPE),
            conn=self._connection_id(),
            codec=self.codec.name,
            error=exc,
        )
        self.send_failure = INVALID_ARGUMENT
        return False

    def _overflow(self, msg, size: int) -> bool:
        """``msg`` would take the buffer past the limit: not written; the policy acts."""
        full = self._full(size)
        if full.drop_events and type(msg) is _EVENT:
            self.event_dropped()
        else:
            self.wampd_session.slow_consumer(full)
        # taken: a dropped EVENT is counted, and a dropped connection's
        # cleanup answers whatever is pending on it
        return True

    def _oversize(self, msg, size: int, limit: int) -> bool:
        """A message over the size the peer announced: not sent, counted, logged once per connection."""
        self.send_failure = PAYLOAD_SIZE_EXCEEDED
        self.oversize_dropped += 1
        if self.oversize_dropped == 1:
            _send_log.warn(
                "not sending a {size}-byte {kind} to connection {conn}: it accepts at most {limit} bytes "
                "(further ones are counted, not logged)",
                size=size,
                kind=MESSAGE_NAMES.get(msg.MESSAGE_TYPE),
                conn=self._connection_id(),
                limit=limit,
            )
        return False

    def _write_control(self, frame: bytes) -> bool:
        """
        Write a control frame (a PONG) within the outbound limit, as :meth:`send`
        writes a message: past it, nothing is written, the slow-consumer policy
        acts (whatever the policy: a PONG is no EVENT to drop) and False.  So a
        peer that pings but never reads holds no more than any other.
        """
        held = self.held
        if held is not None:
            held += len(frame)
            if held > self.max_outbound:
                self.wampd_session.slow_consumer(self._full(len(frame)))
                return False
            self.held = held
        self.transport.write(frame)
        return True

    def _full(self, size: int) -> OutboundFull:
        self._overflowed = True
        return OutboundFull((self.held or 0) + self._backlog_bytes, size, self.max_outbound, self.drop_events)

    def _gone(self) -> None:
        """The connection is closed: if it ever filled its buffer, let the factory's releaser give the memory back."""
        if self._backlog is not None:
            self._drop_backlog()
        if self._overflowed:
            self.factory.releaser.schedule()

    def event_dropped(self) -> None:
        """An EVENT was not sent because the buffer is over the limit (policy "drop"): count it, log once per stall."""
        self.dropped_events += 1
        if self.traffic is not None:
            self.traffic.dropped += 1
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


def tcp_keepalive(transport, idle: float, timeout: float) -> bool:
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
