"""
Connection-level policy, checked when a connection opens (before any
listener can veto it), each refusal a ``client_rejected`` with its reason:

* ``origin``: allowed WebSocket origins, exact (``https://app.example.com``)
  or with ``*`` matching within the host (``https://*.example.com``).  Off
  when the list is empty (the zero-config start).  A client that sends no
  Origin header (any non-browser client: Autobahn-Python, node, curl) is not
  an origin risk and passes: the check protects browsers' users from other
  sites' pages, and every browser sends Origin on a WebSocket handshake.
  Patterns are checked when the policy is built (:func:`origin_pattern`).
* ``address``: deny and allow lists of CIDR networks (IPv4 and IPv6; an
  IPv4-mapped IPv6 peer is checked as IPv4).  Deny wins; a non-empty allow
  list admits only its networks.  Unix-socket peers have no address and pass.
* ``limit``: at most ``max_connections`` open connections in total and
  ``max_connections_per_address`` from one address (0: unlimited).  Every
  accepted TCP or Unix connection counts from the moment it is accepted,
  whether or not its WebSocket or RawSocket handshake is done, and one over a
  limit is closed at once, before anything it sent is read
  (:meth:`ConnectionPolicy.over_limit`, called by ``Router.admit``).

The HELLO timeout (a connection that does not finish joining in time is
closed, reason ``protocol``) lives in :class:`router.core.Router`, swept by one
timer.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from router.events import ConnectionInfo, Reject

__all__ = ["ConnectionPolicy", "origin_pattern"]


# scheme "://" host [":" port]: what a browser sends in Origin (RFC 6454), lower-cased.
# The host is a name or an IPv4 address, or an IPv6 address in brackets; "*" may
# stand for any run of characters within the host (never a ":" or "/"), and the
# whole port may be "*".
_ORIGIN_SYNTAX = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://"
    r"(?P<host>\[[0-9a-f:.*]+\]|[a-z0-9*](?:[a-z0-9*.-]*[a-z0-9*])?)"
    r"(?::(?P<port>[0-9]{1,5}|\*))?"
)


def origin_pattern(pattern: str) -> re.Pattern:
    """
    Compile one ``allowed_origins`` entry into a regex over lower-cased Origin values.

    An entry is ``scheme://host[:port]`` as browsers send it (``https://app.example.com``,
    ``http://localhost:3000``), with ``*`` allowed in the host (``https://*.example.com``:
    any run of characters within the host) or as the whole port (``http://localhost:*``),
    or the literal ``null`` (the Origin of sandboxed frames and ``file:`` pages).  No path,
    query, fragment, user name or trailing ``/``: a browser's Origin never has them, so
    such an entry could never match.  Anything else raises ValueError saying what is wrong.
    """
    if not isinstance(pattern, str):
        raise ValueError(f"must be a string, got {pattern!r}")
    text = pattern.lower()
    if text == "null":
        return re.compile("^null$")
    if not text:
        raise ValueError("must not be empty; use scheme://host[:port], e.g. https://app.example.com")
    found = _ORIGIN_SYNTAX.fullmatch(text)
    if found is None:
        hint = ""
        if "://" not in text:
            hint = " (it has no scheme://)"
        elif not text.split("://", 1)[1]:
            hint = " (it has no host)"
        elif "/" in text.split("://", 1)[1]:
            hint = " (an origin has no path, not even a trailing '/')"
        elif any(c in text for c in "?#@ "):
            hint = " (an origin has no query, fragment, user name or spaces)"
        raise ValueError(
            f"{pattern!r} is not an origin pattern{hint}: use scheme://host[:port] "
            "(e.g. https://app.example.com, https://*.example.com, http://localhost:*) or null"
        )
    port = found.group("port")
    if port is not None and port != "*" and not 0 < int(port) <= 65535:
        raise ValueError(f"{pattern!r} is not an origin pattern: port {port} is not between 1 and 65535")
    regex = re.escape(text).replace(r"\*", r"[^/:]*")
    return re.compile("^" + regex + "$")


def _networks(cidrs, what: str):
    nets = []
    for cidr in cidrs:
        try:
            nets.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError as exc:
            raise ValueError(f"{what}: {cidr!r} is not an IP network ({exc})") from None
    return tuple(nets)


@dataclass(frozen=True)
class ConnectionPolicy:
    allowed_origins: tuple[str, ...] = ()
    allow_addresses: tuple[str, ...] = ()
    deny_addresses: tuple[str, ...] = ()
    max_connections: int = 0
    max_connections_per_address: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "_origins", tuple(origin_pattern(p) for p in self.allowed_origins))
        object.__setattr__(self, "_allow", _networks(self.allow_addresses, "allow_addresses"))
        object.__setattr__(self, "_deny", _networks(self.deny_addresses, "deny_addresses"))

    @property
    def is_open(self) -> bool:
        return not (
            self.allowed_origins
            or self.allow_addresses
            or self.deny_addresses
            or self.max_connections
            or self.max_connections_per_address
        )

    @property
    def has_limits(self) -> bool:
        return bool(self.max_connections or self.max_connections_per_address)

    def refusal(self, connection: ConnectionInfo, total: int = 0, from_host: int = 0) -> Reject | None:
        """
        Why this connection may not stay (``total``/``from_host`` include it), or
        None.  The router checks the limits when it accepts a connection
        (:meth:`over_limit`) and the rest here, with counts of 0.
        """
        host = connection.host
        if host is not None and (self._allow or self._deny):
            try:
                address = ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                address = None
            if address is not None:
                mapped = getattr(address, "ipv4_mapped", None)
                if mapped is not None:
                    address = mapped
                if any(address in net for net in self._deny):
                    return Reject(f"address {host} is denied", "address")
                if self._allow and not any(address in net for net in self._allow):
                    return Reject(f"address {host} is not allowed", "address")
        origin = connection.origin
        if self._origins and origin:  # no Origin header (None, or "" from Autobahn): not a browser
            if not any(p.match(origin.lower()) for p in self._origins):
                return Reject(f"origin {origin} is not allowed", "origin")
        return self.over_limit(host, total, from_host)

    def over_limit(self, host: str | None, total: int, from_host: int) -> Reject | None:
        """The ``limit`` refusal for a new connection (the counts include it), or None."""
        if self.max_connections and total > self.max_connections:
            return Reject(f"the router is at its limit of {self.max_connections} connections", "limit")
        if self.max_connections_per_address and host is not None and from_host > self.max_connections_per_address:
            return Reject(
                f"{host} is at its limit of {self.max_connections_per_address} connections", "limit"
            )
        return None
