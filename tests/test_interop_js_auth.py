"""
Authentication and authorization with the real autobahn-js (npm
``autobahn``) under node: ticket and wampcra (plain and salted), against a
``twistd -n wampd`` started with a TOML config written by the test (the
issue's "done when" configuration, minus cryptosign).

The node side is ``tests/js/auth.mjs``.  Skipped when ``node`` is not on PATH
or ``tests/js/node_modules`` is missing; with ``CI`` set, missing
node_modules is a failure instead (as in tests/test_interop_js.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from router.auth import derive_key
from tests.conftest import TwistdRouter

JS_DIR = Path(__file__).resolve().parent / "js"
AUTH_JS = JS_DIR / "auth.mjs"
NODE = shutil.which("node")
NODE_MODULES_OK = (JS_DIR / "node_modules" / "autobahn").is_dir() and (JS_DIR / "node_modules" / "ws").is_dir()
IN_CI = bool(os.environ.get("CI"))
NPM_HINT = "run `npm ci` in tests/js"
NODE_TIMEOUT = 30

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH (needed for the autobahn-js interop tests)"),
    pytest.mark.skipif(
        not NODE_MODULES_OK and not IN_CI,
        reason=f"tests/js/node_modules is missing ({NPM_HINT})",
    ),
]

JOE_TICKET = "joe-ticket-js"
READER_TICKET = "reader-ticket-js"
ALICE_SECRET = "alice-secret-js"
SALTY_PASSWORD = "salty-password-js"
SALT, ITERATIONS, KEYLEN = "js-salt", 100, 32
AUTH_FAILED = ("wamp.error.authentication_failed", "authentication failed")

CONFIG = f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"
transport = "websocket"
path = "/ws"

[[realm]]
name = "realm1"
auth = [{{ method = "ticket" }}, {{ method = "wampcra" }}]

[[realm.principal]]
authid = "joe"
role = "user"
ticket_env = "WAMPD_JS_JOE_TICKET"

[[realm.principal]]
authid = "reader"
role = "reader"
ticket_file = "reader.ticket"

[[realm.principal]]
authid = "alice"
role = "user"
secret = "{ALICE_SECRET}"

[[realm.principal]]
authid = "salty"
role = "user"
secret = "{derive_key(SALTY_PASSWORD, SALT, ITERATIONS, KEYLEN)}"
salt = "{SALT}"
iterations = {ITERATIONS}
keylen = {KEYLEN}

[[realm.role]]
name = "reader"
permissions = [{{ uri = "news.", match = "prefix", subscribe = true }}]

[[realm.role]]
name = "user"
permissions = [
    {{ uri = "com.app.", match = "prefix", call = true, register = true, publish = true, subscribe = true }},
    {{ uri = "news.", match = "prefix", publish = true, subscribe = true }},
]
"""


@pytest.fixture
def js_auth():
    if not NODE_MODULES_OK:
        pytest.fail(f"CI is set but tests/js/node_modules is missing or incomplete ({NPM_HINT})")
    return AUTH_JS


@pytest.fixture(scope="module")
def auth_twistd(tmp_path_factory):
    """``twistd -n wampd --config <tmp>/wampd.toml``, shared by the module's tests."""
    folder = tmp_path_factory.mktemp("js-auth")
    (folder / "reader.ticket").write_text(READER_TICKET + "\n")
    config = folder / "wampd.toml"
    config.write_text(CONFIG)
    router = TwistdRouter(["--config", str(config)], env_extra={"WAMPD_JS_JOE_TICKET": JOE_TICKET})
    try:
        url = router.wait_for(r"listening on (ws://\S+)").group(1)
        yield url, router
    finally:
        code = router.stop()
        assert code == 0, "\n".join(router.lines)


def run_auth(url, *, serializer="json", methods="ticket", authid=None, secret=None, actions=()):
    cmd = [NODE, str(AUTH_JS), "--url", url, "--realm", "realm1", "--serializer", serializer, "--authmethods", methods]
    if authid is not None:
        cmd += ["--authid", authid]
    if secret is not None:
        cmd += ["--secret", secret]
    cmd += ["--actions", json.dumps(list(actions))]
    proc = subprocess.run(cmd, cwd=JS_DIR, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=NODE_TIMEOUT)
    observations = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    diag = f"exit status {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, diag
    return observations, diag


def only(observations, event):
    found = [o for o in observations if o["event"] == event]
    assert len(found) == 1, (event, observations)
    return found[0]


def run_all(url, runs: dict) -> dict:
    """The node runs in parallel (each is a separate process): name -> (observations, diag)."""
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {name: pool.submit(run_auth, url, **kwargs) for name, kwargs in runs.items()}
        return {name: future.result() for name, future in futures.items()}


def test_autobahn_js_joins_with_ticket_and_wampcra(js_auth, auth_twistd):
    url, router = auth_twistd

    def echo_actions(name):  # the runs are concurrent: one procedure each
        return [["register", f"com.app.js.{name}"], ["call", f"com.app.js.{name}", [2]], ["subscribe", "news.x"]]

    runs = {
        "ticket": dict(methods="ticket", authid="joe", secret=JOE_TICKET, actions=echo_actions("ticket")),
        "wampcra": dict(
            serializer="msgpack", methods="wampcra", authid="alice", secret=ALICE_SECRET, actions=echo_actions("cra")
        ),
        "salted": dict(
            serializer="cbor", methods="wampcra", authid="salty", secret=SALTY_PASSWORD, actions=echo_actions("salted")
        ),
        # the client's order of methods wins; joe has no wampcra secret, so he offers ticket first
        "both": dict(methods="ticket,wampcra", authid="joe", secret=JOE_TICKET),
    }
    results = run_all(url, runs)
    expected = {
        "ticket": ("joe", "user", "ticket"),
        "wampcra": ("alice", "user", "wampcra"),
        "salted": ("salty", "user", "wampcra"),
        "both": ("joe", "user", "ticket"),
    }
    for name, (observations, diag) in results.items():
        joined = only(observations, "joined")
        assert (joined["authid"], joined["authrole"], joined["authmethod"], joined["authprovider"]) == (
            *expected[name],
            "static",
        ), diag
        challenge = only(observations, "challenge")
        assert challenge["method"] == expected[name][2], diag
        if name == "salted":
            assert challenge["extra_keys"] == ["challenge", "iterations", "keylen", "salt"], diag
        actions = [o for o in observations if o["event"] == "action"]
        assert all(a["ok"] for a in actions), diag
        assert len(actions) == len(runs[name].get("actions", ())), diag
        closed = only(observations, "closed")
        assert (closed["reason"], closed["joined"]) == ("closed", True), diag
    for name in ("ticket", "wampcra", "salted"):
        call = [o for o in results[name][0] if o["event"] == "action" and o["op"] == "call"][0]
        assert call["value"] == [2], results[name][1]


def test_autobahn_js_news_reader_may_only_subscribe_to_news(js_auth, auth_twistd):
    url, _ = auth_twistd
    actions = [
        ["subscribe", "news.x"],
        ["publish", "news.x", ["refused"]],
        ["call", "com.app.js.echo", [1]],
        ["register", "news.proc"],
        ["subscribe", "com.app.x"],
        ["subscribe", "news.y"],  # the session is still open
    ]
    observations, diag = run_auth(url, methods="ticket", authid="reader", secret=READER_TICKET, actions=actions)
    joined = only(observations, "joined")
    assert (joined["authid"], joined["authrole"]) == ("reader", "reader"), diag
    outcomes = [(a["op"], a["uri"], a["ok"], a.get("error")) for a in observations if a["event"] == "action"]
    assert outcomes == [
        ("subscribe", "news.x", True, None),
        ("publish", "news.x", False, "wamp.error.not_authorized"),
        ("call", "com.app.js.echo", False, "wamp.error.not_authorized"),
        ("register", "news.proc", False, "wamp.error.not_authorized"),
        ("subscribe", "com.app.x", False, "wamp.error.not_authorized"),
        ("subscribe", "news.y", True, None),
    ], diag
    assert only(observations, "closed")["reason"] == "closed", diag


def test_autobahn_js_wrong_credentials_get_the_same_abort(js_auth, auth_twistd):
    url, router = auth_twistd
    runs = {
        "wrong ticket": dict(methods="ticket", authid="joe", secret="not-joes-ticket"),
        "unknown ticket user": dict(methods="ticket", authid="mallory", secret=JOE_TICKET),
        "wrong wampcra secret": dict(methods="wampcra", authid="alice", secret="not-alices-secret"),
        "unknown wampcra user": dict(methods="wampcra", authid="mallory", secret=ALICE_SECRET),
        "wrong salted password": dict(serializer="cbor", methods="wampcra", authid="salty", secret="nope"),
    }
    results = run_all(url, runs)
    for name, (observations, diag) in results.items():
        assert [o["event"] for o in observations] == ["challenge", "closed"], (name, diag)
        closed = only(observations, "closed")
        assert closed["joined"] is False, diag
        assert (closed["wamp_reason"], closed["message"]) == AUTH_FAILED, (name, diag)
    # every refusal reached the (default) listener as client_rejected, reason authentication
    wait_count(router, r"rejected \S+: authentication failed \(reason: authentication\)", len(runs))


def wait_count(router, pattern: str, count: int, timeout: float = 10.0) -> None:
    """Read the router's log until ``pattern`` has matched ``count`` lines."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while sum(1 for line in router.lines if regex.search(line)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} lines match {pattern!r}:\n" + "\n".join(router.lines))
        try:
            router.wait_for(r"$^never", timeout=0.2)  # reads whatever arrived
        except AssertionError:
            pass
