"""
WAMP URI checks and identifiers.

IDs follow the spec's scopes (basic profile, "IDs"): global-scope IDs (sessions,
publications) are drawn at random from [1, 2**53]; router-scope IDs
(subscriptions, registrations) and session-scope IDs (requests the router
sends to one peer) count up from 1.
"""

from __future__ import annotations

import random
import re

__all__ = ["MAX_ID", "is_valid_uri", "is_valid_realm", "GlobalIds", "Counter"]

MAX_ID = 2**53

# Loose URI rules (the spec's SHOULD-level check allows any non-whitespace,
# non-'#', non-'.' characters in components).
_LOOSE = re.compile(r"^([^\s.#]+\.)*([^\s.#]+)$")


def is_valid_uri(uri: object) -> bool:
    """True for a non-empty, loosely valid WAMP URI with no empty components."""
    return isinstance(uri, str) and _LOOSE.match(uri) is not None


def is_valid_realm(name: object) -> bool:
    return is_valid_uri(name) and not name.startswith("wamp.")


class GlobalIds:
    """Random IDs in [1, 2**53] for the global scope."""

    __slots__ = ("_rand",)

    def __init__(self, seed: int | None = None) -> None:
        self._rand = random.Random(seed)

    def next(self) -> int:
        return self._rand.randint(1, MAX_ID)


class Counter:
    """Sequential IDs in [1, 2**53] for the router and session scopes."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        last = self._last + 1
        if last > MAX_ID:
            last = 1
        self._last = last
        return last
