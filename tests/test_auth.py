"""
Authentication and authorization end to end, with real autobahn-python
clients over loopback (WebSocket and RawSocket, JSON, msgpack and CBOR).

One router serves the whole module (``auth_router``).  Its realm ``realm1``
is configured from TOML as a new user would write it (issue 5's "done
when"): a ticket user, a wampcra user (and a salted one), a cryptosign key,
and a role that may only subscribe to ``news.*``.  The other realms: ``open``
(the zero-config realm), ``dyn`` and ``dynsync`` (dynamic authorizers from
tests/auth_helpers.py).

Every test leaves the realms empty: clients leave and the router's
``client_disconnected`` is awaited, so the "no state left behind" checks can
look at the whole realm.
"""

from __future__ import annotations

import os

import pytest
import pytest_twisted
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions
from twisted.internet import reactor
from twisted.internet.task import deferLater

from router.auth import derive_key
from router.config import RealmConfig
from tests import auth_helpers
from tests.auth_helpers import (
    bounded,
    cryptosign,
    open_session,
    pubkey_hex,
    signing_key,
    ticket,
    wampcra,
)
from tests.config_helpers import config_from_toml
from tests.conftest import make_service
from tests.raw_client import Calls, connect_raw
from tests.wamp_clients import Recorder

NOT_AUTHORIZED = "wamp.error.not_authorized"
AUTH_FAILED = ("wamp.error.authentication_failed", "authentication failed")
TRANSPORTS = ("websocket", "rawsocket")
SERIALIZERS = ("json", "msgpack", "cbor")
ACK = PublishOptions(acknowledge=True)

JOE_TICKET = "joe-ticket-4711"
READER_TICKET = "reader-ticket-0815"
ALICE_SECRET = "alice-wampcra-secret"
SALTY_PASSWORD = "salty-password"
SALT, ITERATIONS, KEYLEN = "pepper-and-salt", 100, 32
SIGNER = signing_key(1)
STRANGER = signing_key(2)  # a key nobody configured

# The "done when" configuration, as a user writes it.  joe's ticket comes from
# the environment and alice's secret from a file next to the config.
CONFIG = f"""
[[realm]]
name = "realm1"
auth = [
    {{ method = "anonymous", role = "guest" }},
    {{ method = "ticket" }},
    {{ method = "wampcra" }},
    {{ method = "cryptosign" }},
]

[[realm.principal]]
authid = "joe"
role = "user"
ticket_env = "WAMPD_TEST_JOE_TICKET"

[[realm.principal]]
authid = "reader"
role = "reader"
ticket = "{READER_TICKET}"

[[realm.principal]]
authid = "alice"
role = "user"
secret_file = "alice.secret"

[[realm.principal]]
authid = "salty"
role = "user"
secret = "{derive_key(SALTY_PASSWORD, SALT, ITERATIONS, KEYLEN)}"
salt = "{SALT}"
iterations = {ITERATIONS}
keylen = {KEYLEN}

[[realm.principal]]
authid = "watcher"
role = "watcher"
ticket = "watcher-ticket"

[[realm.principal]]
authid = "signer"
role = "service"
pubkey = "{pubkey_hex(SIGNER)}"

# may only subscribe to news.*
[[realm.role]]
name = "reader"
permissions = [{{ uri = "news.", match = "prefix", subscribe = true }}]

[[realm.role]]
name = "user"
disclose = true
permissions = [
    {{ uri = "com.app.", match = "prefix", call = true, register = true, publish = true, subscribe = true }},
    {{ uri = "com.app.admin.", match = "prefix" }},
    {{ uri = "com.app.admin.status", match = "exact", call = true }},
    {{ uri = "com..danger", match = "wildcard" }},
    {{ uri = "org..echo", match = "wildcard", call = true }},
    {{ uri = "com.app.quiet.", match = "prefix", call = true, publish = true, disclose = false }},
    {{ uri = "news.", match = "prefix", publish = true, subscribe = true }},
]

[[realm.role]]
name = "service"
permissions = [
    {{ uri = "", match = "prefix", call = true, register = true, publish = true, subscribe = true }},
    {{ uri = "wamp.", match = "prefix", call = true, subscribe = true }},
]

# may subscribe to everything, which is not wamp.*: that needs a permission naming wamp
[[realm.role]]
name = "watcher"
permissions = [{{ uri = "", match = "prefix", subscribe = true }}]

# no permissions: may do nothing
[[realm.role]]
name = "guest"
"""


class AuthRouter:
    def __init__(self, service, recorder):
        self.service = service
        self.recorder = recorder
        by_kind = {e.transport: e for e in service.endpoints}
        self.ws_url = by_kind["websocket"].url
        self.rs_port = by_kind["rawsocket"].port

    def address(self, transport):
        return self.ws_url if transport == "websocket" else self.rs_port

    def realm(self, name="realm1"):
        return self.service.router.realms[name]

    def newest_connection_id(self):
        return max((e.connection.id for e in self.recorder.events if e.name == "client_connected"), default=0)

    def _of(self, client):
        """A predicate: the event is about ``client``'s connection (its local port, opened after ``client.after``)."""
        suffix = f":{client.port}"

        def matches(event):
            conn = _conn(event)
            # local ports get reused: only connections newer than the client's start count
            return conn is not None and conn.id > client.after and conn.peer.endswith(suffix)

        return matches

    def events(self, client):
        """The recorded events of ``client``'s connection."""
        of = self._of(client)
        return [e for e in self.recorder.events if of(e)]

    async def wait(self, name, client, timeout=5.0):
        """
        The event ``name`` of ``client``'s connection (past or future).
        Resumes on a later reactor turn, not inside the router's emit, so the
        router has finished what it was doing.
        """
        of = self._of(client)
        event = await self.recorder.wait_for(lambda e: e.name == name and of(e), timeout)
        await settle()
        return event

    async def wait_closed(self, connection):
        await self.recorder.wait_for(
            lambda e: e.name == "client_disconnected" and e.connection.id == connection.id, 5.0
        )
        await settle()

    def tracked(self, connection):
        return any(s.connection.id == connection.id for s in self.service.router.connections)

    async def finish(self, *clients):
        """Leave (if joined) and wait until the router has seen each connection close."""
        for client in clients:
            if client.is_attached():
                client.leave()
            await bounded(client.disconnected)
            await self.wait("client_disconnected", client)

    def assert_empty(self, *names):
        """No session, subscription or registration left in these realms."""
        for name in names or tuple(self.service.router.realms):
            realm = self.realm(name)
            assert realm.sessions == {}, name
            assert realm.broker.subscriptions() == (), name
            assert realm.dealer.registrations() == (), name


def settle():
    """One reactor turn."""
    return deferLater(reactor, 0, lambda: None)


def _conn(event):
    conn = getattr(event, "connection", None)
    if conn is None:
        conn = getattr(getattr(event, "session", None), "connection", None)
    return conn


@pytest_twisted.async_yield_fixture(scope="module")
async def auth_router(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auth")
    (folder / "alice.secret").write_text(ALICE_SECRET + "\n")
    os.environ["WAMPD_TEST_JOE_TICKET"] = JOE_TICKET
    try:
        config = config_from_toml(CONFIG, str(folder / "wampd.toml"))
    finally:
        del os.environ["WAMPD_TEST_JOE_TICKET"]
    realms = (
        *config.realms,
        RealmConfig("open"),
        RealmConfig("dyn", authorizer="tests.auth_helpers:authorize"),
        RealmConfig("dynsync", authorizer="tests.auth_helpers:authorize_sync", authorizer_cache=100),
    )
    recorder = Recorder()
    service = make_service(recorder, realms=realms)
    await service.startService()
    yield AuthRouter(service, recorder)
    await service.stopService()


async def join(router, transport="websocket", serializer="json", realm="realm1", **credentials):
    after = router.newest_connection_id()
    client = await open_session(router.address(transport), transport, serializer, realm, **credentials)
    client.port, client.after = client.local_port, after
    await bounded(client.joined)
    return client


async def refused(router, transport="websocket", serializer="json", realm="realm1", **credentials):
    """Connect, expect ABORT; returns the client (its ``close_details`` hold the ABORT)."""
    after = router.newest_connection_id()
    client = await open_session(router.address(transport), transport, serializer, realm, **credentials)
    client.port, client.after = client.local_port, after
    with pytest.raises(RuntimeError, match="aborted"):
        await bounded(client.joined)
    await router.wait("client_disconnected", client)
    return client


# the credentials of each method, and who they make the client
JOINS = {
    "anonymous": (dict(authmethods=["anonymous"]), (auth_helpers.UNIQUE_ANONYMOUS, "guest", "anonymous")),
    "ticket": (dict(authmethods=["ticket"], authid="joe", answer=ticket(JOE_TICKET)), ("joe", "user", "ticket")),
    "wampcra": (dict(authmethods=["wampcra"], authid="alice", answer=wampcra(ALICE_SECRET)), ("alice", "user", "wampcra")),
    "wampcra-salted": (
        dict(authmethods=["wampcra"], authid="salty", answer=wampcra(SALTY_PASSWORD)),
        ("salty", "user", "wampcra"),
    ),
    "cryptosign": (
        dict(authmethods=["cryptosign"], authextra={"pubkey": pubkey_hex(SIGNER)}, answer=cryptosign(SIGNER)),
        ("signer", "service", "cryptosign"),
    ),
}

JOE = JOINS["ticket"][0]
ALICE = JOINS["wampcra"][0]
SALTY = JOINS["wampcra-salted"][0]
SIGNER_LOGIN = JOINS["cryptosign"][0]
READER = dict(authmethods=["ticket"], authid="reader", answer=ticket(READER_TICKET))
WATCHER = dict(authmethods=["ticket"], authid="watcher", answer=ticket("watcher-ticket"))
GUEST = JOINS["anonymous"][0]


# -- authentication: the matrix ------------------------------------------------------------


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("method", list(JOINS))
@pytest_twisted.ensureDeferred
async def test_join_matrix(auth_router, method, transport, serializer):
    credentials, (authid, authrole, authmethod) = JOINS[method]
    client = await join(auth_router, transport, serializer, **credentials)
    details = await client.joined
    assert (details.authid, details.authrole, details.authmethod, details.authprovider) == (
        authid,
        authrole,
        authmethod,
        "static",
    )
    assert len(client.challenges) == (0 if method == "anonymous" else 1)
    joined = await auth_router.wait("session_joined", client)
    info = joined.session
    assert (info.session_id, info.realm, info.authid, info.authrole, info.authmethod, info.authprovider) == (
        details.session,
        "realm1",
        authid,
        authrole,
        authmethod,
        "static",
    )
    assert (info.connection.transport, info.connection.serializer) == (transport, serializer)
    assert auth_router.realm().sessions[details.session].info == info
    await auth_router.finish(client)
    assert [e.name for e in auth_router.events(client)] == [
        "client_connected",
        "session_joining",
        "session_joined",
        "session_left",
        "client_disconnected",
    ]
    auth_router.assert_empty("realm1")


# -- authentication: refusals -------------------------------------------------------------

# per method: (the wrong secret of a known user, an unknown user)
REFUSALS = {
    "ticket": (
        dict(authmethods=["ticket"], authid="joe", answer=ticket("not-joes-ticket")),
        dict(authmethods=["ticket"], authid="mallory", answer=ticket(JOE_TICKET)),
    ),
    "wampcra": (
        dict(authmethods=["wampcra"], authid="alice", answer=wampcra("not-alices-secret")),
        dict(authmethods=["wampcra"], authid="mallory", answer=wampcra(ALICE_SECRET)),
    ),
    "wampcra-salted": (
        dict(authmethods=["wampcra"], authid="salty", answer=wampcra("not-the-password")),
        dict(authmethods=["wampcra"], authid="mallory", answer=wampcra(SALTY_PASSWORD)),
    ),
    "cryptosign": (
        # signer's public key, signed with another key
        dict(authmethods=["cryptosign"], authextra={"pubkey": pubkey_hex(SIGNER)}, answer=cryptosign(STRANGER)),
        dict(authmethods=["cryptosign"], authextra={"pubkey": pubkey_hex(STRANGER)}, answer=cryptosign(STRANGER)),
    ),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("method", list(REFUSALS))
@pytest_twisted.ensureDeferred
async def test_wrong_secret_and_unknown_user_get_the_same_abort(auth_router, method, transport):
    answers = []
    for credentials in REFUSALS[method]:
        client = await refused(auth_router, transport, **credentials)
        assert len(client.challenges) == 1  # an unknown user is challenged too
        answers.append((client.close_details.reason, client.close_details.message))
        names = [e.name for e in auth_router.events(client)]
        assert names == ["client_connected", "client_rejected", "client_disconnected"]
        rejected = auth_router.events(client)[1]
        assert (rejected.reason, rejected.message, rejected.realm, rejected.authid) == (
            "authentication",
            "authentication failed",
            "realm1",
            credentials.get("authid"),
        )
        auth_router.assert_empty("realm1")
    assert answers[0] == answers[1] == AUTH_FAILED


@pytest_twisted.ensureDeferred
async def test_cryptosign_key_of_another_authid_is_refused(auth_router):
    """A configured key presented with someone else's authid gets the usual answer."""
    credentials = dict(SIGNER_LOGIN, authid="joe")
    client = await refused(auth_router, **credentials)
    assert (client.close_details.reason, client.close_details.message) == AUTH_FAILED
    auth_router.assert_empty("realm1")


@pytest_twisted.ensureDeferred
async def test_unknown_wampcra_user_gets_a_stable_challenge_like_a_real_one(auth_router):
    """
    The decoy CHALLENGE for an unknown authid has the fields of a real
    principal's, and the same salt every time (a random one would give it away).
    """
    shapes = {}
    for authid in ("alice", "salty", "mallory", "mallory", "eve", "eve"):
        client = await refused(
            auth_router, authmethods=["wampcra"], authid=authid, answer=wampcra("wrong")
        )
        extra = dict(client.challenges[0].extra)
        challenge = extra.pop("challenge")
        assert f'"authid":"{authid}"' in challenge
        shapes.setdefault(authid, []).append(extra)
    real = [shapes["alice"][0], shapes["salty"][0]]
    assert real[1] == {"salt": SALT, "iterations": ITERATIONS, "keylen": KEYLEN}
    for authid in ("mallory", "eve"):
        first, second = shapes[authid]
        assert first == second, authid
        assert sorted(first) in (sorted(real[0]), sorted(real[1])), authid
        if "salt" in first:
            assert (first["iterations"], first["keylen"]) == (ITERATIONS, KEYLEN)
    auth_router.assert_empty("realm1")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_no_offered_method_available(auth_router, transport):
    """A method the realm does not offer (here: on the zero-config realm) is refused with no_auth_method."""
    client = await refused(auth_router, transport, realm="open", **JOE)
    assert client.close_details.reason == "wamp.error.no_auth_method"
    assert client.challenges == []
    rejected = auth_router.events(client)[1]
    assert (rejected.name, rejected.reason, rejected.realm) == ("client_rejected", "authentication", "open")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_authenticate_before_hello_is_a_protocol_violation(auth_router, transport):
    peer = await connect_raw(auth_router.address(transport), transport)
    peer.send([5, "some-signature", {}])  # AUTHENTICATE
    abort = await peer.wait_for(lambda m: m[0] == 3)
    assert abort[2] == "wamp.error.protocol_violation"
    await bounded(peer.closed)
    connection = _last_connection(auth_router)
    await auth_router.wait_closed(connection)
    names = [e.name for e in auth_router.recorder.events if _conn(e) is connection]
    assert names == ["client_connected", "client_error", "client_disconnected"]
    assert not auth_router.tracked(connection)
    auth_router.assert_empty()


@pytest.mark.parametrize("when", ["challenged", "joined"])
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_hello_twice_is_a_protocol_violation(auth_router, transport, when):
    peer = await connect_raw(auth_router.address(transport), transport)
    hello = [1, "realm1", {"roles": {"caller": {}}, "authmethods": ["ticket"], "authid": "joe"}]
    peer.send(hello)
    assert (await peer.wait_for(lambda m: m[0] == 4))[1] == "ticket"  # CHALLENGE
    if when == "joined":
        peer.send([5, JOE_TICKET, {}])
        welcome = await peer.wait_for(lambda m: m[0] == 2)
        assert welcome[2]["authid"] == "joe"
    peer.send(hello)
    abort = await peer.wait_for(lambda m: m[0] == 3)
    assert abort[2] == "wamp.error.protocol_violation"
    await bounded(peer.closed)
    connection = _last_connection(auth_router)
    await auth_router.wait_closed(connection)
    assert not auth_router.tracked(connection)
    names = [e.name for e in auth_router.recorder.events if _conn(e) is connection]
    if when == "joined":
        assert names == [
            "client_connected",
            "session_joining",
            "session_joined",
            "client_error",
            "session_left",
            "client_disconnected",
        ]
    else:
        assert names == ["client_connected", "client_error", "client_disconnected"]
    auth_router.assert_empty()


def _last_connection(router):
    return [e for e in router.recorder.events if e.name == "client_connected"][-1].connection


@pytest.mark.parametrize("method", ["ticket", "wampcra", "cryptosign"])
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_disconnect_after_challenge_leaves_nothing(auth_router, transport, method):
    peer = await connect_raw(auth_router.address(transport), transport)
    details = {"roles": {"caller": {}}, "authmethods": [method], "authid": "alice"}
    if method == "cryptosign":
        details = {"roles": {"caller": {}}, "authmethods": [method], "authextra": {"pubkey": pubkey_hex(SIGNER)}}
    peer.send([1, "realm1", details])
    assert (await peer.wait_for(lambda m: m[0] == 4))[1] == method
    connection = _last_connection(auth_router)
    peer.drop()
    await bounded(peer.closed)
    await auth_router.wait_closed(connection)
    names = [e.name for e in auth_router.recorder.events if _conn(e) is connection]
    assert names == ["client_connected", "client_disconnected"]
    assert not auth_router.tracked(connection)
    auth_router.assert_empty()


# -- authorization ---------------------------------------------------------------------------


async def denied(request):
    """Awaits a request that must fail with ERROR wamp.error.not_authorized."""
    with pytest.raises(ApplicationError) as caught:
        await bounded(request)
    assert caught.value.error == NOT_AUTHORIZED, caught.value
    return caught.value


def errors(client):
    return [m for m in client.inbox if isinstance(m, message.Error)]


def echo(*args, **kwargs):
    return list(args)


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket", "cbor")])
@pytest_twisted.ensureDeferred
async def test_news_reader_may_only_subscribe_to_news(auth_router, transport, serializer):
    service = await join(auth_router, transport, serializer, **SIGNER_LOGIN)
    await service.register(echo, "com.app.echo")
    reader = await join(auth_router, transport, serializer, **READER)
    joe = await join(auth_router, transport, serializer, **JOE)
    alice = await join(auth_router, transport, serializer, **ALICE)
    got_reader, got_alice = Calls(), Calls()
    await reader.subscribe(got_reader, "news.x")
    await alice.subscribe(got_alice, "news.x")
    await joe.publish("news.x", "first", options=ACK)

    refusals = [
        lambda: reader.publish("news.x", "refused", options=ACK),
        lambda: reader.call("com.app.echo", 1),
        lambda: reader.register(echo, "news.echo"),
        lambda: reader.subscribe(got_reader, "com.app.x"),
        lambda: reader.subscribe(got_reader, "news"),  # the prefix "news." does not match "news"
        lambda: reader.call("wamp.session.count"),
    ]
    for refusal in refusals:
        error = await denied(refusal())
        assert "reader" in error.args[0]  # "role 'reader' may not ..."
        assert reader.is_attached()
        assert await reader.subscribe(got_reader, "news.y")  # the session stays, the next request works

    # An unacknowledged refused publication is dropped, unanswered and delivered to nobody.
    reader.publish("news.x", "dropped")
    await reader.subscribe(got_reader, "news.z")  # answered after the PUBLISH was handled
    await joe.publish("news.x", "second", options=ACK)
    assert await bounded(alice.call("com.app.echo", "fence")) == ["fence"]  # alice's EVENTs came first
    await got_reader.wait(2)
    assert got_alice.args == [("first",), ("second",)]
    assert got_reader.args == [("first",), ("second",)]
    assert len(errors(reader)) == len(refusals)
    assert reader.is_attached()
    await auth_router.finish(service, reader, joe, alice)
    auth_router.assert_empty("realm1")


@pytest_twisted.ensureDeferred
async def test_permission_precedence(auth_router):
    """exact > longest prefix > wildcard, and the permission that decides decides for every action."""
    service = await join(auth_router, **SIGNER_LOGIN)
    procedures = [
        "com.app.echo",
        "com.app.admin.status",
        "com.app.admin.reset",
        "com.app.danger",
        "com.other.danger",
        "org.x.echo",
        "org.x.other",
    ]
    for procedure in procedures:
        await service.register(echo, procedure)
    joe = await join(auth_router, "rawsocket", "msgpack", **JOE)
    allowed = {
        "com.app.echo": True,  # prefix com.app.
        "com.app.admin.status": True,  # exact beats the longer prefix com.app.admin.
        "com.app.admin.reset": False,  # the longest prefix com.app.admin. beats com.app.
        "com.app.danger": True,  # prefix com.app. beats wildcard com..danger
        "com.other.danger": False,  # only wildcard com..danger matches: it says no
        "org.x.echo": True,  # only wildcard org..echo matches: it says yes
        "org.x.other": False,  # nothing matches: default deny
    }
    for procedure, ok in allowed.items():
        if ok:
            assert await bounded(joe.call(procedure, procedure)) == [procedure]
        else:
            await denied(joe.call(procedure, procedure))
    # the exact permission on com.app.admin.status grants call only: it decides publish too
    await denied(joe.publish("com.app.admin.status", options=ACK))
    await bounded(joe.publish("com.app.echo", options=ACK))
    # joe may register under com.app. but not under com.app.admin.
    await bounded(joe.register(echo, "com.app.joe"))
    await denied(joe.register(echo, "com.app.admin.joe"))
    assert await bounded(service.call("com.app.joe", 1)) == [1]
    await auth_router.finish(service, joe)
    auth_router.assert_empty("realm1")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_default_deny_for_a_role_without_permissions(auth_router, transport):
    service = await join(auth_router, transport, **SIGNER_LOGIN)
    await service.register(echo, "com.app.echo")
    guest = await join(auth_router, transport, **GUEST)
    assert (await guest.joined).authrole == "guest"
    await denied(guest.call("com.app.echo"))
    await denied(guest.subscribe(echo, "news.x"))
    await denied(guest.publish("news.x", options=ACK))
    await denied(guest.register(echo, "com.app.guest"))
    await denied(guest.call("wamp.session.count"))
    assert guest.is_attached()
    await auth_router.finish(service, guest)
    auth_router.assert_empty("realm1")


@pytest_twisted.ensureDeferred
async def test_meta_api_only_where_a_role_allows(auth_router):
    service = await join(auth_router, **SIGNER_LOGIN)
    joe = await join(auth_router, "rawsocket", **JOE)
    # service: wamp. prefix with call and subscribe
    assert await bounded(service.call("wamp.session.count")) == 2
    joins = Calls()
    await bounded(service.subscribe(joins, "wamp.session.on_join"))
    # ...but no role can register or publish wamp.* (its catch-all prefix "" does not reach them)
    await denied(service.register(echo, "wamp.mine"))
    await denied(service.publish("wamp.session.on_join", {}, options=ACK))
    # joe's role names no wamp.* URI
    await denied(joe.call("wamp.session.count"))
    await denied(joe.call("wamp.session.list"))
    await denied(joe.subscribe(echo, "wamp.session.on_join"))
    # a catch-all prefix "" does not name wamp: no meta API
    watcher = await join(auth_router, **WATCHER)
    await bounded(watcher.subscribe(echo, "com.app.anything"))
    await denied(watcher.subscribe(echo, "wamp.session.on_join"))
    await denied(watcher.call("wamp.session.count"))
    reader = await join(auth_router, **READER)
    infos = [call[0][0] for call in (await joins.wait(1), await joins.wait(2))]
    assert [(i["authid"], i["authrole"]) for i in infos] == [("watcher", "watcher"), ("reader", "reader")]
    await auth_router.finish(service, joe, watcher, reader)
    auth_router.assert_empty("realm1")


@pytest_twisted.ensureDeferred
async def test_patterns_reach_no_further_than_permissions(auth_router):
    """
    A prefix or wildcard SUBSCRIBE/REGISTER is allowed only when every URI it
    can match is: it cannot get past com.app.admin. (denied for joe), widen
    an exact permission, or reach wamp.* through a catch-all.
    """
    service = await join(auth_router, **SIGNER_LOGIN)
    joe = await join(auth_router, **JOE)
    watcher = await join(auth_router, "rawsocket", **WATCHER)
    events, calls = Calls(), Calls()
    try:
        for pattern, match in (("com.app.", "prefix"), ("com.app.admin", "prefix"), ("com.app..", "wildcard")):
            await denied(joe.subscribe(events, pattern, options=SubscribeOptions(match=match)))
        await denied(joe.register(calls, "com.app.", options=RegisterOptions(match="prefix")))
        await bounded(joe.subscribe(events, "com.app.api.", options=SubscribeOptions(match="prefix")))
        await bounded(joe.register(calls, "com.app.api.", options=RegisterOptions(match="prefix")))
        for pattern, match in (("w", "prefix"), (".session.on_join", "wildcard"), ("..", "wildcard")):
            await denied(watcher.subscribe(events, pattern, options=SubscribeOptions(match=match)))
        await bounded(watcher.subscribe(events, "com.", options=SubscribeOptions(match="prefix")))
        await bounded(service.subscribe(events, ".session.on_join", options=SubscribeOptions(match="wildcard")))
    finally:
        await auth_router.finish(service, joe, watcher)
    auth_router.assert_empty("realm1")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_zero_config_realm_allows_everything_meta_api_included(auth_router, transport):
    """The lead's decision: the open realm checks nothing, the meta API is open to anonymous."""
    watcher = await join(auth_router, transport, realm="open")
    details = await watcher.joined
    assert (details.authrole, details.authmethod) == ("anonymous", "anonymous")
    joins = Calls()
    await bounded(watcher.subscribe(joins, "wamp.session.on_join"))
    other = await join(auth_router, transport, "msgpack", realm="open")
    await joins.wait(1)
    assert await bounded(watcher.call("wamp.session.count")) == 2
    assert sorted(await bounded(watcher.call("wamp.session.list"))) == sorted([watcher.sid, other.sid])
    await bounded(other.register(echo, "any.thing"))
    assert await bounded(watcher.call("any.thing", 1)) == [1]
    await bounded(watcher.publish("any.topic", options=ACK))
    # wamp.* stays the router's
    await denied(other.register(echo, "wamp.mine"))
    await denied(other.publish("wamp.mine", options=ACK))
    await auth_router.finish(watcher, other)
    auth_router.assert_empty("open")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_disclose_from_role_and_permission(auth_router, transport):
    """
    Role user has disclose = true: joe's calls and publications carry his
    identity without disclose_me, except under com.app.quiet. (a permission
    with disclose = false); role service does not disclose.
    """
    service = await join(auth_router, transport, "cbor", **SIGNER_LOGIN)
    joe = await join(auth_router, transport, **JOE)
    invocations, events = Calls(), Calls()
    for procedure in ("com.app.who", "com.app.quiet.who"):
        await service.register(invocations, procedure, options=RegisterOptions(details_arg="details"))
    await service.subscribe(events, "com.app.", options=SubscribeOptions(match="prefix", details=True))
    await joe.call("com.app.who")
    await joe.call("com.app.quiet.who")
    await joe.publish("com.app.news", options=ACK)
    await joe.publish("com.app.quiet.news", options=ACK)
    await events.wait(2)
    loud, quiet = invocations.details
    assert (loud.caller, loud.caller_authid, loud.caller_authrole) == (joe.sid, "joe", "user")
    assert (quiet.caller, quiet.caller_authid, quiet.caller_authrole) == (None, None, None)
    loud, quiet = events.details
    assert (loud.publisher, loud.publisher_authid, loud.publisher_authrole) == (joe.sid, "joe", "user")
    assert (quiet.publisher, quiet.publisher_authid, quiet.publisher_authrole) == (None, None, None)
    # the other way round: service does not disclose
    seen = Calls()
    await joe.register(seen, "com.app.joe.who", options=RegisterOptions(details_arg="details"))
    await service.call("com.app.joe.who")
    assert seen.details[0].caller is None
    await auth_router.finish(service, joe)
    auth_router.assert_empty("realm1")


# -- dynamic authorizers ------------------------------------------------------------------------


@pytest.mark.parametrize("realm", ["dyn", "dynsync"])
@pytest_twisted.ensureDeferred
async def test_dynamic_authorizer_that_raises_denies_and_the_session_stays(auth_router, realm):
    callee = await join(auth_router, realm=realm)
    await callee.register(echo, "com.echo")
    client = await join(auth_router, "rawsocket", "msgpack", realm=realm)
    await denied(client.subscribe(echo, "boom.topic"))
    await denied(client.call("boom.proc"))
    await denied(client.register(echo, "boom.proc"))
    await denied(client.publish("boom.topic", options=ACK))
    client.publish("boom.topic")  # unacknowledged: dropped silently
    await denied(client.call("deny.this"))
    assert await bounded(client.call("com.echo", "still here")) == ["still here"]
    assert client.is_attached()
    await auth_router.finish(callee, client)
    auth_router.assert_empty(realm)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_async_authorizer_keeps_message_order(auth_router, transport):
    """
    The authorizer answers the first publish last (DELAYS): the two
    publications and the call are still routed and answered in the order sent.
    """
    callee = await join(auth_router, transport, realm="dyn")
    await callee.register(lambda: "called", "slow.proc")
    subscriber = await join(auth_router, transport, realm="dyn")
    events = Calls()
    await subscriber.subscribe(events, "slow.", options=SubscribeOptions(match="prefix", details=True))
    client = await join(auth_router, transport, "cbor", realm="dyn")
    answered = []

    def note(result, what):
        answered.append(what)
        return result

    first = client.publish("slow.first", 1, options=ACK).addCallback(note, "first")
    second = client.publish("slow.second", 2, options=ACK).addCallback(note, "second")
    call = client.call("slow.proc").addCallback(note, "call")
    await bounded(first)
    await bounded(second)
    assert await bounded(call) == "called"
    assert answered == ["first", "second", "call"]
    await events.wait(2)
    assert [d.topic for d in events.details] == ["slow.first", "slow.second"]
    await auth_router.finish(callee, subscriber, client)
    auth_router.assert_empty("dyn")


@pytest_twisted.ensureDeferred
async def test_sync_authorizer_non_bool_denies_and_answers_are_cached(auth_router):
    callee = await join(auth_router, realm="dynsync")
    await callee.register(echo, "weird.proc")
    await callee.register(echo, "cache.me")
    client = await join(auth_router, realm="dynsync")
    await denied(client.call("weird.proc"))  # the authorizer said "yes", not True
    asked_before = auth_helpers.ASKED.count(("anonymous", "call", "cache.me"))
    assert await bounded(client.call("cache.me", 1)) == [1]
    assert await bounded(client.call("cache.me", 2)) == [2]
    assert auth_helpers.ASKED.count(("anonymous", "call", "cache.me")) == asked_before + 1
    await auth_router.finish(callee, client)
    auth_router.assert_empty("dynsync")
