"""
The server's opening handshake (RFC 6455 section 4.2), on a fast path.

Autobahn's ``processHandshake`` parses and checks an upgrade request in
general (status pages, proxies, extensions, several protocol versions) and
was a fifth of what a join cost.  :class:`FastHandshake` takes the common
request, a well-formed RFC 6455 upgrade, and answers it itself; anything
else goes to Autobahn's ``processHandshake`` untouched, so every refusal
(its status code, its reason) stays Autobahn's.

The fast path takes a request only when every one of these holds (RFC 6455
4.2.1 and RFC 9112, read strictly), and otherwise hands it on:

* the request line is exactly ``GET <path> HTTP/1.1``, single spaces, the
  path printable ASCII starting with ``/`` and without ``?``, ``#`` or ``;``;
* every header line is ``token ":" value`` with a value of visible characters,
  obs-text, spaces and tabs (so no bare CR or LF, no folding), and no header
  name appears twice;
* ``Host`` is there (and its port, if any, is a number, and the factory's
  external port when one is set); ``Upgrade`` lists ``websocket`` and
  ``Connection`` lists ``upgrade`` (case-insensitively);
* ``Sec-WebSocket-Version`` is ``13``; ``Sec-WebSocket-Key`` is 22 base64
  characters and ``==``; ``Sec-WebSocket-Protocol``, if there, names no
  protocol twice; ``Origin``, if there, is ``null`` or a plain
  ``scheme://host[:port]`` and every origin is allowed at this level (the
  router's own origin policy decides later, in ``client_connected``);
* no ``Sec-WebSocket-Extensions`` (wampd accepts none, but Autobahn checks
  what is offered) and nothing the factory would act on (``X-Forwarded-For``
  with ``trustXForwardedFor``, extra response headers, a ``Server`` header,
  a connection cap of Autobahn's own, automatic pings).

Events are the same either way: ``onConnect`` (which fires
``client_connected``) gets the same ``ConnectionRequest``; an accepted
request gets ``101`` with the chosen subprotocol and ``onOpen``.  Unlike
Autobahn, a client that offers no subprotocol is answered (``101`` without
``Sec-WebSocket-Protocol``, JSON spoken), as this module's users were told;
Autobahn left it waiting for the HELLO timeout.
"""

from __future__ import annotations

import base64
import hashlib
import re

import txaio
from autobahn.websocket.protocol import WebSocketProtocol as _Protocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred
from twisted.logger import Logger

__all__ = ["FastHandshake", "parse_upgrade", "http_refusal"]

_log = Logger(namespace="wampd.transport")

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # VCHAR, obs-text, SP and HTAB only
_PATH = re.compile(rb"/[!-~]*")
_KEY = re.compile(r"[A-Za-z0-9+/]{22}==")
_ORIGIN = re.compile(r"(?:https?|wss?)://[A-Za-z0-9.-]+(?::([0-9]{1,5}))?", re.IGNORECASE)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
_OPEN = _Protocol.STATE_OPEN
_CONNECTING = _Protocol.STATE_CONNECTING


def _lists(value: str, token: str) -> bool:
    """Whether a comma-separated header value lists ``token`` (case-insensitively)."""
    return any(part.strip().lower() == token for part in value.split(","))


def parse_upgrade(head: bytes, external_port: int | None = None):
    """
    ``head``: the request up to, not including, the blank line.  Returns
    ``(path, headers, host, protocols, origin, key)`` for a request the fast
    path takes (header names lower-case, values as Latin-1 text), else None.
    """
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] != b"GET" or parts[2] != b"HTTP/1.1":
        return None
    target = parts[1]
    if not _PATH.fullmatch(target) or b"?" in target or b"#" in target or b";" in target:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            return None
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            return None
        key = name.decode("ascii").lower()
        if key in headers:
            return None
        headers[key] = value.decode("latin-1")
    get = headers.get
    host = get("host")
    if host is None or "sec-websocket-extensions" in headers:
        return None
    if ":" in host and not host.endswith("]"):
        host, _, port = host.rpartition(":")
        if not port.isdigit() or not port.isascii() or (external_port and int(port) != external_port):
            return None
    upgrade, connection = get("upgrade"), get("connection")
    if upgrade is None or connection is None or not _lists(upgrade, "websocket") or not _lists(connection, "upgrade"):
        return None
    if get("sec-websocket-version") != "13":
        return None
    key = get("sec-websocket-key")
    if key is None or not _KEY.fullmatch(key):
        return None
    offered = get("sec-websocket-protocol")
    protocols = [p.strip() for p in offered.split(",")] if offered is not None else []
    if len(set(protocols)) != len(protocols):
        return None
    origin = get("origin")
    if origin is None:
        origin = ""
    elif origin != "null":
        match = _ORIGIN.fullmatch(origin)
        if match is None or (match.group(1) and int(match.group(1)) > 65535):
            return None
    return target.decode("ascii"), headers, host, protocols, origin, key


def _accept_key(key: str) -> bytes:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest())


class FastHandshake:
    """Mixed into the server protocol before Autobahn's: see the module docstring."""

    def _fast_handshake_ok(self) -> bool:
        factory = self.factory
        return (
            not factory.headers
            and factory.server is None
            and not self.maxConnections
            and not self.autoPingInterval
            and not self.trustXForwardedFor
            and self.allowedOrigins == ["*"]
            and self.allowNullOrigin
            and 13 in self.versions
        )

    def processHandshake(self) -> None:
        data = self.data
        end = data.find(b"\r\n\r\n")
        parsed = None
        if end >= 0 and self._fast_handshake_ok():
            parsed = parse_upgrade(data[:end], self.factory.externalPort)
        if parsed is None:
            super().processHandshake()  # incomplete, refused or unusual: Autobahn's own
            return
        path, headers, host, protocols, origin, key = parsed
        self.data = data[end + 4 :]
        # what failHandshake and the refusal paths read while the handshake lasts
        self.http_headers = headers
        self.http_request_path = path
        self.websocket_protocols = protocols
        self._wskey = key
        request = ConnectionRequest(self.peer, headers, host, path, {}, 13, origin, protocols, [])
        try:
            chosen = self.onConnect(request)
        except Exception:
            self._handshake_refused(txaio.create_failure())
            return
        if isinstance(chosen, Deferred):
            chosen.addCallbacks(self._handshake_accepted, self._handshake_refused)
        else:
            self._handshake_accepted(chosen)

    def _handshake_refused(self, failure) -> None:
        if self.state != _CONNECTING:
            return
        if isinstance(failure.value, ConnectionDeny):
            self.failHandshake(failure.value.reason, failure.value.code)
            return
        _log.failure("onConnect failed for {peer}; refused with 500", failure, peer=self.peer)
        self.failHandshake(f"Internal server error: {failure.value}", ConnectionDeny.INTERNAL_SERVER_ERROR)

    def _handshake_accepted(self, protocol) -> None:
        if self.state != _CONNECTING:
            return  # the connection went away while the listeners decided
        if protocol is not None and protocol not in self.websocket_protocols:
            if self.websocket_protocols:
                self.failHandshake("the subprotocol chosen was not offered", ConnectionDeny.INTERNAL_SERVER_ERROR)
                return
            protocol = None  # none offered: none named in the answer (RFC 6455 4.2.2), JSON spoken
        response = [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"]
        if protocol is not None:
            self.websocket_protocol_in_use = protocol
            response.append(b"Sec-WebSocket-Protocol: %s\r\n" % protocol.encode("ascii"))
        response.append(b"Sec-WebSocket-Accept: %s\r\n\r\n" % _accept_key(self._wskey))
        self.transport.write(b"".join(response))
        self.state = _OPEN
        call = self.openHandshakeTimeoutCall
        if call is not None:
            self.openHandshakeTimeoutCall = None
            call.cancel()
        self._onOpen()
        if "is_open" in self.__dict__:  # made only when someone waits on it
            txaio.resolve(self.is_open, None)
        if self.data and self.state == _OPEN:
            self.consumeData()


def http_refusal(protocol, reason: str, code: int, responseHeaders):
    """
    The (reason, code, headers) to refuse a WebSocket handshake request with,
    as RFC 6455 and RFC 9110 say, from what Autobahn was about to answer.

    * Anything outside the WebSocket path: 404 Not Found, whatever else is
      wrong with the request (the path is checked first).
    * Another WebSocket version than 13: 426 Upgrade Required with
      ``Sec-WebSocket-Version: 13`` (RFC 6455 4.2.2 and 4.4).
    * A plain HTTP request (no ``Upgrade`` header): 404 Not Found outside
      the WebSocket path (no page is served anywhere), 426 Upgrade Required
      on it, naming the upgrade it needs.
    """
    headers = getattr(protocol, "http_headers", None) or {}
    wanted = protocol.factory.path
    path = getattr(protocol, "http_request_path", None)  # None until Autobahn has read the request line
    if wanted is not None and path is not None and path != wanted:
        if code != 404:  # onConnect's own 404 names the path to use
            code, reason, responseHeaders = 404, "Not Found", None
    elif responseHeaders and any(name.lower() == "sec-websocket-version" for name, _ in responseHeaders):
        code, responseHeaders = 426, [("Sec-WebSocket-Version", "13")]
    elif code == 426 and "upgrade" not in headers:
        reason = "Upgrade Required: this is a WAMP WebSocket endpoint"
        responseHeaders = [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")]
    return reason, code, responseHeaders
