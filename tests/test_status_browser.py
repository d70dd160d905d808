"""
The live status page in a real browser: headless Chromium (Debian's
``chromium``) loads it from a running router, a real autobahn-python client
joins and subscribes, and the page shows it without a reload (server-sent
events).  A screenshot of the run is kept in the test's tmp_path.
"""

from __future__ import annotations

import json
import os

import pytest_twisted

from router.config import StatusConfig
from tests.browser import CHROMIUM, Browser
from tests.test_ops import LOCAL, SECRET, Ops


@pytest_twisted.ensureDeferred
async def test_status_page_shows_a_joining_client_live_in_chromium(tmp_path):
    """The page, opened with its token, goes live; a client joining and subscribing afterwards appears in it, as text."""
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    status = StatusConfig(True, SECRET, endpoint=LOCAL, interval=0.2)
    async with Ops(metrics=None, status=status) as ops:
        browser = Browser(str(tmp_path / "profile"))
        try:
            await browser.start()
            await browser.command("Page.navigate", url=f"{ops.url}/status?token={SECRET}")
            await browser.wait_for("document.getElementById('state').dataset.state === 'live'")
            assert await browser.evaluate("location.pathname + location.search") == "/status"  # the token is gone
            assert await browser.evaluate("document.querySelector('#sessions tbody').children.length") == 0

            client = await ops.join(authid="browser-alice")
            await client.subscribe(lambda *a: None, "com.example.browser.news")
            sid = str(client.sid)
            text = await browser.wait_for(
                "document.querySelector('#sessions tbody').innerText.includes('browser-alice')"
                " && document.querySelector('#subscriptions tbody').innerText.includes('com.example.browser.news')"
                " && document.getElementById('events').innerText.includes('session_joined')"
            )
            rows = await browser.evaluate(
                "JSON.stringify([...document.querySelectorAll('#sessions tbody tr')]"
                ".map(tr => [...tr.children].map(td => td.textContent)))"
            )
            shot = tmp_path / "status-page.png"
            await browser.screenshot(shot)
            print(f"status page screenshot: {shot}")
        finally:
            await browser.stop()
    (row,) = json.loads(rows)
    assert row[:5] == [sid, "realm1", "browser-alice", "anonymous", "websocket / json"]
    assert row[5].startswith("tcp4:127.0.0.1:")
    assert "com.example.browser.news" in text and "session_joined" in text
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
