"""
Connection-level policy over real loopback connections: origins, address
lists, connection limits and the HELLO timeout, each a client_rejected with
its reason, and nothing left behind.
"""

from __future__ import annotations

import re

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol

from router.events import ConnectionInfo
from router.policy import ConnectionPolicy
from tests.conftest import VirtualTime
from tests.test_lifecycle import Started, assert_well_ordered
from tests.wamp_clients import join, leave, open_websocket, port_of, rawsocket_handshake


async def _refused(r, transport: str):
    """Open a connection that the policy refuses; returns what the router answered before it closed."""
    if transport == "websocket":
        _, closed = await open_websocket(r.ws_url)
        return await closed
    return await rawsocket_handshake(r.rs_port)


def test_policy_unit_rules():
    def conn(host="127.0.0.1", origin=None):
        return ConnectionInfo(1, "websocket", f"tcp4:{host}:1", host, "json", "e", 0.0, origin=origin)

    p = ConnectionPolicy(allowed_origins=("https://*.example.com", "http://localhost:3000"))
    assert p.refusal(conn(origin="https://app.example.com"), 1, 1) is None
    assert p.refusal(conn(origin="HTTP://LOCALHOST:3000"), 1, 1) is None
    assert p.refusal(conn(origin="https://evil.com"), 1, 1).reason == "origin"
    assert p.refusal(conn(origin="https://example.com.evil.com"), 1, 1).reason == "origin"
    assert p.refusal(conn(origin=None), 1, 1) is None  # non-browser clients send none
    assert p.refusal(conn(origin=""), 1, 1) is None  # ... which Autobahn reports as ""
    q = ConnectionPolicy(allow_addresses=("10.0.0.0/8", "::1/128"), deny_addresses=("10.6.0.0/16",))
    assert q.refusal(conn("10.1.2.3"), 1, 1) is None
    assert q.refusal(conn("10.6.1.1"), 1, 1).reason == "address"
    assert q.refusal(conn("192.168.1.1"), 1, 1).reason == "address"
    assert q.refusal(conn("::ffff:10.1.2.3"), 1, 1) is None  # IPv4-mapped IPv6 checked as IPv4
    assert q.refusal(conn("::1"), 1, 1) is None
    limits = ConnectionPolicy(max_connections=2, max_connections_per_address=1)
    assert limits.refusal(conn(), 2, 1) is None
    assert limits.refusal(conn(), 3, 1).reason == "limit"
    assert limits.refusal(conn(), 2, 2).reason == "limit"


def test_origin_patterns_are_checked_when_configured():
    """An allowed_origins entry must be scheme://host[:port] (with * in the host or as the port) or null."""
    from router.policy import origin_pattern

    good = {
        "http://good.example.com": ("http://good.example.com", "http://evil.example.com"),
        "https://*.example.com": ("https://a.b.example.com", "https://example.com.evil.org"),
        "http://localhost:*": ("http://localhost:5173", "http://localhost.evil.org"),
        "http://[::1]:8080": ("http://[::1]:8080", "http://[::1]:8081"),
        "null": ("null", "http://null"),
    }
    for pattern, (matches, other) in good.items():
        regex = origin_pattern(pattern)
        assert regex.match(matches) and not regex.match(other), pattern
    bad = {
        "not a url": "has no scheme://",
        "good.example.com": "has no scheme://",
        "https://": "has no host",
        "https://app.example.com/": "no path, not even a trailing '/'",
        "https://app.example.com/app": "no path",
        "https://app.example.com?x=1": "no query",
        "https://user@app.example.com": "user name",
        "https://app.example.com:99999": "port 99999 is not between 1 and 65535",
        "": "must not be empty",
    }
    for pattern, reason in bad.items():
        with pytest.raises(ValueError, match=re.escape(reason)):
            origin_pattern(pattern)


@pytest_twisted.ensureDeferred
async def test_readme_python_client_sends_no_origin_and_joins_where_origins_are_restricted():
    """
    With allowed_origins set, the README's autobahn-python Component (which
    sends no Origin header; Autobahn reports it as "") joins and works, while
    a browser-style Origin that is not allowed still gets HTTP 403.
    """
    from autobahn.twisted.component import Component

    async with Started(allowed_origins=("http://good.example.com",)) as r:
        component = Component(transports=r.ws_url, realm="realm1")
        answered = Deferred()

        @component.on_join
        async def joined(session, details):
            await session.register(lambda a, b: a + b, "com.example.add")
            answered.callback(await session.call("com.example.add", 2, 3))
            session.leave()

        done = component.start(reactor)
        try:
            assert await answered.addTimeout(10, reactor) == 5
            await done.addTimeout(10, reactor)
        finally:
            if not done.called:
                await component.stop()
        connected = await r.recorder.wait_for(lambda e: e.name == "client_connected")
        assert connected.connection.origin is None
        assert not [e for e in r.recorder.events if e.name == "client_rejected"]

        _, closed = await open_websocket(r.ws_url, "http://evil.example.com")
        assert "403" in await closed
        rejected = await r.recorder.wait_for(lambda e: e.name == "client_rejected")
        assert (rejected.reason, rejected.message) == ("origin", "origin http://evil.example.com is not allowed")
        good, _ = await open_websocket(r.ws_url, "http://good.example.com")
        await good.joined
        await leave(good)
        await r.recorder.wait_disconnected(rejected.connection.id)
    assert_well_ordered(r.recorder)


@pytest_twisted.ensureDeferred
async def test_origin_not_allowed_gets_403_and_a_rejected_event():
    async with Started(allowed_origins=("https://*.example.com",)) as r:
        bad, closed = await open_websocket(r.ws_url, "https://evil.example.org")
        reason = await closed
        assert "403" in reason
        rejected = await r.recorder.wait_for(lambda e: e.name == "client_rejected")
        assert rejected.reason == "origin" and "evil.example.org" in rejected.message
        good, _ = await open_websocket(r.ws_url, "https://app.example.com")
        await good.joined
        await leave(good)
        await r.recorder.wait_for(lambda e: e.name == "client_disconnected" and e.session is not None)
    assert_well_ordered(r.recorder)


@pytest_twisted.ensureDeferred
async def test_origin_null_is_decided_by_allowed_origins():
    """
    ``Origin: null`` (sandboxed frames, ``file:`` pages) is the policy's to
    judge, not Autobahn's (which would answer 400): with ``null`` in
    allowed_origins it joins; without, it gets 403 and client_rejected
    reason ``origin``, like any other origin not allowed.
    """
    async with Started(allowed_origins=("null", "https://app.example.com")) as r:
        allowed, closed = await open_websocket(r.ws_url, "null")
        await DeferredList([allowed.joined, closed], fireOnOneCallback=True, consumeErrors=True)
        assert not closed.called, closed.result
        connected = await r.recorder.wait_for(lambda e: e.name == "client_connected")
        assert connected.connection.origin == "null"
        await leave(allowed)
        await r.recorder.wait_for(lambda e: e.name == "client_disconnected" and e.session is not None)
        assert not [e for e in r.recorder.events if e.name == "client_rejected"]
    assert_well_ordered(r.recorder)
    async with Started(allowed_origins=("https://app.example.com",)) as r:
        _, closed = await open_websocket(r.ws_url, "null")
        assert "403" in await closed
        rejected = await r.recorder.wait_for(lambda e: e.name == "client_rejected")
        assert (rejected.reason, rejected.message) == ("origin", "origin null is not allowed")
        await r.recorder.wait_disconnected(rejected.connection.id)
    assert_well_ordered(r.recorder)


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_denied_address_is_rejected(transport):
    async with Started(deny_addresses=("127.0.0.0/8",)) as r:
        answer = await _refused(r, transport)
        if transport == "websocket":
            assert "403" in answer
        else:
            assert answer == bytes([0x7F, 0x00, 0, 0])  # handshake error, then closed
        rejected = await r.recorder.wait_for(lambda e: e.name == "client_rejected")
        assert (rejected.reason, rejected.message) == ("address", "address 127.0.0.1 is denied")
        gone = await r.recorder.wait_disconnected(rejected.connection.id)
        assert gone.session is None
        assert r.service.router.connections == ()
    assert_well_ordered(r.recorder)


@pytest_twisted.ensureDeferred
async def test_connection_limits():
    async with Started(max_connections=3, max_connections_per_address=2) as r:
        first = await join(r.ws_url)
        second = await join(r.rs_port, "rawsocket")
        answer = await _refused(r, "websocket")  # third from 127.0.0.1: over the per-address limit
        assert "503" in answer
        rejected = await r.recorder.wait_for(lambda e: e.name == "client_rejected")
        assert rejected.reason == "limit" and "127.0.0.1" in rejected.message
        await r.recorder.wait_disconnected(rejected.connection.id)
        # the refused one does not count: after one leaves, a new one fits
        await leave(first)
        third = await join(r.ws_url)
        assert third.sid
        await leave(second)
        await leave(third)
    assert_well_ordered(r.recorder)


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_client_that_never_says_hello_is_closed(transport):
    """
    An open connection that sends no HELLO is refused (client_rejected
    reason protocol) once hello_timeout passes on the router's clock, driven
    by hand; a client that joined in time is not touched.
    """
    clock = VirtualTime()
    async with Started(hello_timeout=0.3, reactor=clock) as r:
        lost, opened = Deferred(), Deferred()

        if transport == "rawsocket":

            class Silent(Protocol):
                def connectionMade(self):
                    self.transport.write(bytes([0x7F, 0xF1, 0, 0]))  # handshake, then nothing

                def dataReceived(self, data):
                    if not opened.called:
                        opened.callback(None)  # the router's handshake answer: its session waits for HELLO

                def connectionLost(self, reason):
                    lost.callback(None)

            await TCP4ClientEndpoint(reactor, "127.0.0.1", r.rs_port).connect(Factory.forProtocol(Silent))
        else:

            from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol

            class Silent(WebSocketClientProtocol):
                def onOpen(self):
                    opened.callback(None)  # never sends HELLO

                def onClose(self, wasClean, code, reason):
                    lost.callback(None)

            factory = WebSocketClientFactory(url=r.ws_url, protocols=["wamp.2.json"])
            factory.protocol = Silent
            await TCP4ClientEndpoint(reactor, "127.0.0.1", port_of(r.ws_url)).connect(factory)
        await opened.addTimeout(5, reactor)
        healthy = await join(r.ws_url)  # joins in time and is not touched
        clock.advance(0.25)  # sweeps run, the silent one is still in time
        assert "client_rejected" not in [e.name for e in r.recorder.events]
        clock.advance(0.1)  # past hello_timeout: the next sweep refuses it
        await lost.addTimeout(5, reactor)
        rejected = await r.recorder.wait_for(lambda e: e.name == "client_rejected")
        assert rejected.reason == "protocol" and "no session joined within 0.3s" in rejected.message
        assert healthy.is_attached()
        await leave(healthy)
    assert_well_ordered(r.recorder)


@pytest_twisted.ensureDeferred
async def test_rawsocket_without_handshake_bytes_is_closed():
    """A TCP connection that never sends the RawSocket handshake is dropped after the HELLO timeout."""
    # a short real hello_timeout: no hand-driven clock, as nothing tells the test when the router has accepted
    async with Started(hello_timeout=0.1) as r:
        lost = Deferred()

        class Mute(Protocol):
            def connectionLost(self, reason):
                lost.callback(None)

        await TCP4ClientEndpoint(reactor, "127.0.0.1", r.rs_port).connect(Factory.forProtocol(Mute))
        await lost.addTimeout(5, reactor)
        # no session was ever made, so no lifecycle events either
        assert [e.name for e in r.recorder.events] == ["server_launched"]


class _Mute(Protocol):
    """A TCP connection that sends nothing (a handshake never started); ``lost`` fires when it closes."""

    def connectionMade(self):
        self.factory.opened.append(self)

    def connectionLost(self, reason):
        self.factory.lost.callback(None)


async def _mute(port: int):
    factory = Factory.forProtocol(_Mute)
    factory.opened, factory.lost = [], Deferred()
    proto = await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    return proto, factory.lost.addTimeout(5, reactor)


@pytest.mark.parametrize("limit", ["max_connections", "max_connections_per_address"])
@pytest_twisted.ensureDeferred
async def test_connections_count_from_accept_not_from_the_handshake(limit):
    """
    Connections that have not finished (or begun) their WebSocket or RawSocket
    handshake count toward the limits: with the limit reached by silent ones,
    the next connection on either transport is refused at once (503, or the
    RawSocket "maximum connection count reached" error), client_rejected
    reason limit; once they go, a client joins.
    """
    async with Started(**{limit: 3}) as r:
        ws_port = port_of(r.ws_url)
        silent = [await _mute(ws_port), await _mute(ws_port), await _mute(r.rs_port)]
        assert r.service.router.open_connections == 3
        ws_answer = await _refused(r, "websocket")
        assert "503" in ws_answer
        rs_answer = await _refused(r, "rawsocket")
        assert rs_answer == bytes([0x7F, 0x40, 0, 0])  # error 4: maximum connection count reached
        rejected = [e for e in r.recorder.events if e.name == "client_rejected"]
        assert [e.reason for e in rejected] == ["limit", "limit"]
        for e in rejected:
            await r.recorder.wait_disconnected(e.connection.id)
        for proto, lost in silent:
            proto.transport.loseConnection()
            await lost
        client = await join(r.ws_url)
        await leave(client)
        await r.recorder.wait_for(lambda e: e.name == "client_disconnected" and e.session is not None)
        assert r.service.router.open_connections == 0
    assert_well_ordered(r.recorder)


@pytest_twisted.ensureDeferred
async def test_websocket_opening_handshake_is_bounded_by_the_hello_timeout():
    """A connection that never completes its HTTP upgrade request is dropped after hello_timeout."""
    # a short real hello_timeout: no hand-driven clock, as nothing tells the test when the router has accepted
    async with Started(hello_timeout=0.1) as r:
        proto, lost = await _mute(port_of(r.ws_url))
        proto.transport.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        started = reactor.seconds()
        await lost
        assert reactor.seconds() - started < 3
        assert r.service.router.open_connections == 0


@pytest_twisted.ensureDeferred
async def test_shutdown_closes_connections_still_in_their_handshake():
    """At shutdown, connections that never finished their WebSocket or RawSocket handshake are closed too."""
    r = Started()
    async with r:
        silent = [await _mute(port_of(r.ws_url)), await _mute(r.rs_port)]
        assert r.service.router.open_connections == 2
        await r.service.stopService()
        for _, lost in silent:
            await lost
        assert r.service.router.open_connections == 0
