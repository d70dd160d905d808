"""
Behind a reverse proxy (router.wire.forwarded, router.wire.proxy), over real
loopback sockets: X-Forwarded-For / Forwarded on the WebSocket upgrade and the
HTTP push endpoint, and PROXY protocol v1/v2 headers written before a real
Autobahn client's RawSocket or WebSocket handshake; each believed only from a
trusted proxy (the test client is 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
import pytest_twisted
from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from router.config import HttpConfig, ListenConfig
from router.wire.proxy import V2_SIGNATURE
from tests.auth_helpers import open_session
from tests.conftest import in_namespaces, logged, make_service
from tests.wamp_clients import Client, Recorder, leave

LOCAL = "tcp:0:interface=127.0.0.1"


@pytest_twisted.async_yield_fixture
async def proxied():
    """Start a service with the given overrides; stopped after the test."""
    started = []

    async def start(**overrides):
        recorder = Recorder()
        service = make_service(recorder, **overrides)
        await service.startService()
        started.append(service)
        return service, recorder

    yield start
    for service in started:
        await service.stopService()


def _ws_url(service):
    return next(e.url for e in service.endpoints if e.transport == "websocket")


def _connected(recorder):
    return [e.connection for e in recorder.events if e.name == "client_connected"]


# -- X-Forwarded-For / Forwarded on the WebSocket upgrade ----------------------------


@pytest_twisted.ensureDeferred
async def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(proxied):
    """From a trusted peer, the nearest untrusted X-Forwarded-For hop is the client: in events and the session's connection."""
    service, recorder = await proxied(trusted_proxies=("127.0.0.0/8", "10.0.0.0/8"))
    c = await open_session(_ws_url(service), headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.1.2.3"})
    await c.joined.addTimeout(5, reactor)
    conn = _connected(recorder)[0]
    assert (conn.host, conn.peer) == ("203.0.113.9", "tcp4:203.0.113.9:0")
    await leave(c)


@pytest_twisted.ensureDeferred
async def test_x_forwarded_for_from_anyone_else_is_ignored(proxied):
    """A peer outside trusted_proxies is its own client, whatever X-Forwarded-For says (the spoof case)."""
    service, recorder = await proxied(trusted_proxies=("10.0.0.0/8",))
    c = await open_session(_ws_url(service), headers={"X-Forwarded-For": "203.0.113.9"})
    await c.joined.addTimeout(5, reactor)
    assert _connected(recorder)[0].host == "127.0.0.1"
    await leave(c)


@pytest_twisted.ensureDeferred
async def test_forwarded_header_and_only_the_configured_one(proxied):
    """With forwarded_header = "forwarded", RFC 7239 for= names the client and a client-made X-Forwarded-For is ignored."""
    service, recorder = await proxied(trusted_proxies=("127.0.0.1/32",), forwarded_header="forwarded")
    headers = {"Forwarded": 'for="[2001:db8::7]:4711";proto=https', "X-Forwarded-For": "198.51.100.66"}
    c = await open_session(_ws_url(service), headers=headers)
    await c.joined.addTimeout(5, reactor)
    conn = _connected(recorder)[0]
    assert (conn.host, conn.peer) == ("2001:db8::7", "tcp6:2001:db8::7:4711")
    await leave(c)


@pytest.mark.parametrize("value", ["203.0.113.9, not-an-address", "unknown", ""])
@pytest_twisted.ensureDeferred
async def test_a_malformed_forwarded_header_from_a_trusted_proxy_is_refused(proxied, value):
    """A trusted proxy's X-Forwarded-For that is malformed or names no address refuses the upgrade (HTTP 400): fail closed."""
    service, recorder = await proxied(trusted_proxies=("127.0.0.1/32",))
    answer = await _upgrade(service, value)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert _connected(recorder) == []


@pytest_twisted.ensureDeferred
async def test_policy_and_per_address_limits_see_the_forwarded_client(proxied):
    """deny_addresses refuses the forwarded client, and max_connections_per_address counts clients, not the proxy."""
    service, recorder = await proxied(
        trusted_proxies=("127.0.0.1/32",), deny_addresses=("198.51.100.0/24",), max_connections_per_address=1
    )
    url = _ws_url(service)
    a = await open_session(url, headers={"X-Forwarded-For": "203.0.113.1"})
    b = await open_session(url, headers={"X-Forwarded-For": "203.0.113.2"})
    await a.joined.addTimeout(5, reactor)
    await b.joined.addTimeout(5, reactor)
    assert (await _upgrade(service, "203.0.113.1")).startswith(b"HTTP/1.1 503")
    assert (await _upgrade(service, "198.51.100.5")).startswith(b"HTTP/1.1 403")
    await recorder.wait_for(lambda e: e.name == "client_disconnected" and e.connection.host == "198.51.100.5")
    rejected = {e.connection.host: e.reason for e in recorder.events if e.name == "client_rejected"}
    assert rejected == {"203.0.113.1": "limit", "198.51.100.5": "address"}
    await leave(a)
    await leave(b)


async def _upgrade(service, forwarded_for: str) -> bytes:
    """A raw WebSocket upgrade request with this X-Forwarded-For; the router's whole answer."""
    port = service.endpoints[0].port
    request = (
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: wamp.2.json\r\nX-Forwarded-For: {forwarded_for}\r\n\r\n"
    )
    return await _http_exchange(port, request.encode())


# -- the PROXY protocol ---------------------------------------------------------------


def _v1(client="198.51.100.7", port=40000):
    return f"PROXY TCP4 {client} 127.0.0.1 {port} 9000\r\n".encode()


def _v2(client="2001:db8::42", port=40001):
    body = ipaddress.IPv6Address(client).packed + bytes(16) + struct.pack("!HH", port, 9000)
    return V2_SIGNATURE + bytes([0x21, 0x21]) + struct.pack("!H", len(body)) + body


class _Prefixed(ProtocolWrapper):
    """Writes the factory's header, then lets the real client speak."""

    def makeConnection(self, transport):
        transport.write(self.factory.header)
        super().makeConnection(transport)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.factory.lost.callback(None)


async def _client_after(port: int, transport: str, header: bytes, url: str = "ws://127.0.0.1/ws") -> Client:
    session = Client(ComponentConfig("realm1"))
    if transport == "websocket":
        inner = WampWebSocketClientFactory(lambda: session, url=url)
    else:
        inner = WampRawSocketClientFactory(lambda: session)
    inner.noisy = False
    factory = WrappingFactory(inner)
    factory.protocol = _Prefixed
    factory.header = header
    factory.lost = session.lost = Deferred()  # the TCP connection closed
    await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    return session


async def _proxy_listener(proxied, transport, trusted=("127.0.0.1/32",)):
    listen = (ListenConfig(LOCAL, transport, proxy_protocol=True),)
    service, recorder = await proxied(listen=listen, trusted_proxies=trusted)
    return service.endpoints[0].port, recorder


@pytest.mark.parametrize("transport", ["rawsocket", "websocket"])
@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest_twisted.ensureDeferred
async def test_a_proxy_header_from_a_trusted_peer_names_the_client(proxied, transport, version):
    """A PROXY v1 line or v2 header, then a real handshake: the session joins and the router sees the header's client."""
    port, recorder = await _proxy_listener(proxied, transport)
    header, client = (_v1(), "198.51.100.7") if version == "v1" else (_v2(), "2001:db8::42")
    session = await _client_after(port, transport, header)
    await session.joined.addTimeout(5, reactor)
    conn = _connected(recorder)[0]
    assert conn.host == client and conn.peer.endswith(f"{client}:{40000 if version == 'v1' else 40001}")
    await leave(session)


async def _closed_without_a_session(port, transport, header, recorder):
    session = await _client_after(port, transport, header)
    await session.lost.addTimeout(5, reactor)
    assert not session.joined.called
    assert _connected(recorder) == []


@pytest.mark.parametrize("transport", ["rawsocket", "websocket"])
@pytest_twisted.ensureDeferred
async def test_a_proxy_header_from_an_untrusted_peer_is_refused(proxied, transport):
    """The spoof: a peer outside trusted_proxies sends a PROXY header; it is closed, never counted, and logged."""
    port, recorder = await _proxy_listener(proxied, transport, trusted=("10.0.0.0/8",))
    with logged(in_namespaces("wampd.proxy")) as lines:
        await _closed_without_a_session(port, transport, _v1(), recorder)
    assert any("not a trusted proxy" in e["why"] for e in lines)


@pytest_twisted.ensureDeferred
async def test_an_untrusted_peer_without_a_header_is_served_directly(proxied):
    """On a proxy_protocol listener, a peer that is not a proxy and sends no header joins under its own address."""
    port, recorder = await _proxy_listener(proxied, "rawsocket", trusted=("10.0.0.0/8",))
    session = await _client_after(port, "rawsocket", b"")
    await session.joined.addTimeout(5, reactor)
    assert _connected(recorder)[0].host == "127.0.0.1"
    await leave(session)


@pytest.mark.parametrize(
    "header",
    [
        b"",  # a trusted proxy must send one
        b"PROXY TCP4 198.51.100.7 127.0.0.1 40000\r\n",  # a port missing
        b"PROXY TCP4 2001:db8::1 127.0.0.1 40000 9000\r\n",  # an IPv6 address as TCP4
        b"PROXY TCP4 198.51.100.7 127.0.0.1 99999 9000\r\n",  # no such port
        V2_SIGNATURE + bytes([0x23, 0x11, 0, 12]) + bytes(12),  # an unknown command
        V2_SIGNATURE + bytes([0x21, 0x11, 0, 4]) + bytes(4),  # too short for IPv4
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_trusted_peer_without_a_valid_header_is_refused(proxied, header):
    """From a trusted proxy, a missing or malformed PROXY header closes the connection before the router sees it (fail closed)."""
    port, recorder = await _proxy_listener(proxied, "rawsocket")
    await _closed_without_a_session(port, "rawsocket", header, recorder)


@pytest_twisted.ensureDeferred
async def test_per_address_limits_count_the_proxied_clients(proxied):
    """max_connections_per_address counts the PROXY header's clients: two behind one proxy pass, a second from one is refused."""
    listen = (ListenConfig(LOCAL, "rawsocket", proxy_protocol=True),)
    service, recorder = await proxied(listen=listen, trusted_proxies=("127.0.0.1/32",), max_connections_per_address=1)
    port = service.endpoints[0].port
    a = await _client_after(port, "rawsocket", _v1("198.51.100.1"))
    b = await _client_after(port, "rawsocket", _v1("198.51.100.2"))
    await a.joined.addTimeout(5, reactor)
    await b.joined.addTimeout(5, reactor)
    c = await _client_after(port, "rawsocket", _v1("198.51.100.1", 40002))
    await c.lost.addTimeout(5, reactor)
    rejected = [(e.connection.host, e.reason) for e in recorder.events if e.name == "client_rejected"]
    assert rejected == [("198.51.100.1", "limit")]
    await leave(a)
    await leave(b)


# -- the HTTP push endpoint -----------------------------------------------------------


async def _http_exchange(port: int, request: bytes) -> bytes:
    done = Deferred()

    class Raw(Protocol):
        def connectionMade(self):
            self.data = b""
            self.transport.write(request)

        def dataReceived(self, data):
            self.data += data

        def connectionLost(self, reason):
            done.callback(self.data)

    await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(Factory.forProtocol(Raw))
    return await done.addTimeout(5, reactor)


@pytest.mark.parametrize(
    "trusted, header, client, status",
    [
        (("127.0.0.1/32",), "203.0.113.9", "203.0.113.9", b"401"),
        (("10.0.0.0/8",), "203.0.113.9", "127.0.0.1", b"401"),
        (("127.0.0.1/32",), "not-an-address", "127.0.0.1", b"400"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_push_requests_are_logged_under_the_forwarded_client(proxied, trusted, header, client, status):
    """A refused push request is logged with its client: the X-Forwarded-For one from a trusted proxy, else the peer; malformed: 400."""
    http = HttpConfig("tcp:0:interface=127.0.0.1", "s3cret")
    service, _ = await proxied(trusted_proxies=trusted, http=http)
    port = next(e.port for e in service.endpoints if e.transport == "http")
    request = (
        b"POST /publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
        b"X-Forwarded-For: " + header.encode() + b"\r\nContent-Length: 2\r\n\r\n{}"
    )
    with logged(in_namespaces("wampd.http")) as lines:
        answer = await _http_exchange(port, request)
    assert answer.startswith(b"HTTP/1.1 " + status), answer
    assert [e["client"] for e in lines] == [client]
