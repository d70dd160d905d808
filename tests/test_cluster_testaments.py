"""
Testaments that outlive their node (router.cluster._testaments): kept in
Redis while their session lives, published once by one survivor when the node
dies, forgotten when the session flushes them or leaves cleanly, written again
after a Redis outage, and swept at joining when nobody saw the node die.
In-process nodes over a real redis-server, real autobahn-python clients; the
last test kills a real twistd node with SIGKILL.
"""

from __future__ import annotations

import pytest_twisted
from autobahn.wamp.types import PublishOptions, SubscribeOptions
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from tests.cluster_helpers import nodes, redis  # noqa: F401 (fixtures)
from tests.wamp_clients import join, leave

TOPIC = "com.example.gone"


class Heard:
    """Every event on one topic a client receives; ``until(n)`` fires once it has ``n``."""

    def __init__(self) -> None:
        self.events: list = []
        self._waiting: list = []

    def __call__(self, *args, details=None):
        self.events.append((args, details.publisher if details is not None else None))
        for n, d in list(self._waiting):
            if len(self.events) >= n:
                self._waiting.remove((n, d))
                d.callback(self.events)

    def until(self, n: int, timeout: float = 10.0) -> Deferred:
        d = Deferred()
        if len(self.events) >= n:
            d.callback(self.events)
            return d
        self._waiting.append((n, d))
        return d.addTimeout(timeout, reactor)


async def listening(client, topic: str = TOPIC) -> Heard:
    heard = Heard()
    await client.subscribe(heard, topic, options=SubscribeOptions(details_arg="details"))
    return heard


def die(node) -> None:
    """As if the process were killed: no more heartbeats, no goodbye, nothing cleaned up in Redis."""
    node._beat.stop()
    node._drop_connections()


async def held(node, owner: str) -> dict:
    """The testaments Redis keeps for node ``owner``'s sessions (session id -> packed)."""
    flat = await node._cmd.command("HGETALL", f"{node.prefix}testaments:{owner}")
    return {int(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


async def marker(url: str, topic: str = TOPIC) -> None:
    """A publication from a fresh client on the node at ``url`` (a subscriber doesn't hear its own)."""
    client = await join(url)
    await client.publish(topic, "marker", options=PublishOptions(acknowledge=True))
    await leave(client)


@pytest_twisted.ensureDeferred
async def test_a_dead_nodes_testaments_reach_every_node_once_in_order_and_disclosed(nodes):
    """Node C dies: one survivor publishes its session's two testaments (detached first), disclosed as asked; each subscriber on A and B gets each once."""
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    c, node_c = await nodes.add("C")
    on_a, on_b = await join(a.ws_url), await join(b.ws_url)
    heard_a, heard_b = await listening(on_a), await listening(on_b)
    for node in (node_a, node_b):
        await node.until(lambda n: all((("realm1", "exact", TOPIC) in n.topics_of(o)) for o in ("A", "B") if o != n.name))
    mortal = await join(c.ws_url)
    await mortal.call("wamp.session.add_testament", TOPIC, ["destroyed"], {}, publish_options={"disclose_me": True})
    await mortal.call("wamp.session.add_testament", TOPIC, ["detached"], {}, scope="detached")
    assert sorted(await held(node_a, "C")) == [mortal.sid]
    die(node_c)
    await node_a.until(lambda n: not n.tables.knows("C"))
    await node_b.until(lambda n: not n.tables.knows("C"))
    for node in (node_a, node_b):  # each survivor's take of C's testaments has been answered by now
        await node._cmd.command("PING")
    assert node_a.testaments.published + node_b.testaments.published == 2
    await marker(a.ws_url if node_a.testaments.published else b.ws_url)  # after the testaments, on the same connection to Redis: it arrives after them
    for heard in (heard_a, heard_b):
        events = await heard.until(3)
        assert [args for args, _ in events] == [("detached",), ("destroyed",), ("marker",)]
        assert events[0][1] is None and events[1][1] == mortal.sid  # only the second asked disclose_me
    assert await held(node_a, "C") == {}
    await leave(on_a)
    await leave(on_b)


@pytest_twisted.ensureDeferred
async def test_a_flushed_or_cleanly_published_testament_is_forgotten_by_redis(nodes):
    """Flushing the last testament removes the session's field; a clean leave publishes it once and removes it; nothing is left for survivors."""
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    watcher = await join(a.ws_url)
    heard = await listening(watcher)
    await node_b.until(lambda n: ("realm1", "exact", TOPIC) in n.topics_of("A"))
    flusher, mortal = await join(b.ws_url), await join(b.ws_url)
    await flusher.call("wamp.session.add_testament", TOPIC, ["flushed"], {})
    await mortal.call("wamp.session.add_testament", TOPIC, ["clean"], {})
    assert sorted(await held(node_a, "B")) == sorted([flusher.sid, mortal.sid])
    assert await flusher.call("wamp.session.flush_testaments") == 1
    assert sorted(await held(node_a, "B")) == [mortal.sid]
    await leave(mortal)
    assert [args for args, _ in await heard.until(1)] == [("clean",)]
    assert await held(node_a, "B") == {}
    die(node_b)  # flusher's session dies with it: nothing is left to publish
    await node_a.until(lambda n: not n.tables.knows("B"))
    await node_a._cmd.command("PING")
    assert node_a.testaments.published == 0
    await marker(a.ws_url)
    assert [args for args, _ in await heard.until(2)] == [("clean",), ("marker",)]
    await leave(watcher)


@pytest_twisted.ensureDeferred
async def test_a_testament_added_while_redis_is_away_is_written_when_it_returns(nodes, redis):
    """add_testament during an outage succeeds; when Redis is back (restarted, empty) the node writes it, and a survivor publishes it if the node then dies."""
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    watcher = await join(a.ws_url)
    mortal = await join(b.ws_url)
    redis.stop()
    await node_b.until(lambda n: not n.connected)
    await mortal.call("wamp.session.add_testament", TOPIC, ["kept"], {})
    redis.start()  # the same socket path, no data: every node writes its state again
    await node_a.until(lambda n: n.connected and n.tables.knows("B"), timeout=20)
    await node_b.until(lambda n: n.connected and n.tables.knows("A"), timeout=20)
    assert sorted(await held(node_a, "B")) == [mortal.sid]
    heard = await listening(watcher)
    await node_b.until(lambda n: ("realm1", "exact", TOPIC) in n.topics_of("A"))
    die(node_b)
    await node_a.until(lambda n: n.testaments.published == 1)
    assert [args for args, _ in await heard.until(1)] == [("kept",)]
    await leave(watcher)


@pytest_twisted.ensureDeferred
async def test_a_node_joining_publishes_the_testaments_of_a_node_that_died_unwatched(nodes):
    """The only node dies; its heartbeat expires; the next node to join takes its testaments from Redis and publishes them."""
    a, node_a = await nodes.add("A")
    mortal = await join(a.ws_url)
    await mortal.call("wamp.session.add_testament", TOPIC, ["late"], {})
    command = node_a._cmd
    node_a._beat.stop()
    await command.command("DEL", node_a._node_key("A"))  # its heartbeat lapses now (it would within timeout)
    node_a._drop_connections()
    _, node_b = await nodes.add("B")
    assert node_b.testaments.published == 1
    assert await held(node_b, "A") == {}


@pytest_twisted.ensureDeferred
async def test_a_twistd_node_killed_with_sigkill_leaves_its_testament_to_the_cluster(tmp_path, redis):
    """kill -9 of twistd node n3 (timeout 1 s): its session's testament reaches subscribers on n1 and n2 within 5 s, once each, published by one survivor."""
    import time

    from tests.test_cluster_twistd import URL, cluster_config, node
    from tests.test_twistd import _ended

    config = cluster_config(tmp_path, redis)
    n1, n2, n3 = node(config, "n1"), node(config, "n2"), node(config, "n3")
    try:
        urls = [(await proto.wait_for(URL)).group(1) for proto in (n1, n2, n3)]
        for proto, name in ((n1, "n1"), (n2, "n2"), (n3, "n3")):
            await proto.wait_for(rf"cluster: node {name} joined")
        subscribers = [await join(urls[0]), await join(urls[1])]
        heard = [await listening(client) for client in subscribers]
        for _ in range(50):  # each survivor learns of the other's subscription through Redis
            await marker(urls[0])
            await marker(urls[1])
            if all(sum(1 for args, _ in h.events if args == ("marker",)) >= 2 for h in heard):
                break
        for h in heard:
            h.events.clear()
        mortal = await join(urls[2])
        await mortal.call("wamp.session.add_testament", TOPIC, ["n3 is gone"], {})
        killed = time.monotonic()
        n3.transport.signalProcess("KILL")
        await _ended(n3)
        for h in heard:
            await h.until(1, timeout=5)
            assert h.events[0][0] == ("n3 is gone",), h.events
        elapsed = time.monotonic() - killed
        await n1.wait_for(r"cluster: node n3 missed its heartbeat")
        await n2.wait_for(r"cluster: node n3 missed its heartbeat")
        await marker(urls[0])
        await marker(urls[1])
        for h in heard:
            events = await h.until(3)
            assert sorted(args for args, _ in events) == [("marker",), ("marker",), ("n3 is gone",)], events
        published = [line for proto in (n1, n2) for line in proto.lines if "testament(s) of 1 session(s) of node n3" in line]
        assert len(published) == 1, published
        assert elapsed < 5
        for client in subscribers:
            await leave(client)
    finally:
        for proto in (n1, n2, n3):
            if not proto.ended.called:
                proto.transport.signalProcess("KILL")
