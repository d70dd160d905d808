"""
WAMP-SCRAM (method ``scram``) end to end, with real autobahn-python clients
over loopback.

Two clients: Autobahn's own ``AuthScram`` (``autobahn.wamp.auth``, method
``scram``, KDF ``argon2id-13``), and an autobahn-python session answering the
CHALLENGE as the WAMP spec writes it (method ``wamp-scram``, KDFs
``argon2id13`` and ``pbkdf2``), computed here from the spec's formulas with
argon2-cffi and hashlib.  Autobahn's ``AuthScram`` cannot do PBKDF2 (it hands
its ``pbkdf2`` a str salt, which that function refuses), hence the second
client.  The credentials are made by ``python -m router.auth.scram`` and read
from TOML as a user writes them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys

import pytest
import pytest_twisted
from argon2.low_level import Type, hash_secret_raw
from autobahn.twisted.wamp import Session
from autobahn.wamp.auth import AuthScram

from router.auth.scram import derive_scram_credential, toml_line
from tests.auth_helpers import bounded, open_session
from tests.config_helpers import config_error, config_from_toml
from tests.test_lifecycle import Started
from tests.wamp_clients import Client, connect

FAILED = ("wamp.error.authentication_failed", "authentication failed")
FAST_ARGON = {"iterations": 1, "memory": 64}


def _helper(authid: str, password: str, *args: str) -> str:
    """The line ``python -m router.auth.scram`` prints for ``password`` (given on stdin)."""
    done = subprocess.run(
        [sys.executable, "-m", "router.auth.scram", *args, authid],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


PASSWORDS = {"argon": "argon-pw-1", "spec": "spec-pw-2", "pbk": "pbk-pw-3"}
LINES = {
    "argon": _helper("argon", PASSWORDS["argon"], "--iterations", "1", "--memory", "64"),
    "spec": _helper("spec", PASSWORDS["spec"], "--kdf", "argon2id13", "--iterations", "1", "--memory", "64"),
    "pbk": _helper("pbk", PASSWORDS["pbk"], "--kdf", "pbkdf2", "--iterations", "1000"),
}
CONFIG = "".join(
    f"""
[[realm.principal]]
authid = "{authid}"
role = "user"
{line}
"""
    for authid, line in LINES.items()
)
CONFIG = f"""
[router]
auth_fail_limit_authid = 3
auth_fail_limit_address = 0

[[realm]]
name = "realm1"
auth = [{{ method = "scram" }}]
{CONFIG}
[[realm.role]]
name = "user"
permissions = [{{ uri = "com.", match = "prefix", call = true, register = true }}]
"""


def _started(**overrides):
    config = config_from_toml(CONFIG)
    options = dict(realms=config.realms, auth_fail_limit_authid=3, auth_fail_limit_address=0)
    options.update(overrides)
    return Started(**options)


# -- Autobahn's own client ----------------------------------------------------------


class AutobahnScram(Client, Session):
    """autobahn.twisted.wamp.Session with Autobahn's AuthScram added (it checks the server signature)."""

    authid = password = None

    def __init__(self, config=None):
        super().__init__(config)
        self.add_authenticator(AuthScram(authid=self.authid, password=self.password))


def autobahn_scram(authid: str, password: str):
    return type("AutobahnScramAs", (AutobahnScram,), {"authid": authid, "password": password})


# -- a client computing the spec's formulas -----------------------------------------


def _spec_salted(kdf, password, extra):
    salt = base64.b64decode(extra["salt"])
    if kdf == "pbkdf2":
        return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, extra["iterations"], 32)
    return hash_secret_raw(password.encode(), salt, extra["iterations"], extra["memory"], 1, 32, Type.ID, 19)


class SpecScram:
    """Answers a ``wamp-scram`` CHALLENGE per the spec; ``server_signature`` is what WELCOME must carry."""

    def __init__(self, authid, password):
        self.authid, self.password = authid, password
        self.nonce = base64.b64encode(os.urandom(16)).decode()
        self.server_signature = None

    def answer(self, challenge):
        extra = challenge.extra
        assert challenge.method == "wamp-scram" and extra["nonce"].startswith(self.nonce)
        salted = _spec_salted(extra["kdf"], self.password, extra)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        message = (
            f"n={self.authid},r={self.nonce},r={extra['nonce']},s={extra['salt']},i={extra['iterations']},"
            f"c=biws,r={extra['nonce']}"
        ).encode()
        signature = hmac.new(stored_key, message, hashlib.sha256).digest()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = base64.b64encode(hmac.new(server_key, message, hashlib.sha256).digest()).decode()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return base64.b64encode(proof).decode()

    async def open(self, address, transport="websocket", serializer="json", **extra):
        return await open_session(
            address,
            transport,
            serializer,
            authmethods=["wamp-scram"],
            authid=self.authid,
            authextra={"nonce": self.nonce, **extra},
            answer=self.answer,
        )


async def _refused(client):
    with pytest.raises(RuntimeError, match="aborted"):
        await bounded(client.joined)
    await bounded(client.disconnected)
    return client.close_details.reason, client.close_details.message


# -- the tests ------------------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket", "msgpack"), ("websocket", "cbor")])
@pytest_twisted.ensureDeferred
async def test_autobahn_authscram_joins_and_checks_the_server_signature(transport, serializer):
    """
    Autobahn's AuthScram with the right password joins as its principal
    (authmethod scram); Autobahn verified WELCOME's scram_server_signature,
    or it would have aborted the join itself.
    """
    async with _started() as r:
        address = r.ws_url if transport == "websocket" else r.rs_port
        client = await connect(address, transport, serializer, session_class=autobahn_scram("argon", PASSWORDS["argon"]))
        details = await bounded(client.joined)
        assert (details.authid, details.authrole, details.authmethod) == ("argon", "user", "scram")
        assert details.authextra["scram_server_signature"] == details.authextra["verifier"]
        client.leave()
        await bounded(client.disconnected)


@pytest_twisted.ensureDeferred
async def test_autobahn_authscram_wrong_password_is_refused():
    """A wrong password gets ABORT authentication_failed and client_rejected reason authentication."""
    async with _started() as r:
        client = await connect(r.ws_url, session_class=autobahn_scram("argon", "not-the-password"))
        assert await _refused(client) == FAILED
        rejected = [e for e in r.recorder.events if e.name == "client_rejected"]
        assert [(e.reason, e.authid) for e in rejected] == [("authentication", "argon")]


@pytest.mark.parametrize("authid", ["spec", "pbk"])
@pytest_twisted.ensureDeferred
async def test_spec_client_joins_with_argon2id13_and_pbkdf2(authid):
    """
    A client following the spec (wamp-scram, c=biws, Argon2id raw or
    PBKDF2-SHA256) joins, and WELCOME's verifier is the ServerSignature it
    computed.
    """
    async with _started() as r:
        spec = SpecScram(authid, PASSWORDS[authid])
        client = await spec.open(r.ws_url)
        details = await bounded(client.joined)
        assert (details.authid, details.authmethod) == (authid, "wamp-scram")
        assert client.challenges[0].extra["kdf"] == ("argon2id13" if authid == "spec" else "pbkdf2")
        assert details.authextra["verifier"] == spec.server_signature
        client.leave()
        await bounded(client.disconnected)


@pytest.mark.parametrize("authid", ["spec", "pbk"])
@pytest_twisted.ensureDeferred
async def test_spec_client_wrong_password_is_refused(authid):
    """The spec client with a wrong password is refused with the one authentication failure."""
    async with _started() as r:
        client = await SpecScram(authid, "wrong").open(r.rs_port, "rawsocket")
        assert await _refused(client) == FAILED


@pytest_twisted.ensureDeferred
async def test_unknown_authid_gets_a_stable_decoy_challenge():
    """
    An unknown authid gets a CHALLENGE like a real one (a principal's KDF
    and parameters, a salt of the same length) whose salt is the same on
    every attempt, and is then refused like a wrong password.
    """
    async with _started() as r:
        salts = []
        for _ in range(2):
            client = await SpecScram("nobody", "x").open(r.ws_url)
            assert await _refused(client) == FAILED
            extra = client.challenges[0].extra
            assert extra["kdf"] in ("argon2id-13", "argon2id13", "pbkdf2")
            assert len(base64.b64decode(extra["salt"])) == 16
            salts.append(extra["salt"])
        assert salts[0] == salts[1]


@pytest_twisted.ensureDeferred
async def test_a_replayed_proof_is_refused():
    """
    A proof that was valid for one exchange is refused in the next: the
    router's half of the nonce is new each time, and the proof covers it.
    """
    async with _started() as r:
        spec = SpecScram("pbk", PASSWORDS["pbk"])
        first = await spec.open(r.ws_url)
        await bounded(first.joined)
        replay = spec.answer(first.challenges[0])  # valid for the first exchange only
        first.leave()
        await bounded(first.disconnected)
        again = await open_session(
            r.ws_url, authmethods=["wamp-scram"], authid="pbk", authextra={"nonce": spec.nonce}, answer=lambda c: replay
        )
        assert await _refused(again) == FAILED


@pytest.mark.parametrize(
    "authextra,text",
    [({}, "authextra.nonce"), ({"nonce": "not base64!"}, "authextra.nonce"), ({"nonce": "AAAA", "channel_binding": "tls-unique"}, "channel binding")],
)
@pytest_twisted.ensureDeferred
async def test_bad_hello_is_refused_at_hello(authextra, text):
    """No client nonce, a nonce that is not base64, or channel binding: ABORT at HELLO, no CHALLENGE."""
    async with _started() as r:
        client = await open_session(r.ws_url, authmethods=["scram"], authid="argon", authextra=authextra, answer=lambda c: "x")
        reason, message = await _refused(client)
        assert reason == "wamp.error.authentication_failed" and text in message
        assert client.challenges == []


@pytest_twisted.ensureDeferred
async def test_failed_scram_logins_count_toward_the_limit():
    """After auth_fail_limit_authid wrong passwords even the right one is refused as rate limited, before any CHALLENGE."""
    async with _started() as r:
        for _ in range(3):
            assert await _refused(await SpecScram("pbk", "wrong").open(r.ws_url)) == FAILED
        right = await SpecScram("pbk", PASSWORDS["pbk"]).open(r.ws_url)
        reason, message = await _refused(right)
        assert "too many failed attempts" in message and right.challenges == []
        assert [e.reason for e in r.recorder.events if e.name == "client_rejected"][-1] == "rate_limited"


def test_helper_prints_a_credential_the_spec_formulas_agree_with():
    """The helper's stored and server keys are the spec's, for the salt it printed."""
    line = LINES["pbk"]
    table = config_from_toml(CONFIG).realms[0].principals[2].scram
    assert f'salt = "{table.salt}"' in line
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORDS["pbk"].encode(), base64.b64decode(table.salt), 1000, 32)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert base64.b64decode(table.stored_key) == hashlib.sha256(client_key).digest()
    assert base64.b64decode(table.server_key) == hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    again = derive_scram_credential(PASSWORDS["pbk"], "pbkdf2", iterations=1000, salt=table.salt)
    assert toml_line(again) == line


@pytest.mark.parametrize(
    "scram,key,reason",
    [
        ('{ kdf = "md5", salt = "AAAA", iterations = 1, stored_key = "K", server_key = "K" }', "scram.kdf", "must be one of"),
        ('{ kdf = "argon2id13", salt = "AAAA", iterations = 1, stored_key = "K", server_key = "K" }', "scram.memory", "is required"),
        ('{ kdf = "pbkdf2", salt = "AAAA", iterations = 1, stored_key = "AAAA", server_key = "K" }', "scram.stored_key", "32 bytes"),
        ('{ kdf = "pbkdf2", salt = "AAAA", iterations = 1, stored_key = "K", server_key = "K", pepper = 1 }', "scram.pepper", "unknown key"),
        ('{ kdf = "pbkdf2", salt = "AAAA", iterations = 0, stored_key = "K", server_key = "K" }', "scram.iterations", "1 or more"),
        ('"just a string"', "scram", "must be a table"),
    ],
)
def test_bad_scram_credentials_name_the_key(scram, key, reason):
    """A malformed scram table is a config error naming its key and saying why."""
    good = base64.b64encode(bytes(32)).decode()
    text = f"""
[[realm]]
name = "realm1"
auth = [{{ method = "scram" }}]
[[realm.principal]]
authid = "a"
role = "user"
scram = {scram.replace('"K"', f'"{good}"')}
[[realm.role]]
name = "user"
"""
    error = config_error(text)
    assert error.key == f"realm[0].principal[0].{key}" and reason in error.reason


def test_scram_method_needs_a_scram_principal():
    """Enabling scram with no principal holding a scram credential (and no authenticator) is a config error."""
    error = config_error('[[realm]]\nname = "r"\nauth = [{ method = "scram" }]\n')
    assert error.key == "realm[0].auth[0].method" and "scram credential" in error.reason


DYNAMIC_CREDENTIAL = derive_scram_credential("dyn-pw", "pbkdf2", iterations=1000)


def dynamic_scram(hello, method, signature):
    """A dynamic authenticator (plugged in by dotted path) knowing one SCRAM user, "dyn"."""
    from router.auth import Principal

    if method == "scram" and hello.authid == "dyn":
        return Principal("dyn", "user", scram=DYNAMIC_CREDENTIAL)
    return None


@pytest_twisted.ensureDeferred
async def test_dynamic_authenticator_supplies_a_scram_principal():
    """
    A dynamic authenticator returning a Principal with a ScramCredential: the
    right password joins (authprovider dynamic), a wrong one is refused, and
    an authid it does not know gets the usual failure after a decoy CHALLENGE.
    """
    from router.config import AuthMethodConfig, RealmConfig, RoleConfig

    realm = RealmConfig(
        "realm1", auth=(AuthMethodConfig("scram"),), roles=(RoleConfig("user"),), authenticator="tests.test_auth_scram:dynamic_scram"
    )
    async with Started(realms=(realm,)) as r:
        client = await SpecScram("dyn", "dyn-pw").open(r.ws_url)
        details = await bounded(client.joined)
        assert (details.authid, details.authprovider) == ("dyn", "dynamic")
        client.leave()
        await bounded(client.disconnected)
        assert await _refused(await SpecScram("dyn", "wrong").open(r.ws_url)) == FAILED
        stranger = await SpecScram("stranger", "x").open(r.ws_url)
        assert await _refused(stranger) == FAILED
        assert len(stranger.challenges) == 1
