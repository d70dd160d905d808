"""
Realms and authorization across cluster nodes: nothing crosses from one realm
to another through Redis, and a realm's roles decide the same way whichever
node a client is on (every node has the same config).  In-process nodes
joined through a real redis-server, real autobahn-python clients.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from router.config import PermissionConfig, RealmConfig, RoleConfig
from tests.cluster_helpers import nodes, redis  # noqa: F401 (fixtures)
from tests.wamp_clients import join, leave

GUARDED = RealmConfig(
    "guarded",
    roles=(
        RoleConfig(
            "anonymous",
            (
                PermissionConfig("news.", "prefix", subscribe=True, publish=True),
                PermissionConfig("com.api.", "prefix", register=True),
                PermissionConfig("com.api.open", call=True, register=True),
            ),
        ),
    ),
)
REALMS = (RealmConfig("realm1"), RealmConfig("realm2"), GUARDED)


def knows(realm: str, uri: str):
    return lambda node: node.calls.procedures.best(realm, uri) is not None


@pytest_twisted.ensureDeferred
async def test_publications_and_calls_stay_in_their_realm_across_nodes(nodes):
    """A realm1 publication on node A reaches realm1 subscribers on node B but not realm2's; a realm2 call finds no realm1 callee."""
    a, node_a = await nodes.add("A", realms=REALMS)
    b, node_b = await nodes.add("B", realms=REALMS)
    in_realm1, in_realm2 = await join(b.ws_url, realm="realm1"), await join(b.ws_url, realm="realm2")
    got1, got2 = [], []
    first = Deferred()
    await in_realm1.subscribe(lambda text: (got1.append(text), first.callback(None)), "com.example.news")
    await in_realm2.subscribe(got2.append, "com.example.news")
    await in_realm1.register(lambda: "realm1's", "com.example.whoami")
    await node_a.until(lambda n: ("realm1", "exact", "com.example.news") in n.topics_of("B"))
    await node_a.until(knows("realm1", "com.example.whoami"))

    publisher = await join(a.ws_url, realm="realm1")
    await publisher.publish("com.example.news", "for realm1", options=PublishOptions(acknowledge=True))
    await first.addTimeout(10, reactor)
    caller2 = await join(a.ws_url, realm="realm2")
    with pytest.raises(ApplicationError) as refused:
        await caller2.call("com.example.whoami")
    assert refused.value.error == "wamp.error.no_such_procedure"
    # a realm2 publication made after the realm1 one: its absence shows once a realm2 one arrives
    marker = Deferred()
    await in_realm2.subscribe(lambda: marker.callback(None), "com.example.marker")
    await node_a.until(lambda n: ("realm2", "exact", "com.example.marker") in n.topics_of("B"))
    await caller2.publish("com.example.marker", options=PublishOptions(acknowledge=True))
    await marker.addTimeout(10, reactor)
    assert (got1, got2) == (["for realm1"], [])
    assert await (await join(a.ws_url, realm="realm1")).call("com.example.whoami") == "realm1's"
    for client in (in_realm1, in_realm2, publisher, caller2):
        await leave(client)


@pytest_twisted.ensureDeferred
async def test_a_realms_roles_decide_alike_on_every_node(nodes):
    """The same anonymous role is refused the same actions on node A and node B, and what it may do works across them."""
    a, node_a = await nodes.add("A", realms=REALMS)
    b, _ = await nodes.add("B", realms=REALMS)
    on_a, on_b = await join(a.ws_url, realm="guarded"), await join(b.ws_url, realm="guarded")
    for client in (on_a, on_b):
        for attempt in (
            client.subscribe(lambda: None, "secret.plans"),
            client.publish("secret.plans", options=PublishOptions(acknowledge=True)),
            client.register(lambda: None, "org.other.proc"),
        ):
            with pytest.raises(ApplicationError) as refused:
                await attempt
            assert refused.value.error == "wamp.error.not_authorized"

    invoked = []
    await on_b.register(lambda: invoked.append("open") or "served", "com.api.open")
    await on_b.register(lambda: invoked.append("closed") or "served", "com.api.closed")
    await node_a.until(knows("guarded", "com.api.closed"))
    assert await on_a.call("com.api.open") == "served"
    with pytest.raises(ApplicationError) as refused:
        await on_a.call("com.api.closed")  # decided on the caller's node, before anything crosses
    assert refused.value.error == "wamp.error.not_authorized"
    assert invoked == ["open"]

    got = Deferred()
    await on_b.subscribe(got.callback, "news.today")
    await node_a.until(lambda n: ("guarded", "exact", "news.today") in n.topics_of("B"))
    await on_a.publish("news.today", "headline", options=PublishOptions(acknowledge=True))
    assert await got.addTimeout(10, reactor) == "headline"
    await leave(on_a)
    await leave(on_b)
