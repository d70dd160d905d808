"""
The meta API answering for the whole cluster (real redis-server, in-process
nodes, real autobahn-python clients on different nodes): wamp.session.kill*
reach sessions on every node and fail closed when a node can't answer; session
IDs are unique cluster-wide; subscription and registration meta data and
events answer for every node, with one ID per subscription cluster-wide.
"""

from __future__ import annotations

import msgpack
import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions, SubscribeOptions
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed

from router.cluster._resp import connect
from router.cluster._sessions import TAKEN
from router.uri import GlobalIds, ScopeIds
from tests.cluster_helpers import nodes, redis  # noqa: F401 (fixtures)
from tests.raw_client import bounded
from tests.wamp_clients import join, join_as, leave


def sees(*sids: int, node: str = "B"):
    """A ClusterNode.until predicate: this node's mirror has these sessions on ``node``."""
    return lambda n: set(sids) <= set(n.sessions._remote.get(node, {}))


def holds(kind: str, uri: str, match: str = "exact"):
    """A ClusterNode.until predicate: another node has this subscription ("sub") or registration ("reg")."""
    return lambda n: n.meta.held_elsewhere(kind, "realm1", match, uri)


async def call_error(client, procedure, *args, **kwargs) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await client.call(procedure, *args, **kwargs)
    return info.value


@pytest_twisted.ensureDeferred
async def test_kill_reaches_a_session_on_another_node(nodes):
    """
    wamp.session.kill from node A closes a session on node B with GOODBYE
    carrying the reason and message; an unknown ID and the caller's own get
    wamp.error.no_such_session; a bad reason is refused and kills nobody.
    """
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    boss = await join(a.ws_url)
    target = await join(b.ws_url)
    await node_a.until(sees(target.sid))
    assert (await call_error(boss, "wamp.session.kill", 987654321)).error == "wamp.error.no_such_session"
    assert (await call_error(boss, "wamp.session.kill", boss.sid)).error == "wamp.error.no_such_session"
    bad = await call_error(boss, "wamp.session.kill", target.sid, reason="not a uri")
    assert bad.error == "wamp.error.invalid_uri"
    assert await boss.call("wamp.session.kill", target.sid, reason="com.example.kicked", message="bye now") is None
    goodbye = await bounded(target.left)
    assert (goodbye.reason, goodbye.message) == ("com.example.kicked", "bye now")
    await node_a.until(lambda n: not n.sessions._remote.get("B"))
    assert await boss.call("wamp.session.count") == 1
    await leave(boss)


@pytest_twisted.ensureDeferred
async def test_kill_by_authid_authrole_and_all_count_every_node(nodes):
    """
    kill_by_authid returns the IDs killed on every node, kill_by_authrole and
    kill_all the cluster-wide count; the caller is spared; each victim gets
    GOODBYE with the reason and message.
    """
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    caller = await join_as(a, "dup")
    dup_a, dup_b = await join_as(a, "dup"), await join_as(b, "dup")
    others = [await join_as(a, "x"), await join_as(b, "y"), await join_as(b, "z")]
    await node_a.until(sees(dup_b.sid, others[1].sid, others[2].sid))

    killed = await caller.call("wamp.session.kill_by_authid", "dup", reason="com.example.dups", message="one is enough")
    assert sorted(killed) == sorted([dup_a.sid, dup_b.sid])
    for victim in (dup_a, dup_b):
        goodbye = await bounded(victim.left)
        assert (goodbye.reason, goodbye.message) == ("com.example.dups", "one is enough")
    assert await caller.call("wamp.session.kill_by_authrole", "nobody") == 0
    await node_a.until(lambda n: dup_b.sid not in n.sessions._remote.get("B", {}))
    assert await caller.call("wamp.session.kill_all", reason="com.example.closing") == 3
    for victim in others:
        assert (await bounded(victim.left)).reason == "com.example.closing"
    await node_a.until(lambda n: not n.sessions._remote.get("B"))
    assert await caller.call("wamp.session.list") == [caller.sid]
    await leave(caller)


@pytest_twisted.ensureDeferred
async def test_kill_fails_closed_when_a_node_does_not_answer(nodes, redis):
    """
    A node that is known but silent (its channel is listened to, nobody
    answers) makes kill_all fail with wamp.error.unavailable naming it within
    the cluster timeout; a node whose channel nobody listens to fails it at
    once; with Redis away kill_all is refused before anything is killed,
    while killing a session of this node still works.
    """
    a, node_a = await nodes.add("A")
    # node "mute": a heartbeat key and a listener on its channel, but no router behind it
    cmd = await connect(reactor, node_a.address)
    listener = await connect(reactor, node_a.address)
    await listener.subscribe(b"wampd:to:mute")
    await cmd.command("SET", "wampd:node:mute", "1")
    await cmd.command("PUBLISH", "wampd:notices", msgpack.packb(("hello", "mute")))
    await node_a.until(lambda n: "mute" in n.nodes)
    caller, victim = await join(a.ws_url), await join(a.ws_url)
    started = reactor.seconds()
    silent = await call_error(caller, "wamp.session.kill_all")
    assert silent.error == "wamp.error.unavailable"
    assert "mute did not answer within 0.6 s" in silent.args[0]
    assert reactor.seconds() - started < 5
    assert "did run on this node" not in silent.args[0]  # no other node answered either

    await listener.command("UNSUBSCRIBE", "wampd:to:mute")  # nobody listens now: the question can't be delivered
    listener.close()
    gone = await call_error(caller, "wamp.session.kill_by_authrole", "anonymous")
    assert gone.error == "wamp.error.unavailable" and "node mute is not listening" in gone.args[0]
    cmd.close()

    second = await join(a.ws_url)
    redis.stop()
    await node_a.until(lambda n: not n.connected)
    away = await call_error(caller, "wamp.session.kill_by_authid", "nobody")
    assert away.error == "wamp.error.unavailable" and "unreachable" in away.args[0]
    assert await caller.call("wamp.session.kill", second.sid) is None
    await bounded(second.left)
    await leave(caller)


@pytest_twisted.ensureDeferred
async def test_session_ids_are_unique_across_nodes(nodes, redis):
    """
    Two nodes whose ID generators draw the same sequence: node B skips the ID
    of node A's session (it is in B's mirror).  A session whose ID another node
    claimed in Redis first (not yet in the mirror) is closed with GOODBYE
    wampd.close.session_id_taken, and the other node's session is untouched.
    """
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    first_draw = GlobalIds(7).next()
    a.service.router.global_ids = GlobalIds(7)
    b.service.router.global_ids = GlobalIds(7)
    on_a = await join(a.ws_url)
    assert on_a.sid == first_draw
    await node_b.until(sees(on_a.sid, node="A"))
    on_b = await join(b.ws_url)
    assert on_b.sid not in (first_draw, on_a.sid)
    await node_a.until(sees(on_b.sid))

    # an ID node B claimed an instant ago: in Redis, not yet in A's mirror
    draws = GlobalIds(11)
    a.service.router.global_ids = GlobalIds(11)
    claimed = draws.next()
    cmd = await connect(reactor, node_a.address)
    await cmd.command("HSET", "wampd:sessions:B", claimed, msgpack.packb(("realm1", {"session": claimed})))
    loser = await join(a.ws_url)
    assert loser.sid == claimed
    goodbye = await bounded(loser.left)
    assert goodbye.reason == TAKEN and "node B" in goodbye.message
    assert await on_b.call("wamp.session.get", on_a.sid)
    assert await cmd.command("HEXISTS", "wampd:sessions:A", claimed) == 0
    cmd.close()
    winner = await join(a.ws_url)  # joining again draws another ID
    assert winner.sid != claimed
    await node_b.until(sees(winner.sid, node="A"))
    for client in (on_a, on_b, winner):
        await leave(client)


@pytest_twisted.ensureDeferred
async def test_a_duplicate_found_when_nodes_reread_each_other_gives_way_on_the_last_name(nodes):
    """
    Session IDs written unchecked (as during a Redis outage), each found in
    the other node's hash when the nodes re-read each other's tables: B's
    session (B sorts after A) is closed with GOODBYE session_id_taken, A's stays.
    """
    a, node_a = await nodes.add("A", resync_every=1)
    b, node_b = await nodes.add("B", resync_every=1)
    on_a, on_b = await join(a.ws_url), await join(b.ws_url)
    await node_b.until(sees(on_a.sid, node="A"))
    cmd = await connect(reactor, node_a.address)
    for owner, sid in (("A", on_b.sid), ("B", on_a.sid)):
        await cmd.command("HSET", f"wampd:sessions:{owner}", sid, msgpack.packb(("realm1", {"session": sid})))
    cmd.close()
    goodbye = await bounded(on_b.left)
    assert goodbye.reason == TAKEN and "node A" in goodbye.message
    await node_a.until(lambda n: sees(on_a.sid, node="B")(n) and n.sessions.node_of("realm1", on_b.sid) is None)
    assert await on_a.call("wamp.session.get", on_a.sid)
    assert on_a.sid in node_a.sessions.local
    await leave(on_a)


@pytest_twisted.ensureDeferred
async def test_subscription_meta_answers_for_every_node(nodes):
    """
    One subscription has the same ID on every node; from node A, list, lookup,
    match, get, list_subscribers and count_subscribers answer for the
    subscribers on both nodes, and for a subscription that only node B has.
    """
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    on_a, on_b = await join(a.ws_url), await join(b.ws_url)
    shared_b = await on_b.subscribe(lambda *x: None, "com.example.news")
    only_b = await on_b.subscribe(lambda *x: None, "com.example.room", SubscribeOptions(match="prefix"))
    await node_a.until(holds("sub", "com.example.room", "prefix"))
    shared_a = await on_a.subscribe(lambda *x: None, "com.example.news")
    assert shared_a.id == shared_b.id

    listed = await on_a.call("wamp.subscription.list")
    assert shared_a.id in listed["exact"] and listed["prefix"] == [only_b.id]
    assert await on_a.call("wamp.subscription.lookup", "com.example.room", {"match": "prefix"}) == only_b.id
    assert await on_a.call("wamp.subscription.lookup", "com.example.none") is None
    assert await on_a.call("wamp.subscription.match", "com.example.room.7") == [only_b.id]
    details = await on_a.call("wamp.subscription.get", only_b.id)
    assert (details["id"], details["uri"], details["match"]) == (only_b.id, "com.example.room", "prefix")
    assert sorted(await on_a.call("wamp.subscription.list_subscribers", shared_a.id)) == sorted([on_a.sid, on_b.sid])
    assert await on_a.call("wamp.subscription.count_subscribers", shared_a.id) == 2
    assert await on_a.call("wamp.subscription.count_subscribers", only_b.id) == 1
    missing = await call_error(on_a, "wamp.subscription.get", 12345)
    assert missing.error == "wamp.error.no_such_subscription"
    await leave(on_a)
    await leave(on_b)


@pytest_twisted.ensureDeferred
async def test_registration_meta_answers_for_every_node(nodes):
    """
    From node A: a registration that only node B has is listed, looked up,
    matched (as a call from A would route), described and its callees listed
    and counted; a shared registration counts the callees of both nodes.  A
    call from A reaches B's wildcard registration (the other nodes' table
    ranks wildcard patterns like the local one).
    """
    a, node_a = await nodes.add("A")
    b, _ = await nodes.add("B")
    on_a, on_b = await join(a.ws_url), await join(b.ws_url)
    reg_b = await on_b.register(lambda: 1, "com.example.add", RegisterOptions(invoke="roundrobin"))
    pattern = await on_b.register(lambda: 1, "com.example..get", RegisterOptions(match="wildcard"))
    await node_a.until(holds("reg", "com.example..get", "wildcard"))
    reg_a = await on_a.register(lambda: 1, "com.example.add", RegisterOptions(invoke="roundrobin"))
    assert reg_a.id == reg_b.id

    listed = await on_a.call("wamp.registration.list")
    assert reg_a.id in listed["exact"] and listed["wildcard"] == [pattern.id]
    assert await on_a.call("wamp.registration.lookup", "com.example..get", {"match": "wildcard"}) == pattern.id
    assert await on_a.call("wamp.registration.match", "com.example.user.get") == pattern.id
    assert await on_a.call("com.example.user.get") == 1
    assert await on_a.call("wamp.registration.match", "com.example.add") == reg_a.id
    details = await on_a.call("wamp.registration.get", pattern.id)
    assert (details["uri"], details["match"], details["invoke"]) == ("com.example..get", "wildcard", "single")
    assert await on_a.call("wamp.registration.list_callees", pattern.id) == [on_b.sid]
    assert await on_a.call("wamp.registration.count_callees", reg_a.id) == 2
    missing = await call_error(on_a, "wamp.registration.count_callees", 12345)
    assert missing.error == "wamp.error.no_such_registration"
    await leave(on_a)
    await leave(on_b)


@pytest_twisted.ensureDeferred
async def test_create_and_delete_events_are_the_clusters(nodes):
    """
    A watcher on node A hears on_create when the first subscriber anywhere
    subscribes (on node B), on_subscribe for each subscriber on either node,
    and on_delete only when the last one, on whichever node, is gone.
    """
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    watcher = await join(a.ws_url)
    seen: list = []
    arrived: dict = {}

    topic_id = ScopeIds(realm="realm1").next({}, "exact", "com.example.t")  # the same on every node

    def record(name):
        def handler(*args):
            ours = args[1]["uri"] == "com.example.t" if name == "on_create" else args[1] == topic_id
            if not ours:
                return  # the watcher's own subscriptions to the meta topics
            seen.append((name, args))
            waiting = arrived.pop(len(seen), None)
            if waiting is not None:
                waiting.callback(None)
        return handler

    def until_events(count: int) -> Deferred:
        if len(seen) >= count:
            return succeed(None)
        d = arrived[count] = Deferred()
        return d.addTimeout(10, reactor)

    for name in ("on_create", "on_subscribe", "on_unsubscribe", "on_delete"):
        await watcher.subscribe(record(name), f"wamp.subscription.{name}")
    await node_b.until(holds("sub", "wamp.subscription.on_delete"))
    s_b = await join(b.ws_url)
    sub_b = await s_b.subscribe(lambda *x: None, "com.example.t")
    await until_events(2)
    await node_a.until(holds("sub", "com.example.t"))
    s_a = await join(a.ws_url)
    sub_a = await s_a.subscribe(lambda *x: None, "com.example.t")
    await until_events(3)
    await sub_b.unsubscribe()
    await until_events(4)
    await node_a.until(lambda n: not holds("sub", "com.example.t")(n))
    await sub_a.unsubscribe()
    await until_events(6)
    assert [name for name, _ in seen] == ["on_create", "on_subscribe", "on_subscribe", "on_unsubscribe",
                                          "on_unsubscribe", "on_delete"]
    assert seen[0][1][0] == s_b.sid and seen[0][1][1]["id"] == sub_b.id == sub_a.id == topic_id
    assert seen[2][1] == (s_a.sid, sub_a.id) and seen[5][1] == (s_a.sid, sub_a.id)
    for client in (watcher, s_a, s_b):
        await leave(client)


@pytest_twisted.ensureDeferred
async def test_a_dead_nodes_subscriptions_and_registrations_get_on_delete_once(nodes):
    """Node B dies with the only subscription and registration of two URIs: A's subscribers get one on_delete for each (session null, the cluster's ID); one still held on A gets none."""
    a, node_a = await nodes.add("A")
    b, node_b = await nodes.add("B")
    on_b = await join(b.ws_url)
    on_a = await join(a.ws_url)
    sub = await on_b.subscribe(lambda: None, "com.example.only_b")
    reg = await on_b.register(lambda: None, "com.example.proc_b")
    await on_b.subscribe(lambda: None, "com.example.shared")
    await on_a.subscribe(lambda: None, "com.example.shared")
    await node_a.until(holds("sub", "com.example.only_b"))
    await node_a.until(holds("reg", "com.example.proc_b"))
    observer = await join(a.ws_url)
    deleted: list = []
    both = Deferred()

    def record(kind):
        def handler(session, ident):
            deleted.append((kind, session, ident))
            if len(deleted) == 2 and not both.called:
                both.callback(None)
        return handler

    await observer.subscribe(record("sub"), "wamp.subscription.on_delete")
    await observer.subscribe(record("reg"), "wamp.registration.on_delete")
    node_b._beat.stop()  # as if killed: no goodbye; its heartbeat key expires
    node_b._drop_connections()
    await both.addTimeout(10, reactor)
    assert sorted(deleted) == sorted([("sub", None, sub.id), ("reg", None, reg.id)])
    # the subscription A still holds was not deleted: no third event came before this round trip's answer
    assert await observer.call("wamp.subscription.lookup", "com.example.shared") is not None
    assert len(deleted) == 2
    await leave(observer)
    await leave(on_a)


@pytest_twisted.ensureDeferred
async def test_questions_to_other_nodes_count_against_max_calls_in_flight(nodes):
    """A session's meta calls waiting on other nodes are bounded like its calls: one past max_calls_in_flight gets too_many_calls at once, and the room comes back when they are answered."""
    a, node_a = await nodes.add("A", config={"max_calls_in_flight": 1})
    await nodes.add("B")
    await node_a.until(lambda n: n.nodes == ["B"])
    caller = await join(a.ws_url)
    first = caller.call("wamp.subscription.list")  # both CALLs go out in one write, before B can answer
    with pytest.raises(ApplicationError) as refused:
        await caller.call("wamp.registration.list")
    assert refused.value.error == "wampd.error.too_many_calls"
    assert set(await first) >= {"exact", "prefix", "wildcard"}
    assert set(await caller.call("wamp.registration.list")) >= {"exact", "prefix", "wildcard"}
    assert node_a.meta.asking._per_caller == {}
    await leave(caller)
