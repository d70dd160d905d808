"""
The WAMP basic profile with real autobahn-python clients over loopback, on
both transports and all three serializers.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from twisted.internet.defer import Deferred, DeferredList

from tests.wamp_clients import SERIALIZERS, TRANSPORTS, join, leave

COMBOS = [(t, s) for t in TRANSPORTS for s in SERIALIZERS]
MAX_ID = 2**53


@pytest.mark.parametrize("transport,serializer", COMBOS)
@pytest_twisted.ensureDeferred
async def test_pubsub_and_rpc_roundtrip(live_router, transport, serializer):
    address = live_router.address(transport)
    alice = await join(address, transport, serializer)
    bob = await join(address, transport, serializer)
    assert 1 <= alice._session_id <= MAX_ID
    assert alice._session_id != bob._session_id

    # one subscription per topic, shared by its subscribers
    got_alice, got_bob = Deferred(), Deferred()
    sub_a = await alice.subscribe(lambda *a, **kw: got_alice.callback((a, kw)), "com.example.topic")
    sub_b = await bob.subscribe(lambda *a, **kw: got_bob.callback((a, kw)), "com.example.topic")
    assert sub_a.id == sub_b.id

    payload = (1, "two", [3.5, None], {"four": True})
    pub = await bob.publish(
        "com.example.topic", *payload, binary=b"\x00\xffraw", options=PublishOptions(acknowledge=True)
    )
    assert 1 <= pub.id <= MAX_ID
    args, kwargs = await got_alice
    assert tuple(args) == (1, "two", [3.5, None], {"four": True})
    assert kwargs == {"binary": b"\x00\xffraw"}
    # the publisher is excluded by default
    assert not got_bob.called

    # RPC with args and kwargs intact both ways
    await alice.register(lambda a, b, scale=1: {"sum": (a + b) * scale, "bytes": b"\x01\x02"}, "com.example.add")
    result = await bob.call("com.example.add", 2, 3, scale=10)
    assert result == {"sum": 50, "bytes": b"\x01\x02"}

    # callee ERROR passed back with args/kwargs intact
    def fail(*args, **kwargs):
        raise ApplicationError("com.example.error.nope", "a", 2, detail={"x": [1]})

    await alice.register(fail, "com.example.fail")
    with pytest.raises(ApplicationError) as info:
        await bob.call("com.example.fail")
    assert info.value.error == "com.example.error.nope"
    assert info.value.args == ("a", 2)
    assert info.value.kwargs == {"detail": {"x": [1]}}

    await leave(alice)
    await leave(bob)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_publish_without_acknowledge_is_still_delivered(live_router, transport):
    address = live_router.address(transport)
    sub = await join(address, transport)
    pub = await join(address, transport)
    got = Deferred()
    await sub.subscribe(lambda x: got.callback(x), "com.example.noack")
    assert pub.publish("com.example.noack", 7) is None
    assert await got == 7
    await leave(sub)
    await leave(pub)


@pytest_twisted.ensureDeferred
async def test_error_uris(live_router):
    c = await join(live_router.ws_url)
    other = await join(live_router.ws_url)

    with pytest.raises(ApplicationError) as info:
        await c.call("com.example.missing")
    assert info.value.error == "wamp.error.no_such_procedure"

    await c.register(lambda: 1, "com.example.taken")
    with pytest.raises(ApplicationError) as info:
        await other.register(lambda: 2, "com.example.taken")
    assert info.value.error == "wamp.error.procedure_already_exists"

    # invalid URIs get an ERROR and the session stays
    c.send_raw([48, 901, {}, "com.bad uri"])
    c.send_raw([32, 902, {}, "com..empty"])
    c.send_raw([64, 903, {}, "com.#hash"])
    c.send_raw([16, 904, {"acknowledge": True}, "com.x y"])
    assert await c.call("com.example.taken") == 1  # a fence: the errors came before
    assert c.errors() == [
        (48, 901, "wamp.error.invalid_uri"),
        (32, 902, "wamp.error.invalid_uri"),
        (64, 903, "wamp.error.invalid_uri"),
        (16, 904, "wamp.error.invalid_uri"),
    ]
    await leave(c)
    await leave(other)


@pytest_twisted.ensureDeferred
async def test_unknown_subscription_and_registration_ids(live_router):
    """UNSUBSCRIBE/UNREGISTER of IDs the session does not own get the spec's errors."""
    c = await join(live_router.ws_url)
    c.send_raw([34, 901, 123456])
    c.send_raw([66, 902, 654321])
    await c.register(lambda: "ok", "com.example.fence")
    assert await c.call("com.example.fence") == "ok"
    assert c.errors() == [
        (34, 901, "wamp.error.no_such_subscription"),
        (66, 902, "wamp.error.no_such_registration"),
    ]
    await leave(c)


@pytest_twisted.ensureDeferred
async def test_unsubscribe_and_unregister(live_router):
    a = await join(live_router.ws_url)
    b = await join(live_router.ws_url)
    seen = []
    sub = await a.subscribe(seen.append, "com.example.t")
    await sub.unsubscribe()
    reg = await a.register(lambda: 1, "com.example.p")
    await reg.unregister()
    with pytest.raises(ApplicationError) as info:
        await b.call("com.example.p")
    assert info.value.error == "wamp.error.no_such_procedure"
    # a new subscriber after the last one left gets a fresh subscription
    got = Deferred()
    await b.subscribe(got.callback, "com.example.t")
    await a.publish("com.example.t", 5, options=PublishOptions(acknowledge=True))
    assert await got == 5
    assert seen == []
    await leave(a)
    await leave(b)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_callee_disconnect_mid_call_ends_the_call(live_router, transport):
    address = live_router.address(transport)
    callee = await join(address, transport)
    caller = await join(address, transport)
    invoked = Deferred()

    def slow():
        invoked.callback(None)
        return Deferred()  # never answers

    await callee.register(slow, "com.example.slow")
    call = caller.call("com.example.slow")
    await invoked
    callee.wire.transport.abortConnection()  # TCP drop, no GOODBYE
    with pytest.raises(ApplicationError) as info:
        await call
    assert info.value.error == "wamp.error.canceled"
    # the stale registration is gone at once: re-registering works
    again = await join(address, transport)
    await again.register(lambda: "back", "com.example.slow")
    assert await caller.call("com.example.slow") == "back"
    await leave(caller)
    await leave(again)


@pytest_twisted.ensureDeferred
async def test_goodbye_handshake_reply(live_router):
    c = await join(live_router.ws_url)
    c.leave("wamp.close.close_realm", "bye")
    details = await c.left
    assert details.reason == "wamp.close.goodbye_and_out"
    await c.disconnected
    left = await live_router.recorder.wait_for(lambda e: e.name == "session_left")
    assert left.reason == "wamp.close.close_realm"


@pytest_twisted.ensureDeferred
async def test_unknown_realm_is_aborted(live_router):
    from tests.wamp_clients import connect

    c = await connect(live_router.ws_url, realm="no.such.realm")
    with pytest.raises(RuntimeError, match="wamp.error.no_such_realm"):
        await c.joined
    await c.disconnected
    rejected = await live_router.recorder.wait_for(lambda e: e.name == "client_rejected")
    assert rejected.reason == "realm"
    assert rejected.realm == "no.such.realm"


@pytest_twisted.ensureDeferred
async def test_many_concurrent_calls(live_router):
    callee = await join(live_router.rs_port, "rawsocket")
    caller = await join(live_router.ws_url)
    await callee.register(lambda x: x * 2, "com.example.double")
    results = await DeferredList([caller.call("com.example.double", i) for i in range(200)], fireOnOneErrback=True)
    assert [value for ok, value in results] == [i * 2 for i in range(200)]
    await leave(callee)
    await leave(caller)


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 300_000])
@pytest_twisted.ensureDeferred
async def test_payload_sizes_across_websocket_frame_length_forms(live_router, size):
    """7-bit, 16-bit and 64-bit frame lengths in both directions, text and binary."""
    caller = await join(live_router.ws_url)
    callee = await join(live_router.ws_url, serializer="msgpack")
    await callee.register(lambda s, b: (len(s), b), "com.example.size")
    text = "é" * (size // 2)
    blob = bytes(range(256)) * (size // 256)
    assert await caller.call("com.example.size", text, blob) == [len(text), blob]
    await leave(caller)
    await leave(callee)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_unix_socket_endpoints(tmp_path, transport):
    """Both transports on a unix: endpoint, beside a TCP one."""
    from autobahn.twisted.rawsocket import WampRawSocketClientFactory
    from autobahn.twisted.websocket import WampWebSocketClientFactory
    from autobahn.wamp.types import ComponentConfig
    from twisted.internet import reactor
    from twisted.internet.endpoints import UNIXClientEndpoint

    from router.config import ListenConfig
    from tests.conftest import make_service
    from tests.wamp_clients import Client

    path = str(tmp_path / "wampd.sock")
    service = make_service(
        listen=(ListenConfig(f"unix:{path}", transport), ListenConfig("tcp:0:interface=127.0.0.1", "websocket"))
    )
    await service.startService()
    try:
        session = Client(ComponentConfig("realm1"))
        if transport == "websocket":
            factory = WampWebSocketClientFactory(lambda: session, url="ws://localhost/ws")
        else:
            factory = WampRawSocketClientFactory(lambda: session)
        await UNIXClientEndpoint(reactor, path).connect(factory)
        await session.joined.addTimeout(10, reactor)
        await session.register(lambda: "over unix", "com.example.unix")
        assert await session.call("com.example.unix") == "over unix"
        await leave(session)
    finally:
        await service.stopService()
