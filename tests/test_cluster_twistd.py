"""
``twistd -n wampd --cluster ...`` nodes as real subprocesses, joined through a
real redis-server: clients on different nodes publish and subscribe as on one
router; a node killed with SIGKILL is noticed by the others within the
heartbeat timeout; a node that can't reach Redis doesn't start.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from tests.redis_server import RedisServer
from tests.test_twistd import TWISTD, _ended, spawn
from tests.wamp_clients import join, leave

LISTEN = ["--listen", "ws:tcp:0:interface=127.0.0.1"]
URL = r"wampd listening on (ws://127\.0\.0\.1:\d+/ws) \(websocket\)"


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def node(config, name: str):
    return spawn(TWISTD + ["wampd", "--config", str(config), "--cluster-name", name, *LISTEN])


def cluster_config(tmp_path, redis) -> str:
    path = tmp_path / "cluster.toml"
    path.write_text(f'[cluster]\nurl = "{redis.url}"\nheartbeat = 0.2\ntimeout = 1.0\n')
    return str(path)


async def until_crosses(publisher, topic: str, received: Deferred, tries: int = 50):
    """Publish (acknowledged) until the subscriber on the other node has an event: the tables take a moment to spread."""
    for n in range(tries):
        await publisher.publish(topic, n, options=PublishOptions(acknowledge=True))
        if received.called:
            return await received
    raise AssertionError(f"no publication crossed to the other node in {tries} tries")


@pytest_twisted.ensureDeferred
async def test_two_twistd_nodes_route_a_publication_and_stop_cleanly(tmp_path, redis):
    """A client on node n1 publishes, a client on node n2 gets it; SIGTERM stops both with status 0."""
    config = cluster_config(tmp_path, redis)
    n1, n2 = node(config, "n1"), node(config, "n2")
    try:
        url1 = (await n1.wait_for(URL)).group(1)
        url2 = (await n2.wait_for(URL)).group(1)
        await n1.wait_for(r"cluster: node n1 joined")
        await n2.wait_for(r"cluster: node n2 joined")
        subscriber, publisher = await join(url2), await join(url1)
        received = Deferred()
        await subscriber.subscribe(lambda n: received.called or received.callback(n), "com.example.news")
        assert isinstance(await until_crosses(publisher, "com.example.news", received), int)
        await leave(subscriber)
        await leave(publisher)
        n1.transport.signalProcess("TERM")
        n2.transport.signalProcess("TERM")
        assert await _ended(n1) == 0, "\n".join(n1.lines)
        assert await _ended(n2) == 0, "\n".join(n2.lines)
    finally:
        for proto in (n1, n2):
            if not proto.ended.called:
                proto.transport.signalProcess("KILL")


@pytest_twisted.ensureDeferred
async def test_a_node_killed_with_sigkill_is_gone_within_the_timeout(tmp_path, redis):
    """kill -9 of one node: the other logs it gone within the 1 s heartbeat timeout, and keeps serving."""
    config = cluster_config(tmp_path, redis)
    n1, n2 = node(config, "n1"), node(config, "n2")
    try:
        url1 = (await n1.wait_for(URL)).group(1)
        await n2.wait_for(r"cluster: node n2 joined")
        await n1.wait_for(r"cluster: node n1 joined")
        n2.transport.signalProcess("KILL")
        await _ended(n2)
        await n1.wait_for(r"cluster: node n2 missed its heartbeat for 1(\.0)? s; it is gone", timeout=5)
        client = await join(url1)
        await client.publish("com.example.news", 1, options=PublishOptions(acknowledge=True))
        await leave(client)
    finally:
        for proto in (n1, n2):
            if not proto.ended.called:
                proto.transport.signalProcess("KILL")


@pytest_twisted.ensureDeferred
async def test_a_node_that_cannot_reach_redis_does_not_start(tmp_path):
    """--cluster naming a Redis that isn't there: the error names the address, nothing keeps listening, status 1."""
    proto = spawn(TWISTD + ["wampd", "--cluster", f"unix:{tmp_path}/none.sock", *LISTEN])
    try:
        await proto.wait_for(r"wampd did not start: cluster: cannot reach Redis at unix:")
        assert await _ended(proto) == 1, "\n".join(proto.lines)
    finally:
        if not proto.ended.called:
            proto.transport.signalProcess("KILL")


@pytest_twisted.ensureDeferred
async def test_autobahn_js_clients_on_different_nodes(tmp_path, redis):
    """autobahn-js under node: a JS callee on n2 serves a JS caller on n1, and its events reach a Python client on n1."""
    from tests.test_interop_js import CLIENT, NODE, NODE_MODULES_OK

    if NODE is None or not NODE_MODULES_OK:
        pytest.skip("needs node and tests/js/node_modules (npm ci in tests/js)")
    config = cluster_config(tmp_path, redis)
    n1, n2 = node(config, "n1"), node(config, "n2")
    js = []
    try:
        url1 = (await n1.wait_for(URL)).group(1)
        url2 = (await n2.wait_for(URL)).group(1)
        await n1.wait_for(r"cluster: node n1 joined")
        callee = spawn([NODE, str(CLIENT), "--url", url2, "--realm", "realm1", "--scenario", "callee", "--stay-ms", "20000"])
        js.append(callee)
        await callee.wait_for(r'"event":\s*"ready"')
        python = await join(url1)
        pongs = Deferred()
        await python.subscribe(lambda *args: pongs.called or pongs.callback(args), "com.example.js.pong")
        for _ in range(50):  # the registration reaches n1 through Redis: retry, each a round trip
            try:
                assert await python.call("com.example.js.upper", "warm") == "WARM"
                break
            except ApplicationError as exc:
                assert exc.error == "wamp.error.no_such_procedure"
        caller = spawn([NODE, str(CLIENT), "--url", url1, "--realm", "realm1", "--scenario", "caller",
                        "--procedure", "com.example.js.upper", "--args", '["abc"]'])
        js.append(caller)
        result = await caller.wait_for(r'"event":\s*"result".*"value":\s*"ABC"')
        assert result is not None
        for _ in range(50):  # n2's subscription to ping reaches n1 likewise
            await python.publish("com.example.js.ping", "hello", options=PublishOptions(acknowledge=True))
            if pongs.called:
                break
        assert await pongs.addTimeout(10, reactor) == ("hello",)
        await leave(python)
    finally:
        for proto in js + [n1, n2]:
            if not proto.ended.called:
                proto.transport.signalProcess("KILL")


@pytest_twisted.ensureDeferred
async def test_readyz_says_not_ready_while_redis_is_away(tmp_path, redis):
    """With metrics on, /readyz answers 200 while the node reaches Redis, 503 naming the cluster while it doesn't."""
    from tests.test_ops import fetch  # a real HTTP client (twisted.web) over loopback

    config = cluster_config(tmp_path, redis)
    node1 = spawn(TWISTD + ["wampd", "--config", config, "--cluster-name", "n1", "--metrics", "tcp:0:interface=127.0.0.1", *LISTEN])
    try:
        await node1.wait_for(r"cluster: node n1 joined")
        ops = (await node1.wait_for(r"(http://127\.0\.0\.1:\d+) \(http\)")).group(1)
        status, _, body = await fetch(ops + "/readyz")
        assert status == 200, body
        redis.stop()
        await node1.wait_for(r"cluster: lost Redis")
        status, _, body = await fetch(ops + "/readyz")
        assert status == 503 and b"cluster: Redis reachable" in body, body
    finally:
        if not node1.ended.called:
            node1.transport.signalProcess("KILL")
