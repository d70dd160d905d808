"""
Hostile and malformed requests over real loopback sockets: every CALL ends in
RESULT or ERROR whatever its options, kwargs or nesting, nothing is left
pending, and one client's bad message never reaches or harms another.

Messages are hand-made with :class:`tests.raw_client.RawPeer` (any transport,
any serializer), so the router sees exactly the bytes a hostile peer sends.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import pytest_twisted

from router.dealer import Dealer
from router.wire import MAX_TIMEOUT_MS
from tests.conftest import in_namespaces, logged, make_service
from tests.raw_client import (
    ABORT,
    CALL,
    ERROR,
    EVENT,
    INVOCATION,
    PUBLISH,
    PUBLISHED,
    REGISTER,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    YIELD,
    bounded,
    connect_raw,
)
from tests.wamp_clients import SERIALIZERS, TRANSPORTS

COMBOS = [(t, s) for t in TRANSPORTS for s in SERIALIZERS]
ROLES = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}
CANCELING_CALLEE = {**ROLES, "callee": {"features": {"call_canceling": True}}}
INVALID_ARGUMENT = "wamp.error.invalid_argument"


_OPEN: list = []


@pytest.fixture(autouse=True)
def _drop_peers(request):
    """Drop every raw peer a test opened, so the router's shutdown does not wait for their GOODBYE."""
    if "live_router" in request.fixturenames:
        request.getfixturevalue("live_router")  # set up first, so torn down after the peers are gone
    yield
    while _OPEN:
        p = _OPEN.pop()
        if not p.closed.called and p._drop is not None:
            p.drop()


async def open_raw(address, transport, serializer):
    p = await connect_raw(address, transport, serializer)
    _OPEN.append(p)
    return p


async def peer(live_router, transport="websocket", serializer="json", roles=ROLES):
    p = await open_raw(live_router.address(transport), transport, serializer)
    welcome = await p.hello(roles)
    assert welcome[0] == 2, welcome
    return p


def router_session(live_router, p):
    return live_router.service.router.realms["realm1"].sessions[p.session_id]


def assert_nothing_pending(live_router, *peers):
    for p in peers:
        s = router_session(live_router, p)
        pending = live_router.service.router.realms["realm1"].dealer.pending(s)
        assert pending == ({}, {}), pending
    clock = live_router.service.router.clock
    assert not [c for c in clock.getDelayedCalls() if "_timed_out" in repr(c.func)]


async def echo_callee(live_router, transport="websocket", serializer="json"):
    """A raw callee of com.example.echo that answers every INVOCATION with its args."""
    callee = await peer(live_router, transport, serializer)
    await callee.register(1, "com.example.echo")
    original = callee._got

    def got(payload):
        original(payload)
        msg = callee.received[-1]
        if msg[0] == INVOCATION:
            callee.send([YIELD, msg[1], {}, msg[4] if len(msg) > 4 else []])

    callee._got = got
    return callee


def huge_timeout(serializer):
    # JSON and CBOR carry bignums (the 400-zero case); msgpack tops out at 2**64-1
    return 10**400 if serializer == "json" else 2**70 if serializer == "cbor" else 2**64 - 1


# -- item 3: numeric and boolean options, kwargs keys --------------------------------------


@pytest.mark.parametrize("transport,serializer", COMBOS)
@pytest_twisted.ensureDeferred
async def test_huge_call_timeout_is_answered_and_leaves_nothing(live_router, transport, serializer):
    """
    CALL ``timeout`` past the maximum (a 401-digit JSON number, a CBOR bignum,
    msgpack's largest integer) gets ERROR invalid_argument naming ``timeout``
    (it raised OverflowError inside the router, leaving the call pending);
    the same request ID then works, and no stray ERROR arrives later.
    """
    await echo_callee(live_router)
    caller = await peer(live_router, transport, serializer)
    reply = await caller.request([CALL, 7, {"timeout": huge_timeout(serializer)}, "com.example.echo", [1]], (RESULT, ERROR))
    assert reply[:5] == [ERROR, CALL, 7, {}, INVALID_ARGUMENT], reply
    assert "'timeout'" in reply[5][0] and str(MAX_TIMEOUT_MS) in reply[5][0]
    assert_nothing_pending(live_router, caller)
    reply = await caller.request([CALL, 7, {"timeout": MAX_TIMEOUT_MS}, "com.example.echo", [2]], (RESULT,))
    assert reply == [RESULT, 7, {}, [2]]
    await caller.fence()
    assert [m[2] for m in caller.of_type(ERROR)] == [7] and caller.of_type(ABORT) == []
    assert_nothing_pending(live_router, caller)


BAD_CALL_OPTIONS = [
    ({"timeout": -1}, "'timeout'"),
    ({"timeout": "1000"}, "'timeout'"),
    ({"timeout": True}, "'timeout'"),
    ({"timeout": 1.5}, "'timeout'"),
    ({"receive_progress": 1}, "'receive_progress'"),
    ({"disclose_me": "yes"}, "'disclose_me'"),
    ({"progress": None}, "'progress'"),
]


@pytest.mark.parametrize("options,named", BAD_CALL_OPTIONS)
@pytest_twisted.ensureDeferred
async def test_bad_call_options_get_invalid_argument(live_router, options, named):
    """
    A known CALL option of the wrong type or range gets ERROR invalid_argument
    naming it, on the fast path too (before, some were ignored and the call
    went ahead, others aborted the session); the callee is never invoked.
    """
    callee = await echo_callee(live_router)
    caller = await peer(live_router, "rawsocket", "json")
    reply = await caller.request([CALL, 3, options, "com.example.echo", []], (RESULT, ERROR))
    assert reply[:5] == [ERROR, CALL, 3, {}, INVALID_ARGUMENT], reply
    assert named in reply[5][0]
    await callee.fence()
    assert callee.of_type(INVOCATION) == []
    assert (await caller.request([CALL, 4, {}, "com.example.echo", ["ok"]], (RESULT, ERROR))) == [RESULT, 4, {}, ["ok"]]
    assert_nothing_pending(live_router, caller, callee)


BAD_KEYS = {"msgpack": {b"bytes-key": 1}, "cbor": {(1, 2): 1}}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("serializer", sorted(BAD_KEYS))
@pytest_twisted.ensureDeferred
async def test_call_with_non_string_kwargs_keys(live_router, transport, serializer):
    """
    CALL kwargs with a key that is not a string (msgpack bytes, a CBOR array)
    get ERROR invalid_argument; Autobahn raised inside the router before, the
    call was never answered and stayed pending.
    """
    callee = await echo_callee(live_router)
    caller = await peer(live_router, transport, serializer)
    reply = await caller.request([CALL, 5, {}, "com.example.echo", [], BAD_KEYS[serializer]], (RESULT, ERROR))
    assert reply[:5] == [ERROR, CALL, 5, {}, INVALID_ARGUMENT], reply
    assert "kwargs keys must be strings" in reply[5][0]
    assert (await caller.request([CALL, 5, {}, "com.example.echo", ["again"]], (RESULT,)))[0] == RESULT
    await callee.fence()
    assert len(callee.of_type(INVOCATION)) == 1
    assert_nothing_pending(live_router, caller, callee)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("serializer", sorted(BAD_KEYS))
@pytest_twisted.ensureDeferred
async def test_yield_with_non_string_kwargs_keys_ends_the_call(live_router, transport, serializer):
    """
    A YIELD (or a callee's ERROR) with non-string kwargs keys ends the
    caller's call with ERROR invalid_argument; the callee keeps its session.
    """
    callee = await peer(live_router, transport, serializer)
    await callee.register(1, "com.example.bad")
    caller = await peer(live_router, "websocket", "json")
    caller.send([CALL, 1, {}, "com.example.bad", []])
    inv = await callee.wait_nth(INVOCATION, 1)
    callee.send([YIELD, inv[1], {}, [], BAD_KEYS[serializer]])
    reply = await caller.wait_for(lambda m: m[0] in (RESULT, ERROR))
    assert reply[:5] == [ERROR, CALL, 1, {}, INVALID_ARGUMENT], reply
    assert "kwargs keys must be strings" in reply[5][0]
    caller.send([CALL, 2, {}, "com.example.bad", []])
    inv = await callee.wait_nth(INVOCATION, 2)
    callee.send([ERROR, INVOCATION, inv[1], {}, "com.example.oops", [], BAD_KEYS[serializer]])
    reply = await caller.wait_for(lambda m: m[0] in (RESULT, ERROR) and m[2] == 2)
    assert reply[:5] == [ERROR, CALL, 2, {}, INVALID_ARGUMENT], reply
    await callee.fence()
    assert callee.of_type(ABORT) == []
    assert_nothing_pending(live_router, caller, callee)


@pytest_twisted.ensureDeferred
async def test_bad_options_of_other_requests(live_router):
    """
    SUBSCRIBE, REGISTER and an acknowledged PUBLISH with a known option of the
    wrong type get ERROR invalid_argument (they aborted the session before);
    a PUBLISH without ``acknowledge`` is dropped silently and delivered to no one.
    """
    p = await peer(live_router, "websocket", "cbor")
    watcher = await peer(live_router, "rawsocket", "msgpack")
    await watcher.request([SUBSCRIBE, 1, {}, "com.example.t"], (SUBSCRIBED,))
    for raw, named in (
        ([SUBSCRIBE, 11, {"match": 5}, "com.example.t"], "'match'"),
        ([SUBSCRIBE, 12, {"get_retained": "yes"}, "com.example.t"], "'get_retained'"),
        ([REGISTER, 13, {"invoke": ["roundrobin"]}, "com.example.p"], "'invoke'"),
        ([REGISTER, 14, {"concurrency": 0}, "com.example.p"], "'concurrency'"),
        ([PUBLISH, 15, {"acknowledge": True, "retain": 1}, "com.example.t", ["x"]], "'retain'"),
        ([PUBLISH, 16, {"acknowledge": True, "exclude": [2**60]}, "com.example.t", ["x"]], "'exclude'"),
    ):
        reply = await p.request(raw, (ERROR, SUBSCRIBED, PUBLISHED, 65))
        assert reply[:5] == [ERROR, raw[0], raw[1], {}, INVALID_ARGUMENT], reply
        assert named in reply[5][0]
    p.send([PUBLISH, 17, {"exclude_me": "no"}, "com.example.t", ["dropped"]])
    assert (await p.request([PUBLISH, 18, {"acknowledge": True}, "com.example.t", ["kept"]], (PUBLISHED, ERROR)))[0] == PUBLISHED
    await watcher.wait_nth(EVENT, 1)
    await watcher.fence()
    await p.fence()
    assert [m[4] for m in watcher.of_type(EVENT)] == [["kept"]]
    assert [m[2] for m in p.of_type(ERROR)] == [11, 12, 13, 14, 15, 16]


@pytest_twisted.ensureDeferred
async def test_publish_to_a_bad_uri_is_answered_only_when_acknowledged(live_router):
    """
    A PUBLISH to an invalid topic URI gets ERROR invalid_uri only with
    ``acknowledge``; without it the refusal is silent, like every refused
    PUBLISH (autobahn closes its session on an ERROR for a PUBLISH it does
    not track).
    """
    p = await peer(live_router, "rawsocket", "cbor")
    p.send([PUBLISH, 1, {}, "com.bad topic", ["x"]])
    reply = await p.request([PUBLISH, 2, {"acknowledge": True}, "com.bad topic", ["x"]], (PUBLISHED, ERROR))
    assert reply[:5] == [ERROR, PUBLISH, 2, {}, "wamp.error.invalid_uri"], reply
    await p.fence()
    assert [m[2] for m in p.of_type(ERROR)] == [2]


@pytest.mark.parametrize("request_id", [0, 2**53 + 1])
@pytest_twisted.ensureDeferred
async def test_request_id_out_of_range_is_a_protocol_violation(live_router, request_id):
    """A request ID outside 1..2**53 cannot be answered: ABORT protocol_violation (Autobahn let 0 through)."""
    p = await peer(live_router)
    p.send([SUBSCRIBE, request_id, {}, "com.example.t"])
    abort = await p.wait_for(lambda m: m[0] in (ABORT, SUBSCRIBED, ERROR))
    assert abort[0] == ABORT and abort[2] == "wamp.error.protocol_violation", abort
    assert "request ID" in abort[1]["message"]


@pytest_twisted.ensureDeferred
async def test_a_call_the_dealer_fails_on_still_ends_in_error(live_router, monkeypatch):
    """
    Any exception inside the dealer while it handles a CALL ends the call with
    ERROR ``wamp.error.runtime_error`` and drops its pending state and timer
    (a fault injected where the INVOCATION is built, after the call's state
    and timer exist, stands in for any unforeseen bug);
    the request ID is free again afterwards.
    """
    callee = await echo_callee(live_router)
    caller = await peer(live_router)

    def broken(self, pending, msg, progress):
        raise RuntimeError("injected fault")

    with monkeypatch.context() as patch:
        patch.setattr(Dealer, "_invoke", broken)
        reply = await caller.request([CALL, 9, {"timeout": 60000}, "com.example.echo", []], (RESULT, ERROR))
    assert reply[:5] == [ERROR, CALL, 9, {}, "wamp.error.runtime_error"], reply
    assert_nothing_pending(live_router, caller)
    assert (await caller.request([CALL, 9, {}, "com.example.echo", ["fine"]], (RESULT,))) == [RESULT, 9, {}, ["fine"]]
    await callee.fence()


# -- item 5: nesting depth --------------------------------------------------------------------


def nested(depth: int):
    """A list nested ``depth`` levels deep (``nested(1) == []``)."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("transport,serializer", COMBOS)
@pytest_twisted.ensureDeferred
async def test_deep_publication_is_refused_once_for_everyone(live_router, transport, serializer):
    """
    A publication nested past ``max_nesting_depth`` (64) is refused when it is
    decoded: ERROR invalid_argument to an acknowledged PUBLISH, silence to an
    unacknowledged one, and no subscriber of any serializer gets it (a CBOR
    decoder with a depth limit died of it before).  64 deep still passes.
    """
    subscribers = [await peer(live_router, "websocket", name) for name in SERIALIZERS]
    for s in subscribers:
        await s.request([SUBSCRIBE, 1, {}, "com.example.deep"], (SUBSCRIBED,))
    p = await peer(live_router, transport, serializer)
    # the message is level 1, args level 2: args nested 63 more is 64 in all
    ok = await p.request([PUBLISH, 1, {"acknowledge": True}, "com.example.deep", nested(63)], (PUBLISHED, ERROR))
    assert ok[0] == PUBLISHED
    deep = nested(200 if serializer != "json" else 600)
    if serializer == "cbor":
        deep = nested(300)  # cbor2 decodes up to 400
    reply = await p.request([PUBLISH, 2, {"acknowledge": True}, "com.example.deep", deep], (PUBLISHED, ERROR))
    assert reply[:5] == [ERROR, PUBLISH, 2, {}, INVALID_ARGUMENT], reply
    assert "deeper than the limit of 64" in reply[5][0]
    p.send([PUBLISH, 3, {}, "com.example.deep", deep])
    await p.fence()
    for s in subscribers:
        await s.fence()
        assert len(s.of_type(EVENT)) == 1 and s.of_type(ABORT) == []
    assert p.of_type(ABORT) == [] and len(p.of_type(ERROR)) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_json_deeper_than_the_decoder_can_go(live_router, transport):
    """
    JSON nested past Python's recursion limit (RecursionError in the decoder)
    is still refused cleanly: a CALL gets ERROR invalid_argument (its head is
    read on its own), a HELLO that deep gets ABORT protocol_violation.
    """
    deep = b"[" * 5000 + b"]" * 5000  # json.dumps cannot write it either
    p = await peer(live_router, transport, "json")
    p._write(b'[48, 1, {"timeout": 100}, "com.example.echo", ' + deep + b"]")
    reply = await p.wait_for(lambda m: m[0] in (RESULT, ERROR))
    assert reply[:5] == [ERROR, CALL, 1, {}, INVALID_ARGUMENT], reply
    assert "deeper than the limit of 64" in reply[5][0]
    await p.fence()
    fresh = await open_raw(live_router.address(transport), transport, "json")
    fresh._write(b'[1, "realm1", {"roles": {"caller": {}}, "x": ' + deep + b"}]")
    abort = await fresh.wait_for(lambda m: m[0] == ABORT)
    assert abort[2] == "wamp.error.protocol_violation" and "deeper" in abort[1]["message"]
    await bounded(fresh.closed)


@pytest_twisted.ensureDeferred
async def test_deep_yield_ends_the_call_and_deep_subscribe_is_answered(live_router):
    """A YIELD too deep ends the caller's call with ERROR; a SUBSCRIBE with too-deep options gets ERROR."""
    callee = await peer(live_router, "rawsocket", "msgpack", CANCELING_CALLEE)
    await callee.register(1, "com.example.deep")
    caller = await peer(live_router)
    caller.send([CALL, 1, {}, "com.example.deep", []])
    inv = await callee.wait_nth(INVOCATION, 1)
    callee.send([YIELD, inv[1], {}, nested(100)])
    reply = await caller.wait_for(lambda m: m[0] in (RESULT, ERROR))
    assert reply[:5] == [ERROR, CALL, 1, {}, INVALID_ARGUMENT], reply
    reply = await caller.request([SUBSCRIBE, 2, {"x": nested(100)}, "com.example.t"], (SUBSCRIBED, ERROR))
    assert reply[:5] == [ERROR, SUBSCRIBE, 2, {}, INVALID_ARGUMENT]
    assert_nothing_pending(live_router, caller, callee)


@pytest_twisted.ensureDeferred
async def test_max_nesting_depth_is_configurable():
    """``max_nesting_depth`` moves the bound; 0 switches it off (the decoders' own limits remain)."""
    for limit, passes, refused in ((10, 10, 11), (0, 300, None)):
        service = make_service(max_nesting_depth=limit)
        await service.startService()
        try:
            by_kind = {e.transport: e for e in service.endpoints}
            p = await open_raw(by_kind["websocket"].url, "websocket", "json")
            await p.hello(ROLES)
            await p.request([SUBSCRIBE, 1, {}, "com.example.t"], (SUBSCRIBED,))
            ok = await p.request([PUBLISH, 2, {"acknowledge": True}, "com.example.t", nested(passes - 1)], (PUBLISHED, ERROR))
            assert ok[0] == PUBLISHED, ok
            if refused is not None:
                no = await p.request([PUBLISH, 3, {"acknowledge": True}, "com.example.t", nested(refused - 1)], (PUBLISHED, ERROR))
                assert no[0] == ERROR and f"limit of {limit}" in no[5][0], no
        finally:
            p.drop()
            await bounded(p.closed)
            await service.stopService()


# -- item 7: a publication one serializer cannot carry ------------------------------------------


@pytest.fixture
def broker_log():
    """Every log event of the router's broker and sessions (where encoding failures are logged) while the test runs."""
    with logged(in_namespaces("wampd.broker", "wampd.session")) as seen:
        yield seen


UNENCODABLE = [
    # publisher's serializer, a value, the serializers that cannot carry it
    ("json", 2**70, {"msgpack"}),
    ("cbor", float("nan"), {"json"}),
    ("cbor", datetime(2020, 1, 1, tzinfo=timezone.utc), {"json", "msgpack"}),  # CBOR tag 0: a datetime
    ("json", "\ud800", {"json", "msgpack", "cbor"}),
]


@pytest.mark.parametrize("serializer,value,failing", UNENCODABLE)
@pytest_twisted.ensureDeferred
async def test_unencodable_publication_is_logged_once_and_acknowledged_with_error(
    live_router, broker_log, serializer, value, failing
):
    """
    A publication one serializer cannot encode (an integer past 64 bits for
    msgpack, NaN for JSON, a CBOR datetime for both, a lone surrogate for any) is
    decided once per publication and serializer: one log line per publication
    (it was one per subscriber), the subscribers of the other serializers get
    it, and an acknowledged PUBLISH gets ERROR invalid_argument naming the
    serializers; nobody is disconnected.
    """
    subscribers = {name: [] for name in SERIALIZERS}
    for n in range(15):
        name = list(SERIALIZERS)[n % 3]
        s = await peer(live_router, TRANSPORTS[n % 2], name)
        await s.request([SUBSCRIBE, 1, {}, "com.example.odd"], (SUBSCRIBED,))
        subscribers[name].append(s)
    p = await peer(live_router, "websocket", serializer)
    for request in range(1, 5):
        reply = await p.request([PUBLISH, request, {"acknowledge": True}, "com.example.odd", [value]], (PUBLISHED, ERROR))
        assert reply[:5] == [ERROR, PUBLISH, request, {}, INVALID_ARGUMENT], reply
        for name in sorted(failing):
            assert name in reply[5][0]
    p.send([PUBLISH, 9, {}, "com.example.odd", [value]])  # not acknowledged: no answer, still logged once
    await p.fence()
    assert p.of_type(ABORT) == [] and len(p.of_type(ERROR)) == 4
    for name, group in subscribers.items():
        for s in group:
            await s.fence()
            assert s.of_type(ABORT) == []
            assert len(s.of_type(EVENT)) == (0 if name in failing else 5), name
    errors = [e for e in broker_log if e.get("log_level").name == "error"]
    assert len(errors) == 5, [e["log_format"] for e in errors]
    assert all(e["serializers"] == ", ".join(sorted(failing)) for e in errors)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_cbor_payload_map_keys_must_be_strings(live_router, transport):
    """
    A CBOR payload whose maps have integer or array keys is refused with ERROR
    invalid_argument (PUBLISH with acknowledge, CALL): passed on, it killed
    msgpack subscribers, whose decoders take only string or bytes keys.  Bytes
    keys and string keys still pass.
    """
    from tests.wamp_clients import join, leave

    watcher = await join(live_router.address(transport), transport, "msgpack")
    seen = []
    await watcher.subscribe(lambda *args: seen.append(args), "com.example.keys")
    p = await peer(live_router, transport, "cbor")
    for request, bad in ((1, {1: "int key"}), (2, [{"ok": {(1, 2): "array key"}}])):
        reply = await p.request([PUBLISH, request, {"acknowledge": True}, "com.example.keys", [bad]], (PUBLISHED, ERROR))
        assert reply[:5] == [ERROR, PUBLISH, request, {}, INVALID_ARGUMENT], reply
        assert "map keys in the payload must be strings" in reply[5][0]
    reply = await p.request([CALL, 3, {}, "com.example.echo", [{7: 7}]], (RESULT, ERROR))
    assert reply[:5] == [ERROR, CALL, 3, {}, INVALID_ARGUMENT], reply
    ok = await p.request([PUBLISH, 4, {"acknowledge": True}, "com.example.keys", [{"s": 1, b"b": 2}]], (PUBLISHED, ERROR))
    assert ok[0] == PUBLISHED, ok
    assert await watcher.call("wamp.session.count") >= 2  # alive, and everything sent before has arrived
    assert seen == [({"s": 1, b"b": 2},)]
    await leave(watcher)


@pytest_twisted.ensureDeferred
async def test_unencodable_retained_events_are_logged_once_per_subscribe(live_router, broker_log):
    """
    Retained events a subscriber's serializer cannot carry (retained while no
    such subscriber existed) are skipped on ``get_retained`` with one log line
    for the whole SUBSCRIBE, not one per topic; the others are delivered.
    """
    p = await peer(live_router, "websocket", "cbor")
    for n in range(20):
        value = float("nan") if n % 2 else n
        reply = await p.request([PUBLISH, n + 1, {"acknowledge": True, "retain": True}, f"com.example.nan.t{n}", [value]], (PUBLISHED, ERROR))
        assert reply[0] == PUBLISHED
    s = await peer(live_router, "rawsocket", "json")
    await s.request([SUBSCRIBE, 1, {"match": "prefix", "get_retained": True}, "com.example.nan."], (SUBSCRIBED,))
    await s.fence()
    assert sorted(m[4][0] for m in s.of_type(EVENT)) == list(range(0, 20, 2))
    errors = [e for e in broker_log if e.get("log_level").name == "error"]
    assert len(errors) == 1 and errors[0].get("skipped") == 10, [e["log_format"] for e in errors]
