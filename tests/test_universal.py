"""
The universal listener (router/wire/universal.py): one port serving
WebSocket, RawSocket, HTTP long-poll and the HTTP push endpoint, each
reached by a real client of its kind; and the sniff's bounds.
"""

from __future__ import annotations

import json
from io import BytesIO

import pytest
import pytest_twisted
from twisted.internet import reactor, ssl
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.web.client import FileBodyProducer
from twisted.web.http_headers import Headers

from router.config import ConfigError, HttpConfig, ListenConfig, RouterConfig, UniversalConfig, WebConfig, parse_config
from tests.auth_helpers import open_session
from tests.conftest import ROOT, VirtualTime, make_service
from tests.test_http_push import _Collect, bounded
from tests.test_longpoll import HELLO, LongPollClient
from tests.test_tls import self_signed
from tests.wamp_clients import Recorder, join, leave

SECRET = "s3cret"


def _universal(recorder=None, **overrides):
    overrides.setdefault("listen", (ListenConfig("tcp:0:interface=127.0.0.1", "universal"),))
    return make_service(recorder, **overrides)


class _Raw(Protocol):
    """Writes ``payload`` (optionally in pieces), collects what comes back until the router closes."""

    def __init__(self, pieces):
        self.pieces = pieces
        self.data = b""
        self.closed = Deferred()

    def connectionMade(self):
        for piece in self.pieces:
            self.transport.write(piece)

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.closed.callback(self.data)


async def _raw(port, *pieces):
    proto = _Raw(pieces)
    await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(Factory.forProtocol(lambda: proto))
    return proto


@pytest_twisted.ensureDeferred
async def test_one_port_serves_websocket_rawsocket_longpoll_and_push():
    """WebSocket, RawSocket (json and msgpack), long-poll and HTTP push clients all reach the same router through one universal port."""
    recorder = Recorder()
    http = HttpConfig(endpoint="tcp:0:interface=127.0.0.1", secret=SECRET)
    service = _universal(recorder, http=http)
    await service.startService()
    try:
        (info,) = [e for e in service.endpoints if e.transport == "universal"]
        assert info.url == f"ws://127.0.0.1:{info.port}/ws"
        ws = await join(info.url)
        rs = await join(info.port, transport="rawsocket")
        rs_msgpack = await join(info.port, transport="rawsocket", serializer="msgpack")
        got = []
        await ws.subscribe(lambda *a, **kw: got.append(a), "com.uni.news")
        rs.publish("com.uni.news", "from rawsocket")
        rs_msgpack.publish("com.uni.news", "from msgpack")
        lp = LongPollClient(f"http://127.0.0.1:{info.port}/lp")
        await lp.open()
        await lp.send(HELLO)
        code, welcome = await lp.receive()
        assert code == 200 and welcome[0] == 2
        await lp.send([16, 1, {}, "com.uni.news", ["from long-poll"]])
        code, body, _ = await _push(lp, info.port)
        assert code == 200, body
        await ws.call("wamp.session.count")  # a round trip after every publication
        for _ in range(50):
            if len(got) == 4:
                break
            await bounded(_later())
        assert sorted(a[0] for a in got) == ["from long-poll", "from msgpack", "from push", "from rawsocket"]
        transports = sorted(
            e.connection.transport for e in recorder.events if type(e).__name__ == "ClientConnected"
        )
        assert transports == ["longpoll", "rawsocket", "rawsocket", "websocket"]
        for client in (ws, rs, rs_msgpack):
            await leave(client)
    finally:
        await service.stopService()


async def _push(lp, port):
    """POST /publish to the universal port, as the push endpoint's clients do."""
    body = json.dumps({"realm": "realm1", "topic": "com.uni.news", "args": ["from push"]}).encode()
    headers = Headers({b"authorization": [b"Bearer " + SECRET.encode()]})
    response = await bounded(
        lp.agent.request(b"POST", f"http://127.0.0.1:{port}/publish".encode(), headers, FileBodyProducer(BytesIO(body)))
    )
    collected = _Collect()
    response.deliverBody(collected)
    return response.code, await bounded(collected.done), response.headers


def _later(seconds=0.02):
    d = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


@pytest_twisted.ensureDeferred
async def test_other_http_paths_are_answered_as_a_websocket_listener_does():
    """A plain GET of an unknown path gets 404 and one of the WebSocket path 426, as on a websocket listener; without [http] a POST to /publish reaches the WebSocket side too (405)."""
    service = _universal()
    await service.startService()
    try:
        port = service.endpoints[0].port
        proto = await _raw(port, b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await bounded(proto.closed)).startswith(b"HTTP/1.1 404")
        proto = await _raw(port, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await bounded(proto.closed)).startswith(b"HTTP/1.1 426")
        proto = await _raw(port, b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert (await bounded(proto.closed)).startswith(b"HTTP/1.1 405")  # the WebSocket side: GET only
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_garbage_an_overlong_line_and_silence_are_closed():
    """Garbage, a request line over max_request_line and a client that sends nothing within sniff_timeout are closed without an answer and without any lifecycle event."""
    clock = VirtualTime()
    recorder = Recorder()
    web = WebConfig(universal=UniversalConfig(sniff_timeout=5, max_request_line=100))
    service = _universal(recorder, reactor=clock, web=web)
    await service.startService()
    try:
        port = service.endpoints[0].port
        garbage = await _raw(port, b"\x16\x03\x01\x02\x00")  # a TLS ClientHello on a plain port
        assert await bounded(garbage.closed) == b""
        long_line = await _raw(port, b"GET /" + b"a" * 200)
        assert await bounded(long_line.closed) == b""
        in_pieces = await _raw(port, b"GE", b"T /ws HTTP/1.1\r\nHost: x\r\n\r\n")  # split packets still sniff
        assert (await bounded(in_pieces.closed)).startswith(b"HTTP/1.1 426")
        silent = await _raw(port)
        await bounded(_later(0.1))
        assert not silent.closed.called
        clock.advance(5)
        assert await bounded(silent.closed) == b""
        assert [type(e).__name__ for e in recorder.events if type(e).__name__ == "ClientConnected"] == []
    finally:
        await service.stopService()


def test_config_keys_are_checked():
    """The [universal] and [longpoll] keys are read from TOML and a bad value names its key."""
    config = parse_config(
        {
            "listen": [{"endpoint": "tcp:0", "transport": "universal", "path": "/wamp"}],
            "universal": {"sniff_timeout": 2, "max_request_line": 4096},
            "longpoll": {"path": "/poll/", "request_timeout": 5, "session_timeout": 20},
        }
    )
    assert isinstance(config, RouterConfig)
    assert config.listen[0].transport == "universal" and config.listen[0].path == "/wamp"
    assert config.web.universal.sniff_timeout == 2.0 and config.web.longpoll.path == "/poll"
    for data, message in (
        ({"universal": {"sniff_timeout": 0}}, "universal.sniff_timeout: must be greater than 0, got 0"),
        ({"universal": {"max_request_line": 10}}, "universal.max_request_line: must be 64 or more, got 10"),
        ({"universal": {"sniff": 1}}, "universal.sniff: unknown key; expected one of sniff_timeout, max_request_line"),
        ({"longpoll": {"session_timeout": 5}}, "longpoll.session_timeout: must be longer than request_timeout (10), got 5"),
        ({"longpoll": {"path": "lp"}}, "longpoll.path: must start with '/', name a path and contain no whitespace, '?' or '#', got 'lp'"),
    ):
        try:
            parse_config(data)
        except ConfigError as exc:
            assert str(exc) == message
        else:
            raise AssertionError(f"{data} was accepted")


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_universal_over_tls(tmp_path, transport):
    """On an ssl: universal endpoint the sniff reads the decrypted bytes and hands over inside TLS: WebSocket and RawSocket clients join and call."""
    key_path, cert_path, cert_pem = self_signed(tmp_path)
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cert_path}"
    service = _universal(listen=(ListenConfig(endpoint, "universal"),))
    await service.startService()
    try:
        (info,) = service.endpoints
        assert info.url.startswith("wss://127.0.0.1:")
        trust = ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(cert_pem))
        client = await open_session(info.url if transport == "websocket" else info.port, transport, tls=trust)
        details = await bounded(client.joined)
        assert details.transport.is_secure is True
        await bounded(client.register(lambda a, b: a + b, "com.add"))
        assert await bounded(client.call("com.add", 2, 3)) == 5
        client.leave()
        await bounded(client.disconnected)
    finally:
        await service.stopService()


def test_listen_prefixes_on_the_command_line():
    """--listen takes universal: and longpoll: prefixes like ws: and rawsocket:."""
    from router.config import parse_listen

    assert parse_listen("universal:tcp:0").transport == "universal"
    assert parse_listen("longpoll:tcp:0").transport == "longpoll"
    with pytest.raises(ConfigError) as info:
        parse_listen("universal:")
    assert str(info.value) == "listen: no endpoint after 'universal:' in 'universal:'"


def test_twistd_serves_a_universal_port_and_refuses_bad_web_keys(twistd_router, tmp_path):
    """twistd with a universal listener in the config answers a RawSocket handshake and an HTTP long-poll open on one port, and stops with 0; a bad [longpoll] key exits 1 naming it."""
    import socket
    import subprocess
    import sys

    config = tmp_path / "wampd.toml"
    config.write_text(
        '[[listen]]\nendpoint = "tcp:0:interface=127.0.0.1"\ntransport = "universal"\n'
        '[[webhook]]\ntopic = "com.x"\nurl = "http://127.0.0.1:1/hook"\n'
    )
    router = twistd_router("--config", str(config))
    port = int(router.wait_for(r"listening on ws://127\.0\.0\.1:(\d+)/ws \(universal\)").group(1))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(bytes([0x7F, 0xF1, 0, 0]))
        assert sock.recv(4)[0] == 0x7F
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        body = b'{"protocols": ["wamp.2.json"]}'
        sock.sendall(b"POST /lp/open HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    assert router.stop() == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[longpoll]\nsession_timeout = 5\n")
    done = subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "wampd", "--config", str(bad)],
        capture_output=True, text=True, timeout=60, cwd=str(ROOT),
    )
    assert done.returncode == 1
    assert "longpoll.session_timeout: must be longer than request_timeout (10), got 5" in done.stdout + done.stderr
