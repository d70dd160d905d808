"""
Operations (router/ops/): /metrics, /healthz, /readyz and the status page's
access rules, on a real RouterService over loopback, read by a real HTTP
client (twisted.web.client.Agent), with real autobahn-python clients making
the traffic that the metrics count.
"""

from __future__ import annotations

import os
import sys
from io import BytesIO

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, FileBodyProducer
from twisted.web.http_headers import Headers

from router.config import ConfigError, HttpConfig, MetricsConfig, StatusConfig, parse_config
from tests.conftest import make_service
from tests.test_http_push import _Collect, bounded
from tests.wamp_clients import Recorder, join, leave, named

SECRET = "status-s3cret"
LOCAL = "tcp:0:interface=127.0.0.1"


async def fetch(url: str, method: bytes = b"GET", headers: dict | None = None, body: bytes | None = None):
    """One HTTP request: (status, headers, body bytes)."""
    producer = FileBodyProducer(BytesIO(body)) if body is not None else None
    raw = Headers({k: [v] for k, v in (headers or {}).items()})
    response = await bounded(Agent(reactor).request(method, url.encode(), raw, producer))
    collected = _Collect()
    response.deliverBody(collected)
    return response.code, response.headers, await bounded(collected.done)


class Ops:
    """A started router (websocket + rawsocket) with metrics and the status page on a port of their own."""

    def __init__(self, listeners=(), **overrides):
        overrides.setdefault("metrics", MetricsConfig(True, LOCAL))
        overrides.setdefault("status", StatusConfig(True, SECRET))
        self.recorder = Recorder()
        self.service = make_service(self.recorder, listener_objects=[(None, obj) for obj in listeners], **overrides)
        self.clients = []

    async def __aenter__(self):
        await self.service.startService()
        kinds = {}
        for info in self.service.endpoints:
            kinds.setdefault(info.transport, []).append(info)
        self.ws_url = kinds["websocket"][0].url
        self.rs_port = kinds["rawsocket"][0].port
        self.http = [info.url for info in kinds.get("http", [])]
        self.url = self.http[0]
        return self

    async def join(self, transport="websocket", serializer="json", realm="realm1", authid=None):
        address = self.ws_url if transport == "websocket" else self.rs_port
        kind = named(authid) if authid else None
        client = await join(address, transport, serializer, realm, **({"session_class": kind} if kind else {}))
        self.clients.append(client)
        return client

    async def metrics(self, url=None) -> dict:
        """``{(name, sorted labels): value}`` from GET /metrics."""
        status, headers, body = await fetch((url or self.url) + "/metrics")
        assert status == 200, body
        assert headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain; version=0.0.4")
        values = {}
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return values

    async def __aexit__(self, *exc):
        for client in self.clients:
            if client.is_attached():
                await bounded(leave(client))
        if self.service.running:
            await self.service.stopService()


def value(values: dict, name: str, **labels) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest_twisted.ensureDeferred
async def test_metrics_count_messages_sessions_calls_and_retained_topics():
    """Messages and bytes by transport/serializer/type, sessions, call latency, subscriptions and retained topics are what the clients did."""
    async with Ops() as ops:
        callee = await ops.join("rawsocket", "msgpack")
        await callee.register(lambda x: x * 2, "com.example.double")
        caller = await ops.join("websocket", "json")
        for n in range(3):
            assert await caller.call("com.example.double", n) == 2 * n
        await caller.subscribe(lambda *a: None, "com.example.news")
        await caller.publish("com.example.state", 1, options=PublishOptions(retain=True, acknowledge=True))
        values = await ops.metrics()
    m = lambda name, **labels: value(values, name, **labels)  # noqa: E731
    ws, rs = dict(transport="websocket", serializer="json"), dict(transport="rawsocket", serializer="msgpack")
    assert m("wampd_messages_received_total", type="CALL", **ws) == 3
    assert m("wampd_messages_sent_total", type="RESULT", **ws) == 3
    assert m("wampd_messages_sent_total", type="INVOCATION", **rs) == 3
    assert m("wampd_messages_received_total", type="YIELD", **rs) == 3
    assert m("wampd_messages_received_total", type="HELLO", **ws) == 1
    assert m("wampd_messages_sent_total", type="WELCOME", **rs) == 1
    assert m("wampd_messages_received_total", type="PUBLISH", **ws) == 1
    assert m("wampd_message_bytes_received_total", type="CALL", **ws) > 3 * len('[48,1,{},"com.example.double",[0]]') - 3
    assert m("wampd_message_bytes_sent_total", type="INVOCATION", **rs) > 0
    assert m("wampd_sessions", realm="realm1", **ws) == 1
    assert m("wampd_sessions", realm="realm1", **rs) == 1
    assert m("wampd_connections", **ws) == 1
    assert m("wampd_call_latency_seconds_count", realm="realm1") == 3
    assert m("wampd_call_latency_seconds_bucket", realm="realm1", le="+Inf") == 3
    assert m("wampd_registrations", realm="realm1") == 1
    assert m("wampd_subscriptions", realm="realm1") == 1
    assert m("wampd_retained_topics", realm="realm1") == 1
    assert m("wampd_retained_topics", realm="realm2") == 0
    assert m("process_resident_memory_bytes") > 0


class Failing:
    name = "tests.failing"

    def on_session_joined(self, event):
        raise RuntimeError("a broken listener")


@pytest_twisted.ensureDeferred
async def test_metrics_count_rejections_and_listener_time_and_failures():
    """A refused join counts under its reason; a listener that raises counts as a failure and its time is observed."""
    async with Ops(listeners=[Failing()]) as ops:
        with pytest.raises(RuntimeError):
            await ops.join(realm="no.such.realm")
        await ops.join()
        await ops.recorder.wait_for(lambda e: e.name == "session_joined")
        values = await ops.metrics()
    assert value(values, "wampd_rejections_total", reason="realm") == 1
    assert value(values, "wampd_listener_handler_failures_total", listener="tests.failing", event="session_joined") == 1
    assert value(values, "wampd_listener_handler_seconds_count", listener="tests.failing", event="session_joined") == 1
    assert value(values, "wampd_listener_handler_seconds_count", listener="tests.recorder", event="client_rejected") == 1
    assert value(values, "wampd_listener_handler_failures_total", listener="tests.recorder", event="client_rejected") == 0


@pytest_twisted.ensureDeferred
async def test_healthz_and_readyz_answer_and_readiness_checks_fail_closed():
    """/healthz is 200; /readyz is 200 while every endpoint listens and 503 naming a check that is false, raises or hangs."""
    async with Ops() as ops:
        status, _, body = await fetch(ops.url + "/healthz")
        assert (status, body) == (200, b"ok\n")
        status, _, body = await fetch(ops.url + "/readyz")
        assert status == 200 and body.startswith(b"ready\n"), body
        health = ops.service.ops.health
        health.check_timeout = 0.2
        health.add_check("cluster", lambda: True)
        status, _, body = await fetch(ops.url + "/readyz")
        assert status == 200 and b"cluster: ok" in body
        health.add_check("redis", lambda: Deferred())  # never answers
        health.add_check("broken", lambda: 1 / 0)
        health.add_check("down", lambda: False)
        status, _, body = await fetch(ops.url + "/readyz")
        assert status == 503, body
        assert body.startswith(b"not ready\n")
        for line in (b"redis: failed", b"broken: failed (division by zero)", b"down: not ready (False)", b"cluster: ok"):
            assert line in body, body
        status, _, _ = await fetch(ops.url + "/readyz", method=b"POST")
        assert status == 405
        stopping = ops.service.stopService()
        ready, lines = await bounded(health.ready())
        assert (ready, lines) == (False, ["stopping"])
        await stopping


@pytest_twisted.ensureDeferred
async def test_readyz_is_503_when_an_endpoint_stopped_listening():
    """An endpoint that is no longer listening makes /readyz 503, naming it."""
    async with Ops() as ops:
        websocket_port = ops.service.ports[0]
        await websocket_port.stopListening()
        status, _, body = await fetch(ops.url + "/readyz")
    assert status == 503
    assert f"not listening: {ops.ws_url} (websocket)".encode() in body, body


@pytest_twisted.ensureDeferred
async def test_status_page_refuses_without_the_secret():
    """Every status path is 401 without the secret, with a wrong token, bearer or forged cookie; the token sets a cookie that opens it."""
    async with Ops() as ops:
        base = ops.url
        for path in ("/status", "/status/events", "/status/snapshot", "/status/app.js", "/status/nope"):
            status, headers, body = await fetch(base + path)
            assert status == 401, path
            assert b"Bearer" in headers.getRawHeaders(b"www-authenticate")[0]
            assert b"realm1" not in body
        status, _, _ = await fetch(base + "/status?token=wrong")
        assert status == 401
        status, _, _ = await fetch(base + "/status/snapshot", headers={b"authorization": b"Bearer " + SECRET.encode() + b"x"})
        assert status == 401
        status, _, _ = await fetch(base + "/status", headers={b"cookie": b"wampd_status=" + b"0" * 64})
        assert status == 401
        status, headers, _ = await fetch(base + "/status?token=" + SECRET)
        assert status == 303 and headers.getRawHeaders(b"location") == [b"/status"]
        cookie = headers.getRawHeaders(b"set-cookie")[0]
        assert b"HttpOnly" in cookie and b"SameSite=strict" in cookie and SECRET.encode() not in cookie
        status, headers, body = await fetch(base + "/status", headers={b"cookie": cookie.split(b";")[0]})
        assert status == 200 and b"<title>wampd status</title>" in body
        assert b"script-src 'self'" in headers.getRawHeaders(b"content-security-policy")[0]
        assert headers.getRawHeaders(b"cache-control") == [b"no-store"]


@pytest_twisted.ensureDeferred
async def test_status_snapshot_lists_sessions_subscriptions_and_registrations():
    """The snapshot (what the page shows) names each session's authid, role, transport and address, and counts subscribers."""
    async with Ops() as ops:
        alice = await ops.join("rawsocket", "cbor", authid="alice")
        await alice.subscribe(lambda *a: None, "com.example.room")
        await alice.register(lambda: 1, "com.example.ping")
        status, _, body = await fetch(ops.url + "/status/snapshot", headers={b"authorization": b"Bearer " + SECRET.encode()})
    import json

    state = json.loads(body)
    assert status == 200
    (session,) = state["sessions"]
    assert (session["authid"], session["authrole"], session["transport"], session["serializer"]) == (
        "alice", "anonymous", "rawsocket", "cbor"
    )
    assert session["address"].startswith("tcp4:127.0.0.1:") and session["id"] == alice.sid
    assert state["subscriptions"] == [{"realm": "realm1", "uri": "com.example.room", "match": "exact", "subscribers": 1}]
    assert [r["uri"] for r in state["registrations"]] == ["com.example.ping"]
    assert {e["event"] for e in state["events"]} >= {"server_launched", "client_connected", "session_joined"}


@pytest_twisted.ensureDeferred
async def test_ops_share_the_push_port_without_opening_it():
    """Without an endpoint of their own, /metrics, /healthz and /status are on the push port; /publish there still needs its secret."""
    push = HttpConfig(LOCAL, "push-secret")
    async with Ops(http=push, metrics=MetricsConfig(True), status=StatusConfig(True, SECRET)) as ops:
        (url,) = ops.http
        values = await ops.metrics(url)
        assert ("wampd_connections_accepted", ()) in values
        status, _, body = await fetch(url + "/healthz")
        assert (status, body) == (200, b"ok\n")
        status, _, _ = await fetch(url + "/status")
        assert status == 401
        status, _, _ = await fetch(url + "/status?token=" + SECRET)
        assert status == 303
        status, _, body = await fetch(url + "/publish", b"POST", body=b'{"topic": "a.b"}')
        assert status == 401, body
        status, _, _ = await fetch(url + "/metricsx")
        assert status == 401  # not an ops path: a push request, refused on its headers


def test_config_tables_and_their_errors():
    """[metrics] and [status] parse, and a wrong one names its key and reason."""
    config = parse_config({"metrics": {"enabled": True, "endpoint": "tcp:9100"}, "status": {"enabled": True, "secret": "x"}})
    assert config.metrics == MetricsConfig(True, "tcp:9100") and config.status.secret == "x"
    assert "x" not in repr(config.status)
    assert parse_config({}).metrics is None
    for data, key, reason in (
        ({"metrics": {"enabled": True}}, "metrics.endpoint", "needs an endpoint of its own"),
        ({"metrics": {"enabled": "yes"}}, "metrics.enabled", "must be a boolean"),
        ({"metrics": {"enabled": True, "endpoint": "nope:1"}}, "metrics.endpoint", "not a valid Twisted server endpoint"),
        ({"metrics": {"port": 1}}, "metrics.port", "unknown key"),
        ({"metrics": []}, "metrics", "must be a table"),
        ({"status": {"enabled": True, "endpoint": "tcp:1"}}, "status.secret", "is required"),
        ({"status": {"enabled": True, "secret": "x"}}, "status.endpoint", "needs an endpoint of its own"),
        ({"status": {"secret": ""}}, "status.secret", "must not be empty"),
        ({"status": {"recent_events": 0}}, "status.recent_events", "from 1 to 10000"),
        ({"status": {"interval": 0.01}}, "status.interval", "at least 0.1"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_config(data)
        assert info.value.key == key, (data, str(info.value))
        assert reason in info.value.reason, (data, str(info.value))


def test_metrics_without_prometheus_client_name_the_extra(monkeypatch):
    """Enabling metrics where prometheus_client cannot be imported is a config error naming wampd[metrics]."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ConfigError) as info:
        MetricsConfig(True, "tcp:9100")
    assert info.value.key == "enabled" and "pip install 'wampd[metrics]'" in info.value.reason
    assert MetricsConfig(False).enabled is False  # off: not needed


def test_command_line_options():
    """--metrics, --status and --status-secret set the tables; 'http' means the push port; a lone secret is an error."""
    from twisted.python import usage

    from router.tap import Options

    options = Options()
    options.parseOptions(["--metrics", "tcp:9100", "--status", "http", "--status-secret", "s", "--http", "tcp:8081", "--http-secret", "p"])
    config = options["router_config"]
    assert config.metrics == MetricsConfig(True, "tcp:9100")
    assert (config.status.enabled, config.status.endpoint, config.status.secret) == (True, None, "s")
    for argv, text in (
        (["--status-secret", "s"], "--status-secret: goes with --status"),
        (["--status", "tcp:9101"], "--status-secret: is required"),
        (["--metrics", "http"], "--metrics: needs an endpoint of its own"),
    ):
        with pytest.raises(usage.UsageError, match=text):
            Options().parseOptions(argv)


def test_twistd_without_prometheus_client_refuses_metrics_and_starts_nothing(twistd_router, tmp_path):
    """Under twistd, --metrics without prometheus_client exits 1 naming wampd[metrics], and nothing listens."""
    from tests.conftest import ROOT

    blocked = tmp_path / "prometheus_client"
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('not installed here')\n")
    router = twistd_router(
        "--listen", "ws:tcp:0:interface=127.0.0.1", "--metrics", "tcp:0:interface=127.0.0.1",
        env_extra={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"},
    )
    router.proc.wait(timeout=30)
    assert router.stop() == 1
    log = "\n".join(router.lines)
    assert "--metrics: needs the prometheus_client package" in log and "pip install 'wampd[metrics]'" in log, log
    assert "listening on" not in log


def test_twistd_serves_metrics_and_readiness(twistd_router):
    """A real twistd router started with --metrics answers GET /metrics, /healthz and /readyz on that port."""
    from urllib.request import urlopen

    router = twistd_router("--listen", "ws:tcp:0:interface=127.0.0.1", "--metrics", "tcp:0:interface=127.0.0.1")
    url = router.wait_for(r"(http://127\.0\.0\.1:\d+) \(http\)").group(1)
    with urlopen(url + "/readyz", timeout=10) as response:
        assert (response.status, response.read()) == (200, b"ready\nlistening\n")
    with urlopen(url + "/healthz", timeout=10) as response:
        assert response.read() == b"ok\n"
    with urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    assert 'wampd_sessions' in text and "wampd_connections_accepted 0.0" in text
    assert router.stop() == 0, "\n".join(router.lines)


class _Stream(Protocol):
    """An SSE response body: fires ``first`` with the text once a whole snapshot event has arrived."""

    def __init__(self):
        self.text = ""
        self.first = Deferred()

    def dataReceived(self, data):
        self.text += data.decode()
        if not self.first.called and "event: snapshot\ndata: " in self.text and self.text.endswith("\n\n"):
            self.first.callback(self.text)

    def connectionLost(self, reason):
        if not self.first.called:
            self.first.errback(reason)


@pytest_twisted.ensureDeferred
async def test_status_event_streams_send_snapshots_and_are_bounded():
    """/status/events streams a JSON snapshot at once; at most MAX_VIEWERS streams are open, one more gets 503."""
    import json

    from router.ops.status import MAX_VIEWERS

    async with Ops() as ops:
        bearer = Headers({b"authorization": [b"Bearer " + SECRET.encode()]})
        streams = []
        try:
            for _ in range(MAX_VIEWERS):
                response = await bounded(Agent(reactor).request(b"GET", (ops.url + "/status/events").encode(), bearer))
                assert response.code == 200
                assert response.headers.getRawHeaders(b"content-type") == [b"text/event-stream"]
                stream = _Stream()
                response.deliverBody(stream)
                streams.append(stream)
                text = await bounded(stream.first)
            assert text.startswith("retry: 2000\n\nevent: snapshot\ndata: ")
            state = json.loads(text.split("data: ", 1)[1])
            assert [realm["name"] for realm in state["realms"]] == ["realm1", "realm2"]
            status, _, body = await fetch(ops.url + "/status/events", headers={b"authorization": b"Bearer " + SECRET.encode()})
            assert status == 503 and str(MAX_VIEWERS).encode() in body
        finally:
            for stream in streams:
                stream.transport.stopProducing()
