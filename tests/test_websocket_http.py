"""
What the WebSocket endpoint answers to HTTP requests that are not a good
RFC 6455 upgrade, over real loopback sockets: 404 for any request (checked first)
anywhere but the WebSocket path, 426 with the upgrade it needs on it, 426 with
``Sec-WebSocket-Version: 13`` for another WebSocket version, each at once, and
no answer names the software or its version.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol

from tests.wamp_clients import port_of

_UPGRADE = (
    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: wamp.2.json\r\n"
)


class _Ask(Protocol):
    """Sends one request; ``factory.answer`` fires with the response head (up to the blank line) or all bytes at close."""

    def connectionMade(self):
        self.data = b""
        self.transport.write(self.factory.request)

    def dataReceived(self, data):
        self.data += data
        if b"\r\n\r\n" in self.data and not self.factory.answer.called:
            self.factory.answer.callback(self.data.split(b"\r\n\r\n", 1)[0].decode())
            self.transport.loseConnection()

    def connectionLost(self, reason):
        if not self.factory.answer.called:
            self.factory.answer.callback(self.data.decode())


async def _ask(url: str, request: str) -> tuple[str, dict]:
    """The status line and headers (lower-case names) the router answers ``request`` with."""
    factory = Factory.forProtocol(_Ask)
    factory.request = request.encode()
    factory.answer = Deferred()
    await TCP4ClientEndpoint(reactor, "127.0.0.1", port_of(url)).connect(factory)
    head = await factory.answer.addTimeout(3, reactor)  # at once: well within the HELLO timeout
    status, *lines = head.split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


@pytest.mark.parametrize(
    "request_line, extra, status, headers",
    [
        ("GET / HTTP/1.1", "", "HTTP/1.1 404", {}),
        ("GET /favicon.ico HTTP/1.1", "", "HTTP/1.1 404", {}),
        ("GET /ws HTTP/1.1", "", "HTTP/1.1 426", {"upgrade": "websocket", "sec-websocket-version": "13"}),
        ("GET /ws HTTP/1.1", _UPGRADE + "Sec-WebSocket-Version: 8\r\n", "HTTP/1.1 426", {"sec-websocket-version": "13"}),
        ("GET /ws HTTP/1.1", _UPGRADE + "Sec-WebSocket-Version: 7\r\n", "HTTP/1.1 426", {"sec-websocket-version": "13"}),
        ("GET /ws HTTP/1.1", _UPGRADE + "Sec-WebSocket-Version: 13\r\n", "HTTP/1.1 101", {"upgrade": "WebSocket"}),
        # the path is checked first: another version on a wrong path is 404, not 426
        ("GET /other HTTP/1.1", _UPGRADE + "Sec-WebSocket-Version: 8\r\n", "HTTP/1.1 404", {}),
        ("GET /other HTTP/1.1", _UPGRADE + "Sec-WebSocket-Version: 13\r\n", "HTTP/1.1 404", {}),
    ],
    ids=["plain-root", "plain-other", "plain-ws-path", "version-8", "version-7", "version-13",
         "version-8-other-path", "version-13-other-path"],
)
@pytest_twisted.ensureDeferred
async def test_http_answers(live_router, request_line, extra, status, headers):
    """Each request gets its answer at once, with the headers the RFCs ask for and no Server header."""
    got_status, got_headers = await _ask(
        live_router.ws_url, f"{request_line}\r\nHost: 127.0.0.1\r\n{extra}\r\n"
    )
    assert got_status.startswith(status + " "), got_status
    for name, value in headers.items():
        assert got_headers.get(name) == value, (name, got_headers)
    assert "server" not in got_headers, got_headers
    assert "autobahn" not in got_status.lower()
