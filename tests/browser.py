"""
A headless Chromium driven over the DevTools protocol, for the status page's test.

Chromium (Debian's ``chromium``; ``.ci/run`` installs it) runs as a child
process on a free DevTools port; :class:`Browser` talks to its first page over
a WebSocket (autobahn's client) and can navigate, evaluate JavaScript
(``wait_for`` waits inside the page, bounded) and take screenshots.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import ProcessProtocol
from twisted.web.client import Agent

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
_LISTENING = re.compile(r"DevTools listening on (ws://[^\s]+)")


class _Chromium(ProcessProtocol):
    def __init__(self) -> None:
        self.url = Deferred()
        self.ended = Deferred()
        self.output = ""

    def errReceived(self, data: bytes) -> None:
        self.output += data.decode(errors="replace")
        found = _LISTENING.search(self.output)
        if found and not self.url.called:
            self.url.callback(found.group(1))

    def processEnded(self, reason) -> None:
        if not self.url.called:
            self.url.errback(RuntimeError(f"chromium exited before listening: {self.output[-2000:]}"))
        self.ended.callback(None)


class _DevTools(WebSocketClientProtocol):
    def onOpen(self):
        self.factory.opened.callback(self)

    def onMessage(self, payload, isBinary):
        answer = json.loads(payload)
        waiting = self.factory.waiting.pop(answer.get("id"), None)
        if waiting is not None:
            waiting.callback(answer)

    def onClose(self, wasClean, code, reason):
        for d in self.factory.waiting.values():
            d.errback(RuntimeError(f"DevTools connection closed: {reason}"))
        self.factory.waiting.clear()


class Browser:
    """One headless Chromium and its first page."""

    def __init__(self, profile_dir: str, timeout: float = 30.0) -> None:
        self.profile_dir = profile_dir
        self.timeout = timeout
        self._ids = 0

    async def start(self) -> "Browser":
        self.process = _Chromium()
        args = [
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            f"--user-data-dir={self.profile_dir}", "--window-size=1280,900", "about:blank",
        ]
        self.transport = reactor.spawnProcess(self.process, CHROMIUM, args, env=dict(os.environ))
        browser_url = await self.process.url.addTimeout(self.timeout, reactor)
        host_port = browser_url.split("/")[2]
        response = await Agent(reactor).request(b"GET", f"http://{host_port}/json/list".encode()).addTimeout(self.timeout, reactor)
        from tests.test_http_push import _Collect  # lazy: the shared body reader

        collected = _Collect()
        response.deliverBody(collected)
        pages = [t for t in json.loads(await collected.done.addTimeout(self.timeout, reactor)) if t["type"] == "page"]
        page_url = pages[0]["webSocketDebuggerUrl"]
        factory = WebSocketClientFactory(page_url)
        factory.protocol = _DevTools
        factory.opened, factory.waiting, factory.noisy = Deferred(), {}, False
        self.factory = factory
        host, port = host_port.rsplit(":", 1)
        await TCP4ClientEndpoint(reactor, host, int(port)).connect(factory)
        self.devtools = await factory.opened.addTimeout(self.timeout, reactor)
        return self

    async def command(self, method: str, **params):
        self._ids += 1
        answer = Deferred()
        self.factory.waiting[self._ids] = answer
        self.devtools.sendMessage(json.dumps({"id": self._ids, "method": method, "params": params}).encode())
        result = await answer.addTimeout(self.timeout + 5, reactor)
        if "error" in result:
            raise RuntimeError(f"{method}: {result['error']}")
        return result["result"]

    async def evaluate(self, expression: str):
        result = await self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"in the page: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    async def wait_for(self, condition: str, seconds: float = 20.0):
        """Wait, in the page, until the JavaScript ``condition`` is true (bounded); returns the page's text then."""
        return await self.evaluate(
            "new Promise((resolve, reject) => { const until = Date.now() + %d; (function check() {"
            " let ok = false; try { ok = (%s); } catch (e) {}"
            " if (ok) resolve(document.body.innerText);"
            " else if (Date.now() > until) reject(new Error('timed out; the page says: ' + (document.body ? document.body.innerText : '')));"
            " else setTimeout(check, 50); })(); })" % (int(seconds * 1000), condition)
        )

    async def screenshot(self, path) -> None:
        data = await self.command("Page.captureScreenshot", format="png")
        with open(path, "wb") as out:
            out.write(base64.b64decode(data["data"]))

    async def stop(self) -> None:
        if getattr(self, "devtools", None) is not None:
            self.devtools.dropConnection(abort=True)
        if not self.process.ended.called:
            try:
                self.transport.signalProcess(signal.SIGKILL)
            except Exception:  # already gone
                pass
            await self.process.ended.addTimeout(self.timeout, reactor)
