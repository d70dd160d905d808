"""
Unit tests for router.auth and the realm auth keys of router.config: no
sockets.  Client sides are computed with Autobahn's own helpers.
"""

from __future__ import annotations

import binascii
import json
import string

import pytest
from autobahn.wamp import message, role as wamp_role, types
from autobahn.wamp.auth import AuthWampCra, compute_wcs, derive_key as ab_derive_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from twisted.internet.defer import Deferred, fail, succeed

import router  # noqa: F401  (selects txaio's Twisted flavour)
from router.auth import (
    AUTH_FAILED,
    AUTHENTICATION_FAILED,
    NO_AUTH_METHOD,
    Accept,
    Authorizer,
    Challenge,
    Deny,
    HelloInfo,
    Principal,
    RealmAuthenticator,
    derive_key,
    parse_cookies,
)
from router.config import (
    AuthMethodConfig,
    ConfigError,
    PermissionConfig,
    PrincipalConfig,
    RealmConfig,
    RoleConfig,
    load_config,
)
from router.config.auth import build_realm_auth
from router.events import ConnectionInfo, SessionInfo
from tests.auth_helpers import UNIQUE_ANONYMOUS
from tests.config_helpers import config_error, realm_from_toml

SESSION_ID = 4242


def hello(
    *methods,
    authid=None,
    authrole=None,
    authextra=None,
    transport="websocket",
    headers=None,
    realm="realm1",
):
    headers = dict(headers or {})
    return HelloInfo(
        realm=realm,
        authmethods=methods,
        authid=authid,
        authrole=authrole,
        authextra=authextra or {},
        transport=transport,
        host="127.0.0.1",
        headers=headers,
        cookies=parse_cookies(headers.get("cookie")),
        session_id=SESSION_ID,
    )


def result_of(value):
    """The value of a Deferred that has already fired, or the value itself."""
    if isinstance(value, Deferred):
        box = []
        value.addBoth(box.append)
        assert box, "the Deferred has not fired"
        return box[0]
    return value


def session(authrole, session_id=1, authid="someone"):
    connection = ConnectionInfo(1, "websocket", "tcp4:127.0.0.1:1", "127.0.0.1", "json", "tcp:0", 0.0)
    return SessionInfo(session_id, "realm1", authid, authrole, "ticket", "static", connection, 0.0)


ALL = ("websocket", "rawsocket")


# --- choosing a method -------------------------------------------------------


def test_zero_config_realm_is_anonymous_and_keeps_the_authid():
    authenticator, authorizer = build_realm_auth(RealmConfig("realm1"))
    assert authenticator.start(hello()) == Accept(UNIQUE_ANONYMOUS, "anonymous", "anonymous", "static")
    assert authenticator.start(hello("anonymous", authid="joe")) == Accept(
        "joe", "anonymous", "anonymous", "static"
    )
    assert authorizer.authorize(session("anonymous"), "publish", "com.example.x") is True


def test_no_offered_method_available():
    authenticator, _ = build_realm_auth(RealmConfig("realm1"))
    answer = authenticator.start(hello("ticket", "wampcra", authid="alice"))
    assert isinstance(answer, Deny)
    assert answer.uri == NO_AUTH_METHOD == "wamp.error.no_auth_method"
    assert "'ticket', 'wampcra'" in answer.message and "realm1" in answer.message


def test_method_limited_to_a_transport():
    authenticator = RealmAuthenticator(
        "realm1",
        {"ticket": ["websocket"], "anonymous": ["rawsocket"]},
        [Principal("alice", "user", ticket="t")],
    )
    assert authenticator.start(hello("ticket", authid="alice")).method == "ticket"
    answer = authenticator.start(hello("ticket", authid="alice", transport="rawsocket"))
    assert answer.uri == NO_AUTH_METHOD and "rawsocket" in answer.message
    assert authenticator.start(hello("anonymous")).uri == NO_AUTH_METHOD
    assert isinstance(authenticator.start(hello("anonymous", transport="rawsocket")), Accept)


def test_client_order_wins_and_unknown_methods_are_skipped():
    authenticator = RealmAuthenticator(
        "realm1", {"anonymous": ALL, "ticket": ALL}, [Principal("alice", "user", ticket="t")]
    )
    assert isinstance(authenticator.start(hello("scram", "ticket", "anonymous", authid="alice")), Challenge)
    assert isinstance(authenticator.start(hello("anonymous", "ticket", authid="alice")), Accept)


def test_anonymous_role_and_authid_in_a_realm_with_principals():
    realm = realm_from_toml(
        """
        [[realm]]
        name = "realm1"
        auth = [{ method = "ticket" }, { method = "anonymous", role = "guest" }]
        [[realm.principal]]
        authid = "alice"
        role = "user"
        ticket = "t"
        [[realm.role]]
        name = "user"
        [[realm.role]]
        name = "guest"
        """
    )
    authenticator, _ = build_realm_auth(realm)
    # An anonymous client cannot take alice's name.
    assert authenticator.start(hello("anonymous", authid="alice")) == Accept(
        UNIQUE_ANONYMOUS, "guest", "anonymous", "static"
    )


# --- ticket ----------------------------------------------------------------


def ticket_authenticator(**kwargs):
    return RealmAuthenticator(
        "realm1",
        {"ticket": ALL},
        [Principal("alice", "user", ticket="s3cret-ticket"), Principal("bob", "admin", ticket="other")],
        **kwargs,
    )


def test_ticket_happy_path():
    authenticator = ticket_authenticator()
    challenge = authenticator.start(hello("ticket", authid="alice"))
    assert isinstance(challenge, Challenge)
    assert challenge.method == "ticket" and dict(challenge.extra) == {}
    assert authenticator.verify(challenge, "s3cret-ticket", {}) == Accept(
        "alice", "user", "ticket", "static"
    )


def test_ticket_same_deny_for_wrong_ticket_unknown_user_and_no_authid():
    authenticator = ticket_authenticator()
    answers = []
    for authid, ticket in [
        ("alice", "wrong"),
        ("alice", "other"),  # bob's ticket
        ("mallory", "s3cret-ticket"),
        (None, "s3cret-ticket"),
        ("alice", None),
        ("alice", ""),
        ("alice", "s3cret-ticket "),
    ]:
        challenge = authenticator.start(hello("ticket", authid=authid))
        assert isinstance(challenge, Challenge)  # no difference before AUTHENTICATE
        assert dict(challenge.extra) == {}
        answers.append(authenticator.verify(challenge, ticket, {}))
    assert set(answers) == {Deny("authentication failed", "wamp.error.authentication_failed")}
    assert AUTH_FAILED.uri == AUTHENTICATION_FAILED


def test_challenge_from_another_authenticator_is_refused():
    first, second = ticket_authenticator(), ticket_authenticator()
    challenge = first.start(hello("ticket", authid="alice"))
    assert second.verify(challenge, "s3cret-ticket", {}) == AUTH_FAILED
    forged = Challenge("ticket", {}, state=object())
    assert first.verify(forged, "s3cret-ticket", {}) == AUTH_FAILED


def test_a_challenge_answers_one_authenticate():
    authenticator = ticket_authenticator()
    challenge = authenticator.start(hello("ticket", authid="alice"))
    assert authenticator.verify(challenge, "wrong", {}) == AUTH_FAILED
    assert authenticator.verify(challenge, "s3cret-ticket", {}) == AUTH_FAILED


# --- wampcra ---------------------------------------------------------------


def cra_authenticator(**kwargs):
    salted_key = derive_key("pa55word", "NaCl", 100, 16)
    return RealmAuthenticator(
        "realm1",
        {"wampcra": ALL},
        [
            Principal("peter", "user", secret="secret123"),
            Principal("sally", "admin", secret=salted_key, salt="NaCl", iterations=100, keylen=16),
        ],
        **kwargs,
    )


def sign_like_autobahn(challenge, authid, secret):
    """What Autobahn's wampcra client answers to our CHALLENGE."""
    client = AuthWampCra(authid=authid, secret=secret)
    return client.on_challenge(None, types.Challenge(challenge.method, dict(challenge.extra)))


def test_wampcra_happy_path_and_challenge_contents():
    authenticator = cra_authenticator(clock=lambda: 1403455001.643)
    challenge = authenticator.start(hello("wampcra", authid="peter"))
    assert challenge.method == "wampcra"
    assert set(challenge.extra) == {"challenge"}
    text = challenge.extra["challenge"]
    fields = json.loads(text)
    assert set(fields) == {"authid", "authrole", "authmethod", "authprovider", "nonce", "timestamp", "session"}
    assert fields["authid"] == "peter"
    assert fields["authrole"] == "user"
    assert fields["authmethod"] == "wampcra"
    assert fields["authprovider"] == "static"
    assert fields["session"] == SESSION_ID
    assert fields["timestamp"] == "2014-06-22T16:36:41.643Z"
    assert len(fields["nonce"]) >= 16
    signature = compute_wcs(b"secret123", text.encode()).decode()
    assert authenticator.verify(challenge, signature, {}) == Accept("peter", "user", "wampcra", "static")
    # Autobahn's client class agrees.
    challenge = authenticator.start(hello("wampcra", authid="peter"))
    assert authenticator.verify(challenge, sign_like_autobahn(challenge, "peter", "secret123"), {}).authid == "peter"


def test_wampcra_nonce_differs_per_challenge():
    authenticator = cra_authenticator()
    first = json.loads(authenticator.start(hello("wampcra", authid="peter")).extra["challenge"])
    second = json.loads(authenticator.start(hello("wampcra", authid="peter")).extra["challenge"])
    assert first["nonce"] != second["nonce"]


def test_wampcra_decoys_imitate_every_kind_of_principal():
    """
    In a realm with a salted and an unsalted principal (of different roles),
    unknown authids get both kinds of challenge, each always the same one,
    so neither the salt nor the role in a challenge tells a known authid.
    """
    authenticator = cra_authenticator()
    kinds = {}
    for index in range(40):
        authid = f"nobody{index}"
        first = authenticator.start(hello("wampcra", authid=authid))
        second = authenticator.start(hello("wampcra", authid=authid))
        role = json.loads(first.extra["challenge"])["authrole"]
        assert json.loads(second.extra["challenge"])["authrole"] == role
        assert first.extra.get("salt") == second.extra.get("salt")
        kind = (role, first.extra.get("iterations"), first.extra.get("keylen"), "salt" in first.extra)
        kinds.setdefault(kind, 0)
        kinds[kind] += 1
    assert set(kinds) == {("user", None, None, False), ("admin", 100, 16, True)}


def test_wampcra_decoy_salts_have_the_shape_of_the_real_ones():
    """
    A salted decoy's salt has the length and alphabet of the salt of the
    principal it imitates (here: URL-safe text, lower-case hex, padded
    base64), with that principal's iterations and keylen, and never changes
    for one authid; unsalted decoys still appear.
    """
    salts = {"pepper-and-salt": (100, 16), "9f86d081884c7d65": (2000, 32), "c2FsdHk=": (500, 24)}
    principals = [Principal("peter", "user", secret="secret123")] + [
        Principal(f"salty{index}", "user", secret="k", salt=salt, iterations=iterations, keylen=keylen)
        for index, (salt, (iterations, keylen)) in enumerate(salts.items())
    ]
    authenticator = RealmAuthenticator("realm1", {"wampcra": ALL}, principals)
    alphabets = {
        "pepper-and-salt": set(string.ascii_letters + string.digits + "-_"),
        "9f86d081884c7d65": set("0123456789abcdef"),
        "c2FsdHk=": set(string.ascii_letters + string.digits),
    }
    seen = set()
    for index in range(80):
        authid = f"nobody{index}"
        extra = dict(authenticator.start(hello("wampcra", authid=authid)).extra)
        extra.pop("challenge")
        again = dict(authenticator.start(hello("wampcra", authid=authid)).extra)
        again.pop("challenge")
        assert extra == again, authid
        if "salt" not in extra:
            seen.add(None)
            continue
        decoy = extra["salt"]
        [model] = [
            real for real, shape in salts.items()
            if shape == (extra["iterations"], extra["keylen"]) and len(real) == len(decoy)
        ]
        body = model.rstrip("=")
        assert decoy.endswith(model[len(body):]) and set(decoy[: len(body)]) <= alphabets[model], (decoy, model)
        assert decoy not in salts
        seen.add(model)
    assert seen == {None, *salts}


def test_wampcra_salted():
    # Our derive_key is the one clients use.
    assert derive_key("pa55word", "NaCl", 100, 16) == ab_derive_key("pa55word", "NaCl", 100, 16).decode()
    authenticator = cra_authenticator()
    challenge = authenticator.start(hello("wampcra", authid="sally"))
    assert challenge.extra["salt"] == "NaCl"
    assert challenge.extra["iterations"] == 100
    assert challenge.extra["keylen"] == 16
    assert json.loads(challenge.extra["challenge"])["authrole"] == "admin"
    signature = sign_like_autobahn(challenge, "sally", "pa55word")
    assert authenticator.verify(challenge, signature, {}) == Accept("sally", "admin", "wampcra", "static")
    challenge = authenticator.start(hello("wampcra", authid="sally"))
    assert authenticator.verify(challenge, sign_like_autobahn(challenge, "sally", "wrong"), {}) == AUTH_FAILED


def test_wampcra_same_deny_for_wrong_secret_and_unknown_user():
    authenticator = cra_authenticator()
    real = authenticator.start(hello("wampcra", authid="sally"))
    decoy = authenticator.start(hello("wampcra", authid="nobody"))
    peter_challenge = authenticator.start(hello("wampcra", authid="peter"))
    # The decoy challenge has the shape of a real one: salted like sally's, or plain like peter's...
    assert set(json.loads(decoy.extra["challenge"])) == set(json.loads(real.extra["challenge"]))
    assert set(decoy.extra) in (set(real.extra), set(peter_challenge.extra))
    # ...and it does not change between attempts, as a real one would not.
    again = authenticator.start(hello("wampcra", authid="nobody"))
    assert {k: v for k, v in again.extra.items() if k != "challenge"} == {
        k: v for k, v in decoy.extra.items() if k != "challenge"
    }
    assert json.loads(again.extra["challenge"])["authrole"] == json.loads(decoy.extra["challenge"])["authrole"]
    wrong_secret = authenticator.verify(real, sign_like_autobahn(real, "sally", "guess"), {})
    unknown_user = authenticator.verify(decoy, sign_like_autobahn(decoy, "nobody", "guess"), {})
    peter = authenticator.start(hello("wampcra", authid="peter"))
    wrong_type = authenticator.verify(peter, 12345, {})
    assert wrong_secret == unknown_user == wrong_type == AUTH_FAILED


def test_wampcra_signature_for_another_session_fails():
    authenticator = cra_authenticator()
    challenge = authenticator.start(hello("wampcra", authid="peter"))
    other = authenticator.start(hello("wampcra", authid="peter"))
    signature = compute_wcs(b"secret123", other.extra["challenge"].encode()).decode()
    assert authenticator.verify(challenge, signature, {}) == AUTH_FAILED


def test_wampcra_needs_an_authid():
    answer = cra_authenticator().start(hello("wampcra"))
    assert isinstance(answer, Deny) and answer.uri == AUTHENTICATION_FAILED


# --- cryptosign --------------------------------------------------------------


def raw_public(private):
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


ALICE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
BOB_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
EVE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))


def cryptosign_authenticator(**kwargs):
    return RealmAuthenticator(
        "realm1",
        {"cryptosign": ALL},
        [
            Principal("alice", "user", pubkeys=(raw_public(ALICE_KEY).upper(),)),
            Principal("bob", "admin", pubkeys=(raw_public(BOB_KEY),)),
        ],
        **kwargs,
    )


def cryptosign_hello(key, authid=None):
    return hello("cryptosign", authid=authid, authextra={"pubkey": raw_public(key)})


def test_cryptosign_with_autobahn_key_96_and_64_byte_signatures():
    pytest.importorskip("nacl")
    from autobahn.wamp.cryptosign import CryptosignKey

    client = CryptosignKey.from_bytes(bytes(range(32)))  # alice's private key
    assert client.public_key() == raw_public(ALICE_KEY)
    authenticator = cryptosign_authenticator()
    for cut in (None, 128):
        challenge = authenticator.start(hello("cryptosign", authextra={"pubkey": client.public_key()}))
        assert challenge.method == "cryptosign"
        assert len(challenge.extra["challenge"]) == 64
        signature = result_of(client.sign_challenge(types.Challenge("cryptosign", dict(challenge.extra))))
        assert len(signature) == 192  # Autobahn sends signature + challenge
        if cut:
            signature = signature[:cut]
        assert authenticator.verify(challenge, signature, {}) == Accept(
            "alice", "user", "cryptosign", "static"
        )


def test_cryptosign_happy_path_with_authid():
    authenticator = cryptosign_authenticator()
    challenge = authenticator.start(cryptosign_hello(BOB_KEY, authid="bob"))
    raw = binascii.a2b_hex(challenge.extra["challenge"])
    signature = BOB_KEY.sign(raw).hex()
    assert authenticator.verify(challenge, signature, {}) == Accept("bob", "admin", "cryptosign", "static")


def test_cryptosign_failures_are_all_the_same():
    authenticator = cryptosign_authenticator()

    def attempt(hello_key, sign_key, authid=None, mangle=lambda sig, raw: sig):
        challenge = authenticator.start(cryptosign_hello(hello_key, authid))
        assert isinstance(challenge, Challenge)
        raw = binascii.a2b_hex(challenge.extra["challenge"])
        signature = sign_key.sign(raw).hex() + raw.hex()
        return authenticator.verify(challenge, mangle(signature, raw), {})

    answers = [
        attempt(ALICE_KEY, EVE_KEY),  # signed with another key
        attempt(EVE_KEY, EVE_KEY),  # unknown key, valid signature
        attempt(ALICE_KEY, ALICE_KEY, authid="bob"),  # alice's key is not bob's
        attempt(ALICE_KEY, ALICE_KEY, mangle=lambda sig, raw: sig[:128] + "00" * 32),  # wrong appended challenge
        attempt(ALICE_KEY, ALICE_KEY, mangle=lambda sig, raw: sig[:127] + ("0" if sig[127] != "0" else "1")),
        attempt(ALICE_KEY, ALICE_KEY, mangle=lambda sig, raw: sig[:100]),
        attempt(ALICE_KEY, ALICE_KEY, mangle=lambda sig, raw: "zz" * 96),
        attempt(ALICE_KEY, ALICE_KEY, mangle=lambda sig, raw: None),
    ]
    assert set(answers) == {AUTH_FAILED}


def test_cryptosign_signature_replayed_on_a_new_challenge_fails():
    authenticator = cryptosign_authenticator()
    first = authenticator.start(cryptosign_hello(ALICE_KEY))
    signature = ALICE_KEY.sign(binascii.a2b_hex(first.extra["challenge"])).hex()
    second = authenticator.start(cryptosign_hello(ALICE_KEY))
    assert first.extra["challenge"] != second.extra["challenge"]
    assert authenticator.verify(second, signature, {}) == AUTH_FAILED


@pytest.mark.parametrize("authextra", [{}, {"pubkey": "abcd"}, {"pubkey": "zz" * 32}, {"pubkey": 7}])
def test_cryptosign_needs_a_pubkey_in_hello(authextra):
    answer = cryptosign_authenticator().start(hello("cryptosign", authextra=authextra))
    assert isinstance(answer, Deny)
    assert answer.uri == AUTHENTICATION_FAILED
    assert "pubkey" in answer.message


# --- dynamic authenticator ---------------------------------------------------


class RecordingAuthenticator:
    """A dynamic authenticator that records each call and answers with C{answer}."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    def __call__(self, hello_info, method, signature):
        self.calls.append((hello_info, method, signature))
        answer = self.answer
        return answer(hello_info, method, signature) if callable(answer) else answer


def test_dynamic_ticket_sync_and_static_principal_first():
    check = RecordingAuthenticator(lambda h, m, s: Accept(f"jwt:{s}", "user", "ticket") if s == "good" else Deny("bad token"))
    authenticator = RealmAuthenticator(
        "realm1", {"ticket": ALL}, [Principal("admin", "admin", ticket="root")], check
    )
    challenge = authenticator.start(hello("ticket"))
    assert check.calls == []  # asked only once the ticket is there
    assert authenticator.verify(challenge, "good", {}) == Accept("jwt:good", "user", "ticket", "dynamic")
    info, method, signature = check.calls[0]
    assert (method, signature, info.session_id) == ("ticket", "good", SESSION_ID)
    assert authenticator.verify(authenticator.start(hello("ticket")), "nope", {}) == Deny("bad token")
    # A static principal's ticket is checked statically.
    challenge = authenticator.start(hello("ticket", authid="admin"))
    assert authenticator.verify(challenge, "root", {}).authprovider == "static"
    assert authenticator.verify(authenticator.start(hello("ticket", authid="admin")), "good", {}) == AUTH_FAILED
    assert len(check.calls) == 2


def test_dynamic_ticket_async_and_deferred():
    async def check(hello_info, method, signature):
        return Accept("carol", "user", "ticket", "jwt")

    authenticator = RealmAuthenticator("realm1", {"ticket": ALL}, dynamic=check)
    answer = authenticator.verify(authenticator.start(hello("ticket")), "x", {})
    assert isinstance(answer, Deferred)
    assert result_of(answer) == Accept("carol", "user", "ticket", "jwt")

    authenticator = RealmAuthenticator("realm1", {"ticket": ALL}, dynamic=lambda *a: succeed(Deny("no", "x.no")))
    assert result_of(authenticator.verify(authenticator.start(hello("ticket")), "x", {})) == Deny("no", "x.no")


@pytest.mark.parametrize(
    "dynamic",
    [
        lambda *a: 1 / 0,
        lambda *a: fail(RuntimeError("db down")),
        lambda *a: None,
        lambda *a: True,
        lambda *a: Accept("", "user", "ticket"),
        lambda *a: Accept("x", None, "ticket"),
        lambda *a: Deny(None),
    ],
)
def test_dynamic_ticket_failures_deny(dynamic):
    authenticator = RealmAuthenticator("realm1", {"ticket": ALL}, dynamic=dynamic)
    assert result_of(authenticator.verify(authenticator.start(hello("ticket")), "x", {})) == AUTH_FAILED


def test_dynamic_async_raising_denies():
    async def check(*args):
        raise ValueError("boom")

    authenticator = RealmAuthenticator("realm1", {"ticket": ALL}, dynamic=check)
    assert result_of(authenticator.verify(authenticator.start(hello("ticket")), "x", {})) == AUTH_FAILED


def test_dynamic_anonymous_reads_cookies_or_falls_back():
    def check(hello_info, method, signature):
        assert method == "anonymous" and signature is None
        token = hello_info.cookies.get("sid")
        if token == "valid":
            return Accept("web-user", "user", "cookie", "webapp")
        if token is not None:
            return Deny("session expired")
        return None

    authenticator = RealmAuthenticator("realm1", {"anonymous": ALL}, dynamic=check, anonymous_role="guest")
    cookie = {"cookie": 'theme=dark; sid="valid"'}
    assert authenticator.start(hello(headers=cookie)) == Accept("web-user", "user", "cookie", "webapp")
    assert authenticator.start(hello(headers={"cookie": "sid=old"})) == Deny("session expired")
    assert authenticator.start(hello()) == Accept(UNIQUE_ANONYMOUS, "guest", "anonymous", "static")


def test_dynamic_wampcra_principal_lookup():
    users = {"dora": Principal("dora", "user", secret="dora-secret")}
    check = RecordingAuthenticator(lambda h, m, s: users.get(h.authid))
    authenticator = RealmAuthenticator("realm1", {"wampcra": ALL}, dynamic=check)
    challenge = authenticator.start(hello("wampcra", authid="dora"))
    assert json.loads(challenge.extra["challenge"])["authprovider"] == "dynamic"
    signature = sign_like_autobahn(challenge, "dora", "dora-secret")
    assert authenticator.verify(challenge, signature, {}) == Accept("dora", "user", "wampcra", "dynamic")
    # Unknown: a decoy challenge, then the usual refusal.
    challenge = authenticator.start(hello("wampcra", authid="zed"))
    assert isinstance(challenge, Challenge)
    assert authenticator.verify(challenge, sign_like_autobahn(challenge, "zed", "x"), {}) == AUTH_FAILED
    # A principal for another authid is not accepted.
    check.answer = Principal("other", "user", secret="s")
    assert authenticator.start(hello("wampcra", authid="dora")) == AUTH_FAILED


def test_dynamic_cryptosign_principal_lookup():
    key = raw_public(EVE_KEY)
    check = RecordingAuthenticator(lambda h, m, s: Principal("eve", "user", pubkeys=(key,)))
    authenticator = RealmAuthenticator("realm1", {"cryptosign": ALL}, dynamic=check)
    challenge = authenticator.start(cryptosign_hello(EVE_KEY))
    signature = EVE_KEY.sign(binascii.a2b_hex(challenge.extra["challenge"])).hex()
    assert authenticator.verify(challenge, signature, {}) == Accept("eve", "user", "cryptosign", "dynamic")
    check.answer = Principal("eve", "user", pubkeys=(raw_public(BOB_KEY),))
    assert authenticator.start(cryptosign_hello(EVE_KEY)) == AUTH_FAILED


# --- HelloInfo ---------------------------------------------------------------


def test_hello_info_from_hello():
    msg = message.Hello(
        "realm1",
        {"subscriber": wamp_role.RoleSubscriberFeatures()},
        authmethods=["cryptosign", "ticket"],
        authid="alice",
        authrole="user",
        authextra={"pubkey": "ab" * 32},
    )
    connection = ConnectionInfo(
        1, "websocket", "tcp4:1.2.3.4:5", "1.2.3.4", "json", "tcp:0", 0.0,
        headers={"cookie": "a=1; b = 2; junk; a=3", "user-agent": "x"},
    )
    info = HelloInfo.from_hello(msg, connection, 77)
    assert info.authmethods == ("cryptosign", "ticket")
    assert (info.authid, info.authrole, info.session_id, info.host) == ("alice", "user", 77, "1.2.3.4")
    assert info.authextra["pubkey"] == "ab" * 32
    assert info.cookies == {"a": "1", "b": "2"}
    assert info.headers["user-agent"] == "x"
    raw = ConnectionInfo(2, "rawsocket", "tcp4:1.2.3.4:6", "1.2.3.4", "cbor", "tcp:0", 0.0)
    info = HelloInfo.from_hello(message.Hello("realm1", {"caller": wamp_role.RoleCallerFeatures()}), raw, 78)
    assert info.authmethods == ("anonymous",)
    assert info.transport == "rawsocket" and info.headers == {} and info.cookies == {}
    with pytest.raises(TypeError):
        info.headers["x"] = "y"


# --- authorization -------------------------------------------------------------


def role(name, *permissions, disclose=False):
    return RoleConfig(name, tuple(permissions), disclose)


def perm(uri, match="exact", **actions):
    return PermissionConfig(uri, match, **actions)


def test_precedence_exact_then_longest_prefix_then_wildcard():
    authorizer = Authorizer(
        [
            role(
                "user",
                perm("com.app.", "prefix", call=True, subscribe=True),
                perm("com.app.admin.", "prefix", call=False),
                perm("com.app.admin.status", call=True),
                perm("com..status", "wildcard", subscribe=False, call=True),
                perm("org..x", "wildcard", publish=True),
            )
        ]
    )
    user = session("user")
    assert authorizer.authorize(user, "call", "com.app.thing") is True
    assert authorizer.authorize(user, "call", "com.app.admin.reset") is False  # longer prefix wins
    assert authorizer.authorize(user, "call", "com.app.admin.status") is True  # exact wins
    assert authorizer.authorize(user, "subscribe", "com.app.admin.status") is False  # exact decides all actions
    assert authorizer.authorize(user, "subscribe", "com.app.status") is True  # prefix beats wildcard
    assert authorizer.authorize(user, "call", "com.other.status") is True  # only the wildcard matches
    assert authorizer.authorize(user, "subscribe", "com.other.status") is False
    assert authorizer.authorize(user, "publish", "org.y.x") is True
    assert authorizer.authorize(user, "publish", "org.y.x.z") is False  # wildcards match whole URIs
    assert authorizer.authorize(user, "publish", "org.x") is False


def test_prefix_is_a_string_prefix():
    authorizer = Authorizer([role("user", perm("news.", "prefix", subscribe=True))])
    assert authorizer.authorize(session("user"), "subscribe", "news.sport") is True
    assert authorizer.authorize(session("user"), "subscribe", "news") is False
    assert authorizer.authorize(session("user"), "subscribe", "newsletter.x") is False


def test_wildcard_specificity():
    authorizer = Authorizer(
        [
            role(
                "user",
                perm("a...", "wildcard", call=False),
                perm("a..c.", "wildcard", call=True),  # 2 concrete components
                perm("a.b..", "wildcard", call=False),  # 2 concrete, concrete earlier: wins ties
                perm("a.b.c.", "wildcard", subscribe=True),  # 3 concrete
            )
        ]
    )
    user = session("user")
    assert authorizer.authorize(user, "call", "a.x.y.z") is False
    assert authorizer.authorize(user, "call", "a.x.c.z") is True
    assert authorizer.authorize(user, "call", "a.b.y.z") is False
    assert authorizer.authorize(user, "call", "a.b.c.z") is False  # a.b.c. is most specific: no call
    assert authorizer.authorize(user, "subscribe", "a.b.c.z") is True


def test_default_deny():
    authorizer = Authorizer([role("user", perm("com.app.", "prefix", call=True))])
    assert authorizer.authorize(session("user"), "call", "org.app.x") is False
    assert authorizer.authorize(session("user"), "register", "com.app.x") is False
    assert authorizer.authorize(session("nobody-role"), "call", "com.app.x") is False
    # With roles configured, anonymous is not implied open any more.
    assert authorizer.authorize(session("anonymous"), "call", "com.app.x") is False


def test_open_anonymous_only_without_roles():
    open_realm = Authorizer()
    assert open_realm.open_anonymous is True
    for action in ("call", "register", "publish", "subscribe"):
        assert open_realm.authorize(session("anonymous"), action, "com.x") is True
        assert open_realm.authorize(session("anonymous"), action, "wamp.session.list") is False
    assert open_realm.authorize(session("user"), "call", "com.x") is False
    assert Authorizer([role("other")]).authorize(session("anonymous"), "call", "com.x") is False
    assert Authorizer(dynamic=lambda *a: False).open_anonymous is False


def test_wamp_uris_reserved():
    authorizer = Authorizer(
        [
            role("user", perm("", "prefix", call=True, subscribe=True, register=True, publish=True)),
            role(
                "admin",
                perm("", "prefix", register=True, publish=True),
                perm("wamp.session.", "prefix", call=True),
                perm("wamp..on_create", "wildcard", subscribe=True),
            ),
        ],
        dynamic=lambda *a: True,
    )
    user, admin = session("user"), session("admin")
    # A catch-all does not open wamp.* ...
    assert authorizer.authorize(user, "call", "com.x") is True
    assert authorizer.authorize(user, "call", "wamp.session.list") is True  # ... the dynamic authorizer decided
    strict = Authorizer([role("user", perm("", "prefix", call=True, subscribe=True))])
    assert strict.authorize(user, "call", "wamp.session.list") is False
    assert strict.authorize(user, "subscribe", "wamp.session.on_join") is False
    # Explicit wamp rules allow call and subscribe.
    assert authorizer.authorize(admin, "call", "wamp.session.count") is True
    assert authorizer.authorize(admin, "subscribe", "wamp.registration.on_create") is True
    # The longer match decides: wamp.session. allows call only.
    assert authorizer.authorize(admin, "subscribe", "wamp.session.on_create") is False
    # Nobody, not even a dynamic authorizer saying yes, registers or publishes wamp.*.
    for who in (user, admin, session("x")):
        assert authorizer.authorize(who, "register", "wamp.session.count") is False
        assert authorizer.authorize(who, "publish", "wamp.session.on_join") is False
        assert authorizer.authorize(who, "publish", "wamp") is False
    assert authorizer.authorize(admin, "publish", "wampx.y") is True  # only the wamp component is reserved


def test_unknown_action_is_a_programming_error():
    with pytest.raises(ValueError):
        Authorizer().authorize(session("anonymous"), "delete", "com.x")


def test_disclose():
    authorizer = Authorizer(
        [
            role(
                "user",
                perm("com.app.", "prefix", call=True, publish=True),
                PermissionConfig("com.app.secret", call=True, disclose=True),
                disclose=False,
            ),
            role("audited", perm("com.", "prefix", call=True, disclose=False), disclose=True),
        ]
    )
    user, audited = session("user"), session("audited")
    assert authorizer.disclose(user, "call") is False
    assert authorizer.disclose(user, "call", "com.app.x") is False
    assert authorizer.disclose(user, "call", "com.app.secret") is True
    assert authorizer.disclose(user, "subscribe", "com.app.secret") is False
    assert authorizer.disclose(audited, "publish") is True
    assert authorizer.disclose(audited, "publish", "org.x") is True  # no permission: the role's
    assert authorizer.disclose(audited, "call", "com.x") is False  # the permission's
    assert authorizer.disclose(session("anonymous"), "call") is False


# --- dynamic authorizer ------------------------------------------------------


def test_dynamic_authorizer_decides_what_no_permission_matches():
    calls = []

    def may(session_info, action, uri):
        calls.append((session_info.session_id, action, uri))
        return uri.startswith("ok.")

    authorizer = Authorizer([role("user", perm("static.", "prefix", call=True))], may)
    user = session("user")
    assert authorizer.authorize(user, "call", "static.x") is True
    assert authorizer.authorize(user, "subscribe", "static.x") is False  # the static rule decided
    assert calls == []
    assert authorizer.authorize(user, "call", "ok.x") is True
    assert authorizer.authorize(user, "call", "no.x") is False
    assert calls == [(1, "call", "ok.x"), (1, "call", "no.x")]


@pytest.mark.parametrize(
    "may",
    [
        lambda *a: 1 / 0,
        lambda *a: fail(RuntimeError("down")),
        lambda *a: None,
        lambda *a: 1,
        lambda *a: "yes",
    ],
)
def test_dynamic_authorizer_fails_closed(may):
    authorizer = Authorizer(dynamic=may, cache_size=10)
    assert result_of(authorizer.authorize(session("user"), "call", "com.x")) is False


def test_dynamic_authorizer_async():
    async def may(session_info, action, uri):
        return action == "subscribe"

    async def broken(session_info, action, uri):
        raise KeyError(uri)

    authorizer = Authorizer(dynamic=may)
    answer = authorizer.authorize(session("user"), "subscribe", "com.x")
    assert isinstance(answer, Deferred) and result_of(answer) is True
    assert result_of(authorizer.authorize(session("user"), "call", "com.x")) is False
    assert result_of(Authorizer(dynamic=broken).authorize(session("user"), "subscribe", "com.x")) is False


def test_dynamic_authorizer_cache():
    calls = []

    def may(session_info, action, uri):
        calls.append((session_info.session_id, action, uri))
        if uri == "boom":
            raise RuntimeError("flaky")
        return True

    authorizer = Authorizer(dynamic=may, cache_size=3)
    one, two = session("user", 1), session("user", 2)
    assert authorizer.authorize(one, "call", "a") is True
    assert authorizer.authorize(one, "call", "a") is True
    assert authorizer.authorize(two, "call", "a") is True  # another session: asked again
    assert authorizer.authorize(one, "subscribe", "a") is True  # another action: asked again
    assert len(calls) == 3
    # Bounded: touching one/call/a leaves two/call/a least recently used, so
    # a fourth entry pushes it out.
    authorizer.authorize(one, "call", "a")
    authorizer.authorize(one, "call", "b")
    assert len(authorizer._cache) == 3
    authorizer.authorize(one, "call", "a")
    assert len(calls) == 4
    authorizer.authorize(two, "call", "a")
    assert len(calls) == 5
    # Failures are not cached.
    assert authorizer.authorize(one, "call", "boom") is False
    assert authorizer.authorize(one, "call", "boom") is False
    assert len(calls) == 7
    # A session that leaves is forgotten.
    authorizer.forget(1)
    assert all(key[0] != 1 for key in authorizer._cache)
    authorizer.authorize(one, "call", "a")
    assert len(calls) == 8


def test_dynamic_authorizer_without_cache_asks_every_time():
    calls = []
    authorizer = Authorizer(dynamic=lambda *a: calls.append(a) or True)
    authorizer.authorize(session("user"), "call", "a")
    authorizer.authorize(session("user"), "call", "a")
    assert len(calls) == 2


# --- config --------------------------------------------------------------------

FULL_REALM = """
[[realm]]
name = "realm1"
auth = [
    { method = "ticket", transports = ["websocket", "rawsocket"] },
    { method = "wampcra" },
    { method = "cryptosign", transports = ["rawsocket"] },
    { method = "anonymous", role = "guest" },
]
authorizer_cache = 0

[[realm.principal]]
authid = "alice"
role = "user"
ticket = "alice-ticket"

[[realm.principal]]
authid = "peter"
role = "user"
secret = "secret123"

[[realm.principal]]
authid = "sally"
role = "admin"
secret = "%(salted)s"
salt = "NaCl"
iterations = 100
keylen = 16

[[realm.principal]]
authid = "carl"
role = "admin"
pubkey = "%(carl)s"

[[realm.role]]
name = "user"
permissions = [ { uri = "news.", match = "prefix", subscribe = true } ]

[[realm.role]]
name = "admin"
disclose = true
permissions = [
    { uri = "", match = "prefix", call = true, register = true, publish = true, subscribe = true },
    { uri = "wamp.session.", match = "prefix", call = true },
]

[[realm.role]]
name = "guest"
"""


def full_realm_text():
    return FULL_REALM % {"salted": derive_key("pa55word", "NaCl", 100, 16), "carl": raw_public(BOB_KEY)}


def test_full_realm_config_end_to_end():
    realm = realm_from_toml(full_realm_text())
    assert [entry.method for entry in realm.auth] == ["ticket", "wampcra", "cryptosign", "anonymous"]
    assert realm.auth[2].transports == ("rawsocket",)
    assert realm.principals[2].iterations == 100
    assert realm.principals[0].ticket == "alice-ticket"
    assert "alice-ticket" not in repr(realm)  # secrets stay out of logs
    assert hash(realm) == hash(realm_from_toml(full_realm_text()))
    authenticator, authorizer = build_realm_auth(realm)

    challenge = authenticator.start(hello("ticket", authid="alice"))
    accept = authenticator.verify(challenge, "alice-ticket", {})
    assert accept == Accept("alice", "user", "ticket", "static")
    challenge = authenticator.start(hello("wampcra", authid="sally"))
    assert authenticator.verify(challenge, sign_like_autobahn(challenge, "sally", "pa55word"), {}).authrole == "admin"
    assert authenticator.start(cryptosign_hello(BOB_KEY)).uri == NO_AUTH_METHOD  # websocket: not offered
    challenge = authenticator.start(
        hello("cryptosign", authextra={"pubkey": raw_public(BOB_KEY)}, transport="rawsocket")
    )
    signature = BOB_KEY.sign(binascii.a2b_hex(challenge.extra["challenge"])).hex()
    assert authenticator.verify(challenge, signature, {}).authid == "carl"
    assert authenticator.start(hello("anonymous", authid="x")) == Accept(UNIQUE_ANONYMOUS, "guest", "anonymous", "static")

    user, admin, guest = session("user"), session("admin"), session("guest")
    assert authorizer.authorize(user, "subscribe", "news.sport") is True
    assert authorizer.authorize(user, "publish", "news.sport") is False
    assert authorizer.authorize(user, "call", "com.x") is False
    assert authorizer.authorize(guest, "subscribe", "news.sport") is False
    assert authorizer.authorize(admin, "register", "com.x") is True
    assert authorizer.authorize(admin, "call", "wamp.session.count") is True
    assert authorizer.authorize(admin, "subscribe", "wamp.session.on_join") is False
    assert authorizer.disclose(admin, "publish", "com.x") is True


def test_secrets_from_env_and_file(tmp_path, monkeypatch):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "peter").write_text("file-secret\n", encoding="utf-8")
    (tmp_path / "bob.ticket").write_text("windows-ticket\r\n", encoding="utf-8")
    monkeypatch.setenv("WAMPD_TEST_TICKET", "env-ticket")
    config = tmp_path / "wampd.toml"
    config.write_text(
        """
        [[realm]]
        name = "realm1"
        auth = [{ method = "ticket" }, { method = "wampcra" }]
        [[realm.principal]]
        authid = "alice"
        role = "user"
        ticket_env = "WAMPD_TEST_TICKET"
        [[realm.principal]]
        authid = "peter"
        role = "user"
        secret_file = "secrets/peter"
        [[realm.principal]]
        authid = "bob"
        role = "user"
        ticket_file = "%s"
        [[realm.role]]
        name = "user"
        """ % (tmp_path / "bob.ticket"),
        encoding="utf-8",
    )
    realm = load_config(config).realms[0]
    assert [p.ticket or p.secret for p in realm.principals] == ["env-ticket", "file-secret", "windows-ticket"]
    authenticator, _ = build_realm_auth(realm)
    challenge = authenticator.start(hello("wampcra", authid="peter"))
    assert authenticator.verify(challenge, sign_like_autobahn(challenge, "peter", "file-secret"), {}).authid == "peter"
    assert authenticator.verify(authenticator.start(hello("ticket", authid="alice")), "env-ticket", {}).authid == "alice"

    monkeypatch.delenv("WAMPD_TEST_TICKET")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert str(info.value) == (
        f"{config}: realm[0].principal[0].ticket_env: environment variable WAMPD_TEST_TICKET is not set"
    )
    monkeypatch.setenv("WAMPD_TEST_TICKET", "x")
    (tmp_path / "secrets" / "peter").unlink()
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert str(info.value) == (
        f"{config}: realm[0].principal[1].secret_file: no such file: {tmp_path / 'secrets' / 'peter'}"
    )
    (tmp_path / "secrets" / "peter").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert info.value.key == "realm[0].principal[1].secret_file"
    assert "is empty" in info.value.reason


PRINCIPAL = '[[realm]]\nname = "r"\nauth = [{ method = "ticket" }, { method = "wampcra" }, { method = "cryptosign" }]\n'
ROLE_USER = '[[realm.role]]\nname = "user"\n'
KEY = "ab" * 32


def with_principal(body, roles=ROLE_USER, head=PRINCIPAL):
    # Keep the other methods satisfied so only the principal under test is wrong.
    helpers = (
        '[[realm.principal]]\nauthid = "t0"\nrole = "user"\nticket = "x"\n'
        '[[realm.principal]]\nauthid = "c0"\nrole = "user"\nsecret = "x"\n'
        f'[[realm.principal]]\nauthid = "k0"\nrole = "user"\npubkey = "{"cd" * 32}"\n'
    )
    return head + helpers + "[[realm.principal]]\n" + body + roles


@pytest.mark.parametrize(
    "text, message",
    [
        ('[[realm]]\nname = "r"\nauth = "ticket"\n', "realm[0].auth: must be an array of tables (auth = [{ ... }, ...]), got string 'ticket'"),
        ('[[realm]]\nname = "r"\nauth = []\n', "realm[0].auth: must not be empty"),
        ('[[realm]]\nname = "r"\nauth = [{ method = "password" }]\n', "realm[0].auth[0].method: must be one of anonymous, ticket, wampcra, cryptosign, scram, tls, got 'password'"),
        ('[[realm]]\nname = "r"\nauth = [{ methd = "ticket" }]\n', "realm[0].auth[0].methd: unknown key; expected one of: method, transports, role (did you mean 'method'?)"),
        ('[[realm]]\nname = "r"\nauth = [{ role = "x" }]\n', "realm[0].auth[0].method: is required"),
        ('[[realm]]\nname = "r"\nauth = [{ method = "anonymous", transports = ["http"] }]\n', "realm[0].auth[0].transports[0]: must be one of websocket, rawsocket, longpoll, got 'http'"),
        ('[[realm]]\nname = "r"\nauth = [{ method = "anonymous", transports = [] }]\n', "realm[0].auth[0].transports: must not be empty"),
        ('[[realm]]\nname = "r"\nauth = [{ method = "anonymous", transports = "websocket" }]\n', "realm[0].auth[0].transports: must be an array of strings, got string 'websocket'"),
        ('[[realm]]\nname = "r"\nauth = [{ method = "anonymous" }, { method = "anonymous" }]\n', "realm[0].auth[1].method: duplicate method 'anonymous' (also in auth[0]); list its transports in one entry"),
        ('[[realm]]\nname = "r"\nauth = [{ method = "ticket" }]\n', "realm[0].auth[0].method: method 'ticket' needs a principal with a ticket or an authenticator"),
        ('[[realm]]\nname = "r"\nauth = [{ method = "cryptosign" }]\n', "realm[0].auth[0].method: method 'cryptosign' needs a principal with a pubkey or an authenticator"),
        ('[[realm]]\nname = "r"\nauth = [{ method = "ticket", role = "x" }]\n', "realm[0].auth[0].role: only applies to method 'anonymous' (other methods take the role from the principal or the authenticator)"),
        ('[[realm]]\nname = "r"\nauth = [{ method = "anonymous", role = "guest" }]\n[[realm.role]]\nname = "user"\n', "realm[0].auth[0].role: role 'guest' is not defined; add a [[realm.role]] table with name = 'guest'"),
        ('[[realm]]\nname = "r"\nauthenticator = "not a plugin"\n', "realm[0].authenticator: must be a non-empty name without whitespace, got 'not a plugin'"),
        ('[[realm]]\nname = "r"\nauthorizer = "mod:"\n', "realm[0].authorizer: must look like 'package.module:Attribute', got 'mod:'"),
        ('[[realm]]\nname = "r"\nauthorizer = "m:f"\nauthorizer_cache = -1\n', "realm[0].authorizer_cache: must be 0 or more, got -1"),
        ('[[realm]]\nname = "r"\nauthorizer_cache = 10\n', "realm[0].authorizer_cache: only applies together with an authorizer"),
        ('[[realm]]\nname = "r"\nprincipal = { authid = "a" }\n', "realm[0].principal: must be an array of tables ([[realm.principal]]), got a single table"),
        (with_principal('authid = "a"\nrole = "user"\n'), "realm[0].principal[3]: a principal needs a credential: ticket, secret (wampcra), pubkey/pubkeys (cryptosign), scram, or tls_fingerprint(s)/tls_cn (tls)"),
        (with_principal('role = "user"\nticket = "x"\n'), "realm[0].principal[3].authid: is required"),
        (with_principal('authid = "a b"\nrole = "user"\nticket = "x"\n'), "realm[0].principal[3].authid: must be a non-empty string without whitespace, got 'a b'"),
        (with_principal('authid = "t0"\nrole = "user"\nticket = "y"\n'), "realm[0].principal[3].authid: duplicate authid 't0' (also in principal[0])"),
        (with_principal('authid = "a"\nrole = "usr"\nticket = "x"\n'), "realm[0].principal[3].role: role 'usr' is not defined; add a [[realm.role]] table with name = 'usr' (without permissions a role may do nothing)"),
        (with_principal('authid = "a"\nrole = "user"\nticket = "x"\nticket_env = "X"\n'), "realm[0].principal[3].ticket_env: give only one of ticket, ticket_env"),
        (with_principal('authid = "a"\nrole = "user"\nticket = ""\n'), "realm[0].principal[3].ticket: must not be empty"),
        (with_principal('authid = "a"\nrole = "user"\nticket = 5\n'), "realm[0].principal[3].ticket: must be a string, got integer 5"),
        (with_principal('authid = "a"\nrole = "user"\nsecret_env = "WAMPD_SURELY_UNSET_X"\n'), "realm[0].principal[3].secret_env: environment variable WAMPD_SURELY_UNSET_X is not set"),
        (with_principal('authid = "a"\nrole = "user"\nsecret_file = "/nonexistent/wampd/secret"\n'), "realm[0].principal[3].secret_file: no such file: /nonexistent/wampd/secret"),
        (with_principal('authid = "a"\nrole = "user"\nticket = "x"\nsalt = "s"\n'), "realm[0].principal[3].salt: only applies together with a wampcra secret"),
        (with_principal('authid = "a"\nrole = "user"\nsecret = "x"\niterations = 10\n'), "realm[0].principal[3].iterations: only applies together with salt"),
        (with_principal('authid = "a"\nrole = "user"\nsecret = "x"\nsalt = "s"\nkeylen = 0\n'), "realm[0].principal[3].keylen: must be 1 or more, got 0"),
        (with_principal('authid = "a"\nrole = "user"\nsecret = "x"\nsalt = "s"\niterations = "9"\n'), "realm[0].principal[3].iterations: must be an integer, got string '9'"),
        (with_principal('authid = "a"\nrole = "user"\npubkey = "abc"\n'), "realm[0].principal[3].pubkey: must be an Ed25519 public key as 64 hex digits, got 'abc'"),
        (with_principal(f'authid = "a"\nrole = "user"\npubkeys = ["{KEY}", "zz"]\n'), "realm[0].principal[3].pubkeys[1]: must be an Ed25519 public key as 64 hex digits, got 'zz'"),
        (with_principal(f'authid = "a"\nrole = "user"\npubkeys = ["{"CD" * 32}"]\n'), f"realm[0].principal[3].pubkeys: public key '{'cd' * 32}' also belongs to principal[2]"),
        (with_principal(f'authid = "a"\nrole = "user"\npubkey = "{KEY}"\npubkeys = ["{KEY}"]\n'), "realm[0].principal[3].pubkeys: give only one of pubkey, pubkeys"),
        (with_principal('authid = "a"\nrole = "user"\npassword = "x"\n'), "realm[0].principal[3].password: unknown key; expected one of: authid, role, ticket, ticket_env, ticket_file, secret, secret_env, secret_file, salt, iterations, keylen, pubkey, pubkeys, scram, tls_fingerprint, tls_fingerprints, tls_cn"),
        ('[[realm]]\nname = "r"\n[[realm.principal]]\nauthid = "a"\nrole = "anonymous"\nticket = "x"\n', "realm[0].principal[0].ticket: method 'ticket' is not enabled in this realm's auth; add { method = \"ticket\" } to auth"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\n[[realm.role]]\nname = "u"\n', "realm[0].role[1].name: duplicate role 'u' (also in role[0])"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\npermissions = []\n', "realm[0].role[0].name: is required"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\ndisclose = "yes"\n', "realm[0].role[0].disclose: must be a boolean, got string 'yes'"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\npermissions = [{ uri = "a", match = "regex" }]\n', "realm[0].role[0].permissions[0].match: must be one of exact, prefix, wildcard, got 'regex'"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\npermissions = [{ uri = "a.", call = true }]\n', "realm[0].role[0].permissions[0].uri: an exact URI must be dot-separated, non-empty components, got 'a.'"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\npermissions = [{ uri = "a", match = "wildcard" }]\n', "realm[0].role[0].permissions[0].uri: a wildcard URI needs at least two components (an empty component matches any one component), got 'a'"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\npermissions = [{ uri = "a b", match = "prefix" }]\n', "realm[0].role[0].permissions[0].uri: must not contain whitespace or '#', got 'a b'"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\npermissions = [{ uri = "a", call = "yes" }]\n', "realm[0].role[0].permissions[0].call: must be a boolean, got string 'yes'"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\npermissions = [{ uri = "a", cal = true }]\n', "realm[0].role[0].permissions[0].cal: unknown key; expected one of: uri, match, call, register, publish, subscribe, disclose (did you mean 'call'?)"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\npermissions = [{ call = true }]\n', "realm[0].role[0].permissions[0].uri: is required"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\npermissions = [{ uri = "a" }, { uri = "a", call = true }]\n', "realm[0].role[0].permissions[1].uri: duplicate exact uri 'a' (also in permissions[0])"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\npermissions = [{ uri = "wamp.", match = "prefix", register = true }]\n', "realm[0].role[0].permissions[0].register: clients can never register wamp.* URIs (they are reserved for the router), got uri 'wamp.'"),
        ('[[realm]]\nname = "r"\n[[realm.role]]\nname = "u"\npermissions = [{ uri = "wamp.session.on_join", publish = true }]\n', "realm[0].role[0].permissions[0].publish: clients can never publish wamp.* URIs (they are reserved for the router), got uri 'wamp.session.on_join'"),
    ],
)
def test_realm_auth_config_errors(text, message):
    assert str(config_error(text)) == message


def test_zero_role_realm_allows_principals_with_role_anonymous_only():
    realm = realm_from_toml(
        '[[realm]]\nname = "r"\nauth = [{ method = "ticket" }]\n'
        '[[realm.principal]]\nauthid = "a"\nrole = "anonymous"\nticket = "x"\n'
    )
    assert realm.is_open
    # With a dynamic authorizer, roles may live there instead.
    realm = realm_from_toml(
        '[[realm]]\nname = "r"\nauth = [{ method = "ticket" }]\nauthorizer = "m:f"\n'
        '[[realm.principal]]\nauthid = "a"\nrole = "whatever"\nticket = "x"\n'
    )
    assert not realm.is_open


def test_realm_config_in_code_is_validated_and_defaults_unchanged():
    assert RealmConfig("realm1") == RealmConfig("realm1", (AuthMethodConfig("anonymous"),))
    assert repr(RealmConfig("realm1")) == "RealmConfig(name='realm1')"
    with pytest.raises(ConfigError) as info:
        RealmConfig("r", principals=(PrincipalConfig("a", "user", ticket="x"),))
    assert str(info.value) == (
        "principals[0].ticket: method 'ticket' is not enabled in this realm's auth; "
        'add { method = "ticket" } to auth'
    )
    with pytest.raises(ConfigError) as info:
        PrincipalConfig("a", "user", pubkeys="ab" * 32)
    assert info.value.key == "pubkeys"


# --- dynamic plugins through the config ------------------------------------------


def plugin_check(hello_info, method, signature):
    if method == "ticket" and signature == "let-me-in":
        return Accept("plugged", "user", "ticket")
    return Deny("nope")


async def plugin_may(session_info, action, uri):
    return uri == "com.allowed"


class PluginClass:
    def __call__(self, session_info, action, uri):
        return True


not_callable = 42


def test_plugins_from_config():
    realm = realm_from_toml(
        '[[realm]]\nname = "r"\nauth = [{ method = "ticket" }]\n'
        'authenticator = "tests.test_auth_units:plugin_check"\n'
        'authorizer = "tests.test_auth_units:plugin_may"\nauthorizer_cache = 5\n'
    )
    authenticator, authorizer = build_realm_auth(realm)
    assert authenticator.verify(authenticator.start(hello("ticket")), "let-me-in", {}) == Accept(
        "plugged", "user", "ticket", "dynamic"
    )
    assert result_of(authorizer.authorize(session("user"), "call", "com.allowed")) is True
    assert result_of(authorizer.authorize(session("user"), "call", "com.other")) is False
    assert authorizer.cache_size == 5
    realm = RealmConfig("r", authorizer="tests.test_auth_units:PluginClass")
    assert build_realm_auth(realm)[1].authorize(session("user"), "call", "x") is True


@pytest.mark.parametrize(
    "spec, reason",
    [
        ("tests.test_auth_units:nothing_here", "has no attribute 'nothing_here'"),
        ("tests.no_such_module:x", "no module named 'tests.no_such_module'"),
        ("tests.test_auth_units:not_callable", "is not callable (int)"),
        ("no-such-entry-point", "no entry point named 'no-such-entry-point' in group 'wampd.authorizers'"),
    ],
)
def test_bad_plugins_are_config_errors(spec, reason):
    with pytest.raises(ConfigError) as info:
        build_realm_auth(RealmConfig("r", authorizer=spec))
    assert info.value.key == "authorizer"
    assert reason in info.value.reason
    assert str(info.value.under("realm[0]")).startswith("realm[0].authorizer: ")
