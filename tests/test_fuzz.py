"""
A property test of hostile WAMP input: hypothesis writes scripts of
well-formed and malformed messages (random types, wrong arity, wrong types,
huge integers, deep nesting, bad URIs, bad options, garbage payloads) and
sends them over a real loopback connection, WebSocket or RawSocket, JSON,
msgpack or CBOR, to an in-process router.  For every script:

* the connection ends with ABORT (or a clean close after a garbage payload
  that is no WAMP message at all), or every CALL it sent is answered with
  RESULT or ERROR;
* sentinel sessions on other connections still work: a caller's call to a
  callee is answered, and a subscriber to every topic per serializer (which
  receives whatever the fuzzed client publishes) is still connected and
  answered;
* once the fuzzed session is gone, no session holds a pending call,
  invocation or call timer;
* the router logged no internal failure.

A few hundred examples run by default (about 20 s); set
``WAMPD_FUZZ_EXAMPLES`` for more, e.g. ``WAMPD_FUZZ_EXAMPLES=5000``.
"""

from __future__ import annotations

import os

import pytest
import pytest_twisted
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import logged
from tests.raw_client import ABORT, CALL, ERROR, INVOCATION, RESULT, YIELD, bounded, connect_raw
from tests.wamp_clients import SERIALIZERS, TRANSPORTS

EXAMPLES = int(os.environ.get("WAMPD_FUZZ_EXAMPLES", "200"))
FENCE = 9_000_000_001
ROLES = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}

# -- what a hostile client sends -------------------------------------------------------------

URIS = st.sampled_from(
    ["com.example.echo", "com.fuzz.t", "com.fuzz.p", "com.fuzz.", "com..fuzz", "", "bad uri", "#x",
     "wamp.session.count", "wamp.session.get", "wamp.registration.list", "wamp.fuzz"]
) | st.text(max_size=12)
INTS = st.integers(-3, 20) | st.sampled_from([0, 2**31, 2**53, 2**53 + 1, 2**63, 2**64 - 1, 2**70, 10**40])
SCALARS = (
    st.none() | st.booleans() | INTS | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8) | st.binary(max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    | st.dictionaries(st.integers(0, 3) | st.binary(max_size=2), inner, max_size=2),
    max_leaves=8,
)
OPTION_NAMES = st.sampled_from(
    ["timeout", "receive_progress", "progress", "disclose_me", "acknowledge", "exclude_me", "retain",
     "exclude", "eligible", "eligible_authid", "get_retained", "match", "invoke", "disclose_caller",
     "mode", "concurrency", "x_custom"]
)
OPTION_VALUES = (
    VALUES | st.sampled_from(["exact", "prefix", "wildcard", "roundrobin", "kill", "skip", "killnowait"])
    | st.integers(0, 3000) | st.lists(INTS, max_size=3)
)
OPTIONS = st.dictionaries(OPTION_NAMES, OPTION_VALUES, max_size=3) | VALUES
KWARGS = (
    st.dictionaries(st.text(max_size=4), VALUES, max_size=3)
    | st.dictionaries(st.binary(max_size=3) | st.integers(0, 3), VALUES, min_size=1, max_size=2)
    | VALUES
)


@st.composite
def deep(draw):
    """A list nested deep: around the default limit, or far past it."""
    depth = draw(st.sampled_from([60, 62, 63, 64, 65, 120, 380, 700]))
    value: list = [draw(SCALARS)]
    for _ in range(depth):
        value = [value]
    return value


ARGS = st.lists(VALUES, max_size=3) | VALUES | deep()
REQUESTS = st.integers(1, 12) | INTS | st.text(max_size=3) | st.none()


def shaped(code, *fields):
    """A message of type ``code``, its fields, then optionally cut short or padded."""
    return st.tuples(st.just(code), *fields).map(list)


WELL_SHAPED = st.one_of(
    shaped(48, REQUESTS, OPTIONS, URIS),
    shaped(48, REQUESTS, OPTIONS, URIS, ARGS),
    shaped(48, REQUESTS, OPTIONS, URIS, ARGS, KWARGS),
    shaped(16, REQUESTS, OPTIONS, URIS, ARGS, KWARGS),
    shaped(16, REQUESTS, OPTIONS, URIS),
    shaped(32, REQUESTS, OPTIONS, URIS),
    shaped(34, REQUESTS, INTS),
    shaped(64, REQUESTS, OPTIONS, URIS),
    shaped(66, REQUESTS, INTS),
    shaped(70, REQUESTS, OPTIONS, ARGS, KWARGS),
    shaped(8, st.sampled_from([68, 48, 16]), REQUESTS, OPTIONS, URIS, ARGS, KWARGS),
    shaped(49, REQUESTS, OPTIONS),
    shaped(6, OPTIONS, URIS),
    shaped(1, URIS, OPTIONS),
    shaped(3, OPTIONS, URIS),
)


@st.composite
def mangled(draw):
    """A WAMP-like message, sometimes with its arity or type broken."""
    msg = draw(WELL_SHAPED)
    how = draw(st.sampled_from(["keep"] * 6 + ["cut", "pad", "retype"]))
    if how == "cut":
        msg = msg[: draw(st.integers(0, len(msg) - 1))]
    elif how == "pad":
        msg = msg + draw(st.lists(VALUES, min_size=1, max_size=3))
    elif how == "retype":
        msg[0] = draw(st.integers(-1, 80) | st.text(max_size=2) | st.none())
    return msg


GARBAGE = st.binary(min_size=0, max_size=40).map(lambda b: ("garbage", b))
MESSAGES = st.one_of(mangled().map(lambda m: ("wamp", m)), mangled().map(lambda m: ("wamp", m)), GARBAGE)
CASES = st.tuples(
    st.sampled_from(TRANSPORTS),
    st.sampled_from(sorted(SERIALIZERS)),
    st.lists(MESSAGES, min_size=1, max_size=5),
)


# -- the run ----------------------------------------------------------------------------------


class Sentinels:
    """
    A caller, an echo callee and a subscriber per serializer (to every topic)
    that must keep working whatever the fuzzed client does.
    """

    def __init__(self, caller, callee, subscribers) -> None:
        self.caller = caller
        self.callee = callee
        self.subscribers = subscribers
        self.calls = 0


async def start_sentinels(live_router) -> Sentinels:
    callee = await connect_raw(live_router.address("rawsocket"), "rawsocket", "msgpack")
    await callee.hello(ROLES)
    answer_invocations(callee)
    await callee.register(1, "com.example.echo")
    caller = await connect_raw(live_router.address("websocket"), "websocket", "json")
    await caller.hello(ROLES)
    subscribers = []
    for n, name in enumerate(sorted(SERIALIZERS)):
        subscriber = await connect_raw(live_router.address(TRANSPORTS[n % 2]), TRANSPORTS[n % 2], name)
        await subscriber.hello(ROLES)
        await subscriber.request([32, 1, {"match": "prefix"}, "com"], (33,))
        subscribers.append(subscriber)
    return Sentinels(caller, callee, subscribers)


def answer_invocations(peer) -> None:
    """Answer every INVOCATION with a YIELD of its args (so no call waits on this peer)."""
    original = peer._got

    def got(payload):
        original(payload)
        msg = peer.received[-1]
        if msg[0] == INVOCATION and type(msg[1]) is int:
            args = msg[4] if len(msg) > 4 and type(msg[4]) is list else []
            try:
                peer.send([YIELD, msg[1], {}, args])
            except Exception:  # its own serializer cannot write what it got: answer without args
                peer.send([YIELD, msg[1], {}])

    peer._got = got


def call_requests(script) -> set:
    """The request IDs of the well-formed-enough CALLs a script sent (the router must answer these)."""
    return {
        m[1]
        for kind, m in script
        if kind == "wamp" and len(m) >= 4 and m[0] == CALL and type(m[1]) is int and 1 <= m[1] <= 2**53
    }


async def run_case(live_router, sentinels: Sentinels, case) -> None:
    transport, serializer, script = case
    peer = await connect_raw(live_router.address(transport), transport, serializer)
    welcome = await peer.hello(ROLES)
    assert welcome[0] == 2, welcome
    answer_invocations(peer)
    sent = []
    for kind, body in script:
        if peer.closed.called:
            break
        try:
            if kind == "garbage":
                peer._write(body)
            else:
                peer.send(body)
        except Exception:  # the client's own encoder cannot write it (bytes in JSON, 2**70 in msgpack, ...)
            continue
        sent.append((kind, body))
    if not peer.closed.called:
        peer.send([CALL, FENCE, {}, "wamp.session.count"])
        await bounded(_fence(peer))
    if peer.closed.called or peer.of_type(ABORT):
        garbage = any(kind == "garbage" for kind, _ in sent) or any(m and m[0] in (3,) for _, m in sent if isinstance(m, list))
        assert peer.of_type(ABORT) or garbage, (sent, peer.received)
    else:
        for request in call_requests(sent):
            answer = await peer.wait_for(
                lambda m, r=request: (m[0] == RESULT and m[1] == r and not (len(m) > 2 and isinstance(m[2], dict) and m[2].get("progress")))
                or (m[0] == ERROR and m[1] == CALL and m[2] == r)
                or m[0] == ABORT,
                timeout=5.0,
            )
            assert answer is not None
    # the sentinels still work
    sentinels.calls += 1
    n = 1000 + sentinels.calls
    reply = await sentinels.caller.request([CALL, n, {}, "com.example.echo", [n]], (RESULT, ERROR))
    assert reply == [RESULT, n, {}, [n]], reply
    for subscriber in sentinels.subscribers:
        assert not subscriber.closed.called, subscriber.serializer
        reply = await subscriber.request([CALL, n, {}, "wamp.session.count"], (RESULT, ERROR))
        assert reply[0] == RESULT, reply
    # once the fuzzed session is gone, nothing of it is left anywhere
    sids = [m[1] for m in peer.received if m[0] == 2]
    if not peer.closed.called:
        peer.drop()
    await bounded(peer.closed)
    for sid in sids:
        await live_router.recorder.wait_for(lambda e, sid=sid: e.name == "session_left" and e.session.session_id == sid)
    realm = live_router.service.router.realms["realm1"]
    for session in realm.sessions.values():
        assert realm.dealer.pending(session) == ({}, {}), session
    timers = [c for c in live_router.service.router.clock.getDelayedCalls() if "_timed_out" in repr(c.func)]
    assert timers == []


def _fence(peer):
    """Fires when the fence CALL is answered or the connection is aborted/closed."""
    d = peer.wait_for(lambda m: m[0] == ABORT or (m[0] in (RESULT, ERROR) and FENCE in m[1:3]))
    peer.closed.addCallback(lambda _: None if d.called else d.callback(None))
    return d


@pytest_twisted.async_yield_fixture
async def sentinels(live_router):
    """The sentinel sessions, shared by every example; they say GOODBYE before the router stops."""
    started = await start_sentinels(live_router)
    yield started
    for peer in (started.caller, started.callee, *started.subscribers):
        if not peer.closed.called:
            await peer.goodbye()


@pytest.fixture
def failures_logged():
    """Internal failures the router logs (``log.failure`` in a wampd namespace) while the test runs."""
    with logged(lambda e: e.get("log_failure") is not None and str(e.get("log_namespace", "")).startswith("wampd")) as seen:
        yield seen


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=CASES)
# the cases, always run: a 401-digit timeout, a bytes kwargs key, a
# CBOR integer map key and 600-deep JSON published to every serializer
@example(case=("websocket", "json", [("wamp", [48, 1, {"timeout": 10**400}, "com.example.echo", []])]))
@example(case=("rawsocket", "msgpack", [("wamp", [48, 2, {}, "com.example.echo", [], {b"k": 1}])]))
@example(case=("websocket", "cbor", [("wamp", [16, 3, {}, "com.fuzz.t", [{1: "int key"}]])]))
@example(case=("rawsocket", "json", [("garbage", b'[16, 4, {}, "com.fuzz.t", ' + b"[" * 600 + b"]" * 600 + b"]")]))
@pytest_twisted.ensureDeferred
async def test_hostile_messages(live_router, sentinels, failures_logged, case):
    """
    Whatever a client sends, its connection gets ABORT/ERROR or a clean close,
    its CALLs are answered, other sessions keep working, nothing is left
    pending, and the router logs no internal failure.  (pytest-twisted runs
    each hypothesis example in the reactor; the router and the sentinels are
    shared by all examples.)
    """
    await run_case(live_router, sentinels, case)
    assert failures_logged == [], [e.get("log_failure").getTraceback() for e in failures_logged]
