"""
The session meta API across cluster nodes (real redis-server, in-process
nodes, real autobahn-python clients): count, list and get answer for the whole
cluster; on_join and on_leave reach subscribers on every node; a dead node's
sessions leave (on_leave published by each survivor to its own subscribers).
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from tests.cluster_helpers import nodes, redis  # noqa: F401 (fixtures)
from tests.wamp_clients import join, leave


def sees(count: int, node: str = "B"):
    return lambda n: len(n.sessions._remote.get(node, {})) == count


@pytest_twisted.ensureDeferred
async def test_session_count_list_and_get_answer_for_the_cluster(nodes):
    """Two sessions on node B, one on node A: A's meta API counts, lists and describes all three."""
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    on_b = [await join(b.ws_url), await join(b.ws_url)]
    on_a = await join(a.ws_url)
    await node_a.until(sees(2))
    assert await on_a.call("wamp.session.count") == 3
    assert sorted(await on_a.call("wamp.session.list")) == sorted([on_a.sid] + [c.sid for c in on_b])
    details = await on_a.call("wamp.session.get", on_b[0].sid)
    assert (details["session"], details["authrole"]) == (on_b[0].sid, "anonymous")
    assert await on_a.call("wamp.session.count", ["nobody"]) == 0
    await leave(on_b[1])
    await node_a.until(sees(1))
    with pytest.raises(ApplicationError) as info:
        await on_a.call("wamp.session.get", on_b[1].sid)
    assert info.value.error == "wamp.error.no_such_session"
    await leave(on_b[0])
    await leave(on_a)


@pytest_twisted.ensureDeferred
async def test_join_and_leave_events_reach_every_node_and_a_dead_nodes_sessions_leave(nodes):
    """A subscriber on node A hears on_join and on_leave of node B's sessions once each, also when B dies."""
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    watcher = await join(a.ws_url)
    joins, leaves = [], []
    left_twice = Deferred()

    def on_leave(sid, authid, authrole):
        leaves.append(sid)
        if len(leaves) == 2 and not left_twice.called:
            left_twice.callback(None)

    await watcher.subscribe(lambda details: joins.append(details["session"]), "wamp.session.on_join")
    await watcher.subscribe(on_leave, "wamp.session.on_leave")
    await node_b.until(lambda n: ("realm1", "exact", "wamp.session.on_leave") in n.topics_of("A"))
    first, second = await join(b.ws_url), await join(b.ws_url)
    await node_a.until(sees(2))
    await leave(first)
    node_b._beat.stop()  # as if killed: 'second' never says goodbye
    node_b._drop_connections()
    await left_twice.addTimeout(10, reactor)
    assert sorted(joins) == sorted([first.sid, second.sid])
    assert leaves == [first.sid, second.sid]
    assert await watcher.call("wamp.session.count") == 1
    await leave(watcher)
