"""
Publish/subscribe across cluster nodes: in-process routers (each a real
RouterService on loopback) joined through a real redis-server, real
autobahn-python clients on different nodes.
"""

from __future__ import annotations

import msgpack
import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions, SubscribeOptions
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from router.cluster import parse_redis_url
from router.cluster._node import ClusterError, ClusterNode
from tests.cluster_helpers import nodes, redis  # noqa: F401 (fixtures)
from tests.conftest import make_service
from tests.raw_client import answer_to, send_any
from tests.wamp_clients import Recorder, join, leave

TOPIC = ("realm1", "exact", "com.example.news")


def events_into(inbox: list, count: int | None = None) -> tuple:
    """A subscription handler appending (args, details) to ``inbox``; the Deferred fires at ``count``."""
    done = Deferred()

    def handler(*args, **kwargs):
        inbox.append((args, kwargs.get("details")))
        if count is not None and len(inbox) == count and not done.called:
            done.callback(inbox)

    return handler, (done.addTimeout(10, reactor) if count is not None else done)


@pytest_twisted.ensureDeferred
async def test_a_publication_reaches_a_subscriber_on_another_node(nodes):
    """A client on node A publishes; a client subscribed on node B gets the EVENT, the publisher its PUBLISHED."""
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    subscriber = await join(b.ws_url)
    inbox: list = []
    handler, got = events_into(inbox, 1)
    await subscriber.subscribe(handler, "com.example.news")
    await node_a.until(lambda n: TOPIC in n.topics_of("B"))
    publisher = await join(a.ws_url)
    ack = await publisher.publish("com.example.news", "hello", options=PublishOptions(acknowledge=True))
    await got
    assert inbox[0][0] == ("hello",)
    assert isinstance(ack.id, int)
    await leave(subscriber)
    await leave(publisher)


@pytest_twisted.ensureDeferred
async def test_prefix_and_wildcard_subscriptions_match_across_nodes(nodes):
    """Pattern subscriptions on node B match publications made on node A, with the topic in the details."""
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    subscriber = await join(b.ws_url)
    prefix_inbox: list = []
    wildcard_inbox: list = []
    on_prefix, prefix_got = events_into(prefix_inbox, 1)
    on_wildcard, wildcard_got = events_into(wildcard_inbox, 1)
    await subscriber.subscribe(on_prefix, "com.example", options=SubscribeOptions(match="prefix", details=True))
    await subscriber.subscribe(on_wildcard, "com..news", options=SubscribeOptions(match="wildcard", details=True))
    await node_a.until(lambda n: len(n.topics_of("B")) == 2)
    publisher = await join(a.ws_url)
    await publisher.publish("com.example.news", 1, options=PublishOptions(acknowledge=True))
    await prefix_got
    await wildcard_got
    assert prefix_inbox[0][1].topic == "com.example.news"
    assert wildcard_inbox[0][1].topic == "com.example.news"
    await leave(subscriber)
    await leave(publisher)


@pytest_twisted.ensureDeferred
async def test_one_publishers_events_arrive_in_order_on_every_node(nodes):
    """300 publications from one publisher reach subscribers on its own node and another node in publication order."""
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    local, remote = await join(a.ws_url), await join(b.ws_url)
    local_inbox: list = []
    remote_inbox: list = []
    on_local, local_done = events_into(local_inbox, 300)
    on_remote, remote_done = events_into(remote_inbox, 300)
    await local.subscribe(on_local, "com.example.news")
    await remote.subscribe(on_remote, "com.example.news")
    await node_a.until(lambda n: TOPIC in n.topics_of("B"))
    publisher = await join(a.ws_url, transport="websocket")
    for n in range(299):
        publisher.publish("com.example.news", n)
    await publisher.publish("com.example.news", 299, options=PublishOptions(acknowledge=True))
    await local_done
    await remote_done
    assert [args[0] for args, _ in remote_inbox] == list(range(300))
    assert [args[0] for args, _ in local_inbox] == list(range(300))
    for client in (local, remote, publisher):
        await leave(client)


@pytest_twisted.ensureDeferred
async def test_black_and_whitelists_and_disclosure_hold_across_nodes(nodes):
    """eligible/exclude name sessions on other nodes; disclose_me gives the remote publisher's session and authid."""
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    wanted, unwanted = await join(b.ws_url), await join(b.ws_url)
    wanted_inbox: list = []
    unwanted_inbox: list = []
    on_wanted, wanted_got = events_into(wanted_inbox, 2)
    on_unwanted, _ = events_into(unwanted_inbox)
    await wanted.subscribe(on_wanted, "com.example.news", options=SubscribeOptions(details=True))
    await unwanted.subscribe(on_unwanted, "com.example.news", options=SubscribeOptions(details=True))
    await node_a.until(lambda n: TOPIC in n.topics_of("B"))
    publisher = await join(a.ws_url)
    await publisher.publish("com.example.news", "to one", options=PublishOptions(acknowledge=True, eligible=[wanted.sid]))
    # autobahn-python has no disclose_me option: a hand-made PUBLISH
    send_any(publisher, [16, 1_000_001, {"acknowledge": True, "exclude": [unwanted.sid], "disclose_me": True},
                         "com.example.news", ["not to one"]])
    await answer_to(publisher, 1_000_001)
    await wanted_got
    await publisher.publish("com.example.news", "fence", options=PublishOptions(acknowledge=True, eligible=[unwanted.sid]))
    assert [args[0] for args, _ in wanted_inbox] == ["to one", "not to one"]
    assert wanted_inbox[1][1].publisher == publisher.sid
    assert wanted_inbox[0][1].publisher is None
    for client in (wanted, unwanted, publisher):
        await leave(client)


@pytest_twisted.ensureDeferred
async def test_a_publication_goes_only_to_nodes_with_a_matching_subscriber(nodes):
    """Node A forwards nothing to node B until B has a subscriber, and stops once B's last one unsubscribes."""
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    await node_a.until(lambda n: "B" in n.nodes)
    publisher = await join(a.ws_url)
    await publisher.publish("com.example.news", 0, options=PublishOptions(acknowledge=True))
    assert node_a.forwarded == 0
    subscriber = await join(b.ws_url)
    sub = await subscriber.subscribe(lambda *a: None, "com.example.news")
    await node_a.until(lambda n: TOPIC in n.topics_of("B"))
    await publisher.publish("com.example.news", 1, options=PublishOptions(acknowledge=True))
    assert node_a.forwarded == 1
    await sub.unsubscribe()
    await node_a.until(lambda n: TOPIC not in n.topics_of("B"))
    await publisher.publish("com.example.news", 2, options=PublishOptions(acknowledge=True))
    assert node_a.forwarded == 1
    await leave(subscriber)
    await leave(publisher)


@pytest_twisted.ensureDeferred
async def test_a_node_that_stops_or_dies_is_forgotten(nodes):
    """A node that leaves is forgotten at once; one that stops beating (killed) within the heartbeat timeout."""
    _, node_a = await nodes.add("A")
    _, node_b = await nodes.add("B")
    _, node_c = await nodes.add("C")
    await node_a.until(lambda n: n.nodes == ["B", "C"])
    await node_b.stop()
    await node_a.until(lambda n: n.nodes == ["C"], timeout=0.3)  # 'bye': no heartbeat wait
    node_c._beat.stop()  # as if killed: no 'bye', its key expires after the 0.6 s timeout
    node_c._drop_connections()
    await node_a.until(lambda n: n.nodes == [], timeout=5)


@pytest_twisted.ensureDeferred
async def test_a_second_node_with_the_same_name_is_refused(nodes):
    """Two live nodes cannot share a name: the second is refused with an error that says so."""
    await nodes.add("A")
    with pytest.raises(ClusterError, match="another live node is named 'A'"):
        await nodes.add("A")


@pytest_twisted.ensureDeferred
async def test_redis_unreachable_refuses_to_join(tmp_path):
    """A node whose Redis is not there does not join: ClusterError names the address."""
    service = make_service(Recorder())
    node = ClusterNode(service.router, parse_redis_url(f"unix:{tmp_path}/none.sock"), name="A", reactor=reactor)
    with pytest.raises(ClusterError, match="cannot reach Redis at unix:"):
        await node.start()


@pytest_twisted.ensureDeferred
async def test_routing_survives_a_redis_restart_and_resynchronizes(nodes, redis):
    """Redis stopped: each node keeps routing locally; Redis back: the nodes reconnect and cross-node events flow again."""
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    local, remote = await join(a.ws_url), await join(b.ws_url)
    local_inbox: list = []
    remote_inbox: list = []
    await local.subscribe(lambda *args: local_inbox.append(args), "com.example.news")
    await remote.subscribe(lambda *args: remote_inbox.append(args), "com.example.news")
    await node_a.until(lambda n: TOPIC in n.topics_of("B"))
    redis.stop()
    await node_a.until(lambda n: not n.connected)
    await node_b.until(lambda n: not n.connected)
    publisher = await join(a.ws_url)
    await publisher.publish("com.example.news", "during", options=PublishOptions(acknowledge=True))
    redis.start()
    await node_a.until(lambda n: n.connected and TOPIC in n.topics_of("B"), timeout=15)
    await node_b.until(lambda n: n.connected, timeout=15)
    handler_done = Deferred()
    await remote.subscribe(lambda *args: handler_done.callback(args), "com.example.after")
    await node_a.until(lambda n: ("realm1", "exact", "com.example.after") in n.topics_of("B"), timeout=5)
    await publisher.publish("com.example.after", "after", options=PublishOptions(acknowledge=True))
    assert (await handler_done.addTimeout(5, reactor)) == ("after",)
    assert local_inbox == [("during",)]
    assert remote_inbox == []
    for client in (local, remote, publisher):
        await leave(client)


@pytest_twisted.ensureDeferred
async def test_a_node_authenticates_to_a_redis_with_a_password(tmp_path):
    """A Redis with requirepass: the right password joins; a wrong one is refused with Redis's reason, not the password."""
    from tests.redis_server import RedisServer

    guarded = RedisServer(tmp_path, "--requirepass", "s3cret")
    guarded.start()
    service = make_service(Recorder())
    try:
        node = ClusterNode(service.router, parse_redis_url(f"{guarded.url}?password=s3cret"), name="A", reactor=reactor)
        await node.start()
        assert node.connected
        await node.stop()
        wrong = ClusterNode(service.router, parse_redis_url(f"{guarded.url}?password=nope"), name="B", reactor=reactor)
        with pytest.raises(ClusterError) as info:
            await wrong.start()
        assert "WRONGPASS" in str(info.value) and "nope" not in str(info.value)
    finally:
        guarded.stop()


@pytest_twisted.ensureDeferred
async def test_a_malformed_cluster_message_is_logged_and_routing_goes_on(nodes, redis):
    """Junk on a node's channel (a 'pub' with missing fields) is logged; the node keeps its Redis link and routing."""
    from router.cluster._resp import connect
    from tests.conftest import in_namespaces, logged

    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    subscriber = await join(b.ws_url)
    inbox: list = []
    handler, got = events_into(inbox, 1)
    await subscriber.subscribe(handler, "com.example.news")
    await node_a.until(lambda n: TOPIC in n.topics_of("B"))
    conn = await connect(reactor, parse_redis_url(redis.url))
    with logged(in_namespaces("wampd.cluster")) as lines:
        await conn.command("PUBLISH", "wampd:to:B", msgpack.packb(("pub", "realm1"), use_bin_type=True))
        publisher = await join(a.ws_url)
        await publisher.publish("com.example.news", "after", options=PublishOptions(acknowledge=True))
        await got
    assert inbox[0][0] == ("after",)
    assert node_b.connected
    assert any("could not be handled" in line["log_format"] for line in lines)
    conn.close()
    await leave(subscriber)
    await leave(publisher)
