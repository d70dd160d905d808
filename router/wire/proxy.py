"""
The PROXY protocol, versions 1 and 2, on a ``[[listen]]`` with ``proxy_protocol = true``.

A trusted peer (:class:`router.wire.forwarded.ProxyTrust`) must start with a
PROXY header, version 1 (text) or 2 (binary); the connection then reaches the
transport as coming from the address in it (``LOCAL``, ``UNKNOWN``,
``AF_UNSPEC`` and ``AF_UNIX`` keep the peer's own), so the router's limits,
policy, events and logs see the client.  A trusted peer that sends none, a
malformed one, or nothing within the HELLO timeout is closed.  An untrusted
peer that sends a PROXY header is a spoof: closed.  One that doesn't is
served directly, under its own address.  These refusals come before the
router counts the connection, so they fire no lifecycle event; each is
logged (namespace ``wampd.proxy``).  Connections on listeners without
``proxy_protocol`` never pass through here.
"""

from __future__ import annotations

import ipaddress
import struct

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from router.wire.forwarded import _PORT, ProxyTrust

__all__ = ["V2_SIGNATURE", "ProxyHeaderError", "ProxyProtocolFactory", "parse_proxy_header"]

_log = Logger(namespace="wampd.proxy")

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX = b"PROXY "
_V1_MAX = 107  # the spec's longest v1 line, CRLF included
_V2_MAX = 16 + 2048  # a header with more TLVs than that is refused


class ProxyHeaderError(ValueError):
    """A PROXY protocol header is malformed."""


# -- the PROXY protocol -----------------------------------------------------------


def _looks_like_header(data: bytes) -> bool | None:
    """True: a PROXY header starts here; False: it does not; None: too few bytes to say."""
    for prefix in (_V1_PREFIX, V2_SIGNATURE):
        common = min(len(data), len(prefix))
        if data[:common] == prefix[:common]:
            return True if common == len(prefix) else None
    return False


def parse_proxy_header(data: bytes):
    """
    Parse a PROXY header at the start of ``data``: ``(address, used)`` where
    ``address`` is ``(host, port)`` or None (keep the peer's own: LOCAL,
    UNKNOWN, AF_UNSPEC, AF_UNIX) and ``used`` the header's length; or None
    when more bytes are needed.  Raises :class:`ProxyHeaderError`.
    """
    if data.startswith(V2_SIGNATURE):
        return _parse_v2(data)
    if data.startswith(_V1_PREFIX):
        return _parse_v1(data)
    raise ProxyHeaderError("not a PROXY protocol header")


def _parse_v1(data: bytes):
    end = data.find(b"\r\n", 0, _V1_MAX)
    if end < 0:
        if len(data) >= _V1_MAX or b"\n" in data[:_V1_MAX]:
            raise ProxyHeaderError("PROXY v1 line too long or not ended by CRLF")
        return None
    try:
        words = data[:end].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyHeaderError("PROXY v1 line is not ASCII") from None
    if len(words) >= 2 and words[1] == "UNKNOWN":
        return None, end + 2
    if len(words) != 6 or words[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError("PROXY v1 line must be 'PROXY TCP4|TCP6 src dst sport dport'")
    _, family, src, dst, sport, dport = words
    version = 4 if family == "TCP4" else 6
    for text in (src, dst):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise ProxyHeaderError(f"PROXY v1: {text!r} is not an IP address") from None
        if address.version != version:
            raise ProxyHeaderError(f"PROXY v1: {text!r} is not a {family} address")
    for text in (sport, dport):
        if not _PORT.fullmatch(text) or (len(text) > 1 and text[0] == "0") or int(text) > 65535:
            raise ProxyHeaderError(f"PROXY v1: {text!r} is not a port")
    return (src, int(sport)), end + 2


def _parse_v2(data: bytes):
    if len(data) < 16:
        return None
    version_command, family, length = data[12], data[13], struct.unpack("!H", data[14:16])[0]
    if version_command >> 4 != 2 or version_command & 0x0F > 1:
        raise ProxyHeaderError(f"PROXY v2: unknown version/command byte 0x{version_command:02x}")
    if 16 + length > _V2_MAX:
        raise ProxyHeaderError(f"PROXY v2: header of {16 + length} bytes is over {_V2_MAX}")
    if len(data) < 16 + length:
        return None
    used = 16 + length
    if version_command & 0x0F == 0:  # LOCAL: the proxy's own connection (a health check)
        return None, used
    kind, proto = family >> 4, family & 0x0F
    if kind > 3 or proto > 2:
        raise ProxyHeaderError(f"PROXY v2: unknown address family byte 0x{family:02x}")
    body = data[16:used]
    if kind == 1:
        if length < 12:
            raise ProxyHeaderError("PROXY v2: too short for IPv4 addresses")
        return (str(ipaddress.IPv4Address(body[0:4])), struct.unpack("!H", body[8:10])[0]), used
    if kind == 2:
        if length < 36:
            raise ProxyHeaderError("PROXY v2: too short for IPv6 addresses")
        address = ipaddress.IPv6Address(body[0:16])
        mapped = address.ipv4_mapped
        return (str(mapped if mapped is not None else address), struct.unpack("!H", body[32:34])[0]), used
    return None, used  # AF_UNSPEC or AF_UNIX: nothing usable, the peer's own address stays


class _ProxyHeaderReader(ProtocolWrapper):
    """Reads the PROXY header (or its absence), then hands the connection to the transport's protocol."""

    _peer = None
    _started = False
    _timer = None

    def makeConnection(self, transport):
        # the wrapped protocol is connected later, once the header is read
        from zope.interface import directlyProvides, providedBy  # lazy: only proxied connections

        directlyProvides(self, providedBy(transport))
        self.transport = transport
        self.connected = 1
        self.factory.registerProtocol(self)
        self._buffer = b""
        host = getattr(transport.getPeer(), "host", None)
        self._trusted = self.factory.trust.trusts(host)
        self._timer = self.factory.clock.callLater(self.factory.timeout, self._timed_out)

    def getPeer(self):
        return self._peer if self._peer is not None else self.transport.getPeer()

    def dataReceived(self, data):
        if self._started:
            self.wrappedProtocol.dataReceived(data)
            return
        buffer = self._buffer = self._buffer + data
        looks = _looks_like_header(buffer)
        if looks is None:
            return
        who = self.transport.getPeer()
        if not self._trusted:
            if looks:
                self._refuse(f"{_describe(who)} sent a PROXY header but is not a trusted proxy (trusted_proxies)")
            else:
                self._start(None)
            return
        if not looks:
            self._refuse(f"{_describe(who)} is a trusted proxy but sent no PROXY header (proxy_protocol = true)")
            return
        try:
            parsed = parse_proxy_header(buffer)
        except ProxyHeaderError as exc:
            self._refuse(f"malformed PROXY header from {_describe(who)}: {exc}")
            return
        if parsed is None:
            return
        address, used = parsed
        self._buffer = buffer[used:]
        self._start(address)

    def _start(self, address) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if address is not None:
            host, port = address
            kind = IPv6Address if ":" in host else IPv4Address
            self._peer = kind("TCP", host, port)
        self._started = True
        rest, self._buffer = self._buffer, b""
        self.wrappedProtocol.makeConnection(self)
        if rest and self.connected and not self.disconnecting:
            self.wrappedProtocol.dataReceived(rest)

    def _refuse(self, why: str) -> None:
        _log.warn("refused a connection: {why}", why=why)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._buffer = b""
        self.disconnecting = 1
        self.transport.abortConnection()

    def _timed_out(self) -> None:
        self._timer = None
        if not self._started:
            self._refuse(f"no PROXY header or request from {_describe(self.transport.getPeer())} in time")

    def connectionLost(self, reason):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._started:
            super().connectionLost(reason)
        else:
            self.factory.unregisterProtocol(self)
            self.wrappedProtocol = None


def _describe(address) -> str:
    host = getattr(address, "host", None)
    return host if host is not None else "a unix socket peer"


class ProxyProtocolFactory(WrappingFactory):
    """Wraps a transport factory: every connection starts with a PROXY header from trusted peers (module doc)."""

    protocol = _ProxyHeaderReader
    noisy = False

    def __init__(self, wrapped, trust: ProxyTrust, clock, timeout: float = 10.0) -> None:
        super().__init__(wrapped)
        self.trust = trust
        self.clock = clock
        self.timeout = timeout
