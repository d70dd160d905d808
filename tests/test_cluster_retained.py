"""
Retained events and testaments across cluster nodes (real redis-server,
in-process nodes, real autobahn-python clients).
"""

from __future__ import annotations

import pytest_twisted
from autobahn.wamp.types import PublishOptions, SubscribeOptions
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from tests.cluster_helpers import nodes, redis  # noqa: F401 (fixtures)
from tests.wamp_clients import join, leave


def first_event() -> tuple:
    got = Deferred()
    return (lambda *args: got.called or got.callback(args)), got.addTimeout(10, reactor)


@pytest_twisted.ensureDeferred
async def test_a_retained_event_reaches_a_late_subscriber_on_another_node_and_a_new_node(nodes):
    """Retained on node A: a subscriber on node B gets it with get_retained; so does one on node C, started later."""
    a, _ = await nodes.add("A")
    b, node_b = await nodes.add("B")
    publisher = await join(a.ws_url)
    await publisher.publish("com.example.status", "green", options=PublishOptions(acknowledge=True, retain=True))
    await node_b.until(lambda n: "com.example.status" in n.router.realms["realm1"].broker._retained)
    late = await join(b.ws_url)
    handler, got = first_event()
    await late.subscribe(handler, "com.example.status", options=SubscribeOptions(get_retained=True))
    assert await got == ("green",)
    c, _ = await nodes.add("C")  # joins after the publication: reads it from Redis
    newest = await join(c.ws_url)
    handler, got = first_event()
    await newest.subscribe(handler, "com.example.status", options=SubscribeOptions(get_retained=True))
    assert await got == ("green",)
    for client in (publisher, late, newest):
        await leave(client)


@pytest_twisted.ensureDeferred
async def test_a_testament_reaches_subscribers_on_every_node(nodes):
    """A session on node A leaves: its testament reaches a subscriber on node B."""
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    watcher = await join(b.ws_url)
    handler, got = first_event()
    await watcher.subscribe(handler, "com.example.gone")
    await node_a.until(lambda n: ("realm1", "exact", "com.example.gone") in n.topics_of("B"))
    mortal = await join(a.ws_url)
    await mortal.call("wamp.session.add_testament", "com.example.gone", ["bye"], {})
    await leave(mortal)
    assert await got == ("bye",)
    await leave(watcher)
