"""
Writes gathered per reactor turn (router.wire._flush) over real loopback
sockets: what is written reaches the peer whole and in order, without the
reactor watching the socket unless the kernel's buffer is full; partial
sends and EAGAIN are finished by the reactor; ``loseConnection`` after
queued data sends it all first, ``abortConnection`` drops it; a write to a
peer that is gone ends the connection; a paused producer is resumed.  Then
WAMP end to end over TCP, Unix and TLS: every event arrives, in order,
when the router's sends are cut short by a small kernel buffer.
"""

from __future__ import annotations

import socket

import pytest
import pytest_twisted
from twisted.internet import reactor, ssl
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, UNIXClientEndpoint
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater

from router.config import ListenConfig
from router.wire._flush import gather, gathered
from tests.raw_client import EVENT, PUBLISH, bounded
from tests.test_backpressure import held_by_router, joined, router_peer, small_send_buffer, stop, subscribe
from tests.conftest import make_service

KIB = 1024


def numbered(count: int, size: int) -> list[bytes]:
    """``count`` chunks of ``size`` bytes, each starting with its number, so a lost or swapped one shows."""
    return [(b"%08d" % i).ljust(size, b".") for i in range(count)]


class Server(Protocol):
    """The side under test: its transport gathers its writes; ``lost`` fires with why it was lost."""

    def connectionMade(self):
        self.lost = Deferred()
        self.moved = gather(self.transport)
        self.factory.connected.callback(self)

    def connectionLost(self, reason):
        self.lost.callback(reason.value)  # the exception: a Failure would run the errbacks


class Reader(Protocol):
    """The peer: collects bytes; ``closed`` fires with (bytes, reason)."""

    def connectionMade(self):
        self.data = bytearray()
        self.closed = Deferred()
        self.waiting = None

    def dataReceived(self, data):
        self.data += data
        if self.waiting is not None and len(self.data) >= self.waiting[0]:
            (_, d), self.waiting = self.waiting, None
            d.callback(bytes(self.data))

    def connectionLost(self, reason):
        self.closed.callback((bytes(self.data), reason))

    def wait_for(self, size: int) -> Deferred:
        d = Deferred()
        if len(self.data) >= size:
            d.callback(bytes(self.data))
        else:
            self.waiting = (size, d)
        return bounded(d, 20)


async def pair(kind: str, tmp_path):
    """A gathered server connection and a peer reading from it, over TCP or a Unix socket."""
    factory = Factory.forProtocol(Server)
    factory.connected = Deferred()
    if kind == "tcp":
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
    else:
        port = reactor.listenUNIX(str(tmp_path / "s.sock"), factory)
        endpoint = UNIXClientEndpoint(reactor, str(tmp_path / "s.sock"))
    reader = await endpoint.connect(Factory.forProtocol(Reader))
    server = await bounded(factory.connected)
    assert server.moved and gathered(server.transport)
    return port, server, reader


def stall(reader: Reader) -> None:
    """The peer stops reading, so once its receive buffer is full the server's sends fall short."""
    reader.transport.pauseProducing()


def writing(transport) -> bool:
    """Whether the reactor watches ``transport`` for writability (an epoll registration)."""
    return transport in reactor.getWriters()


@pytest.mark.parametrize("kind", ["tcp", "unix"])
@pytest_twisted.ensureDeferred
async def test_a_turns_writes_arrive_whole_without_the_reactor_watching(kind, tmp_path):
    """
    Several writes in one turn reach the peer whole and in order; the
    reactor is never asked to watch the socket, and (Twisted's own poll
    loop) no timed call is made for them.
    """
    port, server, reader = await pair(kind, tmp_path)
    try:
        chunks = numbered(50, 100)
        timed = len(reactor.getDelayedCalls())
        for chunk in chunks:
            server.transport.write(chunk)
        assert not writing(server.transport)
        assert len(reactor.getDelayedCalls()) == timed  # the epoll reactor's turn writes them: no callLater
        assert await reader.wait_for(5000) == b"".join(chunks)
        assert not writing(server.transport)
        assert server.transport._tempDataLen == 0 and not server.transport.dataBuffer
    finally:
        server.transport.abortConnection()
        await port.stopListening()


@pytest.mark.parametrize("kind", ["tcp", "unix"])
@pytest_twisted.ensureDeferred
async def test_partial_sends_are_finished_by_the_reactor_in_order(kind, tmp_path):
    """
    A peer that stops reading: the kernel takes part of a turn's writes
    (then none: EAGAIN); the rest waits in Twisted's buffer with the
    reactor watching the socket; more writes over later turns queue behind
    it; once the peer reads again every byte arrives in order and the
    reactor stops watching.
    """
    port, server, reader = await pair(kind, tmp_path)
    try:
        small_send_buffer(server.transport)
        stall(reader)
        chunks = numbered(400, 5 * KIB)  # 2 MB: far past both kernel buffers (about 150 KB here)
        for at in range(0, len(chunks), 40):
            for chunk in chunks[at : at + 40]:
                server.transport.write(chunk)
            await deferLater(reactor, 0, lambda: None)  # next turn
        assert held_by_router(server.transport) > 0, "the kernel took 2 MB from a peer that does not read"
        assert writing(server.transport)
        reader.transport.resumeProducing()
        got = await reader.wait_for(len(chunks) * 5 * KIB)
        assert got == b"".join(chunks)
        await deferLater(reactor, 0, lambda: None)
        assert not writing(server.transport) and held_by_router(server.transport) == 0
        # and the next write is gathered again, not watched
        server.transport.write(b"after")
        assert not writing(server.transport)
        assert (await reader.wait_for(len(got) + 5))[len(got) :] == b"after"
    finally:
        server.transport.abortConnection()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_lose_connection_sends_what_was_queued_first(tmp_path):
    """``loseConnection`` in the same turn as 1 MB of writes: the peer gets every byte, then a clean close."""
    port, server, reader = await pair("tcp", tmp_path)
    try:
        small_send_buffer(server.transport)
        chunks = numbered(200, 5 * KIB)
        for chunk in chunks:
            server.transport.write(chunk)
        server.transport.loseConnection()
        data, reason = await bounded(reader.closed, 20)
        assert data == b"".join(chunks)
        assert reason.check(ConnectionDone)
        assert isinstance(await bounded(server.lost), ConnectionDone)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_abort_drops_what_was_queued(tmp_path):
    """``abortConnection`` right after writes drops them (as Twisted's abort always has); nothing is sent after it."""
    port, server, reader = await pair("tcp", tmp_path)
    try:
        server.transport.write(b"first")
        assert await reader.wait_for(5) == b"first"
        server.transport.write(b"never")
        server.transport.abortConnection()
        data, _ = await bounded(reader.closed)
        assert data == b"first"
        assert isinstance(await bounded(server.lost), ConnectionAborted)
        assert not writing(server.transport)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_write_to_a_peer_that_is_gone_ends_the_connection(tmp_path):
    """
    The peer resets the connection; the server, not reading, learns it only
    from its write: the gathered send fails and the connection is lost
    (ConnectionLost), as when the reactor's own write fails.
    """
    port, server, reader = await pair("tcp", tmp_path)
    try:
        server.transport.stopReading()  # only the write can notice
        handle = reader.transport.getHandle()
        handle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        reader.transport.abortConnection()  # RST
        await bounded(reader.closed)
        for _ in range(50):  # the first send after the RST may still be accepted; the next fails
            if server.lost.called:
                break
            server.transport.write(b"x" * 1000)
            await deferLater(reactor, 0.01, lambda: None)
        reason = await bounded(server.lost)
        assert isinstance(reason, ConnectionLost), reason
        assert not writing(server.transport)
    finally:
        await port.stopListening()


class Producer:
    """A streaming producer that records what its consumer asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self):
        self.calls.append("pause")

    def resumeProducing(self):
        self.calls.append("resume")

    def stopProducing(self):
        self.calls.append("stop")


@pytest_twisted.ensureDeferred
async def test_a_paused_producer_is_resumed_once_all_is_written(tmp_path):
    """Past Twisted's 64 KiB mark the producer is paused; when the gathered writes have all gone out, resumed."""
    port, server, reader = await pair("tcp", tmp_path)
    try:
        producer = Producer()
        server.transport.registerProducer(producer, True)
        stall(reader)
        small_send_buffer(server.transport)
        chunks = numbered(200, 4 * KIB)  # 800 KiB: past the kernel's buffers
        for chunk in chunks:
            server.transport.write(chunk)
        assert set(producer.calls) == {"pause"}  # Twisted says so at every write past its mark
        await deferLater(reactor, 0, lambda: None)
        assert set(producer.calls) == {"pause"}  # the peer is not reading: still paused
        reader.transport.resumeProducing()
        assert await reader.wait_for(200 * 4 * KIB) == b"".join(chunks)
        await deferLater(reactor, 0, lambda: None)
        assert producer.calls[-1] == "resume" and producer.calls.count("resume") == 1
    finally:
        server.transport.abortConnection()
        await port.stopListening()


# -- WAMP end to end -------------------------------------------------------------------------

SIZES = (10, 3000, 70_000, 200)  # some frames far larger than the kernel's send buffer
EVENTS = 60


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest.mark.parametrize("kind", ["tcp", "unix", "ssl"])
@pytest_twisted.ensureDeferred
async def test_no_event_is_lost_or_reordered_when_sends_fall_short(kind, transport, tmp_path):
    """
    A subscriber behind a small router-side send buffer, pausing its reads
    now and then, gets every one of a burst of events of mixed sizes
    (10 B to 70 KB) in the order published, over TCP, a Unix socket and TLS
    (whose records go through the same gathered socket transport).
    """
    from twisted.internet.endpoints import SSL4ClientEndpoint

    from tests.test_tls import self_signed

    endpoint = lambda: None  # noqa: E731
    if kind == "ssl":
        key_path, cert_path, cert_pem = self_signed(tmp_path)
        listen = f"ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cert_path}"
    elif kind == "unix":
        listen = f"unix:{tmp_path}/wampd.sock"
        endpoint = lambda: UNIXClientEndpoint(reactor, f"{tmp_path}/wampd.sock")  # noqa: E731
    else:
        listen = "tcp:0:interface=127.0.0.1"
    service = make_service(
        listen=(ListenConfig(listen, transport), ListenConfig("tcp:0:interface=127.0.0.1", "rawsocket")),
        max_outbound_buffer=64 * 1024 * 1024,
    )
    await service.startService()
    ours = service.endpoints[0]
    if kind == "ssl":
        trust = ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(cert_pem))
        endpoint = lambda: SSL4ClientEndpoint(reactor, "127.0.0.1", ours.port, trust)  # noqa: E731
        address = f"wss://127.0.0.1:{ours.port}/ws"
    elif kind == "unix":
        address = "ws://localhost/ws"
    else:
        address = ours.url if transport == "websocket" else ours.port
    peers = []
    try:
        subscriber = await joined(address, transport, peers, endpoint())
        publisher = await joined(address, transport, peers, endpoint())
        await subscribe(subscriber, 1)
        proto = router_peer(service, subscriber)
        assert gathered(proto.transport)
        small_send_buffer(proto.transport)
        payloads = [(b"%04d" % i).decode() + "x" * SIZES[i % len(SIZES)] for i in range(EVENTS)]
        for i, payload in enumerate(payloads):
            if i % 15 == 0:
                subscriber.transport.pauseProducing()
            publisher.send([PUBLISH, i + 1, {}, "com.flood", [i, payload]])
            if i % 15 == 7:
                await deferLater(reactor, 0.01, subscriber.transport.resumeProducing)
        subscriber.transport.resumeProducing()
        await subscriber.wait_nth(EVENT, EVENTS, timeout=30)
        got = [m[4] for m in subscriber.of_type(EVENT)]
        assert got == [[i, payload] for i, payload in enumerate(payloads)]
    finally:
        await stop(service, peers)
