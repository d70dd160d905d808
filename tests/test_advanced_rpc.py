"""
The advanced profile's RPC features with real autobahn-python clients over
loopback: pattern-based and shared registrations, progressive call results
and invocations, cancellation, timeouts, caller identification, a caller
leaving mid-call, and the registration meta API.

Where autobahn-python cannot send or announce something (``disclose_me``,
CANCEL modes, ``progressive_call_invocations``), messages are hand-made:
:func:`tests.raw_client.send_any` from an autobahn client, or a
:class:`tests.raw_client.RawPeer` that speaks WAMP message by message.
Messages are checked as they arrived (``Client.inbox`` / ``RawPeer.received``).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone

import pytest
import pytest_twisted
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, RegisterOptions
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock

from tests.raw_client import (
    ABORT,
    CALL,
    CANCEL,
    ERROR,
    INTERRUPT,
    INVOCATION,
    RESULT,
    YIELD,
    Calls,
    answer_to,
    bounded,
    connect_raw,
    departed,
    fence,
    send_any,
    wait_inbox,
)
from tests.wamp_clients import SERIALIZERS, TRANSPORTS, join, leave, named

COMBOS = [(t, s) for t in TRANSPORTS for s in SERIALIZERS]
DETAILS = "details"

#: What a raw callee announces: everything a callee can do here.
FULL_CALLEE = {
    "callee": {
        "features": {
            "call_canceling": True,
            "progressive_call_results": True,
            "progressive_call_invocations": True,
            "pattern_based_registration": True,
            "shared_registration": True,
            "caller_identification": True,
        }
    }
}
STREAMING_CALLER = {
    "caller": {
        "features": {"progressive_call_invocations": True, "progressive_call_results": True, "call_canceling": True}
    }
}
PLAIN_CALLEE = {"callee": {}}


def invocations(client):
    return [m for m in client.inbox if isinstance(m, message.Invocation)]


def interrupts(client):
    return [m for m in client.inbox if isinstance(m, message.Interrupt)]


class Held:
    """A procedure whose invocations stay open until the test answers them."""

    def __init__(self) -> None:
        self.pending: list[Deferred] = []
        self.calls = Calls(reply=self._hold)

    def _hold(self, *args, **kwargs):
        d = Deferred()
        self.pending.append(d)
        return d


async def raw_peer(live_router, roles, transport="websocket", serializer="json", **details):
    peer = await connect_raw(live_router.address(transport), transport, serializer)
    welcome = await peer.hello(roles, **details)
    assert welcome[0] == 2, welcome
    return peer


async def close(*peers) -> None:
    for peer in peers:
        if not peer.closed.called:
            await peer.goodbye()


@contextlib.contextmanager
def router_clock(live_router):
    """Drive the router's timers (call timeouts) by hand."""
    router = live_router.service.router
    real, clock = router.clock, Clock()
    clock.advance(real.seconds())
    router.clock = clock
    try:
        yield clock
    finally:
        router.clock = real


# -- pattern-based registrations -----------------------------------------------------------

#: The spec's example registrations, in its numbering.
SPEC_REGISTRATIONS = [
    (1, "a1.b2.c3.d4.e55", "exact"),
    (2, "a1.b2.c3", "prefix"),
    (3, "a1.b2.c3.d4", "prefix"),
    (4, "a1.b2..d4.e5", "wildcard"),
    (5, "a1.b2.c33..e5", "wildcard"),
    (6, "a1.b2..d4.e5..g7", "wildcard"),
    (7, "a1.b2..d4..f6.g7", "wildcard"),
]
#: The spec's example calls and the registration each must reach.
SPEC_CALLS = [
    ("a1.b2.c3.d4.e55", 1),  # exact match
    ("a1.b2.c3.d98.e74", 2),  # single prefix match
    ("a1.b2.c3.d4.e325", 3),  # two prefix matches: the longest
    ("a1.b2.c55.d4.e5", 4),  # single wildcard match
    ("a1.b2.c33.d4.e5", 2),  # the spec says 5: see the test's docstring
    ("a1.b2.c88.d4.e5.f6.g7", 6),  # equal first portions: the longer second portion
]


@pytest.mark.parametrize("transport,serializer", COMBOS)
@pytest_twisted.ensureDeferred
async def test_pattern_registration_precedence(live_router, transport, serializer):
    """
    The spec's precedence examples: exact, then the longest prefix, then the
    wildcard whose literal portions (read left to right) are longest, else
    ``wamp.error.no_such_procedure``.  ``INVOCATION.Details.procedure`` carries
    the concrete URI for pattern registrations and is absent for exact ones;
    ``wamp.registration.match`` names the same registration.

    The spec contradicts itself on one example: it routes ``a1.b2.c33.d4.e5``
    to wildcard RPC 5 saying there is "no prefix match", but its own prefix
    rule (a registration matches every procedure it is a string prefix of:
    ``com.myapp.myobject1`` matches ``com.myapp.myobject1-mysubobject1``)
    makes prefix RPC 2 (``a1.b2.c3``) match, and a prefix match wins over a
    wildcard.  wampd follows the prefix rule, as Crossbar does; the wildcard
    choice between RPC 4 and 5 is checked once RPC 2 is gone.
    """
    address = live_router.address(transport)
    callee = await join(address, transport, serializer)
    caller = await join(address, transport, serializer)
    registrations = {}
    handlers = {}
    for number, uri, match in SPEC_REGISTRATIONS:
        handlers[number] = Calls(reply=lambda number=number: number)
        reg = await callee.register(
            handlers[number], uri, options=RegisterOptions(match=match, details_arg=DETAILS)
        )
        registrations[number] = reg.id

    for uri, number in SPEC_CALLS:
        assert await caller.call(uri) == number, uri
        assert await caller.call("wamp.registration.match", uri) == registrations[number]
    with pytest.raises(ApplicationError) as info:
        await caller.call("a2.b2.c2.d2.e2")
    assert info.value.error == "wamp.error.no_such_procedure"
    assert await caller.call("wamp.registration.match", "a2.b2.c2.d2.e2") is None

    got = [(m.registration, m.procedure) for m in invocations(callee)]
    assert got == [
        (registrations[number], None if number == 1 else uri) for uri, number in SPEC_CALLS
    ]
    # autobahn hands the concrete procedure to the endpoint as CallDetails.procedure
    assert handlers[4].details[0].procedure == "a1.b2.c55.d4.e5"

    # without the prefix a1.b2.c3: two wildcard matches (4, 5), the longer first portion wins
    await callee._registrations[registrations[2]].unregister()
    assert await caller.call("a1.b2.c33.d4.e5") == 5
    assert invocations(callee)[-1].procedure == "a1.b2.c33.d4.e5"
    with pytest.raises(ApplicationError) as info:
        await caller.call("a1.b2.c3.d98.e74")
    assert info.value.error == "wamp.error.no_such_procedure"
    await leave(callee)
    await leave(caller)


@pytest_twisted.ensureDeferred
async def test_registering_reserved_procedures_is_not_authorized(live_router):
    c = await join(live_router.ws_url)
    for uri, match in (("wamp.session.count", "exact"), ("wamp.my", "prefix"), ("wamp..x", "wildcard")):
        with pytest.raises(ApplicationError) as info:
            await c.register(lambda: 1, uri, options=RegisterOptions(match=match))
        assert info.value.error == "wamp.error.not_authorized", uri
    assert await c.call("wamp.session.count") == 1  # the router's own procedure is untouched
    await leave(c)


# -- shared registrations ---------------------------------------------------------------------------


async def _callees(live_router, n, procedure, invoke):
    callees = []
    for i in range(n):
        c = await join(live_router.ws_url)
        await c.register(lambda i=i: i, procedure, options=RegisterOptions(invoke=invoke))
        callees.append(c)
    return callees


@pytest_twisted.ensureDeferred
async def test_shared_registration_policies(live_router):
    """
    roundrobin cycles through the callees in registration order; random picks
    among them; first and last pick the first and last current callee (hot
    standby: the next takes over when it goes).  All callees share one
    registration.
    """
    caller = await join(live_router.ws_url)

    rr = await _callees(live_router, 3, "com.example.rr", "roundrobin")
    assert [await caller.call("com.example.rr") for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    reg_id = await caller.call("wamp.registration.lookup", "com.example.rr")
    assert sorted(await caller.call("wamp.registration.list_callees", reg_id)) == sorted(c.sid for c in rr)
    assert (await caller.call("wamp.registration.get", reg_id))["invoke"] == "roundrobin"

    rnd = await _callees(live_router, 2, "com.example.random", "random")
    picked = [await caller.call("com.example.random") for _ in range(40)]
    assert set(picked) == {0, 1}  # 2 * 2**-40 odds of a false failure

    first = await _callees(live_router, 3, "com.example.first", "first")
    assert {await caller.call("com.example.first") for _ in range(4)} == {0}
    await leave(first[0])
    await departed(live_router, first[0])
    assert {await caller.call("com.example.first") for _ in range(4)} == {1}

    last = await _callees(live_router, 3, "com.example.last", "last")
    assert {await caller.call("com.example.last") for _ in range(4)} == {2}
    registration = last[2]._registrations
    await list(registration.values())[0].unregister()
    assert {await caller.call("com.example.last") for _ in range(4)} == {1}

    for client in [caller, *rr, *rnd, *first[1:], *last]:
        await leave(client)


@pytest_twisted.ensureDeferred
async def test_shared_registration_refusals(live_router):
    """
    A REGISTER whose invocation policy differs from the registration's gets
    ``wamp.error.procedure_exists_with_different_invocation_policy`` (the URI
    Autobahn defines and Crossbar answers; the spec names none), whichever side
    is ``single``; a second ``single`` REGISTER gets
    ``wamp.error.procedure_already_exists``.  A session registering the same
    shared procedure twice is refused too (its client could not tell the two
    registrations apart: same id).
    """
    different = "wamp.error.procedure_exists_with_different_invocation_policy"
    a = await join(live_router.ws_url)
    b = await join(live_router.ws_url)
    await a.register(lambda: 1, "com.example.single")
    for options, uri in (
        (None, "wamp.error.procedure_already_exists"),
        (RegisterOptions(invoke="single"), "wamp.error.procedure_already_exists"),
        (RegisterOptions(invoke="roundrobin"), different),
    ):
        with pytest.raises(ApplicationError) as info:
            await b.register(lambda: 2, "com.example.single", options=options)
        assert info.value.error == uri, options

    await a.register(lambda: 1, "com.example.shared", options=RegisterOptions(invoke="roundrobin"))
    for invoke in ("single", "random", "first", "last"):
        with pytest.raises(ApplicationError) as info:
            await b.register(lambda: 2, "com.example.shared", options=RegisterOptions(invoke=invoke))
        assert info.value.error == different, invoke
        assert "'roundrobin'" in info.value.args[0] and repr(invoke) in info.value.args[0]
    send_any(a, [64, 1_000_001, {"invoke": "roundrobin"}, "com.example.shared"])
    reply = await answer_to(a, 1_000_001)
    assert (type(reply), reply.error) == (message.Error, "wamp.error.procedure_already_exists")
    await b.register(lambda: 2, "com.example.shared", options=RegisterOptions(invoke="roundrobin"))
    # the same URI under another match policy is another registration
    await b.register(lambda: 3, "com.example.single", options=RegisterOptions(match="prefix"))
    await leave(a)
    await leave(b)


# -- progressive call results -------------------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", COMBOS)
@pytest_twisted.ensureDeferred
async def test_progressive_call_results(live_router, transport, serializer):
    """
    CALL ``receive_progress`` reaches the callee as ``INVOCATION.Details.receive_progress``;
    each YIELD ``progress`` becomes a RESULT with ``progress``; the final YIELD
    ends the call.  Without ``receive_progress`` the callee is not asked for
    progress.
    """
    address = live_router.address(transport)
    callee = await join(address, transport, serializer)
    caller = await join(address, transport, serializer)

    def count(n, details):
        for i in range(n):
            details.progress(i, step=i)
        return "done"

    await callee.register(count, "com.example.count", options=RegisterOptions(details_arg="details"))
    progress = Calls()
    assert await caller.call("com.example.count", 3, options=CallOptions(on_progress=progress)) == "done"
    assert [(c[0], c[1]) for c in progress.calls] == [((i,), {"step": i}) for i in range(3)]
    results = [m for m in caller.inbox if isinstance(m, message.Result)]
    assert [(m.progress, m.args) for m in results] == [(True, [0]), (True, [1]), (True, [2]), (None, ["done"])]
    assert invocations(callee)[-1].receive_progress is True

    # no receive_progress: autobahn's endpoint gets no progress callback, and the call still works
    def plain(details):
        return details.progress is None

    await callee.register(plain, "com.example.plain", options=RegisterOptions(details_arg="details"))
    assert await caller.call("com.example.plain") is True
    assert invocations(callee)[-1].receive_progress is None
    await leave(callee)
    await leave(caller)


@pytest_twisted.ensureDeferred
async def test_progressive_results_need_callee_and_caller_consent(live_router):
    """
    A progressive YIELD for a caller that did not ask for progress is dropped
    (the final one still arrives).  A callee that announces progressive call
    results without call canceling (what autobahn-js announces) is asked for
    progress all the same, as Crossbar and nexus do: its progressive RESULTs
    reach the caller, and after the caller cancels, the router drops its late
    YIELDs itself (no INTERRUPT: it cannot hear one).  A callee that does not
    announce progressive results is never asked for them.
    """
    caller = await join(live_router.ws_url)
    full = await raw_peer(live_router, FULL_CALLEE)
    await full.register(1, "com.example.full")
    half = await raw_peer(live_router, {"callee": {"features": {"progressive_call_results": True}}})
    await half.register(1, "com.example.half")
    plain = await raw_peer(live_router, PLAIN_CALLEE)
    await plain.register(1, "com.example.plain")

    d = caller.call("com.example.full")
    inv = await full.wait_nth(INVOCATION, 1)
    assert inv[3] == {}
    full.send([YIELD, inv[1], {"progress": True}, ["partial"]])
    full.send([YIELD, inv[1], {}, ["final"]])
    assert await bounded(d) == "final"
    assert [m.args for m in caller.inbox if isinstance(m, message.Result)] == [["final"]]

    progress = Calls()
    d = caller.call("com.example.half", options=CallOptions(on_progress=progress))
    inv = await half.wait_nth(INVOCATION, 1)
    assert inv[3] == {"receive_progress": True}
    half.send([YIELD, inv[1], {"progress": True}, ["step"]])
    half.send([YIELD, inv[1], {}, ["ok"]])
    assert await bounded(d) == "ok"
    assert [c[0] for c in progress.calls] == [("step",)]

    # canceled mid-stream: the late progress and final YIELDs never reach the caller
    d = caller.call("com.example.half", options=CallOptions(on_progress=lambda *a: None))
    inv = await half.wait_nth(INVOCATION, 2)
    d.cancel()  # autobahn-python: CANCEL (killnowait), the Deferred fails at once
    with pytest.raises(CancelledError):
        await bounded(d)
    error = await wait_inbox(caller, lambda m: isinstance(m, message.Error) and m.error == "wamp.error.canceled")
    assert error.request_type == CALL
    results_before = len([m for m in caller.inbox if isinstance(m, message.Result)])
    half.send([YIELD, inv[1], {"progress": True}, ["late"]])
    half.send([YIELD, inv[1], {}, ["late final"]])
    # a fence: the same callee's next answer arrives after anything the router forwarded of the late ones
    d = caller.call("com.example.half")
    inv = await half.wait_nth(INVOCATION, 3)
    half.send([YIELD, inv[1], {}, ["fence"]])
    assert await bounded(d) == "fence"
    results = [m.args for m in caller.inbox if isinstance(m, message.Result)]
    assert results[results_before:] == [["fence"]]
    assert not [m for m in half.received if m[0] == INTERRUPT]

    d = caller.call("com.example.plain", options=CallOptions(on_progress=lambda *a: None))
    inv = await plain.wait_nth(INVOCATION, 1)
    assert inv[3] == {}  # no receive_progress
    plain.send([YIELD, inv[1], {}, ["ok"]])
    assert await bounded(d) == "ok"
    await close(full, half, plain)
    await leave(caller)


@pytest_twisted.ensureDeferred
async def test_timeout_runs_from_result_to_result(live_router):
    """
    With progressive results, CALL ``timeout`` limits the time to the first
    result and between results (the spec), not the whole call.  The router's
    clock is driven by hand.
    """
    caller = await join(live_router.ws_url)
    callee = await raw_peer(live_router, FULL_CALLEE)
    await callee.register(1, "com.example.stream")
    with router_clock(live_router) as clock:
        progress = Calls()
        d = caller.call("com.example.stream", options=CallOptions(on_progress=progress, timeout=1000))
        inv = await callee.wait_nth(INVOCATION, 1)
        for n in range(1, 4):
            clock.advance(0.9)
            callee.send([YIELD, inv[1], {"progress": True}, [n]])
            await progress.wait(n)
        clock.advance(1.0)  # one second after the last result: timed out
        with pytest.raises(ApplicationError) as info:
            await bounded(d)
        assert info.value.error == "wamp.error.timeout"
        interrupt = await callee.wait_nth(INTERRUPT, 1)
        assert interrupt == [INTERRUPT, inv[1], {"mode": "killnowait", "reason": "wamp.error.timeout"}]
        assert clock.getDelayedCalls() == []
    await close(callee)
    await leave(caller)


# -- progressive call invocations ------------------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", COMBOS)
@pytest_twisted.ensureDeferred
async def test_progressive_call_invocations(live_router, transport, serializer):
    """
    Every CALL chunk with ``progress`` goes to the same callee as an
    INVOCATION with the same request id and ``details.progress``; the final
    chunk has no ``progress``.  Options of the first CALL (``disclose_me``,
    ``receive_progress``) hold for every chunk.  Progressive results can
    flow back meanwhile.
    """
    caller = await raw_peer(live_router, STREAMING_CALLER, transport, serializer, authid="uploader")
    callee = await raw_peer(live_router, FULL_CALLEE, transport, serializer)
    reg = await callee.register(7, "com.example.upload")

    options = {"progress": True, "receive_progress": True, "disclose_me": True}
    caller.send([CALL, 41, options, "com.example.upload", ["a"]])
    first = await callee.wait_nth(INVOCATION, 1)
    request = first[1]
    who = {"caller": caller.session_id, "caller_authid": "uploader", "caller_authrole": "anonymous"}
    assert first == [INVOCATION, request, reg, {"progress": True, "receive_progress": True, **who}, ["a"]]
    callee.send([YIELD, request, {"progress": True}, ["got a"]])
    assert await caller.wait_nth(RESULT, 1) == [RESULT, 41, {"progress": True}, ["got a"]]

    caller.send([CALL, 41, {"progress": True}, "com.example.upload", ["b"], {"part": 2}])
    assert await callee.wait_nth(INVOCATION, 2) == [
        INVOCATION, request, reg, {"progress": True, "receive_progress": True, **who}, ["b"], {"part": 2}
    ]
    caller.send([CALL, 41, {}, "com.example.upload", ["c"]])
    assert await callee.wait_nth(INVOCATION, 3) == [INVOCATION, request, reg, {"receive_progress": True, **who}, ["c"]]
    callee.send([YIELD, request, {}, ["abc"]])
    assert await caller.wait_nth(RESULT, 2) == [RESULT, 41, {}, ["abc"]]
    await close(caller, callee)


@pytest_twisted.ensureDeferred
async def test_progressive_call_invocation_refusals(live_router):
    """
    A caller that did not announce ``progressive_call_invocations`` is
    aborted with ``wamp.error.protocol_violation``; a callee without the
    feature (or without call canceling, which the spec requires with it) gets
    the caller ``wamp.error.feature_not_supported``, and the caller stays.
    """
    autobahn_callee = await join(live_router.ws_url)
    await autobahn_callee.register(lambda *a: "no", "com.example.autobahn")
    half = await raw_peer(live_router, {"callee": {"features": {"progressive_call_invocations": True}}})
    await half.register(1, "com.example.half")
    full = await raw_peer(live_router, FULL_CALLEE)
    await full.register(1, "com.example.full")

    caller = await raw_peer(live_router, STREAMING_CALLER)
    for request, procedure in ((1, "com.example.autobahn"), (2, "com.example.half")):
        reply = await caller.request([CALL, request, {"progress": True}, procedure, ["x"]], (RESULT, ERROR))
        assert reply == [ERROR, CALL, request, {}, "wamp.error.feature_not_supported", [reply[5][0]]]
    await fence(autobahn_callee)
    await half.fence()
    assert invocations(autobahn_callee) == [] and half.of_type(INVOCATION) == []

    plain = await raw_peer(live_router, {"caller": {"features": {"progressive_call_results": True}}})
    plain.send([CALL, 1, {"progress": True}, "com.example.full", ["x"]])
    abort = await plain.wait_for(lambda m: m[0] == ABORT)
    assert abort[2] == "wamp.error.protocol_violation"
    await bounded(plain.closed)
    await full.fence()
    assert full.of_type(INVOCATION) == []

    # autobahn-python never announces the feature: the same for its sessions
    ab_caller = await join(live_router.ws_url)
    send_any(ab_caller, [CALL, 1_000_001, {"progress": True}, "com.example.full", ["x"]])
    await bounded(ab_caller.disconnected)
    assert [m.reason for m in ab_caller.inbox if isinstance(m, message.Abort)] == ["wamp.error.protocol_violation"]

    reply = await caller.request([CALL, 3, {}, "com.example.autobahn", []], (RESULT, ERROR))
    assert reply == [RESULT, 3, {}, ["no"]]
    await close(caller, half, full)
    await leave(autobahn_callee)


@pytest_twisted.ensureDeferred
async def test_progressive_call_invocations_stay_with_one_callee(live_router):
    """
    With a shared registration the first chunk picks the callee and every
    later chunk goes to it; if the caller goes mid-stream, the callee gets
    INTERRUPT ``killnowait`` (the spec's progressive call cancellation).
    """
    one = await raw_peer(live_router, FULL_CALLEE)
    two = await raw_peer(live_router, FULL_CALLEE)
    await one.register(1, "com.example.rr", {"invoke": "roundrobin"})
    await two.register(1, "com.example.rr", {"invoke": "roundrobin"})
    caller = await raw_peer(live_router, STREAMING_CALLER)

    for chunk in range(3):
        caller.send([CALL, 5, {"progress": True}, "com.example.rr", [chunk]])
    await one.wait_nth(INVOCATION, 3)
    caller.send([CALL, 6, {"progress": True}, "com.example.rr", ["other call"]])
    other = await two.wait_nth(INVOCATION, 1)
    assert [m[4] for m in one.of_type(INVOCATION)] == [[0], [1], [2]]
    assert len({m[1] for m in one.of_type(INVOCATION)}) == 1
    assert other[4] == ["other call"]

    caller.drop()
    first = one.of_type(INVOCATION)[0][1]
    assert await one.wait_nth(INTERRUPT, 1) == [INTERRUPT, first, {"mode": "killnowait"}]
    assert await two.wait_nth(INTERRUPT, 1) == [INTERRUPT, other[1], {"mode": "killnowait"}]
    # a late answer is dropped quietly; the callee stays
    one.send([YIELD, first, {}, ["late"]])
    two.send([ERROR, INVOCATION, other[1], {}, "wamp.error.canceled"])
    again = await raw_peer(live_router, STREAMING_CALLER)
    again.send([CALL, 1, {}, "com.example.rr", []])
    inv = await one.wait_nth(INVOCATION, 4)
    one.send([YIELD, inv[1], {}, ["fine"]])
    assert (await again.wait_nth(RESULT, 1))[3] == ["fine"]
    await close(one, two, again)


# -- cancellation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", COMBOS)
@pytest_twisted.ensureDeferred
async def test_cancel_from_autobahn(live_router, transport, serializer):
    """
    autobahn-python's ``d.cancel()`` sends CANCEL without a mode.  The spec
    names no default; wampd uses ``killnowait`` (as Crossbar does): the caller
    gets ERROR ``wamp.error.canceled`` at once, the callee (which announced
    call_canceling) gets INTERRUPT ``killnowait``, and its answer is dropped.
    """
    address = live_router.address(transport)
    callee = await join(address, transport, serializer)
    caller = await join(address, transport, serializer)
    held = Held()
    await callee.register(held.calls, "com.example.slow")
    d = caller.call("com.example.slow")
    await held.calls.wait(1)
    d.cancel()
    with pytest.raises(CancelledError):
        await d
    error = await wait_inbox(caller, lambda m: isinstance(m, message.Error))
    assert (error.request_type, error.error) == (CALL, "wamp.error.canceled")
    interrupt = await wait_inbox(callee, lambda m: isinstance(m, message.Interrupt))
    assert (interrupt.request, interrupt.mode) == (invocations(callee)[0].request, "killnowait")
    # autobahn's callee answered the INTERRUPT with an ERROR; the router dropped it
    await fence(callee, caller)
    assert [type(m) for m in caller.inbox if getattr(m, "request", None) == error.request] == [message.Error]
    await leave(callee)
    await leave(caller)


async def _held_call(live_router, callee_roles=FULL_CALLEE):
    """An autobahn caller with a raw CALL in flight to a raw callee; returns (caller, callee, invocation)."""
    callee = await raw_peer(live_router, callee_roles)
    await callee.register(1, "com.example.held")
    caller = await join(live_router.ws_url)
    send_any(caller, [CALL, 1_000_001, {}, "com.example.held", ["x"]])
    invocation = await callee.wait_nth(INVOCATION, 1)
    return caller, callee, invocation


@pytest_twisted.ensureDeferred
async def test_cancel_skip(live_router):
    """skip: ERROR ``wamp.error.canceled`` at once, no INTERRUPT, the callee's late result dropped."""
    caller, callee, invocation = await _held_call(live_router)
    send_any(caller, [CANCEL, 1_000_001, {"mode": "skip"}])
    error = await answer_to(caller, 1_000_001)
    assert (type(error), error.request_type, error.error) == (message.Error, CALL, "wamp.error.canceled")
    callee.send([YIELD, invocation[1], {}, ["too late"]])
    await fence(caller)
    await callee.fence()
    assert callee.of_type(INTERRUPT) == []
    assert [type(m) for m in caller.inbox if getattr(m, "request", None) == 1_000_001] == [message.Error]
    await close(callee)
    await leave(caller)


@pytest.mark.parametrize("answer", ["error", "result"])
@pytest_twisted.ensureDeferred
async def test_cancel_kill_waits_for_the_callee(live_router, answer):
    """
    kill: INTERRUPT ``kill`` to the callee, and the caller hears nothing until
    the callee answers; then it gets the callee's ERROR, or its RESULT if the
    callee finished first (the spec).
    """
    caller, callee, invocation = await _held_call(live_router)
    send_any(caller, [CANCEL, 1_000_001, {"mode": "kill"}])
    assert await callee.wait_nth(INTERRUPT, 1) == [INTERRUPT, invocation[1], {"mode": "kill"}]
    send_any(caller, [CANCEL, 1_000_001, {"mode": "kill"}])  # a second CANCEL changes nothing
    await fence(caller)
    await callee.fence()
    assert [m for m in caller.inbox if getattr(m, "request", None) == 1_000_001] == []
    assert len(callee.of_type(INTERRUPT)) == 1
    if answer == "error":
        callee.send([ERROR, INVOCATION, invocation[1], {}, "com.example.stopped", ["bye"]])
        reply = await answer_to(caller, 1_000_001)
        assert (type(reply), reply.error, reply.args) == (message.Error, "com.example.stopped", ["bye"])
    else:
        callee.send([YIELD, invocation[1], {}, ["finished"]])
        reply = await answer_to(caller, 1_000_001)
        assert (type(reply), reply.args) == (message.Result, ["finished"])
    await close(callee)
    await leave(caller)


@pytest_twisted.ensureDeferred
async def test_cancel_killnowait(live_router):
    """killnowait: ERROR ``wamp.error.canceled`` at once, then INTERRUPT ``killnowait``; answers dropped."""
    caller, callee, invocation = await _held_call(live_router)
    send_any(caller, [CANCEL, 1_000_001, {"mode": "killnowait"}])
    error = await answer_to(caller, 1_000_001)
    assert (type(error), error.error) == (message.Error, "wamp.error.canceled")
    assert await callee.wait_nth(INTERRUPT, 1) == [INTERRUPT, invocation[1], {"mode": "killnowait"}]
    callee.send([ERROR, INVOCATION, invocation[1], {}, "wamp.error.canceled"])
    await fence(caller)
    assert [type(m) for m in caller.inbox if getattr(m, "request", None) == 1_000_001] == [message.Error]
    await close(callee)
    await leave(caller)


@pytest.mark.parametrize("mode", ["kill", "killnowait"])
@pytest_twisted.ensureDeferred
async def test_cancel_is_skip_for_callees_without_call_canceling(live_router, mode):
    """If the callee does not support call canceling, the behaviour is skip (the spec)."""
    caller, callee, invocation = await _held_call(live_router, PLAIN_CALLEE)
    send_any(caller, [CANCEL, 1_000_001, {"mode": mode}])
    error = await answer_to(caller, 1_000_001)
    assert (type(error), error.error) == (message.Error, "wamp.error.canceled")
    callee.send([YIELD, invocation[1], {}, ["late"]])
    await fence(caller)
    await callee.fence()
    assert callee.of_type(INTERRUPT) == []
    await close(callee)
    await leave(caller)


# -- call timeouts ----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_call_timeout(live_router):
    """
    CALL ``timeout`` is in milliseconds (Crossbar reads seconds): the caller
    gets ``wamp.error.timeout`` (Crossbar: ``canceled``) and a callee that
    supports canceling gets INTERRUPT ``killnowait``; one that does not gets
    nothing, and its late answer is dropped.  The router's clock is driven by hand.
    """
    caller = await join(live_router.ws_url)
    callee = await join(live_router.ws_url)
    held = Held()
    await callee.register(held.calls, "com.example.slow")
    plain = await raw_peer(live_router, PLAIN_CALLEE)
    await plain.register(1, "com.example.plain")
    with router_clock(live_router) as clock:
        d = caller.call("com.example.slow", options=CallOptions(timeout=50))
        await held.calls.wait(1)  # the callee has it: the 50 ms run from here
        assert len(clock.getDelayedCalls()) == 1
        clock.advance(0.05)
        with pytest.raises(ApplicationError) as info:
            await bounded(d)
        assert info.value.error == "wamp.error.timeout"
        interrupt = await wait_inbox(callee, lambda m: isinstance(m, message.Interrupt))
        assert (interrupt.request, interrupt.mode, interrupt.reason) == (
            invocations(callee)[0].request,
            "killnowait",
            "wamp.error.timeout",
        )

        d = caller.call("com.example.plain", options=CallOptions(timeout=50))
        inv = await plain.wait_nth(INVOCATION, 1)
        assert len(clock.getDelayedCalls()) == 1
        clock.advance(0.05)
        with pytest.raises(ApplicationError) as info:
            await bounded(d)
        assert info.value.error == "wamp.error.timeout"
    plain.send([YIELD, inv[1], {}, ["late"]])
    assert await caller.call("wamp.session.count") == 3
    await plain.fence()
    assert plain.of_type(INTERRUPT) == []
    await close(plain)
    await leave(caller)
    await leave(callee)


@pytest_twisted.ensureDeferred
async def test_call_timeout_timer_lifecycle(live_router):
    """No timer without ``timeout`` or with 0 (the spec: deactivated); an answered call leaves none."""
    caller = await raw_peer(live_router, {"caller": {}})
    callee = await raw_peer(live_router, FULL_CALLEE)
    await callee.register(1, "com.example.p")
    with router_clock(live_router) as clock:
        for n, options in enumerate(({}, {"timeout": 0}, {"timeout": 5000}), start=1):
            caller.send([CALL, n, options, "com.example.p", []])
            inv = await callee.wait_nth(INVOCATION, n)
            assert len(clock.getDelayedCalls()) == (1 if n == 3 else 0)
            callee.send([YIELD, inv[1], {}, [n]])
            assert await caller.wait_nth(RESULT, n) == [RESULT, n, {}, [n]]
            assert clock.getDelayedCalls() == []
        caller.send([CALL, 4, {"timeout": 5000}, "com.example.p", []])
        inv = await callee.wait_nth(INVOCATION, 4)
        clock.advance(4.999)
        callee.send([YIELD, inv[1], {}, ["in time"]])
        assert await caller.wait_nth(RESULT, 4) == [RESULT, 4, {}, ["in time"]]
        caller.send([CALL, 5, {"timeout": 5000}, "com.example.p", []])
        inv = await callee.wait_nth(INVOCATION, 5)
        clock.advance(5)
        reply = await caller.wait_for(lambda m: m[0] == ERROR)
        assert reply[:5] == [ERROR, CALL, 5, {}, "wamp.error.timeout"]
        assert clock.getDelayedCalls() == []
    await close(caller, callee)


# -- caller identification -----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", [("websocket", "msgpack"), ("rawsocket", "cbor")])
@pytest_twisted.ensureDeferred
async def test_caller_identification(live_router, transport, serializer):
    """
    CALL ``disclose_me`` puts ``caller``, ``caller_authid`` and ``caller_authrole``
    in the INVOCATION details (autobahn: CallDetails); without it they are
    absent.  autobahn-python has no ``disclose_me``, so the CALL is hand-made.
    A callee may ask for them itself with REGISTER ``disclose_caller`` (the
    spec); that holds for its own registration only.
    """
    address = live_router.address(transport)
    callee = await join(address, transport, serializer)
    caller = await join(address, transport, serializer, session_class=named("carol"))
    endpoint = Calls(reply=lambda x: x * 2)
    await callee.register(endpoint, "com.example.who", options=RegisterOptions(details_arg="details"))
    send_any(caller, [CALL, 1_000_001, {"disclose_me": True}, "com.example.who", [21]])
    result = await answer_to(caller, 1_000_001)
    assert (type(result), result.args) == (message.Result, [42])
    assert await caller.call("com.example.who", 1) == 2
    disclosed, anonymous = endpoint.details
    assert (disclosed.caller, disclosed.caller_authid, disclosed.caller_authrole) == (caller.sid, "carol", "anonymous")
    assert (anonymous.caller, anonymous.caller_authid, anonymous.caller_authrole) == (None, None, None)
    first, second = invocations(callee)
    assert (first.caller, first.caller_authid, first.caller_authrole) == (caller.sid, "carol", "anonymous")
    assert (second.caller, second.caller_authid, second.caller_authrole) == (None, None, None)

    curious = await raw_peer(live_router, FULL_CALLEE, transport, serializer)
    reg = await curious.register(1, "com.example.curious", {"disclose_caller": True, "invoke": "roundrobin"})
    incurious = await raw_peer(live_router, FULL_CALLEE, transport, serializer)
    await incurious.register(1, "com.example.curious", {"invoke": "roundrobin"})
    for n in range(2):
        d = caller.call("com.example.curious", n)
        peer = (curious, incurious)[n]
        inv = await peer.wait_nth(INVOCATION, 1)
        peer.send([YIELD, inv[1], {}, [n]])
        assert await bounded(d) == n
    assert curious.of_type(INVOCATION)[0] == [
        INVOCATION, 1, reg, {"caller": caller.sid, "caller_authid": "carol", "caller_authrole": "anonymous"}, [0]
    ]
    assert incurious.of_type(INVOCATION)[0] == [INVOCATION, 1, reg, {}, [1]]
    await close(curious, incurious)
    await leave(callee)
    await leave(caller)


# -- a caller leaving mid-call ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_caller_leaving_mid_call(live_router):
    """
    When the caller's TCP connection drops mid-call, a callee that announced
    call canceling gets INTERRUPT ``killnowait``; one that did not gets
    nothing.  Late YIELDs and ERRORs are dropped quietly, and the other
    sessions' calls go on.
    """
    canceling = await raw_peer(live_router, FULL_CALLEE)
    await canceling.register(1, "com.example.a")
    plain = await raw_peer(live_router, PLAIN_CALLEE)
    await plain.register(1, "com.example.b")
    caller = await join(live_router.ws_url)
    bystander = await join(live_router.ws_url)
    caller.call("com.example.a").addErrback(lambda f: None)
    caller.call("com.example.b").addErrback(lambda f: None)
    inv_a = await canceling.wait_nth(INVOCATION, 1)
    inv_b = await plain.wait_nth(INVOCATION, 1)
    pending = bystander.call("com.example.a", "mine")
    mine = await canceling.wait_nth(INVOCATION, 2)

    caller.wire.transport.abortConnection()
    await bounded(caller.disconnected)
    assert await canceling.wait_nth(INTERRUPT, 1) == [INTERRUPT, inv_a[1], {"mode": "killnowait"}]
    canceling.send([YIELD, inv_a[1], {}, ["late"]])
    plain.send([ERROR, INVOCATION, inv_b[1], {}, "com.example.late"])
    canceling.send([YIELD, mine[1], {}, ["yours"]])
    assert await bounded(pending) == "yours"
    assert await bystander.call("wamp.session.count") == 3
    await plain.fence()
    await canceling.fence()
    assert plain.of_type(INTERRUPT) == []
    assert len(canceling.of_type(INTERRUPT)) == 1
    await close(canceling, plain)
    await leave(bystander)


# -- the registration meta API ---------------------------------------------------------------------------------------


def _age(created: str) -> float:
    assert created.endswith("Z")
    return abs((datetime.now(timezone.utc) - datetime.fromisoformat(created[:-1] + "+00:00")).total_seconds())


@pytest_twisted.ensureDeferred
async def test_registration_meta_events(live_router):
    """
    on_create (session, RegistrationDetails) then on_register for the first
    callee; on_register for the next; on_unregister; and on_unregister then
    on_delete when the last callee goes (here by a TCP drop).
    """
    observer = await join(live_router.ws_url)
    seen = []
    for kind in ("on_create", "on_register", "on_unregister", "on_delete"):
        await observer.subscribe(lambda *args, kind=kind: seen.append((kind, list(args))), f"wamp.registration.{kind}")

    s = await join(live_router.ws_url)
    t = await join(live_router.ws_url)
    reg_s = await s.register(lambda: 1, "com.example.meta", options=RegisterOptions(invoke="roundrobin"))
    reg_t = await t.register(lambda: 2, "com.example.meta", options=RegisterOptions(invoke="roundrobin"))
    await reg_t.unregister()
    s.wire.transport.abortConnection()
    await departed(live_router, s)
    await fence(observer)

    reg_id = reg_s.id
    assert seen[0][0] == "on_create" and seen[0][1][0] == s.sid
    details = seen[0][1][1]
    assert set(details) == {"id", "created", "uri", "match", "invoke"}
    assert (details["id"], details["uri"], details["match"], details["invoke"]) == (
        reg_id,
        "com.example.meta",
        "exact",
        "roundrobin",
    )
    assert _age(details["created"]) < 60
    assert seen[1:] == [
        ("on_register", [s.sid, reg_id]),
        ("on_register", [t.sid, reg_id]),
        ("on_unregister", [t.sid, reg_id]),
        ("on_unregister", [s.sid, reg_id]),
        ("on_delete", [s.sid, reg_id]),
    ]
    await leave(t)
    await leave(observer)


@pytest_twisted.ensureDeferred
async def test_registration_meta_procedures(live_router):
    a = await join(live_router.ws_url)
    b = await join(live_router.ws_url)
    exact = await a.register(lambda: 1, "com.example.x.y", options=RegisterOptions(invoke="first"))
    await b.register(lambda: 1, "com.example.x.y", options=RegisterOptions(invoke="first"))
    prefix = await a.register(lambda: 2, "com.example.x", options=RegisterOptions(match="prefix"))
    wildcard = await b.register(lambda: 3, "com.example..y", options=RegisterOptions(match="wildcard"))

    assert await a.call("wamp.registration.list") == {
        "exact": [exact.id],
        "prefix": [prefix.id],
        "wildcard": [wildcard.id],
    }
    assert await a.call("wamp.registration.lookup", "com.example.x.y") == exact.id
    assert await a.call("wamp.registration.lookup", "com.example.x", {"match": "prefix"}) == prefix.id
    assert await a.call("wamp.registration.lookup", "com.example..y", {"match": "wildcard"}) == wildcard.id
    assert await a.call("wamp.registration.lookup", "com.example.x") is None
    assert await a.call("wamp.registration.lookup", "com.example.x.y", {"match": "prefix"}) is None
    # match: the registration a call would be routed to
    assert await a.call("wamp.registration.match", "com.example.x.y") == exact.id
    assert await a.call("wamp.registration.match", "com.example.x.z") == prefix.id
    assert await a.call("wamp.registration.match", "com.example.w.y") == wildcard.id
    assert await a.call("wamp.registration.match", "com.other") is None

    details = await a.call("wamp.registration.get", exact.id)
    assert set(details) == {"id", "created", "uri", "match", "invoke"}
    assert (details["id"], details["uri"], details["match"], details["invoke"]) == (
        exact.id,
        "com.example.x.y",
        "exact",
        "first",
    )
    assert _age(details["created"]) < 60
    assert (await a.call("wamp.registration.get", wildcard.id))["invoke"] == "single"
    assert await a.call("wamp.registration.list_callees", exact.id) == [a.sid, b.sid]
    assert await a.call("wamp.registration.count_callees", exact.id) == 2
    assert await a.call("wamp.registration.list_callees", prefix.id) == [a.sid]
    assert await a.call("wamp.registration.count_callees", prefix.id) == 1

    missing = exact.id + prefix.id + wildcard.id + 1000
    for procedure in ("wamp.registration.get", "wamp.registration.list_callees", "wamp.registration.count_callees"):
        with pytest.raises(ApplicationError) as info:
            await a.call(procedure, missing)
        assert info.value.error == "wamp.error.no_such_registration", procedure
    await leave(b)
    await departed(live_router, b)
    with pytest.raises(ApplicationError) as info:
        await a.call("wamp.registration.get", wildcard.id)
    assert info.value.error == "wamp.error.no_such_registration"
    assert await a.call("wamp.registration.list_callees", exact.id) == [a.sid]
    await leave(a)
