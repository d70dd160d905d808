"""
Decoy challenges: what an unknown wampcra principal is challenged with, so
that the challenge does not tell known authids from unknown ones.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable

from router.auth._types import Principal

__all__ = ["Decoys"]

_HEX_LOWER = "0123456789abcdef"
_HEX_UPPER = "0123456789ABCDEF"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_BASE64 = _ALNUM + "+/"
_BASE64_URL = _ALNUM + "-_"


def _salt_alphabet(salt: str) -> str:
    """The smallest usual alphabet C{salt} is written in (what its decoys are written in)."""
    chars = set(salt)
    for alphabet in (_HEX_LOWER, _HEX_UPPER, _ALNUM, _BASE64, _BASE64_URL):
        if chars <= set(alphabet):
            return alphabet
    return _BASE64_URL


class Decoys:
    """
    The decoys of one realm: a key drawn when the router starts, and the
    static wampcra principals (C{principals} with a secret) a decoy imitates.
    """

    __slots__ = ("key", "_models")

    def __init__(self, random_bytes: Callable[[int], bytes], principals: Iterable[Principal]) -> None:
        self.key = random_bytes(32)
        self._models = [p for p in principals if p.secret]

    def salt(self, model: Principal, authid: str) -> str:
        """
        The decoy salt for the unknown C{authid}: the same on every attempt (a
        real one does not change), and of the same length and alphabet (hex,
        base64 with its padding, URL-safe base64, or letters and digits) as
        the salt of the principal it imitates, so its shape does not give it
        away either.  It comes from a key drawn when the router starts, so it
        changes across restarts; deriving it from the realm's secrets instead
        would hand out an offline oracle for weak ones.
        """
        real = model.salt or ""
        body = real.rstrip("=")
        padding = real[len(body):]
        alphabet = _salt_alphabet(body)
        stream = b""
        block = 0
        while len(stream) < len(body):
            message = b"salt\0%d\0" % block + authid.encode("utf-8")
            stream += hmac.new(self.key, message, hashlib.sha256).digest()
            block += 1
        return "".join(alphabet[byte % len(alphabet)] for byte in stream[: len(body)]) + padding

    def model(self, authid: str) -> Principal | None:
        """
        The static wampcra principal whose challenge the decoy for the unknown
        C{authid} imitates: picked by a keyed hash of the authid, so one
        authid always gets the same kind of challenge (a real principal's
        does not change either), and in a realm with salted and unsalted
        secrets, or several roles, the kind of challenge does not tell known
        authids from unknown ones.
        """
        models = self._models
        if not models:
            return None
        mac = hmac.new(self.key, b"model\0" + authid.encode("utf-8"), hashlib.sha256)
        return models[int.from_bytes(mac.digest()[:8], "big") % len(models)]
