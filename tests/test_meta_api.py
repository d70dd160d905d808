"""
The session meta API, testaments, what WELCOME announces, and the meta API
seen from Python (listeners, embedding code), with real autobahn-python
clients over loopback.  The subscription and registration meta APIs are in
test_advanced_pubsub.py and test_advanced_rpc.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import SubscribeOptions

from router.core import ROUTER_ROLES
from tests.auth_helpers import UNIQUE_ANONYMOUS
from tests.conftest import make_service
from tests.raw_client import Calls, bounded, connect_raw, departed, fence
from tests.wamp_clients import SERIALIZERS, TRANSPORTS, join, join_as, leave, named

COMBOS = [(t, s) for t in TRANSPORTS for s in SERIALIZERS]



def events(client):
    return [m for m in client.inbox if isinstance(m, message.Event)]


async def call_error(client, procedure, *args, **kwargs) -> str:
    with pytest.raises(ApplicationError) as info:
        await client.call(procedure, *args, **kwargs)
    return info.value.error


# -- session meta events -----------------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", COMBOS)
@pytest_twisted.ensureDeferred
async def test_session_join_and_leave_events(live_router, transport, serializer):
    """
    ``wamp.session.on_join`` carries the session's details (session, authid,
    authrole, authmethod, authprovider and wampd's transport dict);
    ``wamp.session.on_leave`` carries (session, authid, authrole), as the spec
    says (Crossbar sends only the session id), and never reaches the session
    that leaves.  ``wamp.session.get`` answers with the same details.
    """
    observer = await join(live_router.ws_url)
    joins, leaves = Calls(), Calls()
    await observer.subscribe(joins, "wamp.session.on_join")
    await observer.subscribe(leaves, "wamp.session.on_leave")

    sam = await join_as(live_router, "sam", transport, serializer)
    (details,), _, _ = await joins.wait(1)
    port = sam.wire.transport.getHost().port
    assert details == {
        "session": sam.sid,
        "authid": "sam",
        "authrole": "anonymous",
        "authmethod": "anonymous",
        "authprovider": "static",
        "transport": {"type": transport, "peer": f"tcp4:127.0.0.1:{port}", "serializer": serializer},
    }
    assert await observer.call("wamp.session.get", sam.sid) == details

    await sam.subscribe(Calls(), "wamp.session.on_leave")
    await sam.subscribe(Calls(), "wamp.session.on_join")
    await leave(sam)
    assert (await leaves.wait(1))[0] == (sam.sid, "sam", "anonymous")
    assert events(sam) == []  # not even its own on_leave
    await leave(observer)


@pytest_twisted.ensureDeferred
async def test_session_events_stay_in_their_realm_and_cover_every_departure(live_router):
    """on_leave fires for GOODBYE, a TCP drop and a kill; a realm2 session sees none of realm1's events."""
    observer = await join(live_router.ws_url)
    other_realm = await join(live_router.ws_url, realm="realm2")
    leaves, foreign = Calls(), Calls()
    await observer.subscribe(leaves, "wamp.session.on_leave")
    await other_realm.subscribe(foreign, "wamp.session.on_join")
    await other_realm.subscribe(foreign, "wamp.session.on_leave")

    by_goodbye = await join_as(live_router, "one")
    by_drop = await join_as(live_router, "two", "rawsocket", "msgpack")
    by_kill = await join_as(live_router, "three")
    await leave(by_goodbye)
    by_drop.wire.transport.abortConnection()
    await observer.call("wamp.session.kill", by_kill.sid)
    await leaves.wait(3)
    assert sorted(leaves.args) == sorted(
        [(by_goodbye.sid, "one", "anonymous"), (by_drop.sid, "two", "anonymous"), (by_kill.sid, "three", "anonymous")]
    )
    await fence(other_realm)
    assert foreign.calls == []
    await leave(observer)
    await leave(other_realm)


# -- session meta procedures --------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_session_count_list_and_get(live_router):
    a = await join_as(live_router, "a")
    b = await join_as(live_router, "b", "rawsocket", "cbor")
    c = await join_as(live_router, "c")
    elsewhere = await join(live_router.ws_url, realm="realm2")
    mine = sorted([a.sid, b.sid, c.sid])

    assert await a.call("wamp.session.count") == 3
    assert sorted(await a.call("wamp.session.list")) == mine
    # the optional filter_authroles
    assert await a.call("wamp.session.count", ["anonymous"]) == 3
    assert await a.call("wamp.session.count", ["admin"]) == 0
    assert await a.call("wamp.session.count", ["admin", "anonymous"]) == 3
    assert await a.call("wamp.session.count", None) == 3
    assert sorted(await a.call("wamp.session.list", ["anonymous"])) == mine
    assert await a.call("wamp.session.list", ["admin"]) == []
    assert await call_error(a, "wamp.session.count", "anonymous") == "wamp.error.invalid_argument"
    assert await elsewhere.call("wamp.session.list") == [elsewhere.sid]

    details = await a.call("wamp.session.get", b.sid)
    assert (details["session"], details["authid"], details["transport"]["type"]) == (b.sid, "b", "rawsocket")
    assert await call_error(a, "wamp.session.get", 12345) == "wamp.error.no_such_session"
    # sessions are looked up in the caller's realm only
    assert await call_error(a, "wamp.session.get", elsewhere.sid) == "wamp.error.no_such_session"
    await leave(b)
    await departed(live_router, b)
    assert await call_error(a, "wamp.session.get", b.sid) == "wamp.error.no_such_session"
    assert await a.call("wamp.session.count") == 2
    for client in (a, c, elsewhere):
        await leave(client)


@pytest_twisted.ensureDeferred
async def test_session_kill(live_router):
    """
    The target gets GOODBYE with the given reason and message (defaults:
    ``wamp.close.normal``, no message); the call returns nothing.  The
    caller's own id and unknown ids get ``wamp.error.no_such_session``; a
    reason that is not a URI gets ``wamp.error.invalid_uri`` and kills nobody.
    """
    boss = await join(live_router.ws_url)
    target = await join(live_router.ws_url)
    quiet = await join(live_router.rs_port, "rawsocket", "msgpack")

    assert await call_error(boss, "wamp.session.kill", boss.sid) == "wamp.error.no_such_session"
    assert await call_error(boss, "wamp.session.kill", 987654321) == "wamp.error.no_such_session"
    for reason in ("not a uri", "", "com..x"):
        assert await call_error(boss, "wamp.session.kill", target.sid, reason=reason) == "wamp.error.invalid_uri"
    assert await boss.call("wamp.session.count") == 3

    assert await boss.call("wamp.session.kill", target.sid, reason="com.example.kicked", message="bye now") is None
    goodbye = await bounded(target.left)
    assert (goodbye.reason, goodbye.message) == ("com.example.kicked", "bye now")
    await boss.call("wamp.session.kill", quiet.sid)
    goodbye = await bounded(quiet.left)
    assert (goodbye.reason, goodbye.message) == ("wamp.close.normal", None)
    await departed(live_router, target, quiet)
    assert await boss.call("wamp.session.list") == [boss.sid]
    left = await live_router.recorder.wait_for(
        lambda e: e.name == "session_left" and e.session.session_id == target.sid
    )
    assert left.reason == "com.example.kicked"
    await leave(boss)


@pytest_twisted.ensureDeferred
async def test_session_kill_by_authid_and_authrole(live_router):
    """
    kill_by_authid returns the killed sessions' ids (the current spec's
    ``sessions|list``; an older draft said a count) and spares the caller even
    when it has that authid; kill_by_authrole returns a count and spares the
    caller.
    """
    caller = await join_as(live_router, "dup")
    dup1 = await join_as(live_router, "dup")
    dup2 = await join_as(live_router, "dup", "rawsocket", "cbor")
    other = await join_as(live_router, "other")

    killed = await caller.call("wamp.session.kill_by_authid", "dup", reason="com.example.dups", message="one is enough")
    assert sorted(killed) == sorted([dup1.sid, dup2.sid])
    for victim in (dup1, dup2):
        goodbye = await bounded(victim.left)
        assert (goodbye.reason, goodbye.message) == ("com.example.dups", "one is enough")
    await departed(live_router, dup1, dup2)
    assert await caller.call("wamp.session.kill_by_authid", "nobody") == []
    assert await call_error(caller, "wamp.session.kill_by_authid", "other", reason="no way") == "wamp.error.invalid_uri"

    assert await caller.call("wamp.session.kill_by_authrole", "admin") == 0
    assert await caller.call("wamp.session.kill_by_authrole", "anonymous") == 1
    goodbye = await bounded(other.left)
    assert (goodbye.reason, goodbye.message) == ("wamp.close.normal", None)
    await departed(live_router, other)
    assert await caller.call("wamp.session.list") == [caller.sid]
    await leave(caller)


@pytest_twisted.ensureDeferred
async def test_session_kill_all(live_router):
    """
    kill_all closes every other session of the realm and returns how many.
    The spec adds that this "will not generate session meta events or
    testament events, since no subscribers would remain"; but the caller
    remains and may be subscribed, so wampd still publishes them (here: the
    caller sees every on_leave).
    """
    caller = await join(live_router.ws_url)
    leaves = Calls()
    await caller.subscribe(leaves, "wamp.session.on_leave")
    victims = [await join(live_router.ws_url), await join(live_router.rs_port, "rawsocket")]
    elsewhere = await join(live_router.ws_url, realm="realm2")
    assert await call_error(caller, "wamp.session.kill_all", reason="bad reason") == "wamp.error.invalid_uri"
    assert await caller.call("wamp.session.count") == 3

    assert await caller.call("wamp.session.kill_all", reason="wamp.close.system_shutdown", message="maintenance") == 2
    for victim in victims:
        goodbye = await bounded(victim.left)
        assert (goodbye.reason, goodbye.message) == ("wamp.close.system_shutdown", "maintenance")
    await departed(live_router, *victims)
    await leaves.wait(2)
    assert sorted(a[0] for a in leaves.args) == sorted(v.sid for v in victims)
    assert await caller.call("wamp.session.list") == [caller.sid]
    assert await elsewhere.call("wamp.session.count") == 1  # other realms are untouched
    assert await caller.call("wamp.session.kill_all") == 0
    await leave(caller)
    await leave(elsewhere)


# -- testaments -----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_testaments_on_transport_loss(live_router):
    """
    add_testament returns nothing; when the transport drops, the testaments
    are published in the order they were added, ``detached`` scope before
    ``destroyed`` (the spec, for a router without session resumption), with
    their publish options honoured.
    """
    observer = await join(live_router.ws_url)
    outsider = await join(live_router.ws_url)
    got, outsider_got = Calls(), Calls()
    await observer.subscribe(got, "com.example.gone")
    await outsider.subscribe(outsider_got, "com.example.gone")

    dying = await join_as(live_router, "dying", "rawsocket", "cbor")
    assert await dying.call("wamp.session.add_testament", "com.example.gone", ["first"], {"who": "dying"}) is None
    await dying.call("wamp.session.add_testament", "com.example.gone", ["second"], {})
    await dying.call("wamp.session.add_testament", "com.example.gone", ["detached"], scope="detached")
    await dying.call(
        "wamp.session.add_testament",
        "com.example.gone",
        ["only for the observer"],
        publish_options={"eligible": [observer.sid]},
    )
    await fence(observer, outsider)
    assert got.calls == []  # nothing is published while the session lives

    dying.wire.transport.abortConnection()
    await got.wait(4)
    assert [(c[0], c[1]) for c in got.calls] == [
        (("detached",), {}),
        (("first",), {"who": "dying"}),
        (("second",), {}),
        (("only for the observer",), {}),
    ]
    await fence(outsider)
    assert outsider_got.args == [("detached",), ("first",), ("second",)]
    await leave(observer)
    await leave(outsider)


@pytest_twisted.ensureDeferred
async def test_testaments_on_goodbye_and_flush(live_router):
    """
    A GOODBYE departure publishes the testaments too.  flush_testaments
    removes one scope's testaments (default ``destroyed``) and returns how
    many it removed -- the spec says it returns no value; a count, as Crossbar
    returns, is what the lead asked for and a client that expects nothing
    ignores it.  Nothing flushed is published later.
    """
    observer = await join(live_router.ws_url)
    got = Calls()
    await observer.subscribe(got, "com.example.bye")

    polite = await join(live_router.ws_url)
    await polite.call("wamp.session.add_testament", "com.example.bye", [polite.sid])
    await leave(polite)
    assert (await got.wait(1))[0] == (polite.sid,)

    flusher = await join(live_router.ws_url)
    for scope in ("destroyed", "destroyed", "detached"):
        await flusher.call("wamp.session.add_testament", "com.example.bye", [scope], scope=scope)
    assert await flusher.call("wamp.session.flush_testaments") == 2
    assert await flusher.call("wamp.session.flush_testaments") == 0
    assert await flusher.call("wamp.session.flush_testaments", scope="detached") == 1
    await flusher.call("wamp.session.add_testament", "com.example.bye", ["kept"], scope="detached")
    assert await flusher.call("wamp.session.flush_testaments", scope="destroyed") == 0
    await leave(flusher)
    await got.wait(2)
    await fence(observer)
    assert got.args == [(polite.sid,), ("kept",)]

    checker = await join(live_router.ws_url)
    assert await call_error(checker, "wamp.session.add_testament", "com.bad uri", []) == "wamp.error.invalid_uri"
    # as for PUBLISH, the router's wamp.* topics are off limits
    assert await call_error(checker, "wamp.session.add_testament", "wamp.session.on_leave", []) == (
        "wamp.error.not_authorized"
    )
    assert await call_error(checker, "wamp.session.add_testament", "com.x", [], scope="later") == (
        "wamp.error.invalid_argument"
    )
    await leave(checker)
    await leave(observer)


# -- WELCOME ---------------------------------------------------------------------------------------------

#: Every feature the router announces, and the tests that prove it works.
ANNOUNCED = {
    "broker": {
        "publisher_exclusion": "test_advanced_pubsub::test_publisher_exclusion_and_identification",
        "publisher_identification": "test_advanced_pubsub::test_publisher_exclusion_and_identification",
        "subscriber_blackwhite_listing": "test_advanced_pubsub::test_black_and_whitelisting_in_combination",
        "pattern_based_subscription": "test_advanced_pubsub::test_pattern_subscriptions",
        "event_retention": "test_advanced_pubsub::test_event_retention",
        "session_meta_api": "test_meta_api::test_session_join_and_leave_events",
        "subscription_meta_api": "test_advanced_pubsub::test_subscription_meta_events",
        "subscription_revocation": "test_revocation::test_remove_subscriber",
        "payload_passthru_mode": "test_passthru::test_publish_in_passthru_mode",
        "event_history": "test_event_history::test_get_events_over_the_wire_and_its_authorization",
    },
    "dealer": {
        "caller_identification": "test_advanced_rpc::test_caller_identification",
        "pattern_based_registration": "test_advanced_rpc::test_pattern_registration_precedence",
        "shared_registration": "test_advanced_rpc::test_shared_registration_policies",
        "call_timeout": "test_advanced_rpc::test_call_timeout",
        "call_canceling": "test_advanced_rpc::test_cancel_kill_waits_for_the_callee",
        "progressive_call_results": "test_advanced_rpc::test_progressive_call_results",
        "progressive_call_invocations": "test_advanced_rpc::test_progressive_call_invocations",
        "session_meta_api": "test_meta_api::test_session_count_list_and_get",
        "registration_meta_api": "test_advanced_rpc::test_registration_meta_procedures",
        "testament_meta_api": "test_meta_api::test_testaments_on_transport_loss",
        "registration_revocation": "test_revocation::test_remove_callee_with_autobahn_python",
        "payload_passthru_mode": "test_passthru::test_call_in_passthru_mode",
    },
}


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket", "msgpack")])
@pytest_twisted.ensureDeferred
async def test_welcome_announces_exactly_the_implemented_features(live_router, transport, serializer):
    """
    WELCOME's roles are exactly ``router.core.ROUTER_ROLES``, which are exactly
    the features with a test in ANNOUNCED.  Checked on the raw WELCOME:
    autobahn-python drops features it does not know when it parses it.
    """
    peer = await connect_raw(live_router.address(transport), transport, serializer)
    welcome = await peer.hello({"subscriber": {}}, authid="peter")
    expected_roles = {
        role: {"features": {feature: True for feature in features}} for role, features in ANNOUNCED.items()
    }
    assert welcome[0] == 2
    assert welcome[2] == {
        "realm": "realm1",
        "authid": "peter",
        "authrole": "anonymous",
        "authmethod": "anonymous",
        "authprovider": "static",
        "roles": expected_roles,
        "x_router_agent": live_router.service.router.agent,
    }
    assert message.Welcome(1, ROUTER_ROLES).marshal()[2]["roles"] == expected_roles
    # every test named in ANNOUNCED exists
    here = Path(__file__).resolve().parent
    for features in ANNOUNCED.values():
        for where in features.values():
            module, name = where.split("::")
            assert f"def {name}(" in (here / f"{module}.py").read_text(), where
    await peer.goodbye()


# -- the Python API -------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_python_meta_api(live_router):
    """``router.realms[name].meta``: sessions() (with an authrole filter), session(id) and kill()."""
    meta = live_router.service.router.realms["realm1"].meta
    a = await join_as(live_router, "ann")
    b = await join_as(live_router, "ben", "rawsocket", "json")
    assert sorted((i.session_id, i.authid) for i in meta.sessions()) == sorted([(a.sid, "ann"), (b.sid, "ben")])
    assert len(meta.sessions(["anonymous"])) == 2
    assert meta.sessions(["admin"]) == []
    info = meta.session(b.sid)
    assert (info.session_id, info.realm, info.authid, info.authrole, info.connection.transport) == (
        b.sid,
        "realm1",
        "ben",
        "anonymous",
        "rawsocket",
    )
    assert meta.session(123) is None

    assert meta.kill(b.sid, "com.example.python", "from python") is True
    goodbye = await bounded(b.left)
    assert (goodbye.reason, goodbye.message) == ("com.example.python", "from python")
    await departed(live_router, b)
    assert meta.kill(b.sid) is False
    assert [i.session_id for i in meta.sessions()] == [a.sid]
    await leave(a)
    await departed(live_router, a)
    assert meta.sessions() == []


class WhoIsThere:
    """A listener asking the meta API who is connected, as whom, whenever someone joins."""

    def __init__(self) -> None:
        self.router = None
        self.snapshots = []

    def on_server_launched(self, event):
        self.router = event.router

    def on_session_joined(self, event):
        meta = self.router.realms[event.session.realm].meta
        self.snapshots.append(sorted(info.authid for info in meta.sessions()))


@pytest_twisted.ensureDeferred
async def test_listener_uses_the_meta_api():
    listener = WhoIsThere()
    service = make_service(listener_objects=[(None, listener)])
    await service.startService()
    try:
        ws_url = next(e.url for e in service.endpoints if e.transport == "websocket")
        first = await join(ws_url, session_class=named("first"))
        second = await join(ws_url, session_class=named("second"))
        await fence(first, second)
        assert listener.snapshots == [["first"], ["first", "second"]]
        await leave(first)
        await leave(second)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_meta_events_reach_pattern_subscribers(live_router):
    """Meta events are ordinary events of the realm: a prefix subscription to wamp.session gets both."""
    observer = await join(live_router.ws_url)
    seen = Calls()
    await observer.subscribe(seen, "wamp.session.", options=SubscribeOptions(match="prefix", details=True))
    visitor = await join(live_router.ws_url)
    await leave(visitor)
    await seen.wait(2)
    assert [c[2].topic for c in seen.calls] == ["wamp.session.on_join", "wamp.session.on_leave"]
    assert seen.args[1] == (visitor.sid, UNIQUE_ANONYMOUS, "anonymous")
    await leave(observer)
