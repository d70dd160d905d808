"""
The cryptography of the WAMP authentication methods, router side.

Every comparison of a secret or a signature is constant-time
(C{hmac.compare_digest}).  Ed25519 verification uses the C{cryptography}
package, which wampd already depends on through Twisted's TLS support.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "CRYPTOSIGN_CHALLENGE_BYTES",
    "derive_key",
    "same_secret",
    "verify_cryptosign",
    "wampcra_challenge",
    "wampcra_signature",
]

CRYPTOSIGN_CHALLENGE_BYTES = 32
_SIGNATURE_BYTES = 64


def derive_key(password: str | bytes, salt: str | bytes, iterations: int = 1000, keylen: int = 32) -> str:
    """
    The WAMP-CRA key derived from C{password} with PBKDF2-HMAC-SHA256, in
    base64: what a salted principal's C{secret} holds in the config, and
    what the client computes from its password and the salt, iterations and
    keylen the CHALLENGE carries.
    """
    if isinstance(password, str):
        password = password.encode("utf-8")
    if isinstance(salt, str):
        salt = salt.encode("utf-8")
    raw = hashlib.pbkdf2_hmac("sha256", password, salt, iterations, keylen)
    return base64.b64encode(raw).decode("ascii")


def wampcra_signature(key: str, challenge: str) -> str:
    """
    The WAMP-CRA signature of C{challenge}: base64 of
    HMAC-SHA256 keyed with C{key} (the secret, or the derived key when salted).
    """
    digest = hmac.new(key.encode("utf-8"), challenge.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def wampcra_challenge(
    authid: str,
    authrole: str,
    authprovider: str,
    session_id: int,
    *,
    nonce: bytes | None = None,
    now: float | None = None,
) -> str:
    """
    The challenge string of the spec: a JSON object with authid, authrole,
    authmethod C{"wampcra"}, authprovider, a random nonce, the UTC timestamp
    (ISO 8601 with milliseconds and C{Z}) and the session ID.
    """
    if nonce is None:
        nonce = os.urandom(48)
    moment = datetime.fromtimestamp(
        now if now is not None else datetime.now(timezone.utc).timestamp(), timezone.utc
    )
    timestamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return json.dumps(
        {
            "authid": authid,
            "authrole": authrole,
            "authmethod": "wampcra",
            "authprovider": authprovider,
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "timestamp": timestamp,
            "session": session_id,
        },
        separators=(",", ":"),
    )


def same_secret(given: object, expected: str) -> bool:
    """
    Whether C{given} equals C{expected}, in time that depends on neither
    their contents nor their lengths (both are hashed first).  Anything but
    a string is never equal.
    """
    is_text = isinstance(given, str)
    text = given if is_text else ""
    a = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()  # type: ignore[union-attr]
    b = hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(a, b) and is_text


def verify_cryptosign(pubkey_hex: str, challenge: bytes, signature_hex: object) -> bool:
    """
    Whether C{signature_hex} is a valid Ed25519 signature of C{challenge} by
    C{pubkey_hex}.

    The signature is hex: either the 64-byte signature alone, or the
    signature followed by the signed 32-byte challenge (96 bytes), which is
    what Autobahn clients send; the appended challenge must then be ours.
    TLS channel binding is not supported: the signed message must be the
    challenge itself, so a client that asked for C{tls-unique} binding
    (signing the challenge XOR the TLS channel ID) fails.
    """
    if not isinstance(signature_hex, str) or len(signature_hex) not in (128, 192):
        return False
    try:
        raw = binascii.a2b_hex(signature_hex)
        key = Ed25519PublicKey.from_public_bytes(binascii.a2b_hex(pubkey_hex))
    except (binascii.Error, ValueError):
        return False
    signature, appended = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
    if appended and not hmac.compare_digest(appended, challenge):
        return False
    try:
        key.verify(signature, challenge)
    except InvalidSignature:
        return False
    return True
