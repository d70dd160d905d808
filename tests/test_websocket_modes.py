"""
permessage-deflate and the batched WebSocket subprotocols, with real
autobahn-python clients over loopback: Autobahn's client offering
permessage-deflate, Autobahn's batched serializers (``wamp.2.json.batched``,
``wamp.2.msgpack.batched``, ``wamp.2.cbor.batched``), and a bare Autobahn
WebSocket client sending batches byte by byte where Autobahn's WAMP client
cannot (the spec's 0x1e separator, malformed batches).
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from autobahn.twisted.websocket import (
    WampWebSocketClientFactory,
    WebSocketClientFactory,
    WebSocketClientProtocol,
)
from autobahn.wamp import message
from autobahn.wamp.serializer import JsonSerializer
from autobahn.wamp.types import ComponentConfig, PublishOptions, SubscribeOptions
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateResponse, PerMessageDeflateResponseAccept
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint

from router.wire import _autobahn
from tests.auth_helpers import bounded
from router.config import ConfigError
from router.config._tls import check_deflate
from tests.config_helpers import config_error, config_from_toml
from tests.test_lifecycle import Started
from tests.test_tap import parse
from tests.wamp_clients import Client, connect, port_of

BIG = "wamp " * 4000  # 20 kB that compresses well


def _inflate_is_bounded():
    try:
        check_deflate(True)
    except ConfigError:
        return False
    return True


# websocket_deflate is refused where Autobahn cannot bound inflating (the floors' 25.9.1)
bounded_inflate = pytest.mark.skipif(not _inflate_is_bounded(), reason="this Autobahn cannot bound inflating")


async def deflate_client(url, **options):
    """An Autobahn WAMP client (JSON) offering permessage-deflate; returns (session, its protocol)."""
    session = Client(ComponentConfig("realm1"))
    factory = WampWebSocketClientFactory(lambda: session, url=url)
    factory.setProtocolOptions(
        perMessageCompressionOffers=[PerMessageDeflateOffer()],
        perMessageCompressionAccept=lambda response: (
            PerMessageDeflateResponseAccept(response) if isinstance(response, PerMessageDeflateResponse) else None
        ),
        **options,
    )
    factory.noisy = False
    proto = await TCP4ClientEndpoint(reactor, "127.0.0.1", port_of(url)).connect(factory)
    session.wire = proto
    await bounded(session.joined)
    return session, proto


async def _echo(session):
    await bounded(session.register(lambda text: text, "com.echo"))
    return await bounded(session.call("com.echo", BIG))


@bounded_inflate
@pytest_twisted.ensureDeferred
async def test_deflate_is_negotiated_when_configured_and_compresses_both_ways():
    """
    With websocket_deflate on, Autobahn's offer is accepted; a 20 kB echo
    goes through compressed both ways (the client inflates what the router
    compressed, the router inflates what the client compressed), and far
    fewer bytes cross the socket than the messages hold.
    """
    async with Started(websocket_deflate=True) as r:
        session, proto = await deflate_client(r.ws_url)
        assert [type(e).__name__ for e in proto.websocket_extensions_in_use] == ["PerMessageDeflate"]
        assert await _echo(session) == BIG
        stats = proto.trafficStats
        assert stats.incomingOctetsAppLevel > 2 * len(BIG) // 2
        assert stats.incomingOctetsWebSocketLevel < stats.incomingOctetsAppLevel // 10
        router_side = next(iter(r.service.router.connections)).peer
        assert getattr(router_side, _autobahn.PER_MESSAGE_COMPRESS) is not None
        session.leave()
        await bounded(session.disconnected)


@bounded_inflate
@pytest_twisted.ensureDeferred
async def test_deflate_is_not_negotiated_by_default_and_plain_connections_keep_the_fast_send():
    """
    Without websocket_deflate the offer is declined (the client runs
    uncompressed); and on a router offering it, a client that does not ask
    keeps the class's own send (the fast path, no per-connection wrapper).
    """
    async with Started() as r:
        session, proto = await deflate_client(r.ws_url)
        assert proto.websocket_extensions_in_use == []
        assert await _echo(session) == BIG
        assert proto.trafficStats.incomingOctetsWebSocketLevel >= len(BIG)
        session.leave()
        await bounded(session.disconnected)
    async with Started(websocket_deflate=True) as r:
        plain = await connect(r.ws_url)
        await bounded(plain.joined)
        peer = next(iter(r.service.router.connections)).peer
        assert getattr(peer, _autobahn.PER_MESSAGE_COMPRESS) is None
        assert type(peer) is peer.factory.protocol and "send" not in vars(peer)  # the factory's own class (router.wire._lean)
        plain.leave()
        await bounded(plain.disconnected)


@bounded_inflate
@pytest_twisted.ensureDeferred
async def test_a_decompression_bomb_is_closed_with_1009():
    """
    A message that is small compressed but inflates past max_message_size
    (1 MB of one letter, about 1 kB on the wire, against a 64 KiB limit) is
    refused while inflating: the connection is closed with 1009.
    """
    async with Started(websocket_deflate=True, max_message_size=65536) as r:
        session, proto = await deflate_client(r.ws_url)
        session.publish("com.bomb", "a" * 1_000_000)
        closed = await r.recorder.wait_for(lambda e: e.name == "client_disconnected")
        assert closed.code == 1009
        assert proto.trafficStats.outgoingOctetsWebSocketLevel < 20_000
        await bounded(session.disconnected)


@pytest.mark.parametrize("serializer", ["json.batched", "msgpack.batched", "cbor.batched"])
@pytest_twisted.ensureDeferred
async def test_autobahn_batched_clients_call_and_subscribe(serializer):
    """Autobahn's batched serializers: join, register, call, subscribe and receive events."""
    async with Started() as r:
        callee = await connect(r.ws_url, serializer=serializer)
        await bounded(callee.joined)
        await bounded(callee.register(lambda a, b: a + b, "com.add"))
        got = Deferred()
        await bounded(callee.subscribe(got.callback, "com.news"))
        caller = await connect(r.ws_url, serializer=serializer)
        await bounded(caller.joined)
        assert await bounded(caller.call("com.add", 2, 3)) == 5
        caller.publish("com.news", "hello")
        assert await bounded(got) == "hello"
        serializers = {e.session.connection.serializer for e in r.recorder.events if e.name == "session_joined"}
        assert serializers == {serializer.split(".")[0]}
        for client in (caller, callee):
            client.leave()
            await bounded(client.disconnected)


@pytest_twisted.ensureDeferred
async def test_batched_subscriber_gets_retained_events_framed():
    """
    Retained events (written paced, by the outbound buffer's own loop) reach
    a batched subscriber framed as batches too, and so do live events after them.
    """
    async with Started() as r:
        publisher = await connect(r.ws_url)
        await bounded(publisher.joined)
        for n in range(3):
            await bounded(publisher.publish(f"com.retained.t{n}", n, options=PublishOptions(retain=True, acknowledge=True)))
        subscriber = await connect(r.ws_url, serializer="json.batched")
        await bounded(subscriber.joined)
        got = []
        four = Deferred()

        def on_event(value):
            got.append(value)
            if len(got) == 4:
                four.callback(None)

        await bounded(subscriber.subscribe(on_event, "com.retained.", options=SubscribeOptions(match="prefix", get_retained=True)))
        publisher.publish("com.retained.t0", "live")
        await bounded(four)
        assert sorted(got[:3]) == [0, 1, 2] and got[3] == "live"
        for client in (publisher, subscriber):
            client.leave()
            await bounded(client.disconnected)


@bounded_inflate
@pytest_twisted.ensureDeferred
async def test_deflate_and_batched_together():
    """A batched client offering deflate gets both: framed batches, compressed."""
    async with Started(websocket_deflate=True) as r:
        session = Client(ComponentConfig("realm1"))
        factory = WampWebSocketClientFactory(lambda: session, url=r.ws_url, serializers=[JsonSerializer(batched=True)])
        factory.setProtocolOptions(
            perMessageCompressionOffers=[PerMessageDeflateOffer()],
            perMessageCompressionAccept=lambda response: PerMessageDeflateResponseAccept(response),
        )
        factory.noisy = False
        proto = await TCP4ClientEndpoint(reactor, "127.0.0.1", port_of(r.ws_url)).connect(factory)
        await bounded(session.joined)
        assert proto.websocket_protocol_in_use == "wamp.2.json.batched"
        assert await _echo(session) == BIG
        assert proto.trafficStats.incomingOctetsWebSocketLevel < len(BIG) // 10
        session.leave()
        await bounded(session.disconnected)


# -- batches byte by byte -------------------------------------------------------------


class RawBatches(WebSocketClientProtocol):
    """A bare WebSocket client: sends what it is told, keeps every message and the close code."""

    def onConnect(self, response):
        self.received = []
        self.arrived = Deferred()
        self.closed = Deferred()

    def onMessage(self, payload, isBinary):
        self.received.append(payload)
        if not self.arrived.called:
            self.arrived.callback(payload)

    def onClose(self, wasClean, code, reason):
        if hasattr(self, "closed") and not self.closed.called:
            self.closed.callback(code)

    def next_message(self):
        self.arrived = Deferred()
        return bounded(self.arrived)


async def raw_batches(url, subprotocol):
    factory = WebSocketClientFactory(url=url, protocols=[subprotocol])
    factory.protocol = RawBatches
    factory.noisy = False
    proto = await TCP4ClientEndpoint(reactor, "127.0.0.1", port_of(url)).connect(factory)
    opened = Deferred()
    proto.onOpen = lambda: opened.callback(None)
    await bounded(opened)
    return proto


HELLO = [1, "realm1", {"roles": {"caller": {}, "callee": {}}}]


@pytest_twisted.ensureDeferred
async def test_spec_separator_batches_two_messages_and_is_answered_in_kind():
    """
    A client using the spec's 0x1e separator: one WebSocket message holding
    HELLO is answered with WELCOME ending in 0x1e; one holding REGISTER and
    CALL (two WAMP messages) gets both handled, each answer a batch of one.
    """
    async with Started() as r:
        proto = await raw_batches(r.ws_url, "wamp.2.json.batched")
        proto.sendMessage(json.dumps(HELLO).encode() + b"\x1e")
        welcome = await bounded(proto.arrived)
        assert welcome.endswith(b"\x1e") and json.loads(welcome[:-1])[0] == message.Welcome.MESSAGE_TYPE
        batch = json.dumps([64, 1, {}, "com.x"]).encode() + b"\x1e" + json.dumps([48, 2, {}, "com.x", [7]]).encode() + b"\x1e"
        arrived = proto.next_message()
        proto.sendMessage(batch)
        await arrived
        while len(proto.received) < 3:
            await proto.next_message()
        types = [json.loads(m[:-1])[0] for m in proto.received[1:]]
        assert types == [message.Registered.MESSAGE_TYPE, message.Invocation.MESSAGE_TYPE]
        assert all(m.endswith(b"\x1e") and m.count(b"\x1e") == 1 for m in proto.received)
        proto.sendClose(1000)
        await bounded(proto.closed)


@pytest.mark.parametrize(
    "subprotocol,payload,text",
    [
        ("wamp.2.json.batched", b"", "empty batch"),
        ("wamp.2.json.batched", json.dumps(HELLO).encode(), "record separator"),
        ("wamp.2.msgpack.batched", b"\x00\x00\x01\x00\x93", "announces a 256-byte message"),
        ("wamp.2.msgpack.batched", b"\x00\x00", "inside a length prefix"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_malformed_batches_are_protocol_violations(subprotocol, payload, text):
    """An empty, unterminated or truncated batch ends the connection as a protocol violation, saying what was wrong."""
    async with Started() as r:
        proto = await raw_batches(r.ws_url, subprotocol)
        proto.sendMessage(payload, isBinary="msgpack" in subprotocol)
        await bounded(proto.closed)
        error = await r.recorder.wait_for(lambda e: e.name == "client_error")
        assert text in str(error.exception)
        await r.recorder.wait_for(lambda e: e.name == "client_disconnected")


@pytest_twisted.ensureDeferred
async def test_a_batch_over_max_message_size_is_closed_with_1009():
    """max_message_size bounds the whole batched WebSocket message."""
    async with Started(max_message_size=4096) as r:
        proto = await raw_batches(r.ws_url, "wamp.2.json.batched")
        one = json.dumps(HELLO).encode() + b"\x1e"
        proto.sendMessage(one * (4096 // len(one) + 1))
        assert await bounded(proto.closed) == 1009


# -- the setting --------------------------------------------------------------------


def test_deflate_is_refused_where_autobahn_cannot_bound_inflating():
    """websocket_deflate fails closed, naming the key, with a permessage-deflate that has no max_output_len (Autobahn 25.9.1's)."""

    class Unbounded:
        def decompress_message_data(self, data):
            return data

    class Bounded:
        def decompress_message_data(self, data, max_output_len=None):
            return data

    with pytest.raises(ConfigError) as info:
        check_deflate(True, Unbounded)
    assert info.value.key == "websocket_deflate" and "decompression bomb" in info.value.reason
    check_deflate(True, Bounded)
    check_deflate(False, Unbounded)


@bounded_inflate
def test_websocket_deflate_setting(tmp_path):
    """websocket_deflate: off by default, on from TOML or --websocket-deflate, and a non-boolean names the key."""
    assert config_from_toml('[[realm]]\nname = "r"\n').websocket_deflate is False
    assert config_from_toml("[router]\nwebsocket_deflate = true\n").websocket_deflate is True
    error = config_error('[router]\nwebsocket_deflate = "yes"\n')
    assert error.key == "router.websocket_deflate" and "bool" in error.reason
    assert parse("--no-default-listener", "--websocket-deflate")["router_config"].websocket_deflate is True
    assert parse("--no-default-listener")["router_config"].websocket_deflate is False
