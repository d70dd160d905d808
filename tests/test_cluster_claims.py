"""
Registrations that must agree across cluster nodes (real redis-server,
in-process nodes, real autobahn-python clients): a ``single`` registration is
unique cluster-wide, shared ones agree on one invocation policy, a dead node's
registrations are released, and a new registration is refused while Redis is away.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions

from tests.cluster_helpers import nodes, redis  # noqa: F401 (fixtures)
from tests.wamp_clients import join, leave


async def refused(session, procedure, **options):
    with pytest.raises(ApplicationError) as info:
        await session.register(lambda: None, procedure, options=RegisterOptions(**options) if options else None)
    return info.value


@pytest_twisted.ensureDeferred
async def test_a_single_registration_is_unique_across_nodes(nodes):
    """Node B holds com.example.one: a REGISTER on node A is refused; once B's callee unregisters, A may."""
    a, _ = await nodes.add("A")
    b, _ = await nodes.add("B")
    on_b, on_a = await join(b.ws_url), await join(a.ws_url)
    registration = await on_b.register(lambda: "b", "com.example.one")
    error = await refused(on_a, "com.example.one")
    assert error.error == "wamp.error.procedure_already_exists"
    assert "on another node" in error.args[0]
    await registration.unregister()
    await on_a.register(lambda: "a", "com.example.one")
    assert await on_b.call("com.example.one") == "a"  # B has none now: forwarded to A
    await leave(on_a)
    await leave(on_b)


@pytest_twisted.ensureDeferred
async def test_shared_registrations_agree_on_one_policy_across_nodes(nodes):
    """roundrobin on node B: node A may join with roundrobin, not with random (the error names both)."""
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    on_b, on_a = await join(b.ws_url), await join(a.ws_url)
    await on_b.register(lambda: "b", "com.example.shared", options=RegisterOptions(invoke="roundrobin"))
    error = await refused(on_a, "com.example.shared", invoke="random")
    assert error.error == "wamp.error.procedure_exists_with_different_invocation_policy"
    assert "'roundrobin' on another node, not 'random'" in error.args[0]
    await on_a.register(lambda: "a", "com.example.shared", options=RegisterOptions(invoke="roundrobin"))
    await node_a.until(lambda n: "B" in n.calls.procedures.callees("realm1", "com.example.shared"))
    # roundrobin over both nodes' callees, this node's first
    assert [await on_a.call("com.example.shared") for _ in range(4)] == ["a", "b", "a", "b"]
    await leave(on_a)
    await leave(on_b)


@pytest_twisted.ensureDeferred
async def test_a_dead_nodes_registrations_are_released(nodes):
    """Node B dies holding a single registration: once it is forgotten, node A may register the procedure."""
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    on_b, on_a = await join(b.ws_url), await join(a.ws_url)
    await on_b.register(lambda: "b", "com.example.one")
    assert (await refused(on_a, "com.example.one")).error == "wamp.error.procedure_already_exists"
    node_b._beat.stop()  # as if killed
    node_b._drop_connections()
    await node_a.until(lambda n: n.nodes == [], timeout=5)
    await on_a.register(lambda: "a", "com.example.one")
    assert await on_a.call("com.example.one") == "a"
    await leave(on_a)


@pytest_twisted.ensureDeferred
async def test_a_new_registration_is_refused_while_redis_is_away(nodes, redis):
    """Redis stopped: a REGISTER for a procedure this node doesn't serve gets ERROR unavailable; Redis back, it works."""
    a, node_a = await nodes.add("A")
    on_a = await join(a.ws_url)
    redis.stop()
    await node_a.until(lambda n: not n.connected)
    error = await refused(on_a, "com.example.later")
    assert error.error == "wamp.error.unavailable"
    assert "Redis at unix:" in error.args[0]
    redis.start()
    await node_a.until(lambda n: n.connected, timeout=15)
    await on_a.register(lambda: "now", "com.example.later")
    assert await on_a.call("com.example.later") == "now"
    await leave(on_a)
