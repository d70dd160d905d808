"""
Behind a reverse proxy: who is trusted, and the client a trusted proxy's forwarded header names.

**Who is trusted.** :class:`ProxyTrust` holds ``trusted_proxies``: CIDR
networks, plus the word ``unix`` for peers on a unix socket (a proxy on the
same host).  Every other peer is the client itself, and whatever it says
about forwarding is ignored (headers) or refused (a PROXY header, see
:mod:`router.wire.proxy`).

**Forwarded headers** (:func:`forwarded_client`).  On a WebSocket upgrade (and
an HTTP push request) from a trusted peer, the one header named by
``forwarded_header`` is read: ``X-Forwarded-For`` (the default) or
``Forwarded`` (RFC 7239, its ``for=`` parameters); the other is ignored, so a
client cannot slip in the header its proxy does not rewrite.  The chain is
walked from the right (the nearest hop): trusted proxies are skipped, and the
first address that is not one is the client's (the leftmost, when all are
trusted).  Without the header, the peer itself is the client (a health check
from the proxy).  A malformed entry, or a client hop that is ``unknown`` or
obfuscated (``_hidden``), refuses the connection (fail closed): its address
could not be known, so no address policy or limit could apply to it.  A
header gives no port: the client's ``peer`` then ends in ``:0``.
"""

from __future__ import annotations

import ipaddress
import re

from twisted.logger import Logger

__all__ = ["ForwardedError", "ProxyTrust", "behind_proxy", "forwarded_client", "http_client"]

_log = Logger(namespace="wampd.proxy")

_PORT = re.compile(r"[0-9]{1,5}")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class ForwardedError(ValueError):
    """A trusted proxy's forwarded header is malformed, or names no usable client address."""




class ProxyTrust:
    """The trusted proxies and the header they name clients in; updated in place on reload."""

    def __init__(self, trusted: tuple[str, ...] = (), header: str = "x-forwarded-for") -> None:
        self.update(trusted, header)

    def update(self, trusted: tuple[str, ...], header: str) -> None:
        self.unix = "unix" in trusted
        self.networks = tuple(ipaddress.ip_network(c.strip(), strict=False) for c in trusted if c != "unix")
        self.header = header.lower()

    @property
    def enabled(self) -> bool:
        return bool(self.networks) or self.unix

    def trusts(self, host: str | None) -> bool:
        """Whether the peer at ``host`` (None: a unix socket peer) is a trusted proxy."""
        if host is None:
            return self.unix
        address = _address(host)
        return address is not None and any(address in net for net in self.networks)


def _address(text: str):
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def _peer_string(host: str, port: int) -> str:
    return f"{'tcp6' if ':' in host else 'tcp4'}:{host}:{port}"


# -- forwarded headers ------------------------------------------------------------


def _xff_hops(value: str) -> list[tuple[str, int]]:
    hops = []
    for item in value.split(","):
        hops.append(_node(item.strip(), "X-Forwarded-For"))
    return hops


def _node(text: str, header: str) -> tuple[str, int]:
    """An address, ``1.2.3.4:80`` or ``[2001:db8::1]:80`` or a bare one, as (host, port or 0)."""
    port = 0
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ForwardedError(f"{header}: unclosed '[' in {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":") or not _PORT.fullmatch(rest[1:]):
                raise ForwardedError(f"{header}: bad port in {text!r}")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        if not _PORT.fullmatch(number):
            raise ForwardedError(f"{header}: bad port in {text!r}")
        port = int(number)
    else:
        host = text
    if text.lower() == "unknown" or text.startswith("_"):
        raise ForwardedError(f"{header}: the client's address is {text!r}, not an IP address")
    address = _address(host)
    if address is None or port > 65535:
        raise ForwardedError(f"{header}: {text!r} is not an IP address")
    return str(address), port


def _forwarded_hops(value: str) -> list[tuple[str, int]]:
    """The ``for=`` of each element of an RFC 7239 ``Forwarded`` value, in order."""
    hops = []
    for element in _split_unquoted(value, ","):
        found = None
        for pair in _split_unquoted(element, ";"):
            pair = pair.strip()
            if not pair:
                continue
            name, eq, raw = pair.partition("=")
            if not eq or not _TOKEN.fullmatch(name):
                raise ForwardedError(f"Forwarded: malformed parameter {pair!r}")
            if raw.startswith('"'):
                if len(raw) < 2 or not raw.endswith('"'):
                    raw = ""
                else:
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            elif not _TOKEN.fullmatch(raw):
                raise ForwardedError(f"Forwarded: malformed value in {pair!r}")
            if name.lower() == "for":
                if found is not None:
                    raise ForwardedError("Forwarded: two for= in one element")
                found = raw
        if found is None:
            raise ForwardedError(f"Forwarded: an element without for=: {element.strip()!r}")
        hops.append(_node(found, "Forwarded"))
    return hops


def _split_unquoted(text: str, sep: str) -> list[str]:
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise ForwardedError("Forwarded: unclosed quoted string")
    parts.append("".join(current))
    return parts


def forwarded_client(
    trust: ProxyTrust, host: str | None, peer: str, headers
) -> tuple[str | None, str]:
    """
    The client behind a connection from ``host`` (``peer`` is its peer
    string), given the request's ``headers`` (lower-case names): its host and
    peer string.  The peer's own when it is not a trusted proxy or sent no
    forwarded header.  Raises :class:`ForwardedError` when a trusted proxy's
    header is malformed.
    """
    if not trust.trusts(host):
        return host, peer
    value = headers.get(trust.header)
    if value is None:
        return host, peer
    hops = _forwarded_hops(value) if trust.header == "forwarded" else _xff_hops(value)
    if not hops:
        raise ForwardedError(f"{trust.header}: empty")
    for address, port in reversed(hops):
        if not trust.trusts(address):
            return address, _peer_string(address, port)
    address, port = hops[0]
    return address, _peer_string(address, port)


def behind_proxy(protocol, factory, host: str | None, peer: str, headers):
    """
    The WebSocket upgrade's client, ``(host, peer, refusal)``: readdressed in
    the router's per-address count when a trusted proxy named another client
    (``refusal`` is its ``limit`` Reject, if that client is over one).  A
    malformed header refuses the upgrade with HTTP 400.
    """
    from autobahn.websocket.types import ConnectionDeny  # lazy: only behind a proxy

    try:
        client, client_peer = forwarded_client(factory.proxy_trust, host, peer, headers)
    except ForwardedError as exc:
        _log.warn("refused a WebSocket upgrade from trusted proxy {peer}: {why}", peer=peer, why=str(exc))
        raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, str(exc)) from None
    if not factory.proxy_trust.trusts(host):
        return host, peer, None
    # admitted uncounted per address (WebSocketProtocol.connectionMade): counted under its client now
    return client, client_peer, factory.router.readdress(protocol, client)


def http_client(trust, transport, headers) -> str | None:
    """An HTTP request's client address: a trusted proxy's forwarded header believed (``trust``: a ProxyTrust or None)."""
    host = getattr(transport.getPeer(), "host", None)
    if trust is None or not trust.enabled:
        return host
    named = {name.decode("latin-1").lower(): b", ".join(values).decode("latin-1") for name, values in headers.getAllRawHeaders()}
    return forwarded_client(trust, host, "", named)[0]
