"""
The dynamic authenticator examples (examples/auth), end to end: each
example's own wampd.toml (only the endpoints moved to free ports), real
autobahn-python clients, and the refusals as listeners see them.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError

from examples.auth.jwt_authenticator import InvalidToken, JwtAuthenticator, issue_token, verify_token
from router.config import ConfigError, load_config
from router.plugins import load_callable
from tests.auth_helpers import UNIQUE_ANONYMOUS, bounded, open_session, ticket
from tests.test_lifecycle import Started

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "auth"
SECRET = "jwt-test-secret-0123456789"
AUTH_FAILED = ("wamp.error.authentication_failed", "authentication failed")


async def joined(address, transport="websocket", **kwargs):
    client = await open_session(address, transport, **kwargs)
    details = await bounded(client.joined)
    return client, details


async def refused(router, address, transport="websocket", **kwargs):
    after = max((e.connection.id for e in router.recorder.events if e.name == "client_connected"), default=0)
    client = await open_session(address, transport, **kwargs)
    suffix = f":{client.local_port}"
    with pytest.raises(RuntimeError, match="aborted"):
        await bounded(client.joined)

    def mine(event):  # local ports get reused: only a connection newer than this client's start
        return event.connection.id > after and event.connection.peer.endswith(suffix)

    rejected = await router.recorder.wait_for(lambda e: e.name == "client_rejected" and mine(e))
    await router.recorder.wait_for(lambda e: e.name == "client_disconnected" and mine(e))
    return (client.close_details.reason, client.close_details.message), rejected


async def leave(*clients):
    for client in clients:
        client.leave()
        await bounded(client.disconnected)


# -- JWT -------------------------------------------------------------------------------------


def test_verify_token_rules():
    now = 1_700_000_000
    good = issue_token(SECRET, "alice", "user", 60, now=now, iss="login", aud="wampd")
    claims = verify_token(good, SECRET, now=now + 30, issuer="login", audience="wampd")
    assert (claims["sub"], claims["role"], claims["exp"]) == ("alice", "user", now + 60)
    header, payload, signature = good.split(".")
    refusals = {
        "bad signature": (issue_token("other-secret", "alice", now=now), {}),
        "expired": (good, {"now": now + 60 + 31}),
        "not valid yet": (issue_token(SECRET, "alice", now=now, nbf=now + 100), {}),
        "wrong issuer": (good, {"issuer": "someone-else"}),
        "wrong audience": (good, {"audience": "another-service"}),
        "no exp claim": (_sign({"alg": "HS256"}, {"sub": "alice"}), {}),
        "not HS256": (_sign({"alg": "none"}, {"sub": "alice", "exp": now + 60}), {}),
        "no usable sub": (issue_token(SECRET, "", now=now), {}),
        "no usable role": (issue_token(SECRET, "alice", "two words", now=now), {}),
        "not three": (f"{header}.{payload}", {}),
        "not base64url": (f"{header}.{payload}.{signature}!", {}),
        "not a token": (12345, {}),
    }
    for why, (token, kwargs) in refusals.items():
        with pytest.raises(InvalidToken, match=why):
            verify_token(token, SECRET, **{"now": now, **kwargs})
    # "alg": "none" with an empty signature is refused before anything else
    unsigned = f"{_sign({'alg': 'none'}, {'sub': 'alice', 'exp': now + 60}).rsplit('.', 1)[0]}."
    with pytest.raises(InvalidToken):
        verify_token(unsigned, SECRET, now=now)


def _sign(header: dict, payload: dict) -> str:
    """A token with any header, signed with SECRET (as an attacker who knows the secret could not)."""
    import base64
    import hashlib
    import hmac
    import json

    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    signing_input = f"{b64(header)}.{b64(payload)}"
    mac = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def test_jwt_example_needs_its_secret(monkeypatch):
    monkeypatch.delenv("WAMPD_JWT_SECRET", raising=False)
    with pytest.raises(ConfigError, match="WAMPD_JWT_SECRET"):
        load_callable("examples.auth.jwt_authenticator:JwtAuthenticator", "wampd.authenticators", "authenticator")


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_jwt_example(monkeypatch, transport):
    monkeypatch.setenv("WAMPD_JWT_SECRET", SECRET)
    config = load_config(EXAMPLES / "jwt" / "wampd.toml")
    async with Started(realms=config.realms) as router:
        address = router.ws_url if transport == "websocket" else router.rs_port

        backend, details = await joined(
            address, transport, authmethods=["ticket"], answer=ticket(issue_token(SECRET, "worker", "backend"))
        )
        assert (details.authid, details.authrole, details.authmethod, details.authprovider) == (
            "worker",
            "backend",
            "ticket",
            "jwt",
        )
        token = issue_token(SECRET, "alice", "user", ttl=600)
        user, details = await joined(
            address, transport, authmethods=["ticket"], authid="alice", answer=ticket(token)
        )
        assert (details.authid, details.authrole, details.authprovider) == ("alice", "user", "jwt")
        assert details.authextra["exp"] == verify_token(token, SECRET)["exp"]
        joined_event = await router.recorder.wait_for(
            lambda e: e.name == "session_joined" and e.session.session_id == details.session
        )
        assert (joined_event.session.authid, joined_event.session.authrole) == ("alice", "user")

        # the example's roles at work
        await backend.register(lambda name: f"hello {name}", "com.example.hello")
        assert await bounded(user.call("com.example.hello", "alice")) == "hello alice"
        with pytest.raises(ApplicationError) as caught:
            await bounded(user.register(lambda: None, "com.example.mine"))
        assert caught.value.error == "wamp.error.not_authorized"

        expired = issue_token(SECRET, "alice", "user", ttl=60, now=time.time() - 3600)
        forged = issue_token("not-the-secret", "alice", "user")
        for credentials in (
            dict(answer=ticket(expired)),
            dict(answer=ticket(forged)),
            dict(answer=ticket("not.a.token")),
            dict(authid="bob", answer=ticket(token)),  # alice's token for bob
        ):
            answer, rejected = await refused(router, address, transport, authmethods=["ticket"], **credentials)
            assert answer == AUTH_FAILED
            assert (rejected.reason, rejected.realm) == ("authentication", "realm1")
        # no anonymous access in this example
        answer, rejected = await refused(router, address, transport)
        assert answer[0] == "wamp.error.no_auth_method"
        await leave(backend, user)
        assert len(router.service.router.realms["realm1"].sessions) == 0


# -- session cookie ------------------------------------------------------------------------------


@pytest.fixture
def session_db(tmp_path, monkeypatch):
    path = tmp_path / "sessions.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE sessions (sid TEXT PRIMARY KEY, user TEXT, role TEXT, expires REAL)")
        db.executemany(
            "INSERT INTO sessions VALUES (?, ?, ?, ?)",
            [
                ("alice-sid", "alice", "user", time.time() + 3600),
                ("root-sid", "root", "admin", time.time() + 3600),
                ("stale-sid", "bob", "user", time.time() - 1),
            ],
        )
    db.close()
    monkeypatch.setenv("WAMPD_SESSION_DB", str(path))
    monkeypatch.delenv("WAMPD_COOKIE_ORIGINS", raising=False)
    monkeypatch.delenv("WAMPD_COOKIE_GUESTS", raising=False)
    return path


@pytest_twisted.ensureDeferred
async def test_cookie_example(session_db):
    config = load_config(EXAMPLES / "cookie" / "wampd.toml")
    async with Started(realms=config.realms) as router:
        url = router.ws_url
        host = url.split("/")[2]
        alice, details = await joined(url, headers={"Cookie": "theme=dark; sid=alice-sid"})
        assert (details.authid, details.authrole, details.authmethod, details.authprovider) == (
            "alice",
            "user",
            "cookie",
            "cookie",
        )
        event = await router.recorder.wait_for(
            lambda e: e.name == "session_joined" and e.session.session_id == details.session
        )
        assert event.session.connection.headers["cookie"] == "theme=dark; sid=alice-sid"
        # a browser on the router's own origin
        root, details = await joined(url, headers={"Cookie": "sid=root-sid", "Origin": f"http://{host}"})
        assert (details.authid, details.authrole) == ("root", "admin")
        await root.register(lambda: "pong", "com.example.ping")
        assert await bounded(alice.call("com.example.ping")) == "pong"

        for headers in (
            {},  # no cookie
            {"Cookie": "sid=unknown-sid"},
            {"Cookie": "sid=stale-sid"},  # expired
            {"Cookie": "other=alice-sid"},  # the wrong cookie
            {"Cookie": "sid=alice-sid", "Origin": "https://evil.example"},  # cross-site WebSocket hijacking
        ):
            answer, rejected = await refused(router, url, headers=headers)
            assert answer == AUTH_FAILED, headers
            assert (rejected.reason, rejected.realm) == ("authentication", "realm1")
        # RawSocket has no cookies: the example does not offer it
        answer, _ = await refused(router, router.rs_port, "rawsocket")
        assert answer[0] == "wamp.error.no_auth_method"
        await leave(alice, root)


@pytest_twisted.ensureDeferred
async def test_cookie_example_with_guests_and_origins(session_db, monkeypatch):
    monkeypatch.setenv("WAMPD_COOKIE_GUESTS", "1")
    monkeypatch.setenv("WAMPD_COOKIE_ORIGINS", "https://app.example.com, https://admin.example.com")
    config = load_config(EXAMPLES / "cookie" / "wampd.toml")
    async with Started(realms=config.realms) as router:
        url = router.ws_url
        app = "https://app.example.com"
        alice, details = await joined(url, headers={"Cookie": "sid=alice-sid", "Origin": app})
        assert (details.authid, details.authrole) == ("alice", "user")
        for headers in ({"Origin": app}, {"Cookie": "sid=stale-sid", "Origin": app}, {"Cookie": "sid=nope"}):
            guest, details = await joined(url, headers=headers)
            assert (details.authid, details.authrole, details.authmethod) == (UNIQUE_ANONYMOUS, "guest", "anonymous")
            await guest.subscribe(lambda: None, "com.example.public.news")
            with pytest.raises(ApplicationError):
                await bounded(guest.subscribe(lambda: None, "com.example.chat.lobby"))
            await leave(guest)
        # a foreign page is refused even when guests are welcome
        answer, _ = await refused(router, url, headers={"Cookie": "sid=alice-sid", "Origin": f"http://{url.split('/')[2]}"})
        assert answer == AUTH_FAILED
        await leave(alice)


def test_cookie_example_needs_its_database(monkeypatch, tmp_path):
    monkeypatch.delenv("WAMPD_SESSION_DB", raising=False)
    spec = "examples.auth.cookie_authenticator:CookieAuthenticator"
    with pytest.raises(ConfigError, match="WAMPD_SESSION_DB"):
        load_callable(spec, "wampd.authenticators", "authenticator")
    monkeypatch.setenv("WAMPD_SESSION_DB", str(tmp_path / "missing.sqlite3"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_callable(spec, "wampd.authenticators", "authenticator")


def test_jwt_authenticator_leaves_other_methods_alone():
    from router.auth import HelloInfo

    authenticator = JwtAuthenticator(SECRET)
    hello = HelloInfo("realm1", ("anonymous",), None, None, None, "websocket", "127.0.0.1", {}, {}, 1)
    assert authenticator(hello, "anonymous", None) is None
    assert authenticator(hello, "wampcra", None) is None
