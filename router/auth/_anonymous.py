"""
Anonymous authids: one of its own for every anonymous session (the default,
as Crossbar does), or ``anonymous`` for all of them (``anonymous_authid =
"shared"``, wampd before 0.2).

A shared authid makes ``exclude_authid``/``eligible_authid`` of one anonymous
session apply to every anonymous session, and ``kill_by_authid`` kill them
all; a unique one names one session, as an authid of a logged-in user does.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

__all__ = ["ANONYMOUS_AUTHIDS", "anonymous_authid", "check_anonymous_authid", "unique_anonymous_authid"]

#: What a realm's ``anonymous_authid`` may say (the first is the default).
ANONYMOUS_AUTHIDS = ("unique", "shared")


def unique_anonymous_authid(random_bytes: Callable[[int], bytes]) -> str:
    """``anonymous-`` and 16 base32 characters (80 random bits): never a configured principal's by chance."""
    return "anonymous-" + base64.b32encode(random_bytes(10)).decode("ascii").lower()


def check_anonymous_authid(policy: str) -> str:
    """``policy`` if it is one of :data:`ANONYMOUS_AUTHIDS`; else ValueError."""
    if policy not in ANONYMOUS_AUTHIDS:
        raise ValueError(f"anonymous_authid must be one of {', '.join(ANONYMOUS_AUTHIDS)}, got {policy!r}")
    return policy


def anonymous_authid(asked: str | None, policy: str, random_bytes: Callable[[int], bytes]) -> str:
    """The authid of an anonymous session that ``asked`` for one (None: it may not choose) under ``policy``."""
    if asked:
        return asked
    return unique_anonymous_authid(random_bytes) if policy == "unique" else "anonymous"
