"""
WAMP URI checks and identifiers.

IDs follow the spec's scopes (basic profile, "IDs"): global-scope IDs (sessions,
publications) are drawn at random from [1, 2**53]; router-scope IDs
(subscriptions, registrations) are derived from their (realm, match, URI) by a
hash, uniform over [1, 2**53] too (:class:`ScopeIds`), so that every node of a
cluster gives one subscription the same ID without asking the others, and the
IDs a session sees tell it nothing about how busy other realms are;
session-scope IDs (requests the router sends to one peer) count up from 1.
"""

from __future__ import annotations

import random
import re
from hashlib import blake2b
from functools import partial
from itertools import chain, repeat
from operator import methodcaller

__all__ = ["MAX_ID", "URI_PATTERN", "URI_REGEX", "is_valid_uri", "is_reserved", "is_valid_realm", "GlobalIds", "ScopeIds", "Counter"]

MAX_ID = 2**53

# Loose URI rules (the spec's SHOULD-level check allows any non-whitespace,
# non-'#', non-'.' characters in components).
URI_PATTERN = r"^([^\s.#]+\.)*([^\s.#]+)$"
URI_REGEX = _LOOSE = re.compile(URI_PATTERN)  # the one URI check (router.wire and router.config have copies)


def is_valid_uri(uri: object) -> bool:
    """True for a non-empty, loosely valid WAMP URI with no empty components."""
    return isinstance(uri, str) and _LOOSE.match(uri) is not None


#: ``is_reserved(uri)``: whether ``uri`` is one of the router's own (``wamp.*``), where
#: clients may not publish or register.  A C-level callable (``uri.startswith("wamp.")``):
#: the broker and the dealer ask it for every PUBLISH and CALL, at no Python frame's cost.
is_reserved = methodcaller("startswith", "wamp.")


def is_valid_realm(name: object) -> bool:
    return is_valid_uri(name) and not is_reserved(name)


class GlobalIds:
    """
    Random IDs in [1, 2**53] for the global scope.  ``next()`` is a bound
    C-level callable (no Python frame of this module per publication).
    """

    __slots__ = ("next",)

    def __init__(self, seed: int | None = None) -> None:
        self.next = partial(random.Random(seed).randint, 1, MAX_ID)


class ScopeIds:
    """
    Router-scope IDs in [1, 2**53] for one realm's subscriptions or
    registrations.  ``next(live, match, uri, kind)`` derives the ID from the
    realm's name, ``kind`` (so a registration and a subscription of one URI
    differ), ``match`` and ``uri`` (53 bits of a BLAKE2b digest, plus one:
    uniform over [1, 2**53]), so the nodes of a cluster agree on it unasked;
    a candidate already a key of ``live`` (the realm's live IDs of that kind,
    for another URI: odds about n**2 / 2**54 with n of them) is followed by
    the next derivation (a counter in the hash).  Without ``uri`` (or after
    16 taken candidates) it draws at random until the ID is not in ``live``.
    """

    __slots__ = ("_bits", "_realm")

    def __init__(self, seed: int | None = None, realm: str = "") -> None:
        self._bits = random.Random(seed).getrandbits
        self._realm = realm.encode("utf-8") + b"\x1f"

    def next(self, live, match: str | None = None, uri: str | None = None, kind: str = "") -> int:
        if uri is not None:
            base = self._realm + f"{kind}\x1f{match}\x1f{uri}\x1f".encode("utf-8")
            for turn in range(16):
                digest = blake2b(b"%s%d" % (base, turn), digest_size=8).digest()
                candidate = (int.from_bytes(digest, "big") & (MAX_ID - 1)) + 1
                if candidate not in live:
                    return candidate
        bits = self._bits
        while True:
            candidate = bits(53) + 1  # uniform over [1, 2**53]
            if candidate not in live:
                return candidate


class Counter:
    """
    Sequential IDs 1, 2, ... 2**53, then 1 again, for the router and session
    scopes.  ``next()`` is a C-level iterator step: the INVOCATION request id
    of every call costs no Python frame.  ``start`` (for tests of the wrap)
    is the first ID handed out.
    """

    __slots__ = ("next",)

    def __init__(self, start: int = 1) -> None:
        self.next = chain(range(start, MAX_ID + 1), chain.from_iterable(repeat(range(1, MAX_ID + 1)))).__next__
