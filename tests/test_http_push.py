"""
The HTTP push endpoint (router/http.py) on a real RouterService over
loopback, driven by a real HTTP client (twisted.web.client.Agent), with real
autobahn-python subscribers and callees on the other side.

Every wait is bounded (addTimeout); "nothing was published" is proven by a
sentinel: the router delivers its publications to a subscriber in order, so
once the sentinel publication arrives, anything published before it has too.
"""

from __future__ import annotations

import json
from io import BytesIO

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult, SubscribeOptions
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, FileBodyProducer, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers

from router.config import HttpConfig
from tests.conftest import make_service
from tests.wamp_clients import join, leave

SECRET = "s3cret"
MAX_BODY = 1024
TIMEOUT = 5.0


class Pushing:
    """A started router (realms realm1 and realm2) with the push endpoint on a free port."""

    def __init__(self, **overrides):
        overrides.setdefault("http", HttpConfig(endpoint="tcp:0:interface=127.0.0.1", secret=SECRET, max_body=MAX_BODY))
        self.service = make_service(**overrides)
        self.clients = []

    async def __aenter__(self):
        await self.service.startService()
        by_kind = {e.transport: e for e in self.service.endpoints}
        self.ws_url = by_kind["websocket"].url
        self.http_url = by_kind["http"].url
        assert self.http_url.startswith("http://127.0.0.1:"), self.http_url
        return self

    async def client(self, realm="realm1"):
        c = await join(self.ws_url, realm=realm)
        self.clients.append(c)
        return c

    async def __aexit__(self, *exc):
        for c in self.clients:
            if c.is_attached():
                await bounded(leave(c))
        if self.service.running:
            await self.service.stopService()

    async def post(self, path, body=None, *, raw=None, secret=SECRET, method=b"POST", authorization=None):
        """One HTTP request; returns (status, decoded JSON body, response headers)."""
        headers = Headers({b"content-type": [b"application/json"]})
        if authorization is not None:
            headers.addRawHeader(b"authorization", authorization)
        elif secret is not None:
            headers.addRawHeader(b"authorization", b"Bearer " + secret.encode())
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        producer = FileBodyProducer(BytesIO(data)) if data is not None else None
        response = await bounded(Agent(reactor).request(method, (self.http_url + path).encode(), headers, producer))
        collected = _Collect()
        response.deliverBody(collected)
        text = await bounded(collected.done)
        try:
            decoded = json.loads(text)
        except ValueError:
            raise AssertionError(f"{method.decode()} {path}: HTTP {response.code}, not JSON: {text!r}") from None
        return response.code, decoded, response.headers


class _Collect(Protocol):
    """A response body, whole (readBody without its warning about abortConnection)."""

    def __init__(self):
        self.chunks = []
        self.done = Deferred()

    def dataReceived(self, data):
        self.chunks.append(data)

    def connectionLost(self, reason):
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(reason)


def bounded(d, timeout=TIMEOUT):
    if not isinstance(d, Deferred):
        d = Deferred.fromCoroutine(d)
    return d.addTimeout(timeout, reactor)


class Inbox:
    """Events received by one subscription handler, awaitable."""

    def __init__(self):
        self.events = []
        self._waiters = []

    def __call__(self, *args, **kwargs):
        details = kwargs.pop("details", None)
        self.events.append((list(args), kwargs, details))
        for n, d in list(self._waiters):
            if len(self.events) >= n:
                self._waiters.remove((n, d))
                d.callback(self.events[:n])

    def wait(self, n):
        if len(self.events) >= n:
            return bounded(Deferred.fromCoroutine(_value(self.events[:n])))
        d = Deferred()
        self._waiters.append((n, d))
        return bounded(d)


async def _value(v):
    return v


async def subscribed(client, topic, **options):
    inbox = Inbox()
    opts = SubscribeOptions(details_arg="details", **options)
    await bounded(client.subscribe(inbox, topic, options=opts))
    return inbox


# -- publish -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_publish_delivers_to_subscribers_and_returns_the_publication_id():
    async with Pushing() as r:
        alice, bob = await r.client(), await r.client()
        got_a = await subscribed(alice, "com.example.news")
        got_b = await subscribed(bob, "com.example.news")
        other_realm = await subscribed(await r.client("realm2"), "com.example.news")

        status, answer, headers = await r.post(
            "/publish", {"realm": "realm1", "topic": "com.example.news", "args": [1, "two"], "kwargs": {"x": {"y": 3}}}
        )
        assert status == 200, answer
        assert headers.getRawHeaders(b"content-type") == [b"application/json"]
        assert headers.getRawHeaders(b"server") is None
        publication = answer["publication"]
        assert isinstance(publication, int) and 1 <= publication <= 2**53

        for inbox in (got_a, got_b):
            [(args, kwargs, details)] = await inbox.wait(1)
            assert (args, kwargs) == ([1, "two"], {"x": {"y": 3}})
            assert details.publication == publication
        assert other_realm.events == []

        # realm2 by name; options filter receivers
        status, answer, _ = await r.post(
            "/publish",
            {"realm": "realm2", "topic": "com.example.news", "args": ["only realm2"], "options": {"exclude": []}},
        )
        assert status == 200, answer
        [(args, _, details)] = await other_realm.wait(1)
        assert args == ["only realm2"] and details.publication == answer["publication"]

        status, answer, _ = await r.post(
            "/publish",
            {"realm": "realm1", "topic": "com.example.news", "args": ["for bob"], "options": {"eligible": [bob.sid]}},
        )
        assert status == 200, answer
        events = await got_b.wait(2)
        assert events[1][0] == ["for bob"]
        # alice was not eligible: a sentinel to everyone proves she got nothing in between
        await r.post("/publish", {"realm": "realm1", "topic": "com.example.news", "args": ["sentinel"]})
        events = await got_a.wait(2)
        assert [e[0] for e in events] == [[1, "two"], ["sentinel"]]


@pytest_twisted.ensureDeferred
async def test_publish_with_one_realm_needs_no_realm_and_curl_style_body():
    """The README's curl: no realm field, no JSON content type."""
    from router.config import RealmConfig

    async with Pushing(realms=(RealmConfig("realm1"),)) as r:
        c = await r.client()
        inbox = await subscribed(c, "chat.room.lobby")
        headers_free = json.dumps({"topic": "chat.room.lobby", "args": ["hello from curl"]}).encode()
        status, answer, _ = await r.post("/publish", raw=headers_free)
        assert status == 200, answer
        [(args, kwargs, _)] = await inbox.wait(1)
        assert args == ["hello from curl"] and kwargs == {}


# -- call ------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_call_returns_results_errors_and_timeouts():
    async with Pushing() as r:
        callee = await r.client()
        invoked = []

        def echo(*args, **kwargs):
            invoked.append((args, kwargs))
            return CallResult(*args, **kwargs)

        def fail(*args, **kwargs):
            raise ApplicationError("com.example.error.nope", "not today", 42, reason="tests")

        def never():
            return Deferred()  # answered only by the dealer's timeout

        await bounded(callee.register(lambda a, b: a + b, "com.example.add"))
        await bounded(callee.register(echo, "com.example.echo"))
        await bounded(callee.register(fail, "com.example.fail"))
        await bounded(callee.register(never, "com.example.never"))
        await bounded(callee.register(lambda: None, "com.example.nothing"))

        status, answer, _ = await r.post("/call", {"procedure": "com.example.add", "args": [2, 3], "realm": "realm1"})
        assert (status, answer) == (200, {"args": [5], "kwargs": {}})

        status, answer, _ = await r.post(
            "/call",
            {"realm": "realm1", "procedure": "com.example.echo", "args": [1, "b"], "kwargs": {"k": [True, None]}},
        )
        assert (status, answer) == (200, {"args": [1, "b"], "kwargs": {"k": [True, None]}})

        # kwargs named like the endpoint's own fields still reach the callee
        status, answer, _ = await r.post(
            "/call",
            {"realm": "realm1", "procedure": "com.example.echo", "kwargs": {"procedure": "p", "timeout_ms": "t"}},
        )
        assert (status, answer) == (200, {"args": [], "kwargs": {"procedure": "p", "timeout_ms": "t"}})
        assert invoked[-1] == ((), {"procedure": "p", "timeout_ms": "t"})

        status, answer, _ = await r.post("/call", {"realm": "realm1", "procedure": "com.example.nothing"})
        assert (status, answer) == (200, {"args": [], "kwargs": {}})

        status, answer, _ = await r.post("/call", {"realm": "realm1", "procedure": "com.example.fail"})
        assert status == 502
        assert answer == {
            "error": "com.example.error.nope",
            "message": "not today",
            "args": ["not today", 42],
            "kwargs": {"reason": "tests"},
        }

        status, answer, _ = await r.post("/call", {"realm": "realm1", "procedure": "com.example.nobody"})
        assert status == 404 and answer["error"] == "wamp.error.no_such_procedure", answer

        status, answer, _ = await r.post(
            "/call", {"realm": "realm1", "procedure": "com.example.never", "timeout_ms": 100}
        )
        assert status == 504 and answer["error"] == "wamp.error.timeout", answer

        # a callee in realm1 is not a callee in realm2
        status, answer, _ = await r.post("/call", {"realm": "realm2", "procedure": "com.example.add", "args": [1, 1]})
        assert status == 404 and answer["error"] == "wamp.error.no_such_procedure", answer


@pytest_twisted.ensureDeferred
async def test_call_returning_one_list_keeps_its_shape():
    async with Pushing() as r:
        callee = await r.client()
        await bounded(callee.register(lambda: [1, 2], "com.example.pair"))
        status, answer, _ = await r.post("/call", {"realm": "realm1", "procedure": "com.example.pair"})
        assert (status, answer) == (200, {"args": [[1, 2]], "kwargs": {}})


# -- errors ----------------------------------------------------------------------

NEWS = {"realm": "realm1", "topic": "com.example.news", "args": ["leak"]}

PUBLISH_ERRORS = [
    # (what, request keyword arguments, status, error URI)
    ("no secret", dict(body=NEWS, secret=None), 401, "wamp.error.not_authorized"),
    ("wrong secret", dict(body=NEWS, secret="s3cret-not"), 401, "wamp.error.not_authorized"),
    ("secret as a prefix", dict(body=NEWS, secret="s3c"), 401, "wamp.error.not_authorized"),
    ("basic auth", dict(body=NEWS, authorization=b"Basic czNjcmV0"), 401, "wamp.error.not_authorized"),
    ("bad JSON", dict(raw=b'{"topic": "com.example.news",'), 400, "wamp.error.invalid_argument"),
    ("not UTF-8", dict(raw=b'{"topic": "com.example.news", "args": ["\xff"]}'), 400, "wamp.error.invalid_argument"),
    ("NaN", dict(raw=b'{"topic": "com.example.news", "args": [NaN]}'), 400, "wamp.error.invalid_argument"),
    ("an array", dict(body=[NEWS]), 400, "wamp.error.invalid_argument"),
    ("a string", dict(body="com.example.news"), 400, "wamp.error.invalid_argument"),
    ("args an object", dict(body={**NEWS, "args": {"a": 1}}), 400, "wamp.error.invalid_argument"),
    ("kwargs a list", dict(body={**NEWS, "kwargs": [1]}), 400, "wamp.error.invalid_argument"),
    ("options a list", dict(body={**NEWS, "options": ["retain"]}), 400, "wamp.error.invalid_argument"),
    ("topic missing", dict(body={"realm": "realm1", "args": ["leak"]}), 400, "wamp.error.invalid_argument"),
    ("topic a number", dict(body={**NEWS, "topic": 7}), 400, "wamp.error.invalid_argument"),
    ("realm a number", dict(body={**NEWS, "realm": 1}), 400, "wamp.error.invalid_argument"),
    ("realm missing, two realms", dict(body={"topic": "com.example.news", "args": ["leak"]}), 400, "wamp.error.invalid_argument"),
    ("eligible not a list", dict(body={**NEWS, "options": {"eligible": 5}}), 400, "wamp.error.invalid_argument"),
    ("eligible_authid a string", dict(body={**NEWS, "options": {"eligible_authid": "alice"}}), 400, "wamp.error.invalid_argument"),
    ("exclude of strings", dict(body={**NEWS, "options": {"exclude": ["1"]}}), 400, "wamp.error.invalid_argument"),
    ("retain a string", dict(body={**NEWS, "options": {"retain": "yes"}}), 400, "wamp.error.invalid_argument"),
    ("unknown option", dict(body={**NEWS, "options": {"acknowledge": True}}), 400, "wamp.error.invalid_argument"),
    ("kwargs named options", dict(body={**NEWS, "kwargs": {"options": 1}}), 400, "wamp.error.invalid_argument"),
    ("empty URI component", dict(body={**NEWS, "topic": "com.example..news"}), 400, "wamp.error.invalid_uri"),
    ("URI with a space", dict(body={**NEWS, "topic": "com.example.bad news"}), 400, "wamp.error.invalid_uri"),
    ("wamp.* topic", dict(body={**NEWS, "topic": "wamp.example.news"}), 401, "wamp.error.not_authorized"),
    ("unknown realm", dict(body={**NEWS, "realm": "nowhere"}), 404, "wamp.error.no_such_realm"),
    ("GET", dict(method=b"GET"), 405, "wamp.error.invalid_argument"),
    ("PUT", dict(body=NEWS, method=b"PUT"), 405, "wamp.error.invalid_argument"),
    ("over max_body", dict(body={**NEWS, "args": ["x" * MAX_BODY]}), 413, "wamp.error.invalid_argument"),
]


@pytest_twisted.ensureDeferred
async def test_publish_errors_publish_nothing():
    async with Pushing() as r:
        c = await r.client()
        news = await subscribed(c, "com.example", match="prefix")
        reserved = await subscribed(c, "wamp.example.news")
        everywhere = await subscribed(await r.client("realm2"), "com.example", match="prefix")

        for what, request, status, uri in PUBLISH_ERRORS:
            got_status, answer, headers = await r.post("/publish", **request)
            assert (got_status, answer["error"]) == (status, uri), (what, answer)
            assert isinstance(answer["message"], str) and answer["message"], what
            assert headers.getRawHeaders(b"content-type") == [b"application/json"], what
            assert headers.getRawHeaders(b"server") is None, what  # no software or version named
            if status == 401:
                assert headers.getRawHeaders(b"www-authenticate") == [b'Bearer realm="wampd"'], what
            if status == 405:
                assert headers.getRawHeaders(b"allow") == [b"POST"], what

        for path, status in (("/", 404), ("/publish/extra", 404), ("/nope", 404), ("/call/", 404)):
            got_status, answer, _ = await r.post(path, NEWS)
            assert got_status == status, (path, answer)

        # exactly max_body is accepted
        body = {**NEWS, "args": ["fits"]}
        padding = MAX_BODY - len(json.dumps({**body, "kwargs": {"pad": ""}}).encode())
        raw = json.dumps({**body, "kwargs": {"pad": "p" * padding}}).encode()
        assert len(raw) == MAX_BODY
        status, answer, _ = await r.post("/publish", raw=raw)
        assert status == 200, answer

        events = await news.wait(1)
        assert [e[0] for e in events] == [["fits"]]
        assert reserved.events == [] and everywhere.events == []


CALL_ERRORS = [
    ("no secret", dict(body={"realm": "realm1", "procedure": "com.example.count"}, secret=None), 401, "wamp.error.not_authorized"),
    ("bad JSON", dict(raw=b"{procedure: com.example.count}"), 400, "wamp.error.invalid_argument"),
    ("not an object", dict(body=["com.example.count"]), 400, "wamp.error.invalid_argument"),
    ("procedure missing", dict(body={"realm": "realm1"}), 400, "wamp.error.invalid_argument"),
    ("args a string", dict(body={"realm": "realm1", "procedure": "com.example.count", "args": "1"}), 400, "wamp.error.invalid_argument"),
    ("timeout_ms a string", dict(body={"realm": "realm1", "procedure": "com.example.count", "timeout_ms": "100"}), 400, "wamp.error.invalid_argument"),
    ("timeout_ms negative", dict(body={"realm": "realm1", "procedure": "com.example.count", "timeout_ms": -1}), 400, "wamp.error.invalid_argument"),
    ("timeout_ms a boolean", dict(body={"realm": "realm1", "procedure": "com.example.count", "timeout_ms": True}), 400, "wamp.error.invalid_argument"),
    ("invalid URI", dict(body={"realm": "realm1", "procedure": "com..count"}), 400, "wamp.error.invalid_uri"),
    ("unknown realm", dict(body={"realm": "nowhere", "procedure": "com.example.count"}), 404, "wamp.error.no_such_realm"),
    ("GET", dict(method=b"GET"), 405, "wamp.error.invalid_argument"),
    ("over max_body", dict(body={"realm": "realm1", "procedure": "com.example.count", "args": ["x" * MAX_BODY]}), 413, "wamp.error.invalid_argument"),
]


@pytest_twisted.ensureDeferred
async def test_call_errors_call_nothing():
    async with Pushing() as r:
        callee = await r.client()
        calls = []
        await bounded(callee.register(lambda *a: calls.append(a) or len(calls), "com.example.count"))
        for what, request, status, uri in CALL_ERRORS:
            got_status, answer, _ = await r.post("/call", **request)
            assert (got_status, answer["error"]) == (status, uri), (what, answer)
        assert calls == []
        status, answer, _ = await r.post("/call", {"realm": "realm1", "procedure": "com.example.count"})
        assert (status, answer, calls) == (200, {"args": [1], "kwargs": {}}, [()])


def test_push_site_needs_a_secret():
    from router.http import PushResource

    with pytest.raises(ValueError, match="secret"):
        PushResource(router=None, secret="")


# -- refusing before the body is read (issue 9, item 16) --------------------------


class _RawHttp(Protocol):
    """
    A hand-written HTTP/1.1 request over a real socket: the test decides how
    much of the body to send, and sees every byte the router answers until
    it closes the connection.
    """

    def __init__(self, head: bytes, first: bytes):
        self.head, self.first = head, first
        self.received = []
        self.closed = Deferred()

    def connectionMade(self):
        self.transport.write(self.head + self.first)

    def dataReceived(self, data):
        self.received.append(data)

    def connectionLost(self, reason):
        self.closed.callback(b"".join(self.received))


async def raw_request(r, path, headers, first=b""):
    """Send the request line, ``headers`` and ``first`` body bytes; return (status, headers, body) once the router closes."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    port = int(r.http_url.rsplit(":", 1)[1])
    head = b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"
    proto = _RawHttp(head, first)
    await bounded(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), proto))
    raw = await bounded(proto.closed)
    top, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = top.split(b"\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines)}
    return int(status_line.split()[1]), fields, body


BEARER = b"Authorization: Bearer " + SECRET.encode()


@pytest_twisted.ensureDeferred
async def test_unauthenticated_upload_is_refused_on_its_headers():
    """
    A 50 MB POST without the secret gets 401 and a closed connection after
    the client has sent 64 KiB of it: the router answers on the headers, it
    does not wait for (or buffer) the body. With Expect: 100-continue the
    client is never told to go on.
    """
    async with Pushing() as r:
        for extra in ([], [b"Expect: 100-continue"]):
            sent = b"x" * 65536 if not extra else b""
            status, fields, body = await raw_request(
                r, b"/publish", [b"Content-Length: 52428800", b"Content-Type: application/json", *extra], sent
            )
            assert status == 401, body
            assert json.loads(body)["error"] == "wamp.error.not_authorized"
            assert fields[b"www-authenticate"] == b'Bearer realm="wampd"'
            assert fields[b"connection"] == b"close"
            assert b"100 Continue" not in body
        # a wrong secret and an unknown path are refused the same way, before the body
        for path, auth in ((b"/call", b"Authorization: Bearer wrong"), (b"/nope", b"Authorization: Basic czNjcmV0")):
            status, _, _ = await raw_request(r, path, [b"Content-Length: 52428800", auth], b"{")
            assert status == 401


@pytest_twisted.ensureDeferred
async def test_oversize_content_length_is_refused_at_once():
    """An authenticated POST announcing more than max_body gets 413 before any body byte is sent."""
    async with Pushing() as r:
        status, fields, body = await raw_request(r, b"/publish", [BEARER, b"Content-Length: %d" % (MAX_BODY + 1)])
        assert status == 413, body
        assert json.loads(body) == {"error": "wamp.error.invalid_argument", "message": f"body is larger than {MAX_BODY} bytes"}
        assert fields[b"connection"] == b"close"


@pytest_twisted.ensureDeferred
async def test_chunked_body_is_cut_off_past_max_body():
    """
    A chunked body with no announced length is refused with 413 as soon as
    it passes max_body, without waiting for its end (the test never sends
    the last chunk); a chunked body within the limit is published.
    """
    async with Pushing() as r:
        c = await r.client()
        news = await subscribed(c, "com.example.news")
        chunk = b"y" * 700
        frames = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 2  # 1,400 bytes > 1,024, and no final 0-chunk
        status, _, body = await raw_request(r, b"/publish", [BEARER, b"Transfer-Encoding: chunked"], frames)
        assert status == 413, body
        assert json.loads(body)["error"] == "wamp.error.invalid_argument"

        payload = json.dumps({"realm": "realm1", "topic": "com.example.news", "args": ["chunked"]}).encode()
        half = len(payload) // 2
        frames = b"".join(b"%x\r\n" % len(part) + part + b"\r\n" for part in (payload[:half], payload[half:])) + b"0\r\n\r\n"
        status, _, body = await raw_request(
            r, b"/publish", [BEARER, b"Transfer-Encoding: chunked", b"Connection: close"], frames
        )
        assert status == 200, body
        assert [e[0] for e in await news.wait(1)] == [["chunked"]]
