"""
WAMP-SCRAM, the router's side: a CHALLENGE with the principal's salt and KDF
parameters, and the check of the client's proof against the stored key.

The router never runs the KDF (Argon2id or PBKDF2): the client does, from its
password; the router keeps only the stored key and the server key
(L{router.auth.ScramCredential}) and does two HMACs and a hash per login.

Two spellings are accepted, told apart by the method the client offers:

  - C{scram}, as Autobahn-Python's C{AuthScram} and Crossbar speak it: the
    AuthMessage's channel-binding attribute is empty (C{c=,}) and the authid
    is not escaped.  WELCOME carries C{authextra.scram_server_signature}.
  - C{wamp-scram}, as the WAMP spec writes it: C{c=biws} (Base64 of
    C{"n,,"}), the authid escaped (C{,} and C{=}), and AUTHENTICATE C{extra.nonce}
    must repeat the CHALLENGE nonce if it is sent (the proof covers the nonce
    either way; Autobahn sends no AUTHENTICATE extra).  WELCOME carries
    C{authextra.verifier}.

Both get both WELCOME keys (the base64 ServerSignature), and both take the
CHALLENGE C{nonce} as the client's nonce followed by 16 random bytes of the
router's, base64.  Channel binding is not supported: a HELLO or AUTHENTICATE
asking for it is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from router.auth._dynamic import AUTH_FAILED
from router.auth._types import AUTHENTICATION_FAILED, Accept, Challenge, Deny, HelloInfo, Principal, ScramCredential

__all__ = ["SCRAM_ALIASES", "ScramMethod", "scram_keys"]

SCRAM_ALIASES = {"wamp-scram": "scram"}
"""Method names a client may offer for the realm's C{scram} method."""

_MAX_NONCE = 256  # characters of client nonce taken
_SERVER_NONCE_BYTES = 16
_PROOF_BYTES = 32


def scram_keys(salted_password: bytes) -> tuple[bytes, bytes]:
    """The (StoredKey, ServerKey) of a SaltedPassword, as RFC 5802 defines them."""
    client_key = hmac.new(salted_password, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted_password, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def _escape(authid: str) -> str:
    return authid.replace("=", "=3D").replace(",", "=2C")


def _is_base64(text: object) -> bool:
    if not isinstance(text, str) or not text or len(text) > _MAX_NONCE:
        return False
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


@dataclass(eq=False)
class ScramPending:
    """A SCRAM CHALLENGE waiting for its AUTHENTICATE (answered once)."""

    owner: Any  # the RealmAuthenticator
    hello: HelloInfo
    principal: Principal | None  # None: unknown authid, a decoy challenge
    spelling: str  # "scram" or "wamp-scram"
    auth_message: bytes
    nonce: str
    method: str = "scram"
    used: bool = False


class ScramMethod:
    """The C{scram} method of one realm (its L{RealmAuthenticator} is C{owner})."""

    def __init__(self, owner: Any, principals: Mapping[str, Principal], decoy_key: bytes) -> None:
        self._owner = owner
        self._principals = principals
        self._decoy_key = decoy_key
        self._models = [p.scram for p in principals.values() if p.scram is not None]

    def start(self, hello: HelloInfo) -> Challenge | Deny | Any:
        spelling = next((m for m in hello.authmethods if m in ("scram", "wamp-scram")), "scram")
        authid = hello.authid
        client_nonce = hello.authextra.get("nonce")
        if not authid:
            return Deny("authentication failed: scram needs an authid in HELLO", AUTHENTICATION_FAILED)
        if not _is_base64(client_nonce):
            return Deny(
                "authentication failed: scram needs HELLO authextra.nonce, base64 of random bytes "
                f"(at most {_MAX_NONCE} characters)",
                AUTHENTICATION_FAILED,
            )
        if hello.authextra.get("channel_binding") is not None:
            return Deny("authentication failed: scram channel binding is not supported", AUTHENTICATION_FAILED)
        principal = self._principals.get(authid)
        if principal is not None and principal.scram is not None:
            return self._challenge(hello, principal, spelling)
        owner = self._owner
        if owner.dynamic is None:
            return self._challenge(hello, None, spelling)

        def answer(result: object) -> Challenge | Deny:
            if result is None:
                return self._challenge(hello, None, spelling)
            if isinstance(result, Deny):
                return owner._checked_deny(result)
            if isinstance(result, Principal) and result.scram is not None and result.authid == authid:
                if result.authprovider == "static":
                    result = replace(result, authprovider="dynamic")
                return self._challenge(hello, result, spelling)
            owner._bad_answer("scram", result, "a Principal with the client's authid and a scram credential")
            return AUTH_FAILED

        return owner._ask(hello, "scram", None, answer)

    def _decoy(self, authid: str) -> ScramCredential:
        """
        What an unknown authid is challenged with: the KDF parameters of one
        of the realm's SCRAM principals (always the same one for an authid)
        and a salt of the same length that stays the same for that authid
        (until the router restarts), as the spec asks.
        """
        mac = hmac.new(self._decoy_key, b"scram\0" + authid.encode("utf-8"), hashlib.sha256).digest()
        if self._models:
            model = self._models[int.from_bytes(mac[:8], "big") % len(self._models)]
        else:
            model = ScramCredential("argon2id-13", "", 2, 19456, b"", b"")  # router.auth.scram's defaults
        try:
            size = len(base64.b64decode(model.salt)) or 16
        except (binascii.Error, ValueError):
            size = 16
        stream = mac
        while len(stream) < size + 8:
            stream += hashlib.sha256(stream).digest()
        salt = base64.b64encode(stream[8 : 8 + size]).decode("ascii")
        return replace(model, salt=salt, stored_key=mac, server_key=mac)

    def _challenge(self, hello: HelloInfo, principal: Principal | None, spelling: str) -> Challenge:
        authid = hello.authid or ""
        credential = principal.scram if principal is not None else self._decoy(authid)
        client_nonce = hello.authextra["nonce"]
        nonce = client_nonce + base64.b64encode(self._owner._random(_SERVER_NONCE_BYTES)).decode("ascii")
        if spelling == "wamp-scram":
            first, binding = f"n={_escape(authid)},r={client_nonce}", "biws"
        else:
            first, binding = f"n={authid},r={client_nonce}", ""
        server_first = f"r={nonce},s={credential.salt},i={credential.iterations}"
        auth_message = f"{first},{server_first},c={binding},r={nonce}".encode("utf-8")
        extra: dict[str, Any] = {
            "nonce": nonce,
            "salt": credential.salt,
            "kdf": credential.kdf,
            "iterations": credential.iterations,
        }
        if credential.memory is not None:
            extra["memory"] = credential.memory
        state = ScramPending(self._owner, hello, principal, spelling, auth_message, nonce)
        return Challenge(spelling, extra, state)

    def verify(self, state: ScramPending, signature: object, extra: Mapping | None) -> Accept | Deny:
        """Check the ClientProof (base64, the AUTHENTICATE signature) against the stored key."""
        extra = extra if isinstance(extra, Mapping) else {}
        principal = state.principal
        credential = principal.scram if principal is not None else self._decoy(state.hello.authid or "")
        nonce = extra.get("nonce")
        if nonce is not None:
            if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), state.nonce.encode()):
                return AUTH_FAILED
        if extra.get("channel_binding") is not None or extra.get("cbind_data") is not None:
            return AUTH_FAILED
        try:
            proof = base64.b64decode(signature, validate=True) if isinstance(signature, str) else b""
        except (binascii.Error, ValueError):
            proof = b""
        well_formed = len(proof) == _PROOF_BYTES
        if not well_formed:
            proof = bytes(_PROOF_BYTES)  # the same work as a real check, then refused
        client_signature = hmac.new(credential.stored_key, state.auth_message, hashlib.sha256).digest()
        client_key = bytes(a ^ b for a, b in zip(client_signature, proof))
        valid = hmac.compare_digest(hashlib.sha256(client_key).digest(), credential.stored_key)
        if not (valid and well_formed) or principal is None:
            return AUTH_FAILED
        server_signature = hmac.new(credential.server_key, state.auth_message, hashlib.sha256).digest()
        verifier = base64.b64encode(server_signature).decode("ascii")
        authextra = dict(principal.authextra or {})
        authextra.update(scram_server_signature=verifier, verifier=verifier)
        return Accept(principal.authid, principal.role, state.spelling, principal.authprovider, authextra)
