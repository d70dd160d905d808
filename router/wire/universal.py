"""
The universal listener: WebSocket, RawSocket and plain HTTP on one port.

A new connection is sniffed from its first bytes, then handed, with those
bytes, to the protocol of the transport it speaks, which from then on owns
the connection as if it had been accepted by its own listener (its limits,
events and handshake rules all apply):

* first byte ``0x7F`` (RawSocket's magic): the RawSocket protocol;
* an HTTP request line (``METHOD SP target SP HTTP/1.x``), routed by the
  target's path: the long-poll base path (``/lp``) and everything under it
  go to the long-poll transport; ``/publish`` and ``/call`` go to the HTTP
  push endpoint when ``[http]`` is configured; everything else goes to the
  WebSocket protocol, which upgrades on its path (``/ws``) and answers any
  other request 404 (426 on its path), as a ``websocket`` listener does;
* anything else, a request line longer than ``max_request_line`` bytes, or
  nothing at all within ``sniff_timeout`` seconds: the connection is closed
  without an answer (nothing was read that deserves one).

A sniffing connection is not counted by ``max_connections`` yet: the
sniff's timeout and size bound are what limit it, and the transport it is
handed to counts it from then on (refusing it there as it would its own).

The hand-over replaces this protocol on the transport (TCP, Unix, and TLS
through ``TLSMemoryBIOProtocol.wrappedProtocol``), so after the first line
a connection costs exactly what it costs on a single-transport listener.
"""

from __future__ import annotations

import re

from twisted.internet.protocol import Factory, Protocol

__all__ = ["UniversalFactory", "UniversalProtocol"]

_RAWSOCKET_MAGIC = 0x7F
# METHOD SP request-target SP HTTP/1.x (RFC 9112 3); the method is a token
_REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP/1\.[0-9]\r?")
_TOKEN_BYTES = frozenset(b"!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")


class UniversalProtocol(Protocol):
    """Reads until it knows the transport, then steps aside."""

    _inner = None
    _timer = None

    def connectionMade(self) -> None:
        self._buffer = b""
        self._timer = self.factory.clock.callLater(self.factory.sniff_timeout, self._timed_out)

    def dataReceived(self, data: bytes) -> None:
        if self._inner is not None:  # a transport we could not step out of: forward
            self._inner.dataReceived(data)
            return
        buf = self._buffer = self._buffer + data
        if buf[0] == _RAWSOCKET_MAGIC:
            self._hand(self.factory.rawsocket)
            return
        end = buf.find(b"\n")
        if end < 0:
            if len(buf) > self.factory.max_request_line or not _could_be_method(buf):
                self._drop()
            return
        line = buf[:end]
        found = _REQUEST_LINE.fullmatch(line) if end <= self.factory.max_request_line else None
        if found is None:
            self._drop()
            return
        self._hand(self.factory.route(found.group(2)))

    def _hand(self, factory) -> None:
        self._cancel_timer()
        transport = self.transport
        inner = factory.buildProtocol(transport.getPeer())
        if inner is None:
            self._drop()
            return
        if getattr(transport, "wrappedProtocol", None) is self:
            transport.wrappedProtocol = inner  # TLS
        elif getattr(transport, "protocol", None) is self:
            transport.protocol = inner  # TCP, Unix
        else:
            self._inner = inner
        data, self._buffer = self._buffer, b""
        inner.makeConnection(transport)
        if data:
            inner.dataReceived(data)

    def _drop(self) -> None:
        self._cancel_timer()
        self._buffer = b""
        self.transport.abortConnection()

    def _timed_out(self) -> None:
        self._timer = None
        if self._inner is None:
            self._drop()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def connectionLost(self, reason) -> None:
        self._cancel_timer()
        if self._inner is not None:
            self._inner.connectionLost(reason)


def _could_be_method(buf: bytes) -> bool:
    """Whether a partial first line can still become a request line (a method token, then a space)."""
    head = buf.split(b" ", 1)[0]
    return len(head) <= 32 and all(byte in _TOKEN_BYTES for byte in head)


class UniversalFactory(Factory):
    """
    ``websocket``, ``rawsocket``: the factories of those transports' own
    listeners; ``http``: (path prefix, factory) pairs for plain HTTP, the
    first that matches wins (a prefix ending in ``/`` matches what is under
    it; otherwise the path itself or what is under it).
    """

    protocol = UniversalProtocol
    noisy = False

    def __init__(
        self, clock, websocket, rawsocket, http=(), *, sniff_timeout: float = 10.0, max_request_line: int = 8192
    ) -> None:
        self.clock = clock
        self.websocket = websocket
        self.rawsocket = rawsocket
        self.http = tuple((prefix.encode() if isinstance(prefix, str) else prefix, f) for prefix, f in http)
        self.sniff_timeout = sniff_timeout
        self.max_request_line = max_request_line

    def route(self, target: bytes):
        path = target.split(b"?", 1)[0]
        for prefix, factory in self.http:
            if path == prefix or path.startswith(prefix if prefix.endswith(b"/") else prefix + b"/"):
                return factory
        return self.websocket
