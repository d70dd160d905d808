"""
A limit on failed authentications, so that secrets cannot be guessed at full
speed.

Failures are counted per address (router-wide; IPv6 addresses by their /64,
which one host usually holds whole) and per authid (per realm), each in a
window of C{window} seconds that starts with the first failure.  Once a key
has C{limit} failures in its window, every further attempt on it is refused
before any credential is looked at, whether or not the authid exists, until
the window is over.  Refused attempts are not counted, so the window does not
grow while an attacker keeps knocking.

A successful login clears its authid's counter (the user who mistyped a few
times starts afresh; it proves that authid's secret, so it cannot help
against anyone else's), but not its address's counter: one valid account
must not reset the budget of an address guessing at others.

Memory is bounded by C{max_tracked} keys of each kind (an authid longer than
128 characters is kept as its SHA-256 digest, so a key is small whatever the
client sent): entries sit in the
order their window started, expired ones are dropped from the front on each
new failure (no timer per key), and beyond the cap the oldest one goes.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import OrderedDict
from typing import Any

__all__ = ["LoginLimiter"]


def _address_key(host: str) -> str:
    """The key an address is counted under: an IPv4 address, or an IPv6 address's /64."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _authid_key(realm: str, authid: str) -> tuple:
    """The key an authid is counted under; a long one (the client chooses it) by its digest, so keys stay small."""
    if len(authid) > 128:
        return (realm, hashlib.sha256(authid.encode("utf-8", "surrogatepass")).digest())
    return (realm, authid)


class _Window:
    """Failures per key, in windows of ``window`` seconds; oldest window first."""

    __slots__ = ("limit", "window", "max_tracked", "entries")

    def __init__(self, limit: int, window: float, max_tracked: int) -> None:
        self.limit = limit
        self.window = window
        self.max_tracked = max_tracked
        self.entries: OrderedDict[Any, list] = OrderedDict()  # key -> [window start, failures]

    def full(self, key, now: float) -> tuple[int, float] | None:
        """(failures, seconds left) when ``key`` is at its limit, else None."""
        entry = self.entries.get(key)
        if entry is None or entry[1] < self.limit:
            return None
        left = entry[0] + self.window - now
        return (entry[1], left) if left > 0 else None

    def count(self, key, now: float) -> None:
        entries = self.entries
        window = self.window
        while entries:  # sweep: windows start in order, so expired ones are at the front
            first = next(iter(entries.values()))
            if now - first[0] < window:
                break
            entries.popitem(last=False)
        entry = entries.get(key)
        if entry is not None:
            entry[1] += 1
            return
        entries[key] = [now, 1]
        if len(entries) > self.max_tracked:
            entries.popitem(last=False)

    def clear(self, key) -> None:
        self.entries.pop(key, None)


class LoginLimiter:
    """
    Failed authentications per address and per (realm, authid).

    C{per_address} / C{per_authid}: failures allowed within C{window}
    seconds before further attempts are refused (0: that limit is off).
    C{clock} is the router's (C{seconds()}).
    """

    def __init__(
        self,
        clock: Any,
        *,
        per_authid: int = 10,
        per_address: int = 50,
        window: float = 60.0,
        max_tracked: int = 10_000,
    ) -> None:
        for name, value in (("per_authid", per_authid), ("per_address", per_address)):
            if value < 0:
                raise ValueError(f"{name} must be 0 (off) or more, got {value}")
        if window <= 0:
            raise ValueError(f"window must be greater than 0, got {window}")
        if max_tracked < 1:
            raise ValueError(f"max_tracked must be 1 or more, got {max_tracked}")
        self.clock = clock
        self.window = window
        self._addresses = _Window(per_address, window, max_tracked) if per_address else None
        self._authids = _Window(per_authid, window, max_tracked) if per_authid else None

    @property
    def enabled(self) -> bool:
        return self._addresses is not None or self._authids is not None

    @property
    def tracked(self) -> int:
        """How many keys are held now (both kinds)."""
        return sum(len(w.entries) for w in (self._addresses, self._authids) if w is not None)

    def refusal(self, realm: str, authid: str | None, host: str | None) -> str | None:
        """
        Why an attempt for ``authid`` on ``realm`` from ``host`` is refused
        now (for the operator's log; the client gets a generic answer), or
        None.
        """
        now = self.clock.seconds()
        if self._addresses is not None and host is not None and self._addresses.entries:
            full = self._addresses.full(_address_key(host), now)
            if full is not None:
                return (
                    f"too many failed authentication attempts from {host}: {full[0]} within "
                    f"{self.window:g}s; refused for {full[1]:.0f}s more"
                )
        if self._authids is not None and authid is not None and self._authids.entries:
            full = self._authids.full(_authid_key(realm, authid), now)
            if full is not None:
                return (
                    f"too many failed authentication attempts for authid {authid!r}: {full[0]} within "
                    f"{self.window:g}s; refused for {full[1]:.0f}s more"
                )
        return None

    def failed(self, realm: str, authid: str | None, host: str | None) -> None:
        """Count one failed authentication."""
        now = self.clock.seconds()
        if self._addresses is not None and host is not None:
            self._addresses.count(_address_key(host), now)
        if self._authids is not None and authid is not None:
            self._authids.count(_authid_key(realm, authid), now)

    def succeeded(self, realm: str, authid: str) -> None:
        """``authid`` proved its secret: its own counter starts afresh (the address's does not)."""
        if self._authids is not None:
            self._authids.clear(_authid_key(realm, authid))
