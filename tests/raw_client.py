"""
Helpers for the advanced-profile tests.

* :class:`RawPeer` / :func:`connect_raw`: a bare WAMP peer over WebSocket or
  RawSocket, with JSON, msgpack or CBOR, that sends and records messages as
  plain lists.  It announces whatever roles and features a test wants in
  HELLO (autobahn-python cannot announce ``progressive_call_invocations``,
  and drops unknown features when it parses WELCOME), and it sees the exact
  messages the router sends.
* :func:`send_any`: send a hand-made message from an autobahn-python
  :class:`tests.wamp_clients.Client` over any transport and serializer (for
  options autobahn-python does not know, such as ``disclose_me``).
* :class:`Calls`: a recording handler for events and invocations.
* :func:`fence`: wait until everything the router sent before now has been
  received by the given autobahn sessions; :func:`departed`: wait until the
  router has seen sessions leave.
"""

from __future__ import annotations

import json

import cbor2
import msgpack
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.wamp import message
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol

__all__ = [
    "RawPeer",
    "connect_raw",
    "RawMessage",
    "send_any",
    "answer_to",
    "wait_inbox",
    "Calls",
    "fence",
    "departed",
    "bounded",
]

TIMEOUT = 5.0

HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 17, 32, 33, 36
CALL, CANCEL, RESULT = 48, 49, 50
REGISTER, REGISTERED, INVOCATION, INTERRUPT, YIELD = 64, 65, 68, 69, 70

_CODECS = {
    "json": (lambda obj: json.dumps(obj).encode(), json.loads, False, 1),
    "msgpack": (lambda obj: msgpack.packb(obj, use_bin_type=True), lambda b: msgpack.unpackb(b, raw=False), True, 2),
    "cbor": (cbor2.dumps, cbor2.loads, True, 3),
}


def bounded(d: Deferred, timeout: float = TIMEOUT) -> Deferred:
    """``d`` with a time limit, so a broken test fails instead of hanging."""
    return d.addTimeout(timeout, reactor)


class RawPeer:
    """One WAMP connection driven message by message; every received message is kept in ``received``."""

    def __init__(self, serializer: str) -> None:
        self.serializer = serializer
        self._dumps, self._loads, self.binary, self.rawsocket_id = _CODECS[serializer]
        self.received: list[list] = []
        self.frames: list[tuple[int, bytes]] = []  # RawSocket PING/PONG frames received
        self.largest = 0  # RawSocket: the longest frame payload received
        self.closed = Deferred()
        self._waiters: list[tuple] = []
        self._write = None
        self._drop = None
        self.transport = None  # the client's Twisted transport, once open
        self.max_exponent = 15  # RawSocket: the largest message it accepts is 2**(9+max_exponent)
        self.session_id = None
        self._fences = 0

    # -- wire ---------------------------------------------------------------------

    def send(self, raw: list) -> None:
        self._write(self._dumps(raw))

    def drop(self) -> None:
        """Drop the TCP connection without a GOODBYE."""
        self._drop()

    def stop_reading(self, small_buffer: bool = True) -> None:
        """
        Stop reading from the socket (a slow consumer): its receive buffer
        fills, then the router's.  ``small_buffer`` shrinks the receive
        buffer first, so less traffic fills it (but TCP then takes seconds to
        reopen the window after :meth:`resume_reading`).
        """
        import socket

        handle = self.transport.getHandle()
        if small_buffer and isinstance(handle, socket.socket):
            handle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.transport.pauseProducing()

    def resume_reading(self) -> None:
        self.transport.resumeProducing()

    def _got(self, payload: bytes) -> None:
        msg = self._loads(payload)
        self.received.append(msg)
        for waiter in list(self._waiters):
            predicate, d = waiter
            if predicate(msg):
                self._waiters.remove(waiter)
                d.callback(msg)

    def _lost(self) -> None:
        if not self.closed.called:
            self.closed.callback(None)

    # -- waiting --------------------------------------------------------------------

    def wait_for(self, predicate, timeout: float = TIMEOUT) -> Deferred:
        """The first received message (past or future) for which ``predicate`` is true."""
        for msg in self.received:
            if predicate(msg):
                d = Deferred()
                d.callback(msg)
                return d
        d = Deferred()
        waiter = (predicate, d)
        self._waiters.append(waiter)

        def forget(failure):
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            return failure

        d.addTimeout(timeout, reactor)
        d.addErrback(forget)
        return d

    def wait_nth(self, code: int, n: int, timeout: float = TIMEOUT) -> Deferred:
        """The ``n``-th (1-based) received message of type ``code``."""
        seen = []

        def nth(msg):
            if msg[0] != code:
                return False
            seen.append(msg)
            return len(seen) == n

        return self.wait_for(nth, timeout)

    def of_type(self, code: int) -> list[list]:
        return [m for m in self.received if m[0] == code]

    # -- conversations ------------------------------------------------------------------

    async def hello(self, roles: dict, realm: str = "realm1", **details) -> list:
        """Send HELLO; returns the WELCOME (or ABORT) list."""
        self.send([HELLO, realm, {"roles": roles, **details}])
        reply = await self.wait_for(lambda m: m[0] in (WELCOME, ABORT))
        if reply[0] == WELCOME:
            self.session_id = reply[1]
        return reply

    async def request(self, raw: list, answers: tuple) -> list:
        """Send a request and wait for the message answering it (same request id, one of ``answers``)."""
        request = raw[1]
        self.send(raw)
        return await self.wait_for(lambda m: m[0] in answers and _request_of(m) == request)

    async def register(self, request: int, procedure: str, options: dict | None = None) -> int:
        reply = await self.request([REGISTER, request, options or {}, procedure], (REGISTERED, ERROR))
        assert reply[0] == REGISTERED, reply
        return reply[2]

    async def fence(self) -> None:
        """Everything the router sent this peer before now has arrived (its answer to a CALL comes after)."""
        self._fences += 1
        reply = await self.request([CALL, 9_000_000 + self._fences, {}, "wamp.session.count"], (RESULT, ERROR))
        assert reply[0] == RESULT, reply

    async def goodbye(self) -> None:
        self.send([GOODBYE, {}, "wamp.close.close_realm"])
        await self.wait_for(lambda m: m[0] == GOODBYE)
        self.drop()
        await bounded(self.closed)


def _request_of(msg: list):
    if msg[0] == ERROR:
        return msg[2]
    return msg[1]


class _WebSocketProtocol(WebSocketClientProtocol):
    def onOpen(self):
        peer = self.factory.peer
        peer._write = lambda data: self.sendMessage(data, isBinary=peer.binary)
        peer._drop = self.transport.abortConnection
        peer.transport = self.transport
        self.factory.opened.callback(peer)

    def onMessage(self, payload, isBinary):
        self.factory.peer._got(payload)

    def onClose(self, wasClean, code, reason):
        self.factory.peer._lost()
        if not self.factory.opened.called:
            self.factory.opened.errback(ConnectionError(f"websocket closed: {code} {reason}"))


class _RawSocketProtocol(Protocol):
    def connectionMade(self):
        self._buffer = b""
        self._open = False
        peer = self.factory.peer
        # max message length 2**(9+max_exponent) bytes, then the serializer id
        self.transport.write(bytes([0x7F, (peer.max_exponent << 4) | peer.rawsocket_id, 0, 0]))

    def dataReceived(self, data):
        self._buffer += data
        peer = self.factory.peer
        if not self._open:
            if len(self._buffer) < 4:
                return
            head, self._buffer = self._buffer[:4], self._buffer[4:]
            if head[0] != 0x7F or head[1] & 0x0F != peer.rawsocket_id:
                self.factory.opened.errback(ConnectionError(f"rawsocket handshake refused: {head!r}"))
                self.transport.loseConnection()
                return
            self._open = True
            peer._write = lambda payload: self.transport.write(b"\x00" + len(payload).to_bytes(3, "big") + payload)
            peer._drop = self.transport.abortConnection
            peer.transport = self.transport
            self.factory.opened.callback(peer)
        while len(self._buffer) >= 4:
            kind = self._buffer[0] & 0x07
            length = int.from_bytes(self._buffer[1:4], "big")
            if len(self._buffer) < 4 + length:
                return
            payload, self._buffer = self._buffer[4 : 4 + length], self._buffer[4 + length :]
            peer.largest = max(peer.largest, length)
            if kind == 0:
                peer._got(payload)
            else:
                peer.frames.append((kind, payload))  # PING (1) / PONG (2)

    def connectionLost(self, reason):
        self.factory.peer._lost()
        if not self.factory.opened.called:
            self.factory.opened.errback(ConnectionError("rawsocket closed during the handshake"))


async def connect_raw(
    address, transport: str = "websocket", serializer: str = "json", *, max_exponent: int = 15, endpoint=None
) -> RawPeer:
    """
    A :class:`RawPeer` whose transport is open (HELLO not sent yet).
    ``max_exponent``: the RawSocket handshake's announced maximum length
    (``2**(9+max_exponent)`` bytes).  ``endpoint``: a Twisted client
    endpoint to use instead of TCP to 127.0.0.1 (TLS, unix).
    """
    peer = RawPeer(serializer)
    peer.max_exponent = max_exponent
    if transport == "websocket":
        factory = WebSocketClientFactory(url=address, protocols=[f"wamp.2.{serializer}"])
        factory.protocol = _WebSocketProtocol
    else:
        factory = Factory.forProtocol(_RawSocketProtocol)
    factory.noisy = False
    factory.peer = peer
    factory.opened = Deferred()
    if endpoint is None:
        port = int(address.rsplit(":", 1)[1].split("/")[0]) if transport == "websocket" else address
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    await endpoint.connect(factory)
    return await bounded(factory.opened)


# -- hand-made messages from autobahn-python sessions --------------------------------


class RawMessage(message.Message):
    """A message autobahn-python sends as given (any serializer, any transport)."""

    MESSAGE_TYPE = 0

    def __init__(self, raw: list) -> None:
        super().__init__()
        self._raw = raw

    def marshal(self):
        return self._raw


def send_any(client, raw: list) -> None:
    """
    Send ``raw`` from an autobahn-python :class:`tests.wamp_clients.Client`;
    the router's answer is recorded in ``client.inbox`` (and kept from
    autobahn, which has no request of its own for it).  Use request ids above
    10**6 so they never meet autobahn's own.
    """
    if len(raw) > 1 and isinstance(raw[1], int):
        client.raw_requests.add(raw[1])
    client._transport.send(RawMessage(raw))


def answer_to(client, request: int) -> Deferred:
    """The first message in ``client.inbox`` (past or future) answering ``request``."""
    return _poll_inbox(client, lambda m: getattr(m, "request", None) == request)


def _poll_inbox(client, predicate) -> Deferred:
    # Client.onMessage has no hook; wrap it once per client
    hooks = client.__dict__.setdefault("_inbox_hooks", [])
    if not hooks:
        original = client.onMessage

        def onMessage(msg):
            try:
                return original(msg)
            finally:
                for hook in list(hooks):
                    hook(msg)

        client.onMessage = onMessage
    for msg in client.inbox:
        if predicate(msg):
            d = Deferred()
            d.callback(msg)
            return d
    d = Deferred()

    def hook(msg):
        if predicate(msg) and not d.called:
            hooks.remove(hook)
            d.callback(msg)

    hooks.append(hook)
    return bounded(d)


def wait_inbox(client, predicate) -> Deferred:
    """The first message in ``client.inbox`` (past or future) for which ``predicate`` is true."""
    return _poll_inbox(client, predicate)


# -- recording handlers -----------------------------------------------------------------


class Calls:
    """
    A handler that records every call (``args``, ``kwargs``; ``details`` when
    the handler receives one) and can wait for the n-th.  ``reply`` computes
    the return value.
    """

    def __init__(self, reply=None) -> None:
        self.calls: list[tuple] = []
        self._waiters: list[tuple[int, Deferred]] = []
        self.reply = reply

    def __call__(self, *args, **kwargs):
        details = kwargs.pop("details", None)
        self.calls.append((args, kwargs, details))
        for waiter in list(self._waiters):
            if len(self.calls) >= waiter[0]:
                self._waiters.remove(waiter)
                waiter[1].callback(self.calls[waiter[0] - 1])
        if self.reply is not None:
            return self.reply(*args, **kwargs)
        return None

    @property
    def args(self) -> list[tuple]:
        return [c[0] for c in self.calls]

    @property
    def details(self) -> list:
        return [c[2] for c in self.calls]

    def wait(self, n: int = 1) -> Deferred:
        """Fires with the n-th call (1-based)."""
        if len(self.calls) >= n:
            d = Deferred()
            d.callback(self.calls[n - 1])
            return d
        d = Deferred()
        self._waiters.append((n, d))
        return bounded(d)


async def fence(*clients) -> None:
    """
    Every message the router sent to these sessions before now has arrived:
    the router answers a session's CALL after everything it queued for it
    earlier, and autobahn runs event handlers as messages arrive.
    """
    for client in clients:
        await bounded(client.call("wamp.session.count"))


async def departed(live_router, *clients) -> None:
    """The router itself has seen these sessions leave (a client may notice its disconnect first)."""
    for client in clients:
        await live_router.recorder.wait_for(
            lambda e, sid=client.sid: e.name == "session_left" and e.session.session_id == sid, timeout=TIMEOUT
        )
