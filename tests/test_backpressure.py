"""
Slow consumers over real loopback sockets: a client whose socket stops
reading while the router keeps sending to it.

The router registers every connection as a streaming producer on its
transport, counts what it writes once Twisted says the socket's buffer is
full, and past ``max_outbound_buffer`` applies ``slow_consumer``.  The
assertions are on bytes: what Twisted holds for the stalled connection
(sampled after every batch the router has finished handling), never on time.
"""

from __future__ import annotations

import gc
import socket
import weakref

import pytest
import pytest_twisted
from twisted.internet import ssl
from twisted.internet.defer import DeferredList

from tests.conftest import make_service
from tests.raw_client import (
    CALL,
    ERROR,
    EVENT,
    INVOCATION,
    PUBLISH,
    REGISTER,
    REGISTERED,
    SUBSCRIBE,
    SUBSCRIBED,
    YIELD,
    connect_raw,
)
from tests.wamp_clients import Recorder

LIMIT = 64 * 1024
TWISTED_MARK = 64 * 1024  # Twisted pauses its producer past this many bytes in its own buffer
CHUNK = "x" * 4096
BATCH = 4
MAX_MESSAGES = 4000  # 16 MiB: far past any kernel buffer, so a router without a limit fails
ROLES = {"subscriber": {}, "publisher": {}, "caller": {}, "callee": {}}


def held_by_router(transport) -> int:
    """Bytes Twisted holds for one connection (its write buffers), TLS unwrapped."""
    while getattr(transport, "transport", None) is not None:
        transport = transport.transport
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def small_send_buffer(transport) -> None:
    """A small kernel send buffer on the router's side, so the test needs megabytes less traffic."""
    while getattr(transport, "transport", None) is not None:
        transport = transport.transport
    transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)


async def started(**settings):
    recorder = Recorder()
    service = make_service(recorder, max_outbound_buffer=LIMIT, **settings)
    await service.startService()
    by_kind = {e.transport: e for e in reversed(service.endpoints)}
    return service, recorder, {"websocket": by_kind["websocket"].url, "rawsocket": by_kind["rawsocket"].port}


async def joined(address, transport, peers, endpoint=None):
    peer = await connect_raw(address, transport, endpoint=endpoint)
    peers.append(peer)
    welcome = await peer.hello(ROLES)
    assert welcome[0] == 2, welcome
    return peer


async def stop(service, peers):
    """Drop the clients (they would not answer the shutdown GOODBYE), then stop the router."""
    for peer in peers:
        if not peer.closed.called:
            peer.drop()
    await service.stopService()


def router_peer(service, peer):
    """The router's protocol object for a client's session."""
    return service.router.realms["realm1"].sessions[peer.session_id].peer


async def subscribe(peer, request, topic="com.flood"):
    reply = await peer.request([SUBSCRIBE, request, {}, topic], (SUBSCRIBED,))
    return reply[2]


def left(recorder, connection_id):
    return [e for e in recorder.events if e.name == "session_left" and e.session.connection.id == connection_id]


def disconnected(recorder, connection_id):
    return [e for e in recorder.events if e.name == "client_disconnected" and e.connection.id == connection_id]


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_a_subscriber_that_stops_reading_is_dropped_at_the_limit(transport):
    """
    A subscriber that stops reading while a publisher floods: Twisted never
    holds much more than max_outbound_buffer for it (plus its own 64 KiB
    mark and one message); it is dropped with session_left
    ``wampd.close.slow_consumer`` and a client_disconnected reason naming the
    limit; a healthy subscriber beside it gets every event in order; and
    nothing keeps the dropped connection's buffers alive afterwards.
    """
    service, recorder, addresses = await started()
    await stalled_subscriber(service, recorder, addresses[transport], transport)


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest.mark.parametrize("kind", ["ssl", "unix"])
@pytest_twisted.ensureDeferred
async def test_the_limit_holds_over_tls_and_unix_sockets(kind, transport, tmp_path):
    """
    The same slow subscriber over a TLS endpoint (TLSMemoryBIOProtocol passes
    the producer registration down to the socket) and over a unix socket.
    """
    from twisted.internet import reactor
    from twisted.internet.endpoints import SSL4ClientEndpoint, UNIXClientEndpoint

    from router.config import ListenConfig
    from tests.test_tls import self_signed

    if kind == "ssl":
        key_path, cert_path, cert_pem = self_signed(tmp_path)
        listen = f"ssl:0:interface=127.0.0.1:privateKey={key_path}:certKey={cert_path}"
    else:
        listen = f"unix:{tmp_path}/wampd.sock"
    service, recorder, _ = await started(
        listen=(ListenConfig(listen, transport), ListenConfig("tcp:0:interface=127.0.0.1", "rawsocket"), ListenConfig("tcp:0:interface=127.0.0.1"))
    )
    if kind == "ssl":
        port = service.endpoints[0].port
        trust = ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(cert_pem))
        endpoint = lambda: SSL4ClientEndpoint(reactor, "127.0.0.1", port, trust)  # noqa: E731
        address = f"wss://127.0.0.1:{port}/ws"
    else:
        endpoint = lambda: UNIXClientEndpoint(reactor, f"{tmp_path}/wampd.sock")  # noqa: E731
        address = "ws://localhost/ws"
    await stalled_subscriber(service, recorder, address, transport, endpoint)


async def stalled_subscriber(service, recorder, address, transport, endpoint=lambda: None):
    peers = []
    try:
        stalled = await joined(address, transport, peers, endpoint())
        healthy = await joined(address, transport, peers, endpoint())
        publisher = await joined(address, transport, peers, endpoint())
        await subscribe(stalled, 1)
        await subscribe(healthy, 1)
        proto = router_peer(service, stalled)
        connection_id = proto.wampd_session.connection.id
        small_send_buffer(proto.transport)
        proto_ref, transport_ref = weakref.ref(proto), weakref.ref(proto.transport)
        del proto
        stalled.stop_reading()

        sent = most = 0
        while not disconnected(recorder, connection_id) and sent < MAX_MESSAGES:
            for _ in range(BATCH):
                sent += 1
                publisher.send([PUBLISH, sent, {}, "com.flood", [sent, CHUNK]])
            await healthy.wait_nth(EVENT, sent)
            if proto_ref() is not None and not disconnected(recorder, connection_id):
                most = max(most, held_by_router(proto_ref().transport))
            assert most <= LIMIT + TWISTED_MARK + 2 * len(CHUNK), f"{most} bytes held after {sent} events"

        assert disconnected(recorder, connection_id), f"still connected after {sent} events ({most} bytes held)"
        await recorder.wait_for(lambda e: e.name == "client_disconnected" and e.connection.id == connection_id)
        assert [e.reason for e in left(recorder, connection_id)] == ["wampd.close.slow_consumer"]
        (gone,) = disconnected(recorder, connection_id)
        assert gone.was_clean is False
        assert "max_outbound_buffer" in gone.reason and str(LIMIT) in gone.reason, gone.reason
        assert [m[4][0] for m in healthy.of_type(EVENT)] == list(range(1, sent + 1))
        gc.collect()
        assert proto_ref() is None and transport_ref() is None, "the dropped connection is still referenced"
    finally:
        await stop(service, peers)


@pytest.mark.parametrize("policy", ["disconnect", "drop"])
@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_a_caller_that_stops_reading_is_dropped_at_the_limit(transport, policy):
    """
    A caller that keeps calling but stops reading its RESULTs: the router
    holds at most about max_outbound_buffer for it, then drops it
    (``wampd.close.slow_consumer``), under either policy (a RESULT is never
    dropped); the callee's session is unaffected.
    """
    service, recorder, addresses = await started(slow_consumer=policy)
    peers = []
    try:
        address = addresses[transport]
        caller = await joined(address, transport, peers)
        callee = await joined(address, transport, peers)
        reply = await callee.request([REGISTER, 1, {}, "com.big"], (REGISTERED,))
        assert reply[0] == REGISTERED
        proto = router_peer(service, caller)
        connection_id = proto.wampd_session.connection.id
        small_send_buffer(proto.transport)
        caller.stop_reading()

        sent = answered = most = 0
        while not disconnected(recorder, connection_id) and sent < MAX_MESSAGES:
            for _ in range(BATCH):
                sent += 1
                caller.send([CALL, sent, {}, "com.big", [sent]])
            await callee.wait_nth(INVOCATION, sent)
            for invocation in callee.of_type(INVOCATION)[answered:]:
                callee.send([YIELD, invocation[1], {}, [CHUNK]])
            answered = sent
            await callee.fence()  # the router has handled every YIELD above
            if not disconnected(recorder, connection_id):
                most = max(most, held_by_router(proto.transport))
            assert most <= LIMIT + TWISTED_MARK + 2 * len(CHUNK), f"{most} bytes held after {sent} results"

        await recorder.wait_for(lambda e: e.name == "client_disconnected" and e.connection.id == connection_id)
        assert [e.reason for e in left(recorder, connection_id)] == ["wampd.close.slow_consumer"]
        (gone,) = disconnected(recorder, connection_id)
        assert "max_outbound_buffer" in gone.reason, gone.reason
        await callee.fence()  # the callee's session still works
    finally:
        await stop(service, peers)


PING = bytes((0x89, 0x80 | 125)) + bytes(4) + b"p" * 125  # a masked client PING (mask 0: payload as is)
PINGS_PER_BATCH = 200


@pytest.mark.parametrize("policy", ["disconnect", "drop"])
@pytest_twisted.ensureDeferred
async def test_a_websocket_client_that_pings_but_never_reads_is_dropped_at_the_limit(policy):
    """
    A joined WebSocket client that stops reading and sends PINGs: the router's
    PONGs count against max_outbound_buffer like messages do, so Twisted never
    holds much more than the limit for it and it is dropped
    (``wampd.close.slow_consumer``) under either policy (a PONG is no EVENT).
    Each batch of PINGs is followed by a PUBLISH a healthy subscriber gets: the
    router has handled the batch when it arrives.
    """
    service, recorder, addresses = await started(slow_consumer=policy)
    peers = []
    try:
        address = addresses["websocket"]
        pinger = await joined(address, "websocket", peers)
        healthy = await joined(address, "websocket", peers)
        await subscribe(healthy, 1, "com.fence")
        proto = router_peer(service, pinger)
        connection_id = proto.wampd_session.connection.id
        small_send_buffer(proto.transport)
        pinger.stop_reading()

        batches = most = 0
        while not disconnected(recorder, connection_id) and batches < 100:  # 100 batches: 2.5 MiB of PONGs
            batches += 1
            pinger.transport.write(PING * PINGS_PER_BATCH)
            pinger.send([PUBLISH, batches, {}, "com.fence", [batches]])
            # the batch is handled when the PUBLISH after it arrives, or the pinger is dropped
            gone = recorder.wait_for(lambda e: e.name == "client_disconnected" and e.connection.id == connection_id)
            await DeferredList([healthy.wait_nth(EVENT, batches), gone], fireOnOneCallback=True, consumeErrors=True)
            gone.cancel()
            if not disconnected(recorder, connection_id):
                most = max(most, held_by_router(proto.transport))
            assert most <= LIMIT + TWISTED_MARK + len(PING), f"{most} bytes held after {batches} batches of pings"

        await recorder.wait_for(lambda e: e.name == "client_disconnected" and e.connection.id == connection_id)
        assert [e.reason for e in left(recorder, connection_id)] == ["wampd.close.slow_consumer"]
        (gone,) = disconnected(recorder, connection_id)
        assert "max_outbound_buffer" in gone.reason, gone.reason
    finally:
        await stop(service, peers)


@pytest_twisted.ensureDeferred
async def test_the_drop_policy_drops_and_counts_events_and_keeps_the_connection():
    """
    With ``slow_consumer = "drop"``, a subscriber over the limit loses
    events (counted on its connection) instead of its connection; once it
    reads again it gets new events, and the healthy subscriber got them all.
    """
    service, recorder, addresses = await started(slow_consumer="drop")
    peers = []
    try:
        address = addresses["websocket"]
        stalled = await joined(address, "websocket", peers)
        healthy = await joined(address, "websocket", peers)
        publisher = await joined(address, "websocket", peers)
        await subscribe(stalled, 1)
        await subscribe(healthy, 1)
        proto = router_peer(service, stalled)
        connection_id = proto.wampd_session.connection.id
        small_send_buffer(proto.transport)
        stalled.stop_reading(small_buffer=False)  # it reads again below: a tiny window would reopen slowly

        sent = 0
        while proto.dropped_events < 50 and sent < MAX_MESSAGES:
            for _ in range(BATCH):
                sent += 1
                publisher.send([PUBLISH, sent, {}, "com.flood", [sent, CHUNK]])
            await healthy.wait_nth(EVENT, sent)
            assert held_by_router(proto.transport) <= LIMIT + TWISTED_MARK + 2 * len(CHUNK)
        assert proto.dropped_events >= 50, f"nothing dropped after {sent} events"
        assert not disconnected(recorder, connection_id)

        stalled.resume_reading()
        await stalled.fence()  # drains: everything still queued for it arrives, then the answer
        got = [m[4][0] for m in stalled.of_type(EVENT)]
        assert len(got) + proto.dropped_events == sent
        assert got == sorted(got)
        publisher.send([PUBLISH, sent + 1, {}, "com.flood", [sent + 1, "after"]])
        last = await stalled.wait_for(lambda m: m[0] == EVENT and m[4][0] == sent + 1)
        assert last[4] == [sent + 1, "after"]
        assert [m[4][0] for m in healthy.of_type(EVENT)][:sent] == list(range(1, sent + 1))
        assert not disconnected(recorder, connection_id)
    finally:
        await stop(service, peers)


@pytest_twisted.ensureDeferred
async def test_calls_to_a_callee_that_stops_reading_are_all_answered():
    """
    A callee that stops reading while INVOCATIONs pile up is dropped at the
    limit, and every CALL routed to it still ends: ERROR
    ``wamp.error.canceled`` for the ones it never answered.
    """
    service, recorder, addresses = await started()
    peers = []
    try:
        address = addresses["websocket"]
        caller = await joined(address, "websocket", peers)
        callee = await joined(address, "websocket", peers)
        await callee.register(1, "com.slow")
        proto = router_peer(service, callee)
        connection_id = proto.wampd_session.connection.id
        small_send_buffer(proto.transport)
        callee.stop_reading()
        sent = 0
        while not disconnected(recorder, connection_id) and sent < MAX_MESSAGES:
            for _ in range(BATCH):
                sent += 1
                caller.send([CALL, sent, {}, "com.slow", [CHUNK]])
            await caller.fence()  # the router has routed every CALL above
        await recorder.wait_for(lambda e: e.name == "client_disconnected" and e.connection.id == connection_id)
        assert [e.reason for e in left(recorder, connection_id)] == ["wampd.close.slow_consumer"]
        await caller.wait_nth(ERROR, sent)
        errors = caller.of_type(ERROR)
        assert sorted(m[2] for m in errors) == list(range(1, sent + 1))
        assert {m[4] for m in errors} == {"wamp.error.canceled"}
    finally:
        await stop(service, peers)


def test_memory_is_released_once_after_dropped_connections():
    """
    After connections that filled their buffers are gone, one coalesced run
    (whatever the number of drops) collects the reference cycles that hold
    their buffers and trims the C heap.
    """
    from twisted.internet.task import Clock

    from router.wire import MemoryReleaser

    class Cycle:
        pass

    clock = Clock()
    releaser = MemoryReleaser(clock, delay=1.0)
    held = Cycle()
    held.me = held
    alive = weakref.ref(held)
    gc.disable()
    try:
        del held
        releaser.schedule()
        releaser.schedule()
        clock.advance(0.5)
        assert alive() is not None and releaser.runs == 0
        clock.advance(0.5)
        assert alive() is None and releaser.runs == 1
        clock.advance(5)
        assert releaser.runs == 1
    finally:
        gc.enable()
