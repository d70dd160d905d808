"""
Churn: 2,000 sessions come and go over real loopback sockets against an
in-process router (WebSocket and RawSocket, the three serializers, GOODBYE and
abrupt TCP drops, exact/prefix/wildcard subscriptions, registrations, calls in
flight both ways when they go), and the router is left with nothing of theirs:
no session, subscription, registration, pending call, counted connection or
timer.  Bounded: at most ``CONCURRENCY`` sessions at a time.
"""

from __future__ import annotations

import os

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, ensureDeferred

from tests.conftest import make_service
from tests.raw_client import (
    CALL,
    ERROR,
    GOODBYE,
    INVOCATION,
    REGISTER,
    REGISTERED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    WELCOME,
    bounded,
    connect_raw,
)
from tests.wamp_clients import Recorder

SESSIONS = int(os.environ.get("WAMPD_CHURN_SESSIONS", "2000"))
CONCURRENCY = 40
ROLES = {
    "subscriber": {},
    "publisher": {},
    "caller": {"features": {"call_canceling": True}},
    "callee": {"features": {"call_canceling": True}},
}
SERIALIZERS = ("json", "msgpack", "cbor")


def _router_timers() -> list[str]:
    """The reactor's pending delayed calls that run code of the router package (LoopingCalls by their function)."""
    found = []
    for call in reactor.getDelayedCalls():
        func = call.func
        target = getattr(getattr(func, "__self__", None), "f", None) or func  # a LoopingCall's function
        module = getattr(getattr(target, "__func__", target), "__module__", "") or ""
        if module.startswith("router."):
            found.append(getattr(target, "__qualname__", repr(target)))
    return sorted(found)


async def _one(n: int, r, sentinel, canceled_calls: list) -> None:
    transport = "websocket" if n % 2 else "rawsocket"
    address = r.ws_url if transport == "websocket" else r.rs_port
    peer = await connect_raw(address, transport, SERIALIZERS[n % 3])
    welcome = await peer.hello(ROLES)
    assert welcome[0] == WELCOME, welcome
    match = ("exact", "prefix", "wildcard")[n % 3]
    topic = {"exact": f"churn.t{n}", "prefix": f"churn.t{n}.", "wildcard": f"churn.{n}..x"}[match]
    # pipelined: both requests, then both answers
    peer.send([SUBSCRIBE, 1, {"match": match}, topic])
    peer.send([SUBSCRIBE, 2, {}, "churn.shared"])
    peer.send([REGISTER, 3, {}, f"churn.p{n}"])
    await peer.wait_for(lambda m: m[0] == REGISTERED and m[1] == 3)
    await peer.wait_nth(SUBSCRIBED, 2)
    if n % 5 == 0:
        # a call of ours in flight (with a call timeout, so a router timer runs) when we go
        peer.send([CALL, 4, {"timeout": 60_000}, "churn.slow", [n]])
        await sentinel.wait_for(lambda m: m[0] == INVOCATION and m[4:5] == [[n]])
    elif n % 5 == 1:
        # a call to us in flight when we go: the sentinel caller must get ERROR canceled
        request = 1_000_000 + n
        canceled_calls.append(request)
        sentinel.send([CALL, request, {}, f"churn.p{n}"])
        await peer.wait_for(lambda m: m[0] == INVOCATION)
    if n % 4 < 2:
        await peer.goodbye()
    else:
        peer.drop()  # abrupt: TCP reset, no GOODBYE
        await bounded(peer.closed)


async def _worker(worker: int, r, sentinel, canceled_calls: list) -> None:
    for n in range(worker, SESSIONS, CONCURRENCY):
        await _one(n, r, sentinel, canceled_calls)


@pytest_twisted.ensureDeferred
async def test_churn_leaves_nothing_behind():
    """2,000 sessions churned on both transports, clean and abrupt: zero sessions, subscriptions, registrations, calls, timers."""
    recorder = Recorder()
    service = make_service(recorder)
    await service.startService()
    try:
        router = service.router
        realm = router.realms["realm1"]
        ws_url = [e.url for e in service.endpoints if e.transport == "websocket"][0]
        rs_port = [e.port for e in service.endpoints if e.transport == "rawsocket"][0]

        class Where:
            pass

        r = Where()
        r.ws_url, r.rs_port = ws_url, rs_port
        baseline_timers = _router_timers()
        sentinel = await connect_raw(rs_port, "rawsocket")
        await sentinel.hello(ROLES)
        assert await sentinel.register(1, "churn.slow") > 0  # never answers: calls to it stay in flight

        canceled_calls: list[int] = []
        disconnected = []
        all_gone = recorder.wait_for(
            lambda e: e.name == "client_disconnected" and disconnected.append(e) is None and len(disconnected) == SESSIONS,
            timeout=60,
        )
        results = await DeferredList(
            [ensureDeferred(_worker(w, r, sentinel, canceled_calls)) for w in range(CONCURRENCY)],
            consumeErrors=True,
        )
        failures = [result for ok, result in results if not ok]
        assert not failures, failures[0]
        await all_gone

        # every call the sentinel made to a departing callee was answered with ERROR canceled
        for request in canceled_calls:
            reply = await sentinel.wait_for(
                lambda m, q=request: (m[0] == ERROR and m[2] == q) or (m[0] == RESULT and m[1] == q)
            )
            assert reply[0] == ERROR, reply
            assert reply[4] == "wamp.error.canceled", reply
        # the meta API, from the sentinel
        async def meta(request: int, procedure: str):
            reply = await sentinel.request([CALL, request, {}, procedure], (RESULT, ERROR))
            assert reply[0] == RESULT, reply
            return reply[3][0]

        assert await meta(10, "wamp.session.count") == 1
        assert await meta(11, "wamp.subscription.list") == {"exact": [], "prefix": [], "wildcard": []}
        assert await meta(12, "wamp.registration.list") == {
            "exact": [realm.dealer.lookup("churn.slow").id],
            "prefix": [],
            "wildcard": [],
        }
        # the router's own state
        mine = realm.sessions[sentinel.session_id]
        assert list(realm.sessions) == [sentinel.session_id]
        assert realm.dealer.pending(mine) == ({}, {})  # the callers of churn.slow are gone
        assert realm.dealer.pending(realm.internal) == ({}, {})
        # what left is gone from the routing core's own indexes
        assert set(realm.dealer._parties) <= {mine, realm.internal} and set(realm.broker._owned) <= {mine}
        assert set(realm.meta._testaments) <= {mine}
        assert len(realm.broker._index) == 0 and realm.broker.subscriptions() == ()
        assert realm.broker._index._trie.children == {} and realm.broker._index._prefix_lengths == {}
        assert [reg.uri for reg in realm.dealer.registrations()] == ["churn.slow"]
        assert router.open_connections == 1 and len(router.connections) == 1
        assert router._handshaking == {} and router._unopened == {}
        assert _router_timers() == baseline_timers  # only the service's ping sweeper; no call timer, no hello sweep
        await sentinel.goodbye()
    finally:
        await service.stopService()
