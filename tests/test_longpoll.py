"""
The HTTP long-poll transport (router/wire/longpoll.py) on a real
RouterService over loopback: a real HTTP client (twisted.web.client.Agent)
speaking the protocol as autobahn-js does, with real autobahn-python
WebSocket clients on the other side.
"""

from __future__ import annotations

import json
import os
import shutil
from io import BytesIO
from pathlib import Path

import msgpack
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.utils import getProcessOutputAndValue
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool
from twisted.web.http_headers import Headers

from router.config import ListenConfig, LongPollConfig, WebConfig
from tests.conftest import VirtualTime, make_service
from tests.test_http_push import _Collect, bounded
from tests.wamp_clients import Recorder, join, leave

HELLO = [1, "realm1", {"roles": {"subscriber": {}, "publisher": {}, "caller": {}}}]


class LongPollClient:
    """The client side of the protocol, one HTTP request at a time (receives may overlap sends)."""

    def __init__(self, base: str, protocol: str = "wamp.2.json") -> None:
        self.base = base
        self.protocol = protocol
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent(reactor, pool=self.pool)

    async def post(self, path: str, body: bytes | None = None, headers=None):
        producer = FileBodyProducer(BytesIO(body)) if body is not None else None
        response = await bounded(
            self.agent.request(b"POST", (self.base + path).encode(), Headers(headers or {}), producer)
        )
        collected = _Collect()
        response.deliverBody(collected)
        return response.code, await bounded(collected.done), response.headers

    async def open(self):
        code, body, _ = await self.post("/open", json.dumps({"protocols": [self.protocol]}).encode())
        assert code == 200, body
        info = json.loads(body)
        self.tid = info["transport"]
        return info

    def encode(self, msg) -> bytes:
        if self.protocol.startswith("wamp.2.msgpack"):
            return msgpack.packb(msg)
        return json.dumps(msg).encode()

    def decode(self, data: bytes):
        if self.protocol == "wamp.2.json.batched":
            return [json.loads(part) for part in data.split(b"\x1e") if part]
        if self.protocol.startswith("wamp.2.msgpack"):
            return msgpack.unpackb(data)
        return json.loads(data)

    async def send(self, msg) -> int:
        code, _, _ = await self.post(f"/{self.tid}/send", self.encode(msg))
        return code

    async def receive(self):
        """(status, decoded message or None)."""
        code, body, _ = await self.post(f"/{self.tid}/receive")
        return code, (self.decode(body) if code == 200 and body else None)


def _longpoll_service(recorder=None, **overrides):
    overrides.setdefault(
        "listen",
        (
            ListenConfig("tcp:0:interface=127.0.0.1", "websocket"),
            ListenConfig("tcp:0:interface=127.0.0.1", "longpoll"),
        ),
    )
    return make_service(recorder, **overrides)


def _urls(service):
    by_kind = {e.transport: e for e in service.endpoints}
    return by_kind["websocket"].url, by_kind["longpoll"].url


@pytest_twisted.ensureDeferred
async def test_longpoll_session_joins_publishes_and_receives_events():
    """A long-poll client opens, joins with HELLO, subscribes and gets an EVENT a WebSocket client publishes, then leaves with GOODBYE."""
    recorder = Recorder()
    service = _longpoll_service(recorder)
    await service.startService()
    try:
        ws_url, lp_url = _urls(service)
        assert lp_url.endswith("/lp")
        client = LongPollClient(lp_url)
        info = await client.open()
        assert info["protocol"] == "wamp.2.json" and len(info["transport"]) >= 20
        assert await client.send(HELLO) == 204
        code, welcome = await client.receive()
        assert code == 200 and welcome[0] == 2
        await client.send([32, 1, {}, "com.lp.news"])
        code, subscribed = await client.receive()
        assert subscribed[0] == 33 and subscribed[1] == 1
        poll = Deferred.fromCoroutine(client.receive())  # held until the event comes
        publisher = await join(ws_url)
        publisher.publish("com.lp.news", "hello", n=1)
        code, event = await bounded(poll)
        assert code == 200 and event[0] == 36 and event[4:] == [["hello"], {"n": 1}]
        await client.send([6, {}, "wamp.close.close_realm"])
        code, goodbye = await client.receive()
        assert goodbye[0] == 6 and goodbye[2] == "wamp.close.goodbye_and_out"
        code, _, _ = await client.post(f"/{client.tid}/close")
        assert code == 204
        code, _ = await client.receive()
        assert code == 404  # the transport is gone
        await leave(publisher)
        connected = [e for e in recorder.events if type(e).__name__ == "ClientConnected" and e.connection.transport == "longpoll"]
        assert len(connected) == 1 and connected[0].connection.serializer == "json"
        assert connected[0].connection.path == "/lp/open" and "host" in connected[0].connection.headers
        gone = await recorder.wait_for(
            lambda e: type(e).__name__ == "ClientDisconnected" and e.connection.transport == "longpoll"
        )
        assert gone.was_clean
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_longpoll_msgpack_and_json_batched():
    """msgpack and wamp.2.json.batched transports join, and a batched receive returns every message waiting at once."""
    service = _longpoll_service()
    await service.startService()
    try:
        _, lp_url = _urls(service)
        packed = LongPollClient(lp_url, "wamp.2.msgpack")
        assert (await packed.open())["protocol"] == "wamp.2.msgpack"
        await packed.send(HELLO)
        code, welcome = await packed.receive()
        assert welcome[0] == 2
        batched = LongPollClient(lp_url, "wamp.2.json.batched")
        await batched.open()
        # HELLO and two SUBSCRIBEs in one send; all three answers in one receive
        body = b"".join(json.dumps(m).encode() + b"\x1e" for m in (HELLO, [32, 1, {}, "a.b"], [32, 2, {}, "a.c"]))
        code, _, _ = await batched.post(f"/{batched.tid}/send", body)
        assert code == 204
        code, messages = await batched.receive()
        assert [m[0] for m in messages] == [2, 33, 33]
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_longpoll_refuses_bad_requests():
    """No common protocol is 400, an unknown transport 404, GET 405, and a send over max_message_size 413 with the session aborted."""
    recorder = Recorder()
    service = _longpoll_service(recorder, max_message_size=2048)
    await service.startService()
    try:
        _, lp_url = _urls(service)
        client = LongPollClient(lp_url)
        code, body, _ = await client.post("/open", json.dumps({"protocols": ["wamp.2.ubjson"]}).encode())
        assert code == 400 and b"no protocol in common" in body
        code, body, _ = await client.post("/nosuchid/receive")
        assert code == 404
        response = await bounded(client.agent.request(b"GET", (lp_url + "/open").encode()))
        assert response.code == 405
        await client.open()
        await client.send(HELLO)
        await client.receive()
        code, body, _ = await client.post(f"/{client.tid}/send", json.dumps([16, 1, {}, "x.y", ["a" * 4000]]).encode())
        assert code == 413
        code, abort = await client.receive()
        assert abort[0] == 3 and abort[2] == "wamp.error.protocol_violation"
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_longpoll_timeouts_on_the_router_clock():
    """A held receive is answered 204 after request_timeout; a client that stops polling is dropped after session_timeout."""
    clock = VirtualTime()
    recorder = Recorder()
    web = WebConfig(longpoll=LongPollConfig(request_timeout=10, session_timeout=30))
    service = _longpoll_service(recorder, reactor=clock, web=web)
    await service.startService()
    try:
        _, lp_url = _urls(service)
        client = LongPollClient(lp_url)
        await client.open()
        await client.send(HELLO)
        await client.receive()
        poll = Deferred.fromCoroutine(client.receive())
        while not service.router.connections[0].peer._request:  # the poll reached the router
            await bounded(_tick())
        clock.advance(10)
        code, msg = await bounded(poll)
        assert (code, msg) == (204, None)
        clock.advance(29)
        assert service.router.connections  # not yet
        clock.advance(2)
        gone = [e for e in recorder.events if type(e).__name__ == "ClientDisconnected"]
        assert len(gone) == 1 and "stopped polling" in gone[0].reason
        left = [e for e in recorder.events if type(e).__name__ == "SessionLeft"]
        assert left and left[0].reason == "wamp.close.transport_lost"
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_longpoll_queue_is_bounded_by_max_outbound_buffer():
    """Events waiting for a client that does not poll are bounded: past max_outbound_buffer the session is dropped as a slow consumer."""
    recorder = Recorder()
    service = _longpoll_service(recorder, max_outbound_buffer=4096)
    await service.startService()
    try:
        ws_url, lp_url = _urls(service)
        client = LongPollClient(lp_url)
        await client.open()
        await client.send(HELLO)
        await client.receive()
        await client.send([32, 1, {}, "com.lp.flood"])
        await client.receive()
        publisher = await join(ws_url)
        for _ in range(20):
            publisher.publish("com.lp.flood", "x" * 500)
        await publisher.call("wamp.session.count")  # a round trip: every publication was routed
        left = await recorder.wait_for(
            lambda e: type(e).__name__ == "SessionLeft" and e.session.connection.transport == "longpoll"
        )
        assert left.reason == "wampd.close.slow_consumer"
        await leave(publisher)
    finally:
        await service.stopService()


def _tick():
    d = Deferred()
    reactor.callLater(0.01, d.callback, None)
    return d


JS_DIR = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not on PATH (needed for the autobahn-js interop tests)")
@pytest.mark.skipif(
    not (JS_DIR / "node_modules" / "autobahn").is_dir() and not os.environ.get("CI"),
    reason="tests/js/node_modules is missing (run `npm ci` in tests/js)",
)
@pytest_twisted.ensureDeferred
async def test_autobahn_js_longpoll_transport():
    """autobahn-js's own long-poll transport (under node, XMLHttpRequest from tests/js/xhr.mjs) joins, gets its event, registers, calls a Python callee and closes cleanly."""
    recorder = Recorder()
    service = _longpoll_service(recorder)
    await service.startService()
    try:
        ws_url, lp_url = _urls(service)
        callee = await join(ws_url)
        await callee.register(lambda text: f"echo {text}", "com.lp.py.echo")
        out, err, code = await bounded(
            getProcessOutputAndValue(NODE, [str(JS_DIR / "longpoll.mjs"), "--url", lp_url], env=dict(os.environ), path=str(JS_DIR)),
            timeout=30,
        )
        lines = [json.loads(line) for line in out.decode().splitlines()]
        assert code == 0, (lines, err.decode()[-2000:])
        by_event = {line["event"]: line for line in lines}
        assert by_event["joined"]["transport"] == "longpoll"
        assert by_event["event"]["args"] == ["hi"] and by_event["event"]["kwargs"] == {"n": 1}
        assert by_event["result"]["value"] == 5
        assert by_event["remote"]["value"] == "echo ping"
        assert by_event["closed"]["reason"] == "closed"
        gone = await recorder.wait_for(
            lambda e: type(e).__name__ == "ClientDisconnected" and e.connection.transport == "longpoll"
        )
        assert gone.was_clean
        await leave(callee)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_longpoll_counts_as_a_connection():
    """A long-poll transport counts toward max_connections: one over gets 503 at open, with client_rejected (reason limit); after /close there is room again."""
    recorder = Recorder()
    service = _longpoll_service(recorder, max_connections=1)
    await service.startService()
    try:
        _, lp_url = _urls(service)
        first = LongPollClient(lp_url)
        await first.open()
        second = LongPollClient(lp_url)
        code, body, _ = await second.post("/open", json.dumps({"protocols": ["wamp.2.json"]}).encode())
        assert code == 503
        rejected = await recorder.wait_for(lambda e: type(e).__name__ == "ClientRejected")
        assert rejected.reason == "limit" and rejected.connection.transport == "longpoll"
        code, _, _ = await first.post(f"/{first.tid}/close")
        assert code == 204
        await second.open()
        assert await second.send(HELLO) == 204
        code, welcome = await second.receive()
        assert welcome[0] == 2
    finally:
        await service.stopService()
