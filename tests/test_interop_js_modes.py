"""
autobahn-js (npm ``autobahn``, over node's ``ws``, which offers
permessage-deflate by default) against a twistd router with
``--websocket-deflate``: a JS callee and a JS caller exchange a 20 kB string,
so the INVOCATION and the RESULT the router sends are compressed, and what
the clients send may be.  The router's listener logs the extension each
client offered.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from twisted.logger import Logger

from tests.conftest import TwistdRouter
from tests.test_websocket_modes import bounded_inflate
from tests.test_interop_js import (  # noqa: F401 (pytestmark's skip rules and the js_client fixture)
    JS_DIR,
    LineReader,
    client_cmd,
    describe,
    js_client,
    pytestmark,
    run_node,
)

BIG = "wamp " * 4000


class OfferedExtensions:
    """A listener logging the Sec-WebSocket-Extensions each client offered."""

    log = Logger(namespace="tests.extensions")

    def on_client_connected(self, event):
        self.log.info("OFFERED {ext}", ext=event.connection.headers.get("sec-websocket-extensions"))


class _Router:
    def __init__(self, ws_url):
        self.ws_url, self.realm = ws_url, "realm1"


@pytest.fixture
def deflate_router():
    router = TwistdRouter(
        [
            "--listen",
            "ws:tcp:0:interface=127.0.0.1",
            "--websocket-deflate",
            "--listener",
            "tests.test_interop_js_modes:OfferedExtensions",
        ]
    )
    try:
        yield router, _Router(router.wait_for(r"listening on (ws://\S+)").group(1))
    finally:
        assert router.stop() == 0, "\n".join(router.lines)


@bounded_inflate
def test_autobahn_js_over_permessage_deflate(js_client, deflate_router, tmp_path):
    """A JS callee upper-cases a 20 kB string for a JS caller through a deflating router."""
    twistd, router = deflate_router
    callee_err = open(tmp_path / "callee.stderr", "w+")
    callee = subprocess.Popen(
        client_cmd(router, "callee", "json", "--websocket", "ws"),
        cwd=JS_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=callee_err,
        text=True,
    )
    reader = LineReader(callee.stdout)
    try:
        assert reader.wait_for("ready", timeout=15) is not None, describe(callee.poll(), reader.text(), "")
        obs, proc = run_node(
            router, "caller", "json", "--websocket", "ws", "--procedure", "com.example.js.upper", "--args", json.dumps([BIG])
        )
        assert proc.returncode == 0, describe(proc.returncode, proc.stdout, proc.stderr)
        assert {"event": "result", "value": BIG.upper()} in [
            {k: o[k] for k in ("event", "value") if k in o} for o in obs
        ]
        callee.terminate()
        assert callee.wait(timeout=10) == 0
    finally:
        if callee.poll() is None:
            callee.kill()
            callee.wait(timeout=10)
        callee.stdout.close()
        callee_err.close()
    twistd.wait_for(r"connection 2 (from \S+ )?closed")  # both clients' lines are logged by now
    offered = [line for line in twistd.lines if "OFFERED" in line]
    assert len(offered) == 2 and all("permessage-deflate" in line for line in offered), offered
