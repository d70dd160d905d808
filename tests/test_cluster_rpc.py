"""
Calls across cluster nodes: a caller on node A reaches a callee on node B
(in-process routers joined through a real redis-server, real autobahn-python
clients), with results, errors, progressive results, caller disclosure,
timeouts and cancellation; a call never ends in silence when the callee's node
dies or Redis goes away.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, RegisterOptions
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from tests.cluster_helpers import nodes, redis  # noqa: F401 (fixtures)
from tests.raw_client import answer_to, send_any
from tests.wamp_clients import join, leave


def knows(procedure: str, node: str = "B", match: str = "exact"):
    """A ClusterNode.until predicate: this node knows ``node`` registered ``procedure``."""
    return lambda n: n.calls.procedures.best("realm1", procedure) == {node}


async def pair(nodes):
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    return a, node_a, b, node_b


async def hanging_callee(b, node_a):
    """A callee on node ``b`` of ``com.example.hang``, whose invocations wait on Deferreds (returned), known to node A."""
    callee = await join(b.ws_url)
    hanging: list = []

    def hang():
        d = Deferred()
        hanging.append(d)
        return d

    await callee.register(hang, "com.example.hang")
    await node_a.until(knows("com.example.hang"))
    return callee, hanging


@pytest_twisted.ensureDeferred
async def test_a_caller_reaches_a_callee_on_another_node(nodes):
    """CALL on node A, callee on node B: RESULT with args and kwargs; the caller is disclosed only when it asks (disclose_me)."""
    a, node_a, b, _ = await pair(nodes)
    callee = await join(b.ws_url)
    seen = []

    def add(x, y, scale=1, details=None):
        seen.append(details.caller)
        return (x + y) * scale

    await callee.register(add, "com.example.add", options=RegisterOptions(details_arg="details"))
    await node_a.until(knows("com.example.add"))
    caller = await join(a.ws_url)
    assert await caller.call("com.example.add", 2, 3, scale=10) == 50
    # autobahn-python has no disclose_me option: a hand-made CALL
    send_any(caller, [48, 1_000_001, {"disclose_me": True}, "com.example.add", [1, 1]])
    answer = await answer_to(caller, 1_000_001)
    assert answer.args == [2]
    assert seen == [None, caller.sid]
    assert node_a.calls.forwarded == 2
    assert len(node_a.calls.outgoing) == 0
    await leave(caller)
    await leave(callee)


@pytest_twisted.ensureDeferred
async def test_errors_and_unknown_procedures_across_nodes(nodes):
    """A remote callee's ApplicationError reaches the caller with its URI and args; nowhere registered is no_such_procedure."""
    a, node_a, b, _ = await pair(nodes)
    callee = await join(b.ws_url)

    def fails():
        raise ApplicationError("com.example.error.no_luck", "sorry", 7)

    await callee.register(fails, "com.example.fails")
    await node_a.until(knows("com.example.fails"))
    caller = await join(a.ws_url)
    with pytest.raises(ApplicationError) as info:
        await caller.call("com.example.fails")
    assert info.value.error == "com.example.error.no_luck"
    assert info.value.args == ("sorry", 7)
    with pytest.raises(ApplicationError) as missing:
        await caller.call("com.example.nowhere")
    assert missing.value.error == "wamp.error.no_such_procedure"
    await leave(caller)
    await leave(callee)


@pytest_twisted.ensureDeferred
async def test_progressive_results_and_pattern_registrations_cross_nodes(nodes):
    """A prefix registration on node B serves a call from node A, sending two progressive results before the last."""
    a, node_a, b, _ = await pair(nodes)
    callee = await join(b.ws_url)

    def count(n, details=None):
        for i in range(n):
            details.progress(i)
        return "done"

    await callee.register(count, "com.example.count", options=RegisterOptions(match="prefix", details_arg="details"))
    await node_a.until(lambda n: n.calls.procedures.best("realm1", "com.example.count.up") == {"B"})
    caller = await join(a.ws_url)
    progress = []
    result = await caller.call("com.example.count.up", 2, options=CallOptions(on_progress=progress.append))
    assert (progress, result) == ([0, 1], "done")
    await leave(caller)
    await leave(callee)


@pytest_twisted.ensureDeferred
async def test_timeouts_and_cancel_across_nodes(nodes):
    """A call's timeout runs on the callee's node (ERROR timeout); a caller's CANCEL reaches the callee (ERROR canceled)."""
    a, node_a, b, _ = await pair(nodes)
    callee, hanging = await hanging_callee(b, node_a)
    caller = await join(a.ws_url)
    with pytest.raises(ApplicationError) as timed_out:
        await caller.call("com.example.hang", options=CallOptions(timeout=200))  # milliseconds, as the spec says
    assert timed_out.value.error == "wamp.error.timeout"
    call = caller.call("com.example.hang")
    while len(hanging) < 2:  # the INVOCATION reached the callee on node B
        await callee.call("wamp.session.count")  # a round trip to node B, not a sleep
    call.cancel()
    with pytest.raises(Exception):
        await call
    await node_a.until(lambda n: len(n.calls.outgoing) == 0)
    await leave(caller)
    await leave(callee)


@pytest_twisted.ensureDeferred
async def test_a_call_in_flight_to_a_node_that_dies_ends_in_error(nodes):
    """The callee's node stops beating (killed): the call in flight to it ends with ERROR unavailable, never silence."""
    a, node_a, b, node_b = await pair(nodes)
    callee = await join(b.ws_url)
    await callee.register(lambda: Deferred(), "com.example.hang")
    await node_a.until(knows("com.example.hang"))
    caller = await join(a.ws_url)
    call = caller.call("com.example.hang")
    await node_a.until(lambda n: len(n.calls.outgoing) == 1)
    node_b._beat.stop()  # as if killed: no goodbye; its heartbeat key expires
    node_b._drop_connections()
    with pytest.raises(ApplicationError) as info:
        await call
    assert info.value.error == "wamp.error.unavailable"
    assert "node B" in info.value.args[0]
    await leave(caller)


@pytest_twisted.ensureDeferred
async def test_calls_while_redis_is_away_get_an_error_at_once(nodes, redis):
    """Redis stopped: a call in flight to another node ends with ERROR unavailable, and so does a new one; local calls still work."""
    a, node_a, b, _ = await pair(nodes)
    callee = await join(b.ws_url)
    await callee.register(lambda: Deferred(), "com.example.hang")
    local_callee = await join(a.ws_url)
    await local_callee.register(lambda: "here", "com.example.local")
    await node_a.until(knows("com.example.hang"))
    caller = await join(a.ws_url)
    in_flight = caller.call("com.example.hang")
    await node_a.until(lambda n: len(n.calls.outgoing) == 1)
    redis.stop()
    with pytest.raises(ApplicationError) as first:
        await in_flight
    assert first.value.error == "wamp.error.unavailable"
    with pytest.raises(ApplicationError) as second:
        await caller.call("com.example.hang")
    assert second.value.error == "wamp.error.unavailable"
    assert "unreachable" in second.value.args[0]
    assert await caller.call("com.example.local") == "here"
    await leave(caller)
    await leave(local_callee)


@pytest_twisted.ensureDeferred
async def test_calls_in_flight_to_another_node_are_bounded_per_caller(nodes):
    """max_calls_in_flight bounds a caller's calls waiting on another node too: one more gets ERROR too_many_calls at once."""
    a, node_a = await nodes.add("A", config={"max_calls_in_flight": 2})
    b, _ = await nodes.add("B")
    callee, hanging = await hanging_callee(b, node_a)
    caller = await join(a.ws_url)
    first, second = caller.call("com.example.hang"), caller.call("com.example.hang")
    await node_a.until(lambda n: len(n.calls.outgoing) == 2)
    with pytest.raises(ApplicationError) as info:
        await caller.call("com.example.hang")
    assert info.value.error == "wampd.error.too_many_calls"
    assert len(node_a.calls.outgoing) == 2
    for d in hanging:
        d.callback("done")
    assert (await first, await second) == ("done", "done")
    await leave(caller)
    await leave(callee)
