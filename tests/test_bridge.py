"""
The HTTP bridge out of the router (router/bridge/): webhook subscribers and
HTTP callees, against a real local HTTP server (a twisted.web Site on port
0) with real autobahn-python clients publishing and calling.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, CallResult
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web import resource, server

from router.config import ConfigError, HttpCalleeConfig, WebConfig, WebhookConfig, parse_config
from tests.conftest import VirtualTime, in_namespaces, logged, make_service
from tests.test_http_push import bounded
from tests.wamp_clients import join, leave


class Backend(resource.Resource):
    """A scripted HTTP server: ``answers`` maps a path to a function(request, body) -> bytes or NOT_DONE_YET."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.answers = {}
        self.received = []  # (path, decoded JSON body)
        self.arrived = []  # Deferreds waiting for the next request

    def render_POST(self, request):
        body = json.loads(request.content.read())
        path = request.path.decode()
        self.received.append((path, body))
        answer = self.answers.get(path, lambda request, body: b'{"ok": true}')(request, body)
        waiting, self.arrived = self.arrived, []
        for d in waiting:
            d.callback((path, body))
        return answer

    def next_request(self) -> Deferred:
        d = Deferred()
        self.arrived.append(d)
        return bounded(d)


@pytest.fixture
def backend():
    site = server.Site(Backend())
    site.log = lambda request: None
    port = pytest_twisted.blockon(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site))
    site.resource.url = f"http://127.0.0.1:{port.getHost().port}"
    yield site.resource
    pytest_twisted.blockon(port.stopListening())


async def _router(webhooks=(), callees=(), **overrides):
    service = make_service(web=WebConfig(webhooks=tuple(webhooks), http_callees=tuple(callees)), **overrides)
    await service.startService()
    ws_url = {e.transport: e for e in service.endpoints}["websocket"].url
    return service, ws_url


def _status(code, payload):
    def answer(request, body):
        request.setResponseCode(code)
        return json.dumps(payload).encode() if payload is not None else b""

    return answer


# -- webhooks -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_webhook_posts_events_in_order(backend):
    """Events a real client publishes on the webhook's topic reach the URL as JSON, in publication order, binary payloads as base64; a prefix webhook names the event's topic."""
    hook = WebhookConfig(topic="com.hook.news", url=backend.url + "/events")
    by_prefix = WebhookConfig(topic="com.hook.oth", match="prefix", url=backend.url + "/prefix")
    service, ws_url = await _router([hook, by_prefix])
    try:
        publisher = await join(ws_url, serializer="msgpack")
        for n in range(5):
            publisher.publish("com.hook.news", n, b"\x00\x01", tag="t")
        publisher.publish("com.hook.other", "not this topic")
        for _ in range(100):
            if len(backend.received) == 6:
                break
            await bounded(_later())
        assert [body["args"][0] for path, body in backend.received if path == "/events"] == [0, 1, 2, 3, 4]
        ((_, other),) = [(path, body) for path, body in backend.received if path == "/prefix"]
        assert other["topic"] == "com.hook.other" and other["args"] == ["not this topic"]
        # the two webhooks post independently: the order holds within each
        first = next(body for path, body in backend.received if path == "/events")
        assert first["topic"] == "com.hook.news"
        assert first["args"][1] == "AAE=" and first["kwargs"] == {"tag": "t"} and first["publication"] > 0
        assert await publisher.call("wamp.subscription.lookup", "com.hook.news")  # a subscriber like any other
        await leave(publisher)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_webhook_retries_with_backoff_then_drops_and_logs_once(backend):
    """A failing URL is retried `retries` times with doubling backoff, the event is then dropped, the outage is logged once, and recovery once."""
    clock = VirtualTime()
    backend.answers["/hook"] = _status(500, {"oops": 1})
    hook = WebhookConfig(topic="com.hook.flaky", url=backend.url + "/hook", retries=2, backoff=1.0)
    service, ws_url = await _router([hook], reactor=clock)
    webhook = service.bridges.webhooks[0]
    try:
        publisher = await join(ws_url)
        with logged(in_namespaces("wampd.bridge")) as lines:
            publisher.publish("com.hook.flaky", "a")
            publisher.publish("com.hook.flaky", "b")
            await backend.next_request()  # first try of "a"
            arrived = backend.next_request()
            await bounded(_later(0.1))
            clock.advance(0.9)
            await bounded(_later(0.1))
            assert not arrived.called  # the first retry waits 1 s
            clock.advance(0.1)
            await arrived  # retry 1 after 1 s
            arrived = backend.next_request()
            await bounded(_later(0.1))
            clock.advance(2.0)
            await arrived  # retry 2 after 2 s more; then "a" is dropped and "b" is tried
            backend.answers["/hook"] = _status(204, None)
            for _ in range(100):
                if webhook.delivered == 1:
                    break
                await bounded(_later())
            assert [body["args"] for _, body in backend.received] == [["a"], ["a"], ["a"], ["b"]]
            assert webhook.dropped == 1 and webhook.delivered == 1
            texts = [e["log_format"] for e in lines]
            assert len([t for t in texts if "is failing" in t]) == 1
            assert len([t for t in texts if "delivering again" in t]) == 1
        await leave(publisher)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_webhook_queue_is_bounded(backend):
    """Past max_queue events waiting behind a slow URL are dropped and counted; the rest still arrive in order."""
    held = []
    backend.answers["/slow"] = lambda request, body: held.append(request) or server.NOT_DONE_YET
    hook = WebhookConfig(topic="com.hook.slow", url=backend.url + "/slow", max_queue=3)
    service, ws_url = await _router([hook])
    webhook = service.bridges.webhooks[0]
    try:
        publisher = await join(ws_url)
        for n in range(6):
            publisher.publish("com.hook.slow", n)
        await publisher.call("wamp.session.count")  # a round trip: all six were routed
        assert len(webhook.queue) == 3 and webhook.dropped == 3
        for _ in range(3):
            while not held:
                await bounded(_later())
            request = held.pop()
            request.setResponseCode(200)
            request.finish()
        for _ in range(100):
            if webhook.delivered == 3:
                break
            await bounded(_later())
        assert [body["args"] for _, body in backend.received] == [[0], [1], [2]]
        await leave(publisher)
    finally:
        await service.stopService()


# -- HTTP callees -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_http_callee_results(backend):
    """The URL gets the call's args and kwargs as JSON; an {args, kwargs} answer is the RESULT's, any other JSON value its one argument."""
    backend.answers["/add"] = lambda request, body: json.dumps(sum(body["args"])).encode()
    backend.answers["/split"] = lambda request, body: json.dumps({"args": [1, 2], "kwargs": {"k": body["kwargs"]["k"]}}).encode()
    callees = [
        HttpCalleeConfig(procedure="com.http.add", url=backend.url + "/add"),
        HttpCalleeConfig(procedure="com.http.split", url=backend.url + "/split"),
    ]
    service, ws_url = await _router(callees=callees)
    try:
        caller = await join(ws_url)
        assert await caller.call("com.http.add", 2, 3, 4) == 9
        result = await caller.call("com.http.split", k="v")
        assert isinstance(result, CallResult) and list(result.results) == [1, 2] and result.kwresults == {"k": "v"}
        assert backend.received[0] == ("/add", {"procedure": "com.http.add", "args": [2, 3, 4], "kwargs": {}})
        await leave(caller)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_http_callee_errors(backend):
    """Non-2xx, an error body, a timeout, bad JSON, a too-big answer and no server each give the caller an ERROR with a clear URI and message."""
    backend.answers["/status"] = _status(503, None)
    backend.answers["/error"] = _status(400, {"error": "com.app.invalid", "message": "no such user", "kwargs": {"id": 7}})
    backend.answers["/bad"] = lambda request, body: b"<html>not json"
    backend.answers["/big"] = lambda request, body: json.dumps("x" * 5000).encode()
    backend.answers["/hang"] = lambda request, body: server.NOT_DONE_YET
    callees = [
        HttpCalleeConfig(procedure="com.http.status", url=backend.url + "/status"),
        HttpCalleeConfig(procedure="com.http.error", url=backend.url + "/error"),
        HttpCalleeConfig(procedure="com.http.bad", url=backend.url + "/bad"),
        HttpCalleeConfig(procedure="com.http.big", url=backend.url + "/big", max_response=1000),
        HttpCalleeConfig(procedure="com.http.hang", url=backend.url + "/hang", timeout=0.3),
        HttpCalleeConfig(procedure="com.http.gone", url="http://127.0.0.1:1/nothing"),
    ]
    service, ws_url = await _router(callees=callees)
    try:
        caller = await join(ws_url)
        expected = {
            "com.http.status": ("wampd.error.http_status", "HTTP 503"),
            "com.http.error": ("com.app.invalid", "no such user"),
            "com.http.bad": ("wampd.error.http_bad_response", "not JSON"),
            "com.http.big": ("wampd.error.http_response_too_large", "over 1000"),
            "com.http.hang": ("wampd.error.http_timeout", "within 0.3s"),
            "com.http.gone": ("wampd.error.http_unreachable", "POST http://127.0.0.1:1/nothing"),
        }
        for procedure, (uri, text) in expected.items():
            with pytest.raises(ApplicationError) as info:
                await bounded(caller.call(procedure))
            assert info.value.error == uri, procedure
            assert text in info.value.args[0], (procedure, info.value.args)
        with pytest.raises(ApplicationError) as info:
            await bounded(caller.call("com.http.error"))
        assert info.value.kwargs == {"id": 7}
        await leave(caller)
    finally:
        await service.stopService()


def test_bridge_config_is_checked():
    """[[webhook]] and [[http_callee]] tables are read from TOML; a bad value or an unknown realm names its key."""
    config = parse_config(
        {
            "webhook": [{"topic": "com.a", "url": "https://hooks.example/x", "retries": 0, "headers": {"Authorization": "Bearer t"}}],
            "http_callee": [{"procedure": "com.b", "url": "http://127.0.0.1:9/b", "timeout": 2}],
        }
    )
    assert config.web.webhooks[0].headers["Authorization"] == "Bearer t"
    assert config.web.http_callees[0].timeout == 2.0
    for data, message in (
        ({"webhook": [{"topic": "com.a", "url": "ftp://x/"}]}, "webhook[0].url: must be an http:// or https:// URL with a host, got 'ftp://x/'"),
        ({"webhook": [{"url": "http://x/"}]}, "webhook[0].topic: is required"),
        ({"webhook": [{"topic": "com.a", "url": "http://x/", "realm": "nope"}]}, "webhook[0].realm: no realm 'nope' is configured"),
        ({"webhook": [{"topic": "com..a", "url": "http://x/"}]}, "webhook[0].topic: 'com..a' is not a valid exact topic"),
        ({"http_callee": [{"procedure": "wamp.x", "url": "http://x/"}]}, "http_callee[0].procedure: wamp.* procedures belong to the router"),
        ({"http_callee": [{"procedure": "com.x", "url": "http://x/", "timeout": -1}]}, "http_callee[0].timeout: must be greater than 0, got -1"),
        ({"http_callee": [{"procedure": "com.x", "url": "http://x/", "headers": {"Bad Name": "v"}}]}, "http_callee[0].headers.Bad Name: is not a valid HTTP header name"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_config(data)
        assert str(info.value) == message


def _later(seconds=0.02):
    d = Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


@pytest_twisted.ensureDeferred
async def test_http_callee_call_timeout_drops_the_post(backend):
    """A caller's CALL timeout ends the call with wamp.error.timeout and drops the POST still waiting for the URL."""
    held = []
    backend.answers["/slow"] = lambda request, body: held.append(request) or server.NOT_DONE_YET
    service, ws_url = await _router(callees=[HttpCalleeConfig(procedure="com.http.slow", url=backend.url + "/slow")])
    try:
        caller = await join(ws_url)
        with pytest.raises(ApplicationError) as info:
            await bounded(caller.call("com.http.slow", options=CallOptions(timeout=200)))  # ms, as the spec says
        assert info.value.error == "wamp.error.timeout"
        (request,) = held
        await bounded(request.notifyFinish().addErrback(lambda failure: "dropped"))
        assert request._disconnected
        await leave(caller)
    finally:
        await service.stopService()
