"""
RawSocket: the peer's announced maximum length, reserved header bits, and
pings.

Limits and header bits go over real loopback sockets (``live_router`` and the
bare peers of ``tests/raw_client.py``); pings run in memory on a
``Clock`` (``router.testing.MemoryRouter`` and ``twisted.test.iosim``).
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from autobahn.exception import PayloadExceededError
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol
from twisted.test import iosim

from router.testing import MemoryRouter
from tests.raw_client import (
    ABORT,
    CALL,
    ERROR,
    EVENT,
    INVOCATION,
    PUBLISH,
    PUBLISHED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    WELCOME,
    YIELD,
    bounded,
    connect_raw,
)
from tests.conftest import logged
from tests.wamp_clients import Recorder

ROLES = {"subscriber": {}, "publisher": {}, "caller": {}, "callee": {}}
BIG = "y" * 2000  # over the 1024 bytes a max_exponent=1 client accepts


@pytest_twisted.ensureDeferred
async def test_a_client_too_small_for_welcome_gets_an_abort_that_fits(live_router):
    """
    A RawSocket client that accepts at most 512 bytes cannot take WELCOME
    (about 700 bytes): it gets ABORT ``wamp.error.payload_size_exceeded`` in
    a frame that fits, never counts as joined (client_rejected reason
    ``limit``, no session_joined), and its connection closes.
    """
    peer = await connect_raw(live_router.rs_port, "rawsocket", max_exponent=0)
    reply = await peer.hello(ROLES)
    assert reply[0] == ABORT, reply
    assert reply[2] == "wamp.error.payload_size_exceeded"
    assert "512" in reply[1]["message"]
    assert peer.largest <= 512
    await bounded(peer.closed)
    rejected = await live_router.recorder.wait_for(lambda e: e.name == "client_rejected")
    assert rejected.reason == "limit"
    gone = await live_router.recorder.wait_disconnected(rejected.connection.id)
    names = live_router.recorder.names(gone.connection.id)
    assert names == ["client_connected", "session_joining", "client_rejected", "client_disconnected"]
    assert live_router.service.router.realms["realm1"].sessions == {}


@pytest_twisted.ensureDeferred
async def test_messages_over_the_announced_limit(live_router):
    """
    A client that accepts at most 1024 bytes: oversize EVENTs are not sent
    (counted on its session, logged once), a RESULT or an INVOCATION that
    does not fit becomes ERROR ``wamp.error.payload_size_exceeded`` for the
    caller (every CALL is answered), and what fits still arrives.
    """
    peers = []
    with logged(lambda event: "not sending" in event.get("log_format", "")) as not_sent:
        try:
            small, other = await _small_and_other(live_router, peers)
            await small.request([SUBSCRIBE, 1, {}, "com.news"], (SUBSCRIBED,))
            for request in (1, 2, 3):
                await other.request([PUBLISH, request, {"acknowledge": True}, "com.news", [BIG]], (PUBLISHED,))
            await other.request([PUBLISH, 4, {"acknowledge": True}, "com.news", ["small"]], (PUBLISHED,))
            event = await small.wait_for(lambda m: m[0] == EVENT)
            assert event[4] == ["small"] and len(small.of_type(EVENT)) == 1

            await other.register(5, "com.big")
            small.send([CALL, 6, {}, "com.big", []])
            invocation = await other.wait_for(lambda m: m[0] == INVOCATION)
            other.send([YIELD, invocation[1], {}, [BIG]])
            answer = await small.wait_for(lambda m: m[0] in (RESULT, ERROR) and m[2 if m[0] == ERROR else 1] == 6)
            assert answer[0] == ERROR and answer[4] == "wamp.error.payload_size_exceeded", answer

            await small.register(7, "com.small")
            other.send([CALL, 8, {}, "com.small", [BIG]])
            answer = await other.wait_for(lambda m: m[0] in (RESULT, ERROR) and m[2 if m[0] == ERROR else 1] == 8)
            assert answer[0] == ERROR and answer[4] == "wamp.error.payload_size_exceeded", answer
            assert small.of_type(INVOCATION) == []

            session = live_router.service.router.realms["realm1"].sessions[small.session_id]
            assert session.oversize_dropped == 5
            assert small.largest <= 1024
            assert len(not_sent) == 1, [e["log_format"] for e in not_sent]
        finally:
            for peer in peers:
                peer.drop()


async def _small_and_other(live_router, peers: list):
    """Two joined RawSocket peers: ``small`` accepts at most 1024 bytes, ``other`` the default."""
    small = await connect_raw(live_router.rs_port, "rawsocket", max_exponent=1)
    other = await connect_raw(live_router.rs_port, "rawsocket")
    peers += [small, other]
    assert (await small.hello(ROLES))[0] == WELCOME
    assert (await other.hello(ROLES))[0] == WELCOME
    return small, other


@pytest_twisted.ensureDeferred
async def test_a_callee_error_too_big_for_the_caller_becomes_payload_size_exceeded(live_router):
    """
    A RawSocket caller that accepts at most 1024 bytes, whose callee answers
    with an ERROR too big for it, gets ERROR ``wamp.error.payload_size_exceeded``
    (as the README says), not the callee's URI with its arguments replaced.
    """
    peers = []
    try:
        small, other = await _small_and_other(live_router, peers)
        await other.register(1, "com.fails")
        small.send([CALL, 2, {}, "com.fails", []])
        invocation = await other.wait_for(lambda m: m[0] == INVOCATION)
        other.send([ERROR, INVOCATION, invocation[1], {}, "com.app.failed", [BIG]])
        answer = await small.wait_for(lambda m: m[0] == ERROR and m[2] == 2)
        assert answer[4] == "wamp.error.payload_size_exceeded", answer
        assert "com.app.failed" in answer[5][0]
        assert small.largest <= 1024
    finally:
        for peer in peers:
            peer.drop()


@pytest.mark.parametrize("first", [0x08, 0x80, 0xF8 | 1])
@pytest_twisted.ensureDeferred
async def test_reserved_bits_in_a_frame_header_are_a_protocol_violation(live_router, first):
    """Any of the upper five bits of a frame's first byte set: ABORT protocol_violation, connection closed."""
    peer = await connect_raw(live_router.rs_port, "rawsocket")
    assert (await peer.hello(ROLES))[0] == WELCOME
    payload = json.dumps([SUBSCRIBE, 1, {}, "com.news"]).encode()
    peer.transport.write(bytes([first]) + len(payload).to_bytes(3, "big") + payload)
    reply = await peer.wait_for(lambda m: m[0] in (ABORT, SUBSCRIBED))
    assert reply[0] == ABORT and reply[2] == "wamp.error.protocol_violation", reply
    assert "reserved bits" in reply[1]["message"]
    await bounded(peer.closed)


# -- pings, in memory on a Clock ---------------------------------------------------


class FramePeer(Protocol):
    """A bare RawSocket client in memory: handshake, HELLO, and every frame it gets as (type, payload)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, bytes]] = []
        self.buffer = b""
        self.lost = False

    def connectionMade(self) -> None:
        self.transport.write(bytes([0x7F, 0xF1, 0, 0]))
        self.send(0, json.dumps([1, "realm1", {"roles": {"subscriber": {}}}]).encode())

    def send(self, kind: int, payload: bytes) -> None:
        self.transport.write(bytes([kind]) + len(payload).to_bytes(3, "big") + payload)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if len(self.frames) == 0 and self.buffer[:1] == b"\x7f":
            self.buffer = self.buffer[4:]
        while len(self.buffer) >= 4:
            length = int.from_bytes(self.buffer[1:4], "big")
            if len(self.buffer) < 4 + length:
                return
            self.frames.append((self.buffer[0], self.buffer[4 : 4 + length]))
            self.buffer = self.buffer[4 + length :]

    def connectionLost(self, reason) -> None:
        self.lost = True

    def pings(self) -> list[bytes]:
        return [payload for kind, payload in self.frames if kind == 1]


def frame_peer(memory: MemoryRouter):
    """A FramePeer joined to ``memory``'s router over iosim; returns (peer, pump)."""
    peer = FramePeer()
    address = IPv4Address("TCP", "127.0.0.1", 40999)
    server = memory._factory.buildProtocol(address)
    pump = iosim.connect(
        server,
        iosim.FakeTransport(server, isServer=True, peerAddress=address),
        peer,
        iosim.FakeTransport(peer, isServer=False),
        greet=False,
    )
    pump.flush(advanceClock=False)
    assert peer.frames and peer.frames[0][0] == 0 and json.loads(peer.frames[0][1])[0] == WELCOME
    return peer, pump


def tick(memory, pump, seconds):
    memory.clock.advance(seconds)
    pump.flush(advanceClock=False)


def test_a_rawsocket_peer_that_pings_is_pinged_and_dropped_when_it_stops_answering():
    """
    A peer that pinged the router (so it speaks RawSocket pings) gets its
    PONG with the same payload; once silent for ping_interval it is pinged,
    an answer keeps it, and no answer within ping_timeout drops it: session_left
    ``wamp.close.transport_lost``, client_disconnected naming the missing pong.
    """
    recorder = Recorder()
    memory = MemoryRouter(listeners=[recorder], ping_interval=30, ping_timeout=10)
    peer, pump = frame_peer(memory)
    peer.send(1, b"hello?")
    pump.flush(advanceClock=False)
    assert (2, b"hello?") in peer.frames

    tick(memory, pump, 31)
    assert peer.pings() == [b"wampd"]
    peer.send(2, b"wampd")
    pump.flush(advanceClock=False)
    tick(memory, pump, 15)
    assert not peer.lost

    tick(memory, pump, 31)
    assert len(peer.pings()) == 2
    tick(memory, pump, 11)
    assert peer.lost
    left = [e for e in recorder.events if e.name == "session_left"]
    assert [e.reason for e in left] == ["wamp.close.transport_lost"]
    (gone,) = [e for e in recorder.events if e.name == "client_disconnected"]
    assert gone.reason.startswith("no pong within") and gone.was_clean is False


def test_a_rawsocket_peer_that_never_pinged_is_not_pinged():
    """
    An autobahn-python RawSocket client (which has no RawSocket pings) stays
    connected and unpinged however long it is silent: the router pings only
    peers that showed they speak pings (see the next test for why).
    """
    memory = MemoryRouter(ping_interval=30, ping_timeout=10)
    client = memory.join()
    peer, pump = frame_peer(memory)
    for _ in range(4):
        memory.clock.advance(31)
        memory.flush()
        pump.flush(advanceClock=False)
    assert peer.pings() == [] and not peer.lost
    assert memory.result(client.call("wamp.session.count")) == 2


def test_autobahn_python_rawsocket_clients_break_on_a_ping():
    """
    Why RawSocket peers are not all pinged: autobahn-python's Twisted
    RawSocket client reads a PING frame's header as a 16 MiB length and fails
    the connection.  If autobahn-python learns RawSocket pings this test
    fails, and every peer can then be pinged.
    """
    memory = MemoryRouter()
    memory.join()
    (pump,) = memory._pumps.values()
    with pytest.raises(PayloadExceededError):
        pump.client.dataReceived(b"\x01\x00\x00\x05wampd")


@pytest_twisted.ensureDeferred
async def test_rawsocket_tcp_connections_get_kernel_keepalive(live_router):
    """
    Every RawSocket TCP connection gets keepalive probes after ping_interval
    seconds of silence (three over ping_timeout), so a peer whose host
    vanished is dropped even when it cannot be pinged.
    """
    import socket

    peer = await connect_raw(live_router.rs_port, "rawsocket")
    try:
        assert (await peer.hello(ROLES))[0] == WELCOME
        session = live_router.service.router.realms["realm1"].sessions[peer.session_id]
        sock = session.peer.transport.getHandle()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
    finally:
        peer.drop()


@pytest_twisted.ensureDeferred
async def test_a_client_too_small_for_its_challenge_gets_an_abort_that_fits():
    """
    The same for CHALLENGE: a wampcra challenge carrying a long authid does
    not fit in 512 bytes, so the client gets a short ABORT at once (not a
    silent wait for the HELLO timeout) and a client_rejected reason ``limit``.
    """
    from router.config import AuthMethodConfig, PrincipalConfig, RealmConfig, RoleConfig
    from tests.conftest import make_service

    recorder = Recorder()
    realm = RealmConfig(
        "realm1",
        auth=(AuthMethodConfig("wampcra"),),
        principals=(PrincipalConfig("joe", "user", secret="s3cret"),),
        roles=(RoleConfig("user"),),
    )
    service = make_service(recorder, realms=(realm,))
    await service.startService()
    try:
        port = {e.transport: e for e in service.endpoints}["rawsocket"].port
        peer = await connect_raw(port, "rawsocket", max_exponent=0)
        reply = await peer.hello(ROLES, authmethods=["wampcra"], authid="a" * 300)
        assert reply[0] == ABORT and reply[2] == "wamp.error.payload_size_exceeded", reply
        assert reply[1]["message"].startswith("CHALLENGE is ")
        assert peer.largest <= 512
        await bounded(peer.closed)
        rejected = await recorder.wait_for(lambda e: e.name == "client_rejected")
        assert rejected.reason == "limit"
    finally:
        await service.stopService()
