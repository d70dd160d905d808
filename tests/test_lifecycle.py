"""
Lifecycle events over real loopback connections: order and exactly-once for
every way a connection can end, listener vetoes, and listeners that fail.
"""

from __future__ import annotations

import json
import struct

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WampWebSocketClientFactory, WampWebSocketClientProtocol
from autobahn.wamp.types import ComponentConfig
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol

from router.events import Reject
from tests.conftest import VirtualTime, make_service
from tests.raw_client import bounded
from tests.wamp_clients import Client, Recorder, connect, join, leave, open_websocket, rawsocket_handshake

ENDED = ["client_connected", "session_joining", "session_joined", "session_left", "client_disconnected"]


def assert_well_ordered(recorder: Recorder) -> None:
    """Every connection: one connected first, one disconnected last, sessions in between."""
    by_conn: dict[int, list[str]] = {}
    for event in recorder.events:
        conn = getattr(event, "connection", None) or getattr(getattr(event, "session", None), "connection", None)
        if conn is not None:
            by_conn.setdefault(conn.id, []).append(event.name)
    for conn_id, names in by_conn.items():
        assert names[0] == "client_connected", (conn_id, names)
        assert names.count("client_connected") == 1, (conn_id, names)
        assert names[-1] == "client_disconnected", (conn_id, names)
        assert names.count("client_disconnected") == 1, (conn_id, names)
        body = [n for n in names[1:-1] if n not in ("client_error",)]
        if "client_rejected" in body:
            assert body[-1] == "client_rejected", (conn_id, names)
            body = body[:-1]
            if body[-1:] == ["session_joining"]:  # a join refused before WELCOME
                body = body[:-1]
        # the rest is (joining -> joined -> left)*
        while body:
            assert body[:3] == ["session_joining", "session_joined", "session_left"], (conn_id, names)
            body = body[3:]


class Started:
    """A router service with its own options, stopped at the end of the test."""

    def __init__(self, recorder=None, **overrides):
        self.recorder = recorder or Recorder()
        self.service = make_service(self.recorder, **overrides)

    async def __aenter__(self):
        await self.service.startService()
        by_kind = {e.transport: e for e in self.service.endpoints}
        self.ws_url = by_kind["websocket"].url
        self.rs_port = by_kind["rawsocket"].port
        return self

    async def __aexit__(self, *exc):
        if self.service.running:
            await self.service.stopService()


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_clean_goodbye(transport):
    async with Started() as r:
        address = r.ws_url if transport == "websocket" else r.rs_port
        c = await join(address, transport)
        await leave(c)
        closed = await r.recorder.wait_for(lambda e: e.name == "client_disconnected")
        assert r.recorder.names(closed.connection.id) == ENDED
        left = [e for e in r.recorder.events if e.name == "session_left"][0]
        assert left.reason == "wamp.close.normal"
        assert left.session.session_id == c.sid
        assert closed.session.session_id == c.sid
        assert closed.connection.transport == transport
        assert closed.connection.host == "127.0.0.1"
    assert_well_ordered(r.recorder)


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_tcp_drop(transport):
    async with Started() as r:
        address = r.ws_url if transport == "websocket" else r.rs_port
        c = await join(address, transport)
        await c.subscribe(lambda: None, "com.example.t")
        await c.register(lambda: None, "com.example.p")
        c.wire.transport.abortConnection()
        closed = await r.recorder.wait_for(lambda e: e.name == "client_disconnected")
        assert closed.was_clean is False
        left = [e for e in r.recorder.events if e.name == "session_left"][0]
        assert left.reason == "wamp.close.transport_lost"
        realm = r.service.router.realms["realm1"]
        assert realm.sessions == {}
        assert realm.broker.subscriptions() == ()
        assert realm.dealer.registrations() == ()
        assert r.recorder.names(closed.connection.id) == ENDED
    assert_well_ordered(r.recorder)


class _DeafProtocol(WampWebSocketClientProtocol):
    def onPing(self, payload):
        pass  # never pong


def _ponged(r: Started, client) -> Deferred:
    """Fires when the router's side of ``client``'s connection gets a pong."""
    peer = r.service.router.realms["realm1"].sessions[client.sid].peer
    d = Deferred()
    on_pong = peer.onPong

    def onPong(payload):
        on_pong(payload)
        if not d.called:
            d.callback(None)

    peer.onPong = onPong
    return d


@pytest_twisted.ensureDeferred
async def test_ping_timeout_drops_the_connection():
    """The sweeper's clock is driven by hand: an interval of silence, a ping, a timeout without pong."""
    clock = VirtualTime()
    async with Started(ping_interval=0.2, ping_timeout=0.3, reactor=clock) as r:
        # a client that answers pings stays
        healthy = await join(r.ws_url)
        # a client that does not is dropped
        session = Client(ComponentConfig("realm1"))
        factory = WampWebSocketClientFactory(lambda: session, url=r.ws_url)
        factory.protocol = _DeafProtocol
        await TCP4ClientEndpoint(reactor, "127.0.0.1", int(r.ws_url.split(":")[2].split("/")[0])).connect(factory)
        await session.joined
        ponged = _ponged(r, healthy)
        clock.advance(0.2)  # silent for an interval: both are pinged
        await bounded(ponged)
        clock.advance(0.35)  # no pong within the timeout (and one sweep past it): the deaf one is dropped
        closed = await r.recorder.wait_for(
            lambda e: e.name == "client_disconnected" and e.session.session_id == session.sid
        )
        assert "no pong" in closed.reason
        assert closed.was_clean is False
        left = [e for e in r.recorder.events if e.name == "session_left"][0]
        assert left.session.session_id == session.sid
        # the healthy one was pinged too, answered, and still works
        await healthy.register(lambda: "alive", "com.example.alive")
        assert await healthy.call("com.example.alive") == "alive"
        await leave(healthy)
    assert_well_ordered(r.recorder)


class _Veto:
    def __init__(self, at: str, reason: str = "listener") -> None:
        self.at = at
        self.reason = reason

    def on_client_connected(self, event):
        if self.at == "connect":
            raise Reject("go away", self.reason)

    async def on_session_joining(self, event):
        if self.at == "join":
            raise Reject(f"{event.session.authid} may not join", self.reason, "com.example.error.not_today")


@pytest_twisted.ensureDeferred
async def test_listener_rejects_websocket_connection_with_403():
    async with Started(listener_objects=[(None, _Veto("connect"))]) as r:
        _, closed = await open_websocket(r.ws_url)
        reason = await closed
        assert "403" in reason
        closed = await r.recorder.wait_for(lambda e: e.name == "client_disconnected")
        assert r.recorder.names(closed.connection.id) == [
            "client_connected",
            "client_rejected",
            "client_disconnected",
        ]
        rejected = [e for e in r.recorder.events if e.name == "client_rejected"][0]
        assert (rejected.reason, rejected.message) == ("listener", "go away")
    assert_well_ordered(r.recorder)


@pytest_twisted.ensureDeferred
async def test_listener_rejects_rawsocket_connection():
    async with Started(listener_objects=[(None, _Veto("connect", "limit"))]) as r:
        # RawSocket handshake error 4: "maximum connection count reached"
        assert await rawsocket_handshake(r.rs_port) == bytes([0x7F, 0x40, 0, 0])
        closed = await r.recorder.wait_for(lambda e: e.name == "client_disconnected")
        assert r.recorder.names(closed.connection.id) == ["client_connected", "client_rejected", "client_disconnected"]
        assert [e.reason for e in r.recorder.events if e.name == "client_rejected"] == ["limit"]


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_listener_rejects_join_with_abort(transport):
    async with Started(listener_objects=[(None, _Veto("join", "authorization"))]) as r:
        address = r.ws_url if transport == "websocket" else r.rs_port
        c = await connect(address, transport)
        with pytest.raises(RuntimeError, match="com.example.error.not_today"):
            await c.joined
        await c.disconnected
        closed = await r.recorder.wait_for(lambda e: e.name == "client_disconnected")
        assert r.recorder.names(closed.connection.id) == [
            "client_connected",
            "session_joining",
            "client_rejected",
            "client_disconnected",
        ]
        rejected = [e for e in r.recorder.events if e.name == "client_rejected"][0]
        assert rejected.reason == "authorization"
        assert rejected.realm == "realm1"
        assert r.service.router.realms["realm1"].sessions == {}
    # the join veto means no session_joined / session_left ever fired
    assert not [e for e in r.recorder.events if e.name in ("session_joined", "session_left")]


class _RawWs(Protocol):
    """
    A hand-made WebSocket client: handshake, then send exactly what the test
    says; like any RFC 6455 client it answers the router's Close frame with
    its own, so the router ends the connection without waiting for a timeout.
    """

    def __init__(self, frames):
        self.frames = frames
        self.received = b""
        self.closed = Deferred()
        self.answered_close = False

    def connectionMade(self):
        self.transport.write(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n"
        )

    def dataReceived(self, data):
        first = not self.received
        self.received += data
        if first and b"101" in data.split(b"\r\n", 1)[0]:
            for frame in self.frames:
                self.transport.write(_mask_frame(frame))
        if not self.answered_close and 0x88 in _frame_heads(self.received):
            self.answered_close = True
            self.transport.write(_mask_frame(struct.pack("!H", 1000), opcode=0x8))

    def connectionLost(self, reason):
        self.closed.callback(self.received)


def _mask_frame(payload: bytes, opcode: int = 1) -> bytes:
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + masked


def _server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The complete unmasked server frames after the HTTP response: (first byte, payload)."""
    parts = data.split(b"\r\n\r\n", 1)
    body = parts[1] if len(parts) == 2 else b""
    out = []
    while len(body) >= 2:
        first, n = body[0], body[1] & 0x7F
        at = 2
        if n == 126:
            n, at = struct.unpack("!H", body[2:4])[0], 4
        elif n == 127:
            n, at = struct.unpack("!Q", body[2:10])[0], 10
        if len(body) < at + n:
            break
        out.append((first, body[at : at + n]))
        body = body[at + n :]
    return out


def _frame_heads(data: bytes) -> list[int]:
    """The first byte (FIN bit and opcode) of each complete server frame: 0x81 text, 0x88 Close."""
    return [first for first, _ in _server_frames(data)]


def _text_frames(data: bytes) -> list[str]:
    """Unmasked server text frames after the HTTP response, as text."""
    return [payload.decode() for first, payload in _server_frames(data) if first & 0x0F == 1]


@pytest.mark.parametrize(
    "frames,expected",
    [
        ([b"this is not json"], "payload is not valid json"),
        ([b'{"not": "a list"}'], "non-empty array"),
        ([b"[99, 1]"], "unknown WAMP message type"),
        ([b'[32, 1, {}, "com.topic"]'], "SUBSCRIBE received before HELLO"),
        ([b'[1, "realm1", {"roles": {"subscriber": {}}}]', b'[1, "realm1", {"roles": {"subscriber": {}}}]'], "HELLO is not allowed"),
        ([b'[1, "realm1", {"roles": {"subscriber": {}}}]', b'[36, 1, 1, {}]'], "EVENT is not allowed"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_protocol_violation_aborts_only_that_connection(frames, expected):
    """A malformed or out-of-place message gets ABORT protocol_violation and a Close on that connection only."""
    async with Started() as r:
        bystander = await join(r.ws_url)
        proto = _RawWs(frames)
        port = int(r.ws_url.split(":")[2].split("/")[0])
        await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(Factory.forProtocol(lambda: proto))
        received = await proto.closed
        assert _frame_heads(received)[-1] == 0x88  # ABORT, then the router's WebSocket Close
        messages = [json.loads(t) for t in _text_frames(received)]
        abort = messages[-1]
        assert abort[0] == 3 and abort[2] == "wamp.error.protocol_violation", messages
        assert expected in abort[1]["message"]
        error = await r.recorder.wait_for(lambda e: e.name == "client_error")
        assert expected in str(error.exception)
        await r.recorder.wait_disconnected(error.connection.id)
        # the other session is unharmed
        await bystander.register(lambda: "fine", "com.example.fine")
        assert await bystander.call("com.example.fine") == "fine"
        await leave(bystander)
    assert_well_ordered(r.recorder)


@pytest_twisted.ensureDeferred
async def test_websocket_message_over_the_limit_closes_with_1009():
    async with Started(max_message_size=1024) as r:
        c = await join(r.ws_url)
        closed = Deferred()
        c.wire.onClose = lambda wasClean, code, reason: closed.callback((code, reason))
        c.publish("com.example.big", "x" * 2000)
        code, reason = await closed
        assert code == 1009
        gone = await r.recorder.wait_for(lambda e: e.name == "client_disconnected")
        assert gone.code == 1009


@pytest_twisted.ensureDeferred
async def test_rawsocket_message_over_the_limit_gets_abort():
    async with Started(max_message_size=1024) as r:
        got = Deferred()

        class Raw(Protocol):
            def connectionMade(self):
                self.data = b""
                self.transport.write(bytes([0x7F, 0xF1, 0, 0]))

            def dataReceived(self, data):
                self.data += data
                if len(self.data) == 4:
                    assert self.data[1] & 0x0F == 1  # json accepted
                    assert self.data[1] >> 4 == 1  # 2**(9+1) = 1024: our limit, announced
                    self.transport.write(b"\x00" + (5000).to_bytes(3, "big") + b"[" * 10)

            def connectionLost(self, reason):
                got.callback(self.data)

        await TCP4ClientEndpoint(reactor, "127.0.0.1", r.rs_port).connect(Factory.forProtocol(Raw))
        data = await got
        frame = data[4:]
        length = int.from_bytes(frame[1:4], "big")
        abort = json.loads(frame[4 : 4 + length])
        assert abort[0] == 3 and abort[2] == "wamp.error.protocol_violation"
        assert "5000 bytes exceeds the limit of 1024" in abort[1]["message"]


class _Raises:
    name = "raiser"
    priority = 10

    def on_session_joined(self, event):
        raise RuntimeError("listener bug")

    def on_client_disconnected(self, event):
        raise RuntimeError("listener bug")


class _Hangs:
    name = "hanger"
    priority = 5

    def __init__(self):
        self.cancelled = 0

    def on_session_joined(self, event):
        d = Deferred(lambda _: self._cancel())
        return d

    def _cancel(self):
        self.cancelled += 1


@pytest_twisted.ensureDeferred
async def test_failing_and_hanging_listeners_do_not_stop_routing_or_others():
    hanger = _Hangs()
    clock = VirtualTime()  # the listener timeout runs when the test advances it
    listeners = [(None, _Raises()), (None, hanger)]
    async with Started(listener_timeout=0.3, listener_objects=listeners, reactor=clock) as r:
        c = await join(r.ws_url)  # joins although a listener raised and one hangs
        await c.register(lambda: 1, "com.example.one")
        assert await c.call("com.example.one") == 1
        assert hanger.cancelled == 0
        clock.advance(0.3)  # the hanger's time is up: the events behind it go on
        joined = await r.recorder.wait_for(lambda e: e.name == "session_joined")
        assert joined.session.session_id == c.sid
        await leave(c)
        await r.recorder.wait_for(lambda e: e.name == "client_disconnected")
        assert hanger.cancelled == 1
    assert_well_ordered(r.recorder)


class _BanListDown:
    """A ban list whose database is down: both of its vetoes raise something other than Reject."""

    name = "tests.banlist"

    def __init__(self, at: str) -> None:
        self.at = at

    def on_client_connected(self, event):
        if self.at == "connect":
            raise ConnectionError("ban database is down")

    async def on_session_joining(self, event):
        if self.at == "join":
            raise ConnectionError("ban database is down")


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_a_connect_veto_that_raises_refuses_the_connection(transport):
    """A client_connected handler that raises refuses (fail closed): HTTP 403 or a RawSocket handshake error."""
    async with Started(listener_objects=[(None, _BanListDown("connect"))]) as r:
        if transport == "websocket":
            _, closed = await open_websocket(r.ws_url)
            reason = await closed
            assert "403" in reason and "ConnectionError" not in reason and "database" not in reason
        else:
            assert await rawsocket_handshake(r.rs_port) == bytes([0x7F, 0x00, 0, 0])
        rejected = await r.recorder.wait_for(lambda e: e.name == "client_rejected")
        assert (rejected.reason, rejected.message) == (
            "listener",
            "listener tests.banlist failed on client_connected; refused",
        )
        await r.recorder.wait_disconnected(rejected.connection.id)
        assert r.service.router.connections == ()
    assert_well_ordered(r.recorder)


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_a_join_veto_that_raises_refuses_the_session(transport):
    """A session_joining coroutine that raises refuses the join: ABORT wamp.error.authorization_failed, no WELCOME."""
    async with Started(listener_objects=[(None, _BanListDown("join"))]) as r:
        c = await connect(r.ws_url if transport == "websocket" else r.rs_port, transport)
        with pytest.raises(RuntimeError, match="wamp.error.authorization_failed"):
            await c.joined
        await c.disconnected
        rejected = await r.recorder.wait_for(lambda e: e.name == "client_rejected")
        assert (rejected.reason, rejected.realm) == ("listener", "realm1")
        closed = await r.recorder.wait_disconnected(rejected.connection.id)
        assert r.recorder.names(closed.connection.id) == [
            "client_connected",
            "session_joining",
            "client_rejected",
            "client_disconnected",
        ]
        assert r.service.router.realms["realm1"].sessions == {}
    assert_well_ordered(r.recorder)


@pytest_twisted.ensureDeferred
async def test_shutdown_says_goodbye_to_everyone():
    r = Started()
    async with r:
        clients = [await join(r.ws_url), await join(r.rs_port, "rawsocket")]
        await r.service.stopService()
        for c in clients:
            details = await c.left
            assert details.reason == "wamp.close.system_shutdown"
    names = [e.name for e in r.recorder.events]
    assert names[0] == "server_launched"
    assert "server_stopping" in names
    assert names.count("session_left") == 2
    assert names.count("client_disconnected") == 2, str(names)
    first_stop = names.index("server_stopping")
    assert all(n in ("session_left", "client_disconnected") for n in names[first_stop + 1 :])
    assert_well_ordered(r.recorder)


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_shutdown_cancels_calls_in_flight_before_goodbye(transport):
    """A call pending at shutdown gets ERROR wamp.error.canceled first, then the router's GOODBYE."""
    from autobahn.wamp import message
    from autobahn.wamp.exception import ApplicationError

    r = Started()
    async with r:
        address = r.ws_url if transport == "websocket" else r.rs_port
        callee = await join(address, transport)
        never, invoked = Deferred(), Deferred()

        def slow():
            invoked.callback(None)
            return never

        await callee.register(slow, "com.example.slow")
        caller = await join(address, transport)
        failed = []
        caller.call("com.example.slow").addErrback(failed.append)
        await invoked.addTimeout(5, reactor)  # the call is in flight in the router
        await r.service.stopService()
        await caller.left
    kinds = [type(m) for m in caller.inbox if type(m) in (message.Error, message.Goodbye)]
    assert kinds == [message.Error, message.Goodbye], caller.inbox
    assert isinstance(failed[0].value, ApplicationError) and failed[0].value.error == "wamp.error.canceled"
    assert_well_ordered(r.recorder)



@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_tcp_close_while_joined_is_not_clean(transport):
    """A peer that closes TCP in order (FIN) while its session is joined, without GOODBYE: was_clean is False."""
    async with Started() as r:
        c = await join(r.ws_url if transport == "websocket" else r.rs_port, transport)
        c.wire.transport.loseConnection()  # a FIN, no GOODBYE, no WebSocket close frame
        closed = await r.recorder.wait_for(lambda e: e.name == "client_disconnected")
        assert closed.was_clean is False, closed
        assert closed.reason
        left = [e for e in r.recorder.events if e.name == "session_left"][0]
        assert left.reason == "wamp.close.transport_lost"
    assert_well_ordered(r.recorder)


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_goodbye_at_shutdown_is_clean(transport):
    """
    The router's GOODBYE at shutdown, answered by the client's GOODBYE, ends
    the connection cleanly; over WebSocket the client's Close frame, which
    often shares a read with its GOODBYE, completes the closing handshake
    (code 1000, no "closed uncleanly" reason), so nobody waits for a timeout.
    """
    r = Started()
    async with r:
        c = await join(r.ws_url if transport == "websocket" else r.rs_port, transport)
        await r.service.stopService()
        assert (await c.left).reason == "wamp.close.system_shutdown"
    closed = [(e.was_clean, e.code, e.reason) for e in r.recorder.events if e.name == "client_disconnected"]
    assert closed == [(True, 1000 if transport == "websocket" else None, None)], closed
    assert_well_ordered(r.recorder)


@pytest.mark.parametrize("joined", [False, True], ids=["before-hello", "joined"])
@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_client_sent_welcome_is_named_in_client_error(transport, joined):
    """A WELCOME from a client (which Autobahn's parser refuses) gets ABORT, and client_error names it."""
    from tests.raw_client import ABORT, connect_raw

    async with Started() as r:
        peer = await connect_raw(r.ws_url if transport == "websocket" else r.rs_port, transport)
        if joined:
            assert (await peer.hello({"caller": {}}))[0] == 2
        peer.send([2, 12345, {}])
        abort = await peer.wait_for(lambda m: m[0] == ABORT)
        assert abort[2] == "wamp.error.protocol_violation"
        error = await r.recorder.wait_for(lambda e: e.name == "client_error")
        assert error.message_type == "WELCOME", error
        await peer.closed
    assert_well_ordered(r.recorder)
