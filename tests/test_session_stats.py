"""
Per-session counters (``wamp.session.get_stats``; router/meta/_stats.py, the
counting in router/wire/) with real autobahn-python clients over loopback,
both transports and all three serializers.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from tests.raw_client import CALL, RESULT, connect_raw
from tests.wamp_clients import SERIALIZERS, TRANSPORTS, join, leave

COMBOS = [(t, s) for t in TRANSPORTS for s in SERIALIZERS]


@pytest.mark.parametrize("transport,serializer", COMBOS)
@pytest_twisted.ensureDeferred
async def test_counters_follow_the_traffic(live_router, transport, serializer):
    """
    Messages and bytes received from and sent to a session go up by what it
    exchanged: N acknowledged publications add N messages each way, and at
    least N times the topic's length in bytes received.
    """
    client = await join(live_router.address(transport), transport, serializer)
    watcher = await join(live_router.ws_url)
    before = await watcher.call("wamp.session.get_stats", client.sid)
    assert before["session"] == client.sid and before["serializer"] == serializer
    assert before["messages"]["received"] >= 1 and before["messages"]["sent"] >= 1  # HELLO, WELCOME
    topic = "com.example.counted.topic"
    for n in range(10):
        await client.publish(topic, n, options=PublishOptions(acknowledge=True))
    after = await watcher.call("wamp.session.get_stats", client.sid)
    assert after["messages"]["received"] - before["messages"]["received"] == 10
    assert after["messages"]["sent"] - before["messages"]["sent"] == 10  # the PUBLISHED
    assert after["bytes"]["received"] - before["bytes"]["received"] >= 10 * len(topic)
    assert after["bytes"]["sent"] > before["bytes"]["sent"]
    assert after["duration"] >= 0
    await leave(client)
    await leave(watcher)


@pytest.mark.parametrize("serializer", ["json.batched", "msgpack.batched"])
@pytest_twisted.ensureDeferred
async def test_batched_connections_are_counted_too(live_router, serializer):
    """A batched WebSocket connection counts each WAMP message of a batch, both ways, like a plain one."""
    client = await join(live_router.ws_url, "websocket", serializer)
    watcher = await join(live_router.ws_url)
    before = await watcher.call("wamp.session.get_stats", client.sid)
    for n in range(5):
        await client.publish("com.example.batched", n, options=PublishOptions(acknowledge=True))
    after = await watcher.call("wamp.session.get_stats", client.sid)
    assert after["messages"]["received"] - before["messages"]["received"] == 5
    assert after["messages"]["sent"] - before["messages"]["sent"] == 5  # the PUBLISHED, one per batch
    assert after["bytes"]["sent"] > before["bytes"]["sent"]
    await leave(client)
    await leave(watcher)


@pytest_twisted.ensureDeferred
async def test_counters_count_exact_bytes(live_router):
    """A raw peer knows its own bytes: the counters match what it wrote and read, message for message."""
    peer = await connect_raw(live_router.rs_port, "rawsocket", "json")
    await peer.hello({"caller": {}})
    reply = await peer.request([CALL, 1, {}, "wamp.session.get_stats", [peer.session_id]], (RESULT,))
    stats = reply[3][0]
    hello = len(peer._dumps([1, "realm1", {"roles": {"caller": {}}}]))
    call = len(peer._dumps([CALL, 1, {}, "wamp.session.get_stats", [peer.session_id]]))
    assert stats["messages"] == {"received": 2, "sent": 1}  # HELLO, CALL; WELCOME (the RESULT is not sent yet)
    assert stats["bytes"]["received"] == hello + call
    await peer.goodbye()


@pytest_twisted.ensureDeferred
async def test_unknown_session(live_router):
    """A session not joined to the realm: ``wamp.error.no_such_session``."""
    client = await join(live_router.ws_url)
    with pytest.raises(ApplicationError) as info:
        await client.call("wamp.session.get_stats", 4242)
    assert info.value.error == "wamp.error.no_such_session"
    await leave(client)
