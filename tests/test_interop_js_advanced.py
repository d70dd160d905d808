"""Advanced-profile interop tests against the real autobahn-js client under node.

Pattern-based subscriptions, progressive call results and call cancellation,
driven by the ``pattern-pubsub``, ``progress`` and ``cancel`` scenarios of
``tests/js/client.mjs``.  Each scenario runs two or three WAMP sessions in one
node process: the session the scenario is named after (``--serializer``) and
"peer" sessions (``--peer-serializer``), so every run crosses two serializers
and the three runs per feature cover json, msgpack and cbor on both sides.

What the node side reads off the wire (``wire_*`` fields) is taken in the
serializer, before autobahn-js interprets a message, so ``details.topic`` and
the RESULT ``progress`` flag are the router's own.

autobahn-js 26 quirks these tests work around (not router behaviour):

* it does not announce ``callee.features.call_canceling`` and has no INTERRUPT
  handler; the ``cancelable`` callee adds both (see client.mjs);
* ``promise.cancel({mode})`` rejects the call locally with ``Error("Cancelled")``
  for ``skip`` and ``killnowait`` and forgets the request, so the spec's ERROR
  that follows makes it fail the transport ("protocol violation: CALL-ERROR
  received for non-pending request ID"); the tests send CANCEL themselves
  (``--cancel-api raw``) and use ``promise.cancel`` only for ``kill``;
* progress is reported only through a deferred's ``notify``, which ES6
  promises lack: the progress scenario's caller uses when.js;
* it does not announce call_canceling; wampd forwards ``receive_progress`` to
  it all the same (as Crossbar and nexus do), and the ``plain`` callee, which
  announces exactly what autobahn-js 26 announces, pins that.

Same skip rule as ``tests/test_interop_js.py``: skipped without node or
``tests/js/node_modules``, a failure instead when ``CI`` is set.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.test_interop_js import (  # noqa: F401  (js_client is a fixture)
    assert_clean_close,
    assert_joined,
    assert_wamp_id,
    describe,
    js_client,
    only,
    pytestmark,
    run_node,
)

# (serializer of the scenario's own session, serializer of its peers)
SERIALIZER_PAIRS = [("json", "msgpack"), ("msgpack", "cbor"), ("cbor", "json")]
PAIR_IDS = [f"{a}-{b}" for a, b in SERIALIZER_PAIRS]


def run_scenario(router, scenario, serializer, peer_serializer, *extra):
    obs, proc = run_node(router, scenario, serializer, "--peer-serializer", peer_serializer, *extra)
    diag = describe(proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 0, diag
    assert not [o for o in obs if o["event"] in ("fatal", "internal_error")], diag
    assert_joined(obs, router, serializer)
    peers = [o for o in obs if o["event"] == "peer_joined"]
    assert peers, diag
    for peer in peers:
        assert_wamp_id(peer["session"], "peer session id")
        assert peer["protocol"] == f"wamp.2.{peer_serializer}", diag
    closed = {o["peer"]: o for o in obs if o["event"] == "peer_closed"}
    assert set(closed) == {p["peer"] for p in peers}, diag
    for peer_closed in closed.values():
        assert peer_closed["reason"] == "closed", diag
        assert peer_closed["wamp_reason"] == "wamp.close.goodbye_and_out", diag
    assert_clean_close(obs)
    return obs, diag


def index_of(obs, predicate) -> int:
    found = [i for i, o in enumerate(obs) if predicate(o)]
    assert len(found) == 1, f"expected exactly one matching observation, got {[obs[i] for i in found]!r}"
    return found[0]


# ---------------------------------------------------------------- pattern-based subscriptions

SUBSCRIPTIONS = {
    "prefix": ("com.example.js", "prefix"),
    "wildcard": ("com.example..update", "wildcard"),
    "exact": ("com.example.js.update", "exact"),
}

# every topic the scenario publishes, in order, and the subscriptions it must reach
PUBLICATIONS = [
    ("peer", "com.example.js.a", {"prefix"}),
    ("peer", "com.example.x.update", {"wildcard"}),
    ("peer", "com.example.js.update", {"prefix", "wildcard", "exact"}),
    # the spec's prefix match is on the string ("emergency" matches "emergency-low")
    ("peer", "com.example.jsx", {"prefix"}),
    ("peer", "com.example.js", {"prefix"}),
    # a wildcard stands for exactly one whole component
    ("peer", "com.example.x.update.more", set()),
    ("peer", "com.example.update", set()),
    ("peer", "com.other.js.update", set()),
    # published by the subscribing session itself
    ("self", "com.example.y.update", {"wildcard"}),  # exclude_me: false
    ("self", "com.example.js.self", set()),  # exclude_me defaults to true
    ("peer", "com.example.js.zz.end", {"prefix"}),  # the sentinel
]


@pytest.mark.parametrize(("serializer", "peer_serializer"), SERIALIZER_PAIRS, ids=PAIR_IDS)
def test_autobahn_js_pattern_subscriptions(js_client, running_router, serializer, peer_serializer):
    """Prefix, wildcard and exact subscriptions of one autobahn-js session.

    One EVENT per matching subscription (the spec's "Events matching multiple
    subscriptions"), all with the publication's id, and EVENT.Details.topic
    set to the concrete PUBLISH.Topic for the pattern-based ones.  For the
    exact subscription the spec does not ask for Details.topic, so both an
    empty Details and one naming the topic are accepted.
    """
    obs, diag = run_scenario(running_router, "pattern-pubsub", serializer, peer_serializer)

    subscribed = {o["sub"]: o for o in obs if o["event"] == "subscribed"}
    assert {name: (o["topic"], o["match"]) for name, o in subscribed.items()} == SUBSCRIPTIONS, diag
    sub_ids = {name: o["subscription"] for name, o in subscribed.items()}
    for sub_id in sub_ids.values():
        assert_wamp_id(sub_id, "subscription id")
    assert len(set(sub_ids.values())) == 3, diag

    published = [o for o in obs if o["event"] == "published"]
    assert [(o["by"], o["topic"]) for o in published] == [(by, topic) for by, topic, _ in PUBLICATIONS], diag
    topic_of = {}
    for o in published:
        assert_wamp_id(o["publication"], "publication id")
        topic_of[o["publication"]] = o["topic"]
    assert len(topic_of) == len(PUBLICATIONS), "publication ids are not unique\n" + diag

    received = [o for o in obs if o["event"] == "received"]
    for event in received:
        name = event["sub"]
        assert event["publication"] in topic_of, diag
        topic = topic_of[event["publication"]]
        assert event["topic"] == topic, diag
        assert event["args"] == [topic] and event["kwargs"] == {}, diag
        assert event["subscription"] == event["wire_subscription"] == sub_ids[name], diag
        if name == "exact":
            assert event["wire_details"] in ({}, {"topic": topic}), diag
        else:
            assert event["wire_details"] == {"topic": topic}, diag

    got = Counter((topic_of[o["publication"]], o["sub"]) for o in received)
    expected = Counter((topic, name) for _, topic, names in PUBLICATIONS for name in names)
    assert got == expected, f"(topic, subscription) deliveries differ\n{diag}"


# ---------------------------------------------------------------- progressive call results


@pytest.mark.parametrize(("serializer", "peer_serializer"), SERIALIZER_PAIRS, ids=PAIR_IDS)
def test_autobahn_js_progressive_call_results(js_client, running_router, serializer, peer_serializer):
    """A JS callee yields progress via details.progress(); a JS caller gets it in order.

    Calls to the callee that announces call_canceling: [3] with
    receive_progress (three progressive RESULTs with Details {progress: true},
    then the final RESULT with empty Details), [2] without it (the callee gets
    no progress function and INVOCATION.Details has no receive_progress; one
    RESULT), and [2, "fail"] with it (two progressive RESULTs, then the
    callee's ERROR unchanged).

    Then [2] with receive_progress to the stock autobahn-js callee, which
    announces progressive_call_results but not call_canceling.  A strict
    reading of the spec (rpc_progressive_call_results, "Ignoring Requests for
    Progressive Call Results") would never ask it for progress, so
    autobahn-js progressive results would never work; wampd forwards
    receive_progress to it as Crossbar and nexus do (the router drops a late
    YIELD itself), so it gets a progress function and the caller gets its two
    progressive RESULTs, then the final one.
    """
    obs, diag = run_scenario(running_router, "progress", serializer, peer_serializer)
    registered = {o["callee"]: o for o in obs if o["event"] == "registered"}
    assert {k: o["announced_call_canceling"] for k, o in registered.items()} == {"cancelable": True, "plain": False}
    for o in registered.values():
        assert_wamp_id(o["registration"], "registration id")

    invoked = [(o["callee"], o["args"], o["can_progress"], o["wire_details"]) for o in obs if o["event"] == "invoked"]
    assert invoked == [
        ("cancelable", [3], True, {"receive_progress": True}),
        ("cancelable", [2], False, {}),
        ("cancelable", [2, "fail"], True, {"receive_progress": True}),
        ("plain", [2], True, {"receive_progress": True}),
    ], diag

    wire = [o for o in obs if o["event"] == "wire_result"]
    assert [(o["details"], o["args"], o["kwargs"]) for o in wire] == [
        ({"progress": True}, [1], {"of": 3}),
        ({"progress": True}, [2], {"of": 3}),
        ({"progress": True}, [3], {"of": 3}),
        ({}, ["done 3"], {"count": 3}),
        ({}, ["done 2"], {"count": 2}),
        ({"progress": True}, [1], {"of": 2}),
        ({"progress": True}, [2], {"of": 2}),
        ({"progress": True}, [1], {"of": 2}),
        ({"progress": True}, [2], {"of": 2}),
        ({}, ["done 2"], {"count": 2}),
    ], diag
    requests = [o["request"] for o in wire]
    assert len(set(requests[:4])) == 1 and len(set(requests[5:7])) == 1 and len(set(requests[7:])) == 1, diag
    assert len({requests[0], requests[4], requests[5], requests[7]}) == 4, diag

    def progress(n):
        return [{"args": [i], "kwargs": {"of": n}} for i in range(1, n + 1)]

    def result(label, progress, n):
        return {"event": "result", "label": label, "progress": progress, "args": [f"done {n}"], "kwargs": {"count": n}}

    results = {o["label"]: o for o in obs if o["event"] == "result"}
    assert results == {
        "progressive": result("progressive", progress(3), 3),
        "no-progress": result("no-progress", [], 2),
        "plain-callee": result("plain-callee", progress(2), 2),
    }, diag
    assert only(obs, "error") == {
        "event": "error",
        "label": "progressive-error",
        "progress": progress(2),
        "error": "com.example.error.failed",
        "args": ["after progress"],
        "kwargs": {"at": 2},
    }, diag
    assert not [o for o in obs if o["event"] == "interrupted"], diag


# ---------------------------------------------------------------- call cancellation

CANCEL_MODES = ("skip", "kill", "killnowait")
INTERRUPTED_ARGS = "callee-interrupted"  # first arg of the cancelable callee's answer to INTERRUPT


def check_cancel_run(obs, diag, modes, api):
    """Check the spec's three cancel modes against both JS callees.

    "plain" announces what autobahn-js announces (no call_canceling), so every
    mode must behave as skip: ERROR wamp.error.canceled to the caller at once,
    no INTERRUPT.  "cancelable" announces call_canceling: skip as above;
    kill sends INTERRUPT {mode: kill} and the caller's ERROR is the callee's
    own answer, after it; killnowait answers the caller at once and sends
    INTERRUPT {mode: killnowait}, and the callee's later ERROR is dropped.
    Invocations still open at the end are answered (late YIELDs): the router
    must drop them.  A stray RESULT or second ERROR would have made
    autobahn-js fail the caller's transport (a fatal line, no clean close).
    """
    ready = {o["callee"]: o["announced_call_canceling"] for o in obs if o["event"] == "callee_ready"}
    assert ready == {"plain": False, "cancelable": True}, diag

    interrupts = {"plain": [], "cancelable": []}
    for callee in ("plain", "cancelable"):
        for mode in modes:
            i_sent = index_of(obs, lambda o: o["event"] == "cancel_sent" and (o["callee"], o["mode"]) == (callee, mode))
            assert obs[i_sent]["api"] == api, diag
            i_inv = index_of(obs, lambda o: o["event"] == "invoked" and (o["callee"], o["args"]) == (callee, [mode]))
            assert i_inv < i_sent, diag
            invocation = obs[i_inv]["request"]
            i_out = index_of(obs, lambda o: o["event"] == "cancel_outcome" and (o["callee"], o["mode"]) == (callee, mode))
            outcome = obs[i_out]
            assert outcome["outcome"] == "error", f"{callee}/{mode}: {outcome!r}\n{diag}"
            assert outcome["error"] == "wamp.error.canceled", f"{callee}/{mode}: {outcome!r}\n{diag}"

            interrupted = [
                (i, o) for i, o in enumerate(obs) if o["event"] == "interrupted" and o["callee"] == callee and o["request"] == invocation
            ]
            answered = [
                i for i, o in enumerate(obs) if o["event"] == "callee_answered" and o["callee"] == callee and o["request"] == invocation
            ]
            effective = mode if callee == "cancelable" else "skip"
            if effective == "skip":
                assert interrupted == [], f"{callee}/{mode}: INTERRUPT sent for a skip cancel\n{diag}"
                assert INTERRUPTED_ARGS not in outcome["args"], diag
                continue
            assert len(interrupted) == 1, f"{callee}/{mode}: expected one INTERRUPT\n{diag}"
            i_int, interrupt = interrupted[0]
            interrupts[callee].append(invocation)
            options = interrupt["options"]
            assert options.get("mode") == mode and set(options) <= {"mode", "reason"}, f"{interrupt!r}\n{diag}"
            assert interrupt["open"] is True, diag
            assert len(answered) == 1, diag
            if mode == "kill":
                # ERROR only after the callee answered, and it is the callee's
                assert i_sent < i_int < answered[0] < i_out, f"{callee}/kill: wrong order\n{diag}"
                assert outcome["args"] == [INTERRUPTED_ARGS, "kill"], diag
            else:
                # killnowait: ERROR at once, the callee's answer is dropped
                assert i_sent < i_out < answered[0], f"{callee}/killnowait: wrong order\n{diag}"
                assert INTERRUPTED_ARGS not in outcome["args"], diag

    assert {o["callee"]: o["requests"] for o in obs if o["event"] == "interrupts"} == interrupts, diag
    late = {o["callee"]: len(o["requests"]) for o in obs if o["event"] == "late_yields"}
    assert late == {
        "plain": len(modes),
        "cancelable": sum(1 for m in modes if m == "skip"),
    }, diag
    assert [(o["callee"], o["value"]) for o in obs if o["event"] == "synced"] == [
        ("plain", "synced"),
        ("cancelable", "synced"),
    ], diag


@pytest.mark.parametrize(("serializer", "peer_serializer"), SERIALIZER_PAIRS, ids=PAIR_IDS)
def test_autobahn_js_call_cancel_modes(js_client, running_router, serializer, peer_serializer):
    """CANCEL skip, kill and killnowait from an autobahn-js caller (raw CANCEL).

    See check_cancel_run for what each mode must do.
    """
    obs, diag = run_scenario(running_router, "cancel", serializer, peer_serializer, "--cancel-api", "raw")
    check_cancel_run(obs, diag, CANCEL_MODES, "raw")


def test_autobahn_js_call_cancel_kill_stock_api(js_client, running_router):
    """autobahn-js's own promise.cancel({mode: "kill"}), the one mode it handles.

    (For skip and killnowait it drops the request before the router's ERROR
    arrives and then fails the transport on that ERROR: see the module
    docstring.)
    """
    obs, diag = run_scenario(
        running_router, "cancel", "json", "json", "--cancel-api", "stock", "--cancel-modes", "kill"
    )
    check_cancel_run(obs, diag, ("kill",), "stock")
