"""
Pushing through Redis: a program RPUSHes a JSON object to ``P push:<realm>``
and wampd publishes it once, whatever the number of nodes, authorized as the
configured ``push_role`` (real redis-server, in-process nodes, real clients).
"""

from __future__ import annotations

import json

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from router.cluster import parse_redis_url
from router.cluster._push import push_problem
from router.cluster._resp import connect
from tests.cluster_helpers import nodes, redis  # noqa: F401 (fixtures)
from tests.config_helpers import realm_from_toml
from tests.conftest import in_namespaces, logged
from tests.wamp_clients import join, leave


def push(conn, realm: str, item) -> Deferred:
    body = item if isinstance(item, str) else json.dumps(item)
    return conn.command("RPUSH", f"wampd:push:{realm}", body)


@pytest_twisted.ensureDeferred
async def test_a_push_is_published_once_across_nodes(nodes, redis):
    """Two nodes read the push list; each push reaches subscribers on both nodes exactly once, in order, with kwargs."""
    a, node_a = await nodes.add("A", push_role="pusher")
    b, node_b = await nodes.add("B", push_role="pusher")
    on_a, on_b = await join(a.ws_url), await join(b.ws_url)
    got_a, got_b = [], []
    done = Deferred()

    def on_event(inbox):
        def handler(*args, **kwargs):
            inbox.append((args, kwargs))
            if len(got_a) == 3 and len(got_b) == 3 and not done.called:
                done.callback(None)
        return handler

    await on_a.subscribe(on_event(got_a), "com.example.news")
    await on_b.subscribe(on_event(got_b), "com.example.news")
    await node_a.until(lambda n: ("realm1", "exact", "com.example.news") in n.topics_of("B"))
    await node_b.until(lambda n: ("realm1", "exact", "com.example.news") in n.topics_of("A"))
    conn = await connect(reactor, parse_redis_url(redis.url))
    for n in range(3):
        await push(conn, "realm1", {"topic": "com.example.news", "args": [n], "kwargs": {"by": "shell"}})
    await done.addTimeout(10, reactor)
    expected = [((n,), {"by": "shell"}) for n in range(3)]
    assert got_a == expected and got_b == expected
    assert node_a.push.published + node_b.push.published == 3
    conn.close()
    await leave(on_a)
    await leave(on_b)


@pytest_twisted.ensureDeferred
async def test_bad_or_unauthorized_pushes_are_dropped_and_logged(nodes, redis):
    """Not JSON, a reserved topic, or a role without publish permission: nothing is published, and the drop is logged."""
    guarded = realm_from_toml(
        '[[realm]]\nname = "realm1"\n[[realm.role]]\nname = "pusher"\n'
        'permissions = [ { uri = "com.example.open", publish = true } ]\n'
        '[[realm.role]]\nname = "anonymous"\npermissions = [ { uri = "com.example.", match = "prefix", subscribe = true } ]\n'
    )
    a, node_a = await nodes.add("A", push_role="pusher", realms=(guarded,))
    client = await join(a.ws_url)
    received = []
    fence = Deferred()
    await client.subscribe(lambda *args: received.append(args), "com.example.closed")
    await client.subscribe(lambda *args: fence.callback(args), "com.example.open")
    conn = await connect(reactor, parse_redis_url(redis.url))
    with logged(in_namespaces("wampd.cluster.push")) as lines:
        await push(conn, "realm1", "{not json")
        await push(conn, "realm1", {"topic": "com.example.closed", "args": [1]})
        await push(conn, "realm1", {"topic": "com.example.open", "args": ["after"]})
        assert await fence.addTimeout(10, reactor) == ("after",)
    assert received == []
    assert lines and "dropped 1 push(es) to realm realm1" in lines[0]["log_format"].format(**lines[0])
    conn.close()
    await leave(client)


def test_push_validation_says_what_is_wrong():
    """Each malformed push gets a reason naming the key."""
    assert push_problem([1]) == "a push must be a JSON object, got list"
    assert "'topic' must be a valid URI" in push_problem({"topic": "no spaces allowed"})
    assert "reserved" in push_problem({"topic": "wamp.session.kill"})
    assert push_problem({"topic": "a.b", "args": {}}) == "'args' must be a list"
    assert "unknown keys ['extra']" in push_problem({"topic": "a.b", "extra": 1})
    assert "'options' must be an object" in push_problem({"topic": "a.b", "options": {"acknowledge": True}})
    assert push_problem({"topic": "a.b", "args": [1], "kwargs": {"k": 2}, "options": {"retain": True}}) is None
