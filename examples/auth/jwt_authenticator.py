"""
A dynamic authenticator that takes a JSON Web Token as the WAMP ticket.

The client joins with ``authmethods=["ticket"]`` and answers the ticket
CHALLENGE with a JWT signed with HMAC-SHA256 (``"alg": "HS256"``) by the
service that logged the user in.  The router accepts it when

- the signature is right (the shared secret comes from ``WAMPD_JWT_SECRET``);
- ``exp`` (required) has not passed and ``nbf`` (optional) has, give or take
  ``WAMPD_JWT_LEEWAY`` seconds (default 30);
- ``iss`` and ``aud`` match ``WAMPD_JWT_ISSUER`` / ``WAMPD_JWT_AUDIENCE``
  when those are set;
- ``sub`` names the user, and equals the authid the client sent in HELLO,
  if it sent one.

The session's authid is ``sub``, its role the ``role`` claim (default
``user``; the realm's roles decide what that role may do, and a role the
realm does not define may do nothing).  WELCOME's ``authextra`` carries
``exp``, so the client knows when to get a new token.  Every refusal is the
router's usual "authentication failed"; the reason is logged.

Standard library only.  Plug it into a realm::

    [[realm]]
    name = "realm1"
    auth = [{ method = "ticket" }]
    authenticator = "examples.auth.jwt_authenticator:JwtAuthenticator"

Mint a token for a test (the same secret in the environment)::

    python -m examples.auth.jwt_authenticator alice --role user --ttl 3600
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from twisted.logger import Logger

from router.auth import AUTHENTICATION_FAILED, Accept, Deny, HelloInfo

__all__ = ["JwtAuthenticator", "InvalidToken", "issue_token", "verify_token"]

SECRET_ENV = "WAMPD_JWT_SECRET"
MAX_TOKEN_LENGTH = 8192

_log = Logger(namespace="examples.auth.jwt")
_FAILED = Deny("authentication failed", AUTHENTICATION_FAILED)


class InvalidToken(ValueError):
    """The token was refused; the message says why (for the log, not the client)."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or any(c not in _B64_CHARS for c in text):
        raise InvalidToken("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not base64url") from None


_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def issue_token(secret: str | bytes, subject: str, role: str = "user", ttl: float = 3600, *, now: float | None = None, **claims: Any) -> str:
    """
    A JWT (HS256) for C{subject} with C{role}, valid for C{ttl} seconds: what
    your login service hands the client.  Extra C{claims} (C{iss}, C{aud},
    ...) are added as given.
    """
    issued = int(time.time() if now is None else now)
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"sub": subject, "role": role, "iat": issued, "exp": issued + int(ttl), **claims}
    signing_input = ".".join(
        _b64encode(json.dumps(part, separators=(",", ":")).encode("utf-8")) for part in (header, payload)
    )
    signature = hmac.new(_key(secret), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64encode(signature)}"


def _number(claims: Mapping, name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidToken(f"claim {name!r} is not a number")
    return float(value)


def verify_token(
    token: object,
    secret: str | bytes,
    *,
    now: float | None = None,
    leeway: float = 30,
    issuer: str | None = None,
    audience: str | None = None,
) -> dict:
    """
    The claims of C{token} when it is a valid, current HS256 JWT signed with
    C{secret}; raises L{InvalidToken} otherwise.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("not a token")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not three dot-separated parts")
    header_b64, payload_b64, signature_b64 = parts
    header_raw, payload_raw, signature = (_b64decode(part) for part in parts)
    # The signature first: nothing in an unsigned token is looked at.
    expected = hmac.new(_key(secret), f"{header_b64}.{payload_b64}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidToken("bad signature")
    try:
        header = json.loads(header_raw)
        claims = json.loads(payload_raw)
    except ValueError:
        raise InvalidToken("header or payload is not JSON") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        # Only the algorithm we checked: never "none", never another key type.
        raise InvalidToken(f"algorithm {header.get('alg') if isinstance(header, dict) else None!r} is not HS256")
    if not isinstance(claims, dict):
        raise InvalidToken("payload is not a JSON object")
    moment = time.time() if now is None else now
    expires = _number(claims, "exp")
    if expires is None:
        raise InvalidToken("no exp claim")
    if moment > expires + leeway:
        raise InvalidToken("expired")
    not_before = _number(claims, "nbf")
    if not_before is not None and moment < not_before - leeway:
        raise InvalidToken("not valid yet")
    if issuer is not None and claims.get("iss") != issuer:
        raise InvalidToken("wrong issuer")
    if audience is not None:
        aud = claims.get("aud")
        if aud != audience and not (isinstance(aud, list) and audience in aud):
            raise InvalidToken("wrong audience")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or any(c.isspace() for c in subject):
        raise InvalidToken("no usable sub claim")
    role = claims.get("role", "user")
    if not isinstance(role, str) or not role or any(c.isspace() for c in role):
        raise InvalidToken("no usable role claim")
    return claims


class JwtAuthenticator:
    """
    The dynamic authenticator: C{authenticator(hello, method, signature)}.
    wampd creates it without arguments, so by default it reads its settings
    from the environment (C{WAMPD_JWT_SECRET}, C{WAMPD_JWT_ISSUER},
    C{WAMPD_JWT_AUDIENCE}, C{WAMPD_JWT_LEEWAY}); the router refuses to start
    when the secret is not set.
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret is None:
            secret = os.environ.get(SECRET_ENV)
        if not secret:
            raise RuntimeError(f"the JWT secret is not set: set the environment variable {SECRET_ENV}")
        self._secret = _key(secret)
        self.issuer = issuer if issuer is not None else os.environ.get("WAMPD_JWT_ISSUER") or None
        self.audience = audience if audience is not None else os.environ.get("WAMPD_JWT_AUDIENCE") or None
        self.leeway = leeway if leeway is not None else float(os.environ.get("WAMPD_JWT_LEEWAY", "30"))
        self.clock = clock

    def __repr__(self) -> str:
        return f"<JwtAuthenticator issuer={self.issuer!r} audience={self.audience!r}>"

    def __call__(self, hello: HelloInfo, method: str, signature: str | None) -> Accept | Deny | None:
        if method != "ticket":
            # anonymous: the realm's own rule; wampcra/cryptosign: not ours (unknown user)
            return None
        try:
            claims = verify_token(
                signature,
                self._secret,
                now=self.clock(),
                leeway=self.leeway,
                issuer=self.issuer,
                audience=self.audience,
            )
            if hello.authid is not None and hello.authid != claims["sub"]:
                raise InvalidToken(f"HELLO authid {hello.authid!r} is not the token's sub")
        except InvalidToken as exc:
            _log.info(
                "JWT refused on realm {realm} from {host} (authid {authid!r}): {why}",
                realm=hello.realm,
                host=hello.host,
                authid=hello.authid,
                why=str(exc),
            )
            return _FAILED
        return Accept(
            authid=claims["sub"],
            authrole=claims.get("role", "user"),
            authmethod="ticket",
            authprovider="jwt",
            authextra={"exp": claims["exp"]},
        )


def main(argv: list[str] | None = None) -> int:
    """Print a token signed with $WAMPD_JWT_SECRET (for trying the example)."""
    import argparse

    parser = argparse.ArgumentParser(description="Mint an HS256 JWT for the wampd JWT example.")
    parser.add_argument("subject", help="the authid (sub claim)")
    parser.add_argument("--role", default="user")
    parser.add_argument("--ttl", type=float, default=3600, help="seconds the token is valid (default 3600)")
    args = parser.parse_args(argv)
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        parser.error(f"set {SECRET_ENV} to the router's secret")
    print(issue_token(secret, args.subject, args.role, args.ttl))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
