"""
wampd's own opening handshake (router.wire._handshake) and the lean
connection (router.wire._lean): the same answers as Autobahn's handshake for
every request, fewer objects per connection, and a client offering no
subprotocol answered.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from router.core import Router
from router.wire import PingSweeper, WebSocketFactory
from router.wire._handshake import parse_upgrade
from router.wire._lean import FRESH, HANDSHAKE_ONLY
from tests.wamp_clients import port_of

KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
GOOD = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    + KEY
    + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.json\r\n"
)


def _without(header: str) -> str:
    return "".join(line + "\r\n" for line in GOOD.split("\r\n")[:-1] if not line.lower().startswith(header.lower()))


# (id, request head without the blank line); each is answered alike by both paths
REQUESTS = [
    ("good", GOOD),
    ("msgpack-second", GOOD.replace("wamp.2.json", "foo, wamp.2.msgpack")),
    ("origin", GOOD + "Origin: https://app.example.com\r\n"),
    ("origin-port", GOOD + "Origin: http://localhost:3000\r\n"),
    ("origin-null", GOOD + "Origin: null\r\n"),
    ("origin-bad-port", GOOD + "Origin: http://x.example:99999\r\n"),
    ("origin-no-host", GOOD + "Origin: http://\r\n"),
    ("origin-twice", GOOD + "Origin: http://a.example\r\nOrigin: http://b.example\r\n"),
    ("header-case", GOOD.replace("Upgrade: websocket", "uPGRADE: WebSocket")),
    ("connection-list", GOOD.replace("Connection: Upgrade", "Connection: keep-alive, Upgrade")),
    ("host-no-port", GOOD.replace("127.0.0.1:9000", "example.com")),
    ("host-bad-port", GOOD.replace("127.0.0.1:9000", "example.com:x")),
    ("no-host", _without("Host")),
    ("two-hosts", GOOD + "Host: other\r\n"),
    ("post", GOOD.replace("GET ", "POST ", 1)),
    ("http-1.0", GOOD.replace("HTTP/1.1", "HTTP/1.0", 1)),
    ("two-spaces", GOOD.replace("GET /ws", "GET  /ws", 1)),
    ("query", GOOD.replace("/ws ", "/ws?token=1 ", 1)),
    ("fragment", GOOD.replace("/ws ", "/ws#x ", 1)),
    ("other-path", GOOD.replace("/ws ", "/other ", 1)),
    ("no-upgrade", _without("Upgrade")),
    ("upgrade-h2c", GOOD.replace("Upgrade: websocket", "Upgrade: h2c")),
    ("no-connection", _without("Connection")),
    ("connection-close", GOOD.replace("Connection: Upgrade", "Connection: close")),
    ("no-version", _without("Sec-WebSocket-Version")),
    ("version-8", GOOD.replace("Version: 13", "Version: 8")),
    ("version-junk", GOOD.replace("Version: 13", "Version: x")),
    ("version-twice", GOOD + "Sec-WebSocket-Version: 13\r\n"),
    ("no-key", _without("Sec-WebSocket-Key")),
    ("short-key", GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ==")),
    ("key-no-padding", GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQxx")),
    ("key-bad-char", GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j*Q==")),
    ("two-keys", GOOD + KEY),
    ("duplicate-protocol", GOOD.replace("wamp.2.json", "wamp.2.json, wamp.2.json")),
    ("unknown-protocol", GOOD.replace("wamp.2.json", "mqtt")),
    ("extensions", GOOD + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"),
    ("extensions-bad", GOOD + "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=99\r\n"),
    ("bare-lf", GOOD + "X-A: 1\nX-B: 2\r\n"),
    ("folded", GOOD + "X-A: 1\r\n 2\r\n"),
    ("no-colon", GOOD + "X-A 1\r\n"),
    ("bad-name", GOOD + "X A: 1\r\n"),
    ("control-char", GOOD + "X-A: \x01\r\n"),
    ("obs-text", GOOD + "X-A: caf\xe9\r\n"),
]


def _connection(fast: bool = True):
    """A wampd WebSocket connection over an in-memory transport.  ``fast=False``: a real option
    (Autobahn's own connection cap, set too high to matter) that sends every request down Autobahn's path."""
    router = Router(clock=Clock(), hello_timeout=0)
    factory = WebSocketFactory(router, PingSweeper(router.clock, 0, 10))
    if not fast:
        # (Autobahn's setProtocolOptions resets allowNullOrigin unless given)
        factory.setProtocolOptions(maxConnections=10**9, allowNullOrigin=True)
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 27001))
    proto.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 27001)))
    return proto


@pytest.mark.parametrize("request_head", [r for _, r in REQUESTS], ids=[i for i, _ in REQUESTS])
def test_same_answer_as_autobahn(request_head):
    """Every request, good or bad, gets byte for byte the answer Autobahn's own handshake gives, and the same state."""
    data = (request_head + "\r\n").encode("latin-1")
    fast, slow = _connection(), _connection(fast=False)
    fast.dataReceived(data)
    slow.dataReceived(data)
    assert fast.transport.value() == slow.transport.value()
    assert fast.state == slow.state
    assert (fast.wampd_session is None) == (slow.wampd_session is None)


@pytest.mark.parametrize(
    "name, taken",
    [("good", True), ("origin", True), ("origin-null", True), ("header-case", True), ("connection-list", True),
     ("host-no-port", True), ("msgpack-second", True), ("query", False), ("extensions", False),
     ("two-hosts", False), ("bare-lf", False), ("origin-bad-port", False), ("post", False), ("obs-text", True)],
)  # fmt: skip
def test_what_the_fast_path_takes(name, taken):
    """The fast path takes plain well-formed upgrades and hands everything unusual to Autobahn."""
    head = dict(REQUESTS)[name].encode("latin-1")[:-2]  # up to, not including, the blank line
    assert (parse_upgrade(head) is not None) is taken


def test_accept_key_of_rfc_6455():
    """The Sec-WebSocket-Accept of RFC 6455 section 1.3's example key."""
    proto = _connection()
    proto.dataReceived((GOOD + "\r\n").encode())
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in proto.transport.value()


def test_bytes_after_the_request_are_read_as_frames():
    """A HELLO sent right behind the upgrade request, in the same segment, is answered with WELCOME."""
    hello = b'[1,"realm1",{"roles":{"caller":{}}}]'
    proto = _connection()
    proto.dataReceived((GOOD + "\r\n").encode() + bytes((0x81, 0x80 | len(hello))) + b"\0\0\0\0" + hello)
    answer = proto.transport.value()
    assert b"101 Switching Protocols" in answer and b"[2," in answer.split(b"\r\n\r\n", 1)[1]


def test_an_open_connection_holds_only_what_differs():
    """Once open, the connection's dict holds no handshake leftovers and none of Autobahn's start-up defaults."""
    proto = _connection()
    proto.dataReceived((GOOD + "Origin: https://app.example.com\r\n\r\n").encode())
    assert proto.state == AutobahnProtocol.STATE_OPEN
    held = set(vars(proto))
    assert not held & HANDSHAKE_ONLY, held & HANDSHAKE_ONLY
    assert not held & (set(FRESH) - {"state", "websocket_protocol_in_use"}), held
    assert not held & set(proto._AUTOBAHN_CONFIG_ATTRS)
    assert len(held) <= 20, sorted(held)
    for name in proto._AUTOBAHN_CONFIG_ATTRS:  # still read as Autobahn would have copied them
        assert getattr(proto, name) == getattr(proto.factory, name), name


def test_autobahn_start_up_state_is_covered():
    """Every attribute Autobahn's own _connectionMade sets is a class default of wampd's connection, with the same value."""
    router = Router(clock=Clock())  # the HELLO timeout on: no Autobahn handshake timer
    proto = WebSocketFactory(router, PingSweeper(router.clock, 0, 10)).buildProtocol(None)
    proto.transport = StringTransport()
    before = set(vars(proto))
    AutobahnProtocol._connectionMade(proto)  # Autobahn's own, in place of wampd's
    set_here = set(vars(proto)) - before - set(proto._AUTOBAHN_CONFIG_ATTRS)
    assert set_here  # it did set something
    lazy = {"send_queue", "trafficStats", "utf8validator"}
    assert set_here - lazy <= set(FRESH), set_here - lazy - set(FRESH)
    for name in set_here - lazy:
        assert getattr(proto, name) == FRESH[name], name


def test_options_set_later_apply_to_new_connections():
    """setProtocolOptions after start: new connections read the new value."""
    proto = _connection()
    proto.factory.setProtocolOptions(maxMessagePayloadSize=4096)
    newer = proto.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 27002))
    assert newer.maxMessagePayloadSize == 4096


class _Ask(Protocol):
    def connectionMade(self):
        self.data = b""
        self.transport.write(self.factory.request)

    def dataReceived(self, data):
        self.data += data
        if b"[2," in self.data:
            self.factory.answer.callback(self.data)
            self.transport.loseConnection()
        elif b"\r\n\r\n" in self.data and b" 101 " in self.data.split(b"\r\n", 1)[0] and not self.factory.sent:
            self.factory.sent = True
            hello = b'[1,"realm1",{"roles":{"caller":{}}}]'
            self.transport.write(bytes((0x81, 0x80 | len(hello))) + b"\0\0\0\0" + hello)

    def connectionLost(self, reason):
        if not self.factory.answer.called:
            self.factory.answer.callback(self.data)


@pytest_twisted.ensureDeferred
async def test_a_client_offering_no_subprotocol_joins_with_json(live_router):
    """No Sec-WebSocket-Protocol offered: 101 naming none (RFC 6455 4.2.2), then JSON: HELLO gets WELCOME."""
    factory = Factory.forProtocol(_Ask)
    factory.request = (_without("Sec-WebSocket-Protocol") + "\r\n").encode()
    factory.answer, factory.sent = Deferred(), False
    await TCP4ClientEndpoint(reactor, "127.0.0.1", port_of(live_router.ws_url)).connect(factory)
    data = await factory.answer.addTimeout(5, reactor)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"sec-websocket-protocol" not in head.lower()
    assert rest[:1] == b"\x81" and b"[2," in rest  # a text frame with WELCOME
