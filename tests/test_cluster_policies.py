"""
Shared registrations' invocation policies across cluster nodes (real
redis-server, in-process nodes, real autobahn-python clients): roundrobin and
random pick among every node's callees, first and last by registration time
cluster-wide (and the next in time takes over when that callee or its node
goes), and ``prefer_local`` keeps a node's own callees first.
"""

from __future__ import annotations

from collections import Counter

import pytest
import pytest_twisted
from autobahn.wamp.types import RegisterOptions

from router.app import App
from router.config import ClusterConfig
from tests.cluster_helpers import nodes, redis  # noqa: F401 (fixtures)
from tests.conftest import LiveRouter, make_service
from tests.wamp_clients import join, leave

URI = "com.example.shared"


def counted(timed: bool = False, **expected: int):
    """
    A ClusterNode.until predicate: this node knows exactly ``expected`` callees of URI per
    other node (``timed``: and their registration times, for first and last).
    """

    def known(node) -> bool:
        seen = node.calls.procedures.callees("realm1", URI)
        return {name: summary[0] for name, summary in seen.items()} == expected and (
            not timed or all(summary[1] is not None for summary in seen.values())
        )

    return known


async def callee(url: str, name: str, invoke: str, uri: str = URI):
    """A client on ``url`` registering ``uri`` with ``invoke``, answering with its ``name``."""
    session = await join(url)
    registration = await session.register(lambda: name, uri, options=RegisterOptions(invoke=invoke))
    return session, registration


async def calls(session, count: int, uri: str = URI) -> Counter:
    """``count`` calls one after the other: how many each callee answered."""
    return Counter([await session.call(uri) for _ in range(count)])


async def three_and_one(nodes, invoke: str, b=None):
    """Node A with callees a1, a2, a3 and node B (``b``: a started (LiveRouter, node)) with b1, each knowing the other's."""
    a, node_a = await nodes.add("A")
    b, node_b = b or await nodes.add("B")
    sessions = [(await callee(a.ws_url, f"a{i}", invoke))[0] for i in (1, 2, 3)]
    sessions.append((await callee(b.ws_url, "b1", invoke))[0])
    await node_b.until(counted(A=3))
    await node_a.until(counted(B=1))
    return a, node_a, b, node_b, sessions


@pytest_twisted.ensureDeferred
async def test_roundrobin_takes_turns_over_every_callee_in_the_cluster(nodes):
    """3 callees on A, 1 on B: 40 calls from a caller on B, then 40 from one on A, give each callee 10 of each."""
    a, _, b, _, sessions = await three_and_one(nodes, "roundrobin")
    on_b, on_a = await join(b.ws_url), await join(a.ws_url)
    assert await calls(on_b, 40) == {"a1": 10, "a2": 10, "a3": 10, "b1": 10}
    assert await calls(on_a, 40) == {"a1": 10, "a2": 10, "a3": 10, "b1": 10}
    for session in (on_a, on_b, *sessions):
        await leave(session)


@pytest_twisted.ensureDeferred
async def test_random_draws_from_every_callee_in_the_cluster(nodes):
    """3 callees on A, 1 on B, random: 200 calls from B reach all four, each about a quarter (none near all or none)."""
    _, _, b, _, sessions = await three_and_one(nodes, "random")
    on_b = await join(b.ws_url)
    got = await calls(on_b, 200)
    assert set(got) == {"a1", "a2", "a3", "b1"}
    assert all(20 <= n <= 80 for n in got.values()), got  # expected 50 each; 20 is five deviations away
    await leave(on_b)
    for session in sessions:
        await leave(session)


@pytest.mark.parametrize("invoke,before,after", [("first", "a1", "b1"), ("last", "b2", "a2")])
@pytest_twisted.ensureDeferred
async def test_first_and_last_follow_registration_time_across_nodes(nodes, invoke, before, after):
    """
    Callees registered a1 (A), b1 (B), a2 (A), b2 (B): callers on both nodes reach the
    earliest (first) or latest (last) of the cluster; once it unregisters, the next in time.
    """
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    registered = {}
    for name, (live, other, expect) in [
        ("a1", (a, node_b, {"A": 1})), ("b1", (b, node_a, {"B": 1})),
        ("a2", (a, node_b, {"A": 2})), ("b2", (b, node_a, {"B": 2})),
    ]:
        registered[name] = await callee(live.ws_url, name, invoke)
        await other.until(counted(True, **expect))
    on_a, on_b = await join(a.ws_url), await join(b.ws_url)
    assert await calls(on_a, 4) == await calls(on_b, 4) == {before: 4}
    session, registration = registered.pop(before)
    await registration.unregister()
    await node_a.until(counted(True, B=1 if before.startswith("b") else 2))
    await node_b.until(counted(True, A=1 if before.startswith("a") else 2))
    assert await calls(on_a, 4) == await calls(on_b, 4) == {after: 4}
    for session in (on_a, on_b, session, *(s for s, _ in registered.values())):
        await leave(session)


@pytest.mark.parametrize("how", ["stops", "dies"])
@pytest_twisted.ensureDeferred
async def test_first_moves_on_when_its_callees_node_goes(nodes, how):
    """first: a1 on A is the earliest; when node A stops (or dies without a word), b1 on B takes the calls."""
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    on_a, _ = await callee(a.ws_url, "a1", "first")
    await node_b.until(counted(True, A=1))
    on_b, _ = await callee(b.ws_url, "b1", "first")
    caller = await join(b.ws_url)
    assert await calls(caller, 3) == {"a1": 3}
    if how == "stops":
        await node_a.stop()
    else:  # as if killed: no goodbye, no heartbeat
        node_a._beat.stop()
        node_a._drop_connections()
    await node_b.until(lambda n: n.nodes == [], timeout=5)
    assert await calls(caller, 3) == {"b1": 3}
    for session in (caller, on_b, on_a):
        await leave(session)


@pytest_twisted.ensureDeferred
async def test_registration_times_keep_their_order_when_redis_restarts(nodes, redis):
    """last: a1 registered, Redis restarted (its data gone), then b1: b1 is the latest, from both nodes."""
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    on_a, _ = await callee(a.ws_url, "a1", "last")
    await node_b.until(counted(True, A=1))
    redis.stop()
    await node_a.until(lambda n: not n.connected)
    await node_b.until(lambda n: not n.connected)
    redis.start()
    await node_b.until(lambda n: n.connected and counted(True, A=1)(n), timeout=15)
    await node_a.until(lambda n: n.connected, timeout=15)
    on_b, _ = await callee(b.ws_url, "b1", "last")
    await node_a.until(counted(True, B=1))
    a1_time = node_b.calls.procedures.callees("realm1", URI)["A"][2]
    b1_time = node_a.calls.procedures.callees("realm1", URI)["B"][2]
    assert b1_time > a1_time
    caller_a, caller_b = await join(a.ws_url), await join(b.ws_url)
    assert await calls(caller_a, 3) == await calls(caller_b, 3) == {"b1": 3}
    for session in (caller_a, caller_b, on_a, on_b):
        await leave(session)


@pytest_twisted.ensureDeferred
async def test_prefer_local_serves_a_local_callee_first(nodes, redis):
    """[cluster] prefer_local = true on node B: B's callers reach b1 only; once b1 leaves, roundrobin over A's three."""
    cluster = ClusterConfig(url=redis.url, name="B", heartbeat=0.1, timeout=0.6, prefer_local=True)
    service = make_service(cluster=cluster)
    await service.startService()
    try:
        _, _, b, _, sessions = await three_and_one(nodes, "roundrobin", (LiveRouter(service, None), service.cluster))
        caller = await join(b.ws_url)
        assert await calls(caller, 8) == {"b1": 8}
        await leave(sessions.pop())
        assert await calls(caller, 9) == {"a1": 3, "a2": 3, "a3": 3}
        for session in (caller, *sessions):
            await leave(session)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_precedence_among_other_nodes_wildcard_registrations(nodes):
    """Two wildcard registrations on B match a call from A: the one with the longer literal runs serves it (the spec's order)."""
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    on_b = await join(b.ws_url)
    await on_b.register(lambda: "loose", "com...get", options=RegisterOptions(match="wildcard"))
    await on_b.register(lambda: "tight", "com.example..get", options=RegisterOptions(match="wildcard"))
    await node_a.until(lambda n: n.calls.procedures.best("realm1", "com.other.x.get") == {"B"})
    await node_a.until(lambda n: n.calls.procedures.callees("realm1", "com.example..get", "wildcard") == {"B": (1, None, None)})
    caller = await join(a.ws_url)
    assert await caller.call("com.example.x.get") == "tight"
    assert await caller.call("com.other.x.get") == "loose"
    await leave(caller)
    await leave(on_b)


@pytest_twisted.ensureDeferred
async def test_an_apps_shared_procedure_is_served_on_each_node(nodes):
    """An App on every node registers a roundrobin procedure (plus a client callee on B): each node's callers stay on their node."""

    def app(name: str) -> App:
        made = App()
        made.add_procedure(URI, lambda call: name, invoke="roundrobin")
        return made

    a, node_a = await nodes.add("A", config={"app_objects": [app("A")]})
    b, node_b = await nodes.add("B", config={"app_objects": [app("B")]})
    on_b, _ = await callee(b.ws_url, "b1", "roundrobin")
    await node_a.until(counted(B=2))
    await node_b.until(counted(A=1))
    caller_a, caller_b = await join(a.ws_url), await join(b.ws_url)
    assert await calls(caller_a, 6) == {"A": 6}
    assert await calls(caller_b, 6) == {"B": 3, "b1": 3}
    for session in (caller_a, caller_b, on_b):
        await leave(session)
