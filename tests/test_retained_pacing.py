"""
Retained events are delivered paced: a SUBSCRIBE with ``get_retained`` on
thousands of retained topics must not make the router drop a healthy
subscriber as a slow consumer, must keep the order on the connection
(retained events before later live ones), and must still leave a client
that stops reading to the slow-consumer policy, with what waits for it
bounded.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions, SubscribeOptions
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from router.testing import MemoryRouter
from router.wire.outbound import BACKLOG_TOPICS
from tests.raw_client import PUBLISH, SUBSCRIBE, Calls
from tests.test_backpressure import (
    LIMIT,
    TWISTED_MARK,
    disconnected,
    held_by_router,
    joined,
    left,
    router_peer,
    small_send_buffer,
    started,
    stop,
)
from tests.wamp_clients import Recorder, join, leave
from tests.conftest import make_service

TOPICS = 10_000  # the default max_retained_topics
PAYLOAD = "x" * 200


def retain_many(router, count=TOPICS):
    api = router.api("realm1")
    for n in range(count):
        api.publish(f"r.t{n}", n, PAYLOAD, options={"retain": True})


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_a_reading_subscriber_gets_every_retained_event_and_is_not_dropped(transport):
    """
    With the default settings (max_outbound_buffer 1 MiB, 10,000 retained
    topics), an ordinary autobahn-python subscriber asking for the retained
    events of 10,000 topics of 200 bytes (about 2.5 MB) gets all of them,
    then a live event published after its SUBSCRIBED, in that order; it is
    not dropped as a slow consumer.
    """
    recorder = Recorder()
    service = make_service(recorder)
    await service.startService()
    clients = []
    try:
        retain_many(service.router)
        by_kind = {e.transport: e for e in reversed(service.endpoints)}
        address = by_kind["websocket"].url if transport == "websocket" else by_kind["rawsocket"].port
        subscriber = await join(address, transport)
        clients.append(subscriber)
        got, done = [], Deferred()

        def on_event(*args, details=None):
            got.append((bool(details.retained), details.topic, args[0]))
            if len(got) == TOPICS + 1:
                done.callback(None)

        await subscriber.subscribe(on_event, "r.", options=SubscribeOptions(match="prefix", get_retained=True, details=True))
        publisher = await join(address, transport)
        clients.append(publisher)
        await publisher.publish("r.live", "live", options=PublishOptions(acknowledge=True))
        await done.addTimeout(30, reactor)
        assert got[:-1] == sorted(((True, f"r.t{n}", n) for n in range(TOPICS)), key=lambda e: e[1])
        assert got[-1] == (False, "r.live", "live")
        assert not [e for e in recorder.events if e.name == "session_left"], "a reading subscriber was dropped"
    finally:
        for client in clients:
            if not client.disconnected.called:
                await leave(client)
        await service.stopService()


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_a_subscriber_that_stalls_after_asking_for_retained_events_is_still_dropped(transport):
    """
    A subscriber that asks for 10,000 retained events and stops reading:
    what the router keeps for it is bounded (the backlog holds at most the
    retained events, as message objects, and Twisted at most its mark and
    one message); live events queued behind the backlog count their bytes
    against max_outbound_buffer, so a flood drops it with session_left
    ``wampd.close.slow_consumer``.
    """
    service, recorder, addresses = await started()
    peers = []
    try:
        retain_many(service.router)
        stalled = await joined(addresses[transport], transport, peers)
        healthy = await joined(addresses[transport], transport, peers)
        publisher = await joined(addresses[transport], transport, peers)
        await healthy.request([SUBSCRIBE, 1, {}, "r.live"], (33,))
        proto = router_peer(service, stalled)
        connection_id = proto.wampd_session.connection.id
        small_send_buffer(proto.transport)
        asked, send_paced = Deferred(), proto.send_paced

        def spy(msgs):
            send_paced(msgs)
            asked.callback(len(msgs))

        proto.send_paced = spy
        stalled.stop_reading()
        stalled.send([SUBSCRIBE, 1, {"match": "prefix", "get_retained": True}, "r."])
        assert await asked.addTimeout(10, reactor) == TOPICS
        assert proto._backlog is not None and 0 < len(proto._backlog) <= TOPICS
        assert held_by_router(proto.transport) <= TWISTED_MARK + 1024

        sent = 0
        while not disconnected(recorder, connection_id) and sent < 1000:
            sent += 1
            publisher.send([PUBLISH, sent, {}, "r.live", [sent, "y" * 4096]])
            await healthy.wait_nth(36, sent)
            if not disconnected(recorder, connection_id):
                assert len(proto._backlog) <= TOPICS + sent
                assert proto._backlog_bytes <= LIMIT
                assert held_by_router(proto.transport) <= TWISTED_MARK + 1024
        assert disconnected(recorder, connection_id), f"still connected after {sent} live events"
        await recorder.wait_disconnected(connection_id)
        assert [e.reason for e in left(recorder, connection_id)] == ["wampd.close.slow_consumer"]
        assert proto._backlog is None, "the backlog outlived the connection"
    finally:
        await stop(service, peers)


def test_the_backlog_is_bounded_by_max_retained_topics():
    """
    On the in-memory router, with the peer paused: each SUBSCRIBE with
    get_retained queues at most max_retained_topics events; the backlog
    holds at most BACKLOG_TOPICS x max_retained_topics; a SUBSCRIBE that
    would pass it applies the slow-consumer policy ("drop": the events over
    the bound are dropped and counted, the connection stays); once the peer
    reads again every queued event arrives, in order, then the live one
    published behind them.
    """
    memory = MemoryRouter(max_retained_topics=10)
    memory._factory.slow_consumer = "drop"
    retain_many(memory.router, 12)  # the 10 most recent are kept: r.t2 .. r.t11
    client = memory.join()
    order = []

    def handler(tag):
        return lambda *args: order.append((tag, args[0]))

    memory.result(client.subscribe(handler("live"), "live"))
    session = memory.router.realms["realm1"].sessions[client._session_id]
    proto = session.peer
    proto.pauseProducing()
    patterns = [("r", "prefix"), ("r.", "prefix"), ("r.t", "prefix"), ("r.", "wildcard"), ("r.t5", "exact")]
    subscribing = []
    for pattern, match in patterns:
        options = SubscribeOptions(match=match, get_retained=True)
        subscribing.append(client.subscribe(handler(pattern + match), pattern, options=options))
        memory.flush()  # the SUBSCRIBEDs after the first wait behind the backlog too
        assert len(proto._backlog) <= BACKLOG_TOPICS * 10 + len(subscribing)  # + the SUBSCRIBEDs behind it
    # 10 + SUBSCRIBED + 10 + SUBSCRIBED + 10 + SUBSCRIBED + 7 (the bound: 40): 3 dropped, then 1 (exact)
    assert len(proto._backlog) == BACKLOG_TOPICS * 10 + 1
    assert proto.dropped_events == 4
    memory.router.api("realm1").publish("live", "now")
    assert len(proto._backlog) == BACKLOG_TOPICS * 10 + 2
    assert session.state == "joined"
    proto.resumeProducing()
    for d in subscribing:
        memory.result(d)
    assert proto._backlog is None and "send" not in vars(proto)
    kept = [(pattern + match, n) for pattern, match in patterns[:4] for n in range(2, 12)][:37]
    assert sorted(order[:-1]) == sorted(kept)
    assert [tag for tag, _ in order[:-1]] == [tag for tag, _ in kept]
    assert order[-1] == ("live", "now")
