"""
``twistd -n wampd --workers 2`` sharing an ``ssl:`` endpoint and the HTTP push
endpoint (router.workers_tls): the parent opens the sockets, each worker
adopts them and speaks TLS with the endpoint's own certificate; TLS clients
that land on different workers both trust exactly that certificate, and an
HTTP push to the shared port reaches subscribers on both workers.
"""

from __future__ import annotations

import json
import shutil

import pytest
import pytest_twisted
from twisted.internet import ssl

from tests.auth_helpers import bounded, open_session
from tests.test_ops import fetch
from tests.test_tls import self_signed
from tests.test_twistd import TWISTD, _ended, spawn
from tests.test_workers import on_another_worker

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (.ci/run installs it)")
SECRET = "push-secret"
TOPIC = "com.example.pushed"


class _Inbox:
    def __init__(self) -> None:
        self.events: list = []

    def __call__(self, *args):
        self.events.append(args)


@pytest_twisted.ensureDeferred
async def test_two_workers_share_a_tls_endpoint_and_the_http_push_endpoint(tmp_path):
    """Both workers serve wss:// with the endpoint's certificate on the parent's port, and a push to the shared HTTP port reaches subscribers on both."""
    key, cert, pem = self_signed(tmp_path)
    trust = ssl.optionsForClientTLS("localhost", trustRoot=ssl.Certificate.loadPEM(pem))
    parent = spawn(TWISTD + [
        "wampd", "--workers", "2",
        "--listen", f"ws:ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
        "--http", "tcp:0:interface=127.0.0.1", "--http-secret", SECRET,
    ])
    clients = []

    async def tls_join(url):
        client = await open_session(url, "websocket", tls=trust)  # verifies the chain: only our certificate passes
        await bounded(client.joined)
        return client

    try:
        shared_http = (await parent.wait_for(r"2 workers serving http push on 127\.0\.0\.1:(\d+)", timeout=60)).group(1)
        url = (await parent.wait_for(r"wampd listening on (wss://127\.0\.0\.1:\d+/ws) \(websocket\)", timeout=60)).group(1)
        await parent.wait_for(r"server_launched", timeout=60, count=2)
        launched = [line for line in parent.lines if "server_launched" in line]
        assert len(launched) == 2, launched  # both workers: the same wss:// URL and HTTP port, the parent's
        for line in launched:
            assert url in line and f"http://127.0.0.1:{shared_http} (http)" in line, line
        first = await tls_join(url)
        second = await on_another_worker(url, first, join=tls_join)
        clients += [first, second]
        inboxes = [_Inbox(), _Inbox()]
        for client, inbox in zip((first, second), inboxes):
            await client.subscribe(inbox, TOPIC)
        for n in range(50):  # each push lands on one worker; the subscription tables cross through Redis
            status, _, body = await fetch(
                f"http://127.0.0.1:{shared_http}/publish", b"POST",
                {b"Authorization": f"Bearer {SECRET}".encode(), b"Content-Type": b"application/json"},
                json.dumps({"topic": TOPIC, "args": [n]}).encode(),
            )
            assert status == 200, body
            if all(inbox.events for inbox in inboxes):
                break
        assert all(inbox.events for inbox in inboxes), [inbox.events for inbox in inboxes]
        for client in clients:
            client.leave()
            await bounded(client.disconnected)
        parent.transport.signalProcess("TERM")
        assert await _ended(parent, timeout=60) == 0, "\n".join(parent.lines)
    finally:
        if not parent.ended.called:
            parent.transport.signalProcess("KILL")

