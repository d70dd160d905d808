"""
The values authenticators take and give.

An authenticator looks at a :class:`HelloInfo` and answers with
:class:`Accept` (welcome the session), :class:`Challenge` (send CHALLENGE and
wait for AUTHENTICATE) or :class:`Deny` (ABORT).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autobahn.wamp.message import Hello

    from router.events import ClientCertificate, ConnectionInfo

__all__ = [
    "AUTHENTICATION_FAILED",
    "NO_AUTH_METHOD",
    "NOT_AUTHORIZED",
    "Accept",
    "Challenge",
    "Deny",
    "HelloInfo",
    "Principal",
    "ScramCredential",
    "parse_cookies",
]

AUTHENTICATION_FAILED = "wamp.error.authentication_failed"
"""
The ABORT reason for every refused credential.

The WAMP spec's Advanced Profile URI list has C{wamp.error.no_such_principal}
(unknown authid) and C{wamp.error.authentication_denied} (wrong secret).
Sending those would tell a prober which authids exist, so wampd answers both
cases, and every other credential failure, with the one URI from that list
that does not tell them apart and that Autobahn knows
(C{ApplicationError.AUTHENTICATION_FAILED}), with the one message
C{"authentication failed"}.
"""
NO_AUTH_METHOD = "wamp.error.no_auth_method"
"""The ABORT reason when no method the client offered is available."""
NOT_AUTHORIZED = "wamp.error.not_authorized"
"""The ERROR for a refused action (and the default URI of a L{Deny})."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _frozen_mapping(value: Mapping | None) -> Mapping:
    if value is None:
        return _EMPTY
    if isinstance(value, MappingProxyType):
        return value
    return MappingProxyType(dict(value))


def parse_cookies(header: str | None) -> dict[str, str]:
    """
    Parse a C{Cookie} request header (C{"a=1; b=2"}) into a dict.

    Lenient, as browsers are: pieces without C{=} are skipped, a value in
    double quotes loses them, and the first of two cookies with the same
    name wins (browsers send the most specific path first).
    """
    cookies: dict[str, str] = {}
    if not header:
        return cookies
    for piece in header.split(";"):
        name, equals, value = piece.partition("=")
        name = name.strip()
        if not equals or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies.setdefault(name, value)
    return cookies


@dataclass(frozen=True)
class HelloInfo:
    """What a HELLO and the connection it came on tell an authenticator."""

    realm: str
    authmethods: tuple[str, ...]
    """The methods the client offered, in its order (C{("anonymous",)} if none)."""
    authid: str | None
    authrole: str | None
    """The role the client asked for; static principals ignore it."""
    authextra: Mapping[str, Any]
    """HELLO C{details.authextra} (for cryptosign: C{pubkey})."""
    transport: str
    """C{"websocket"}, C{"rawsocket"} or C{"longpoll"}."""
    host: str | None
    headers: Mapping[str, str]
    """The WebSocket handshake's (long-poll: the open request's) headers, lower-case names (empty for RawSocket)."""
    cookies: Mapping[str, str]
    """Parsed from the C{Cookie} header."""
    session_id: int
    """The session ID the session gets if it is welcomed (goes into the wampcra challenge)."""
    client_cert: ClientCertificate | None = None
    """The TLS client certificate the connection presented (method C{tls}), if any."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "authmethods", tuple(self.authmethods) or ("anonymous",))
        for name in ("authextra", "headers", "cookies"):
            object.__setattr__(self, name, _frozen_mapping(getattr(self, name)))

    @classmethod
    def from_hello(
        cls, hello: Hello, connection: ConnectionInfo, session_id: int
    ) -> HelloInfo:
        """Build one from Autobahn's HELLO message and the connection's info."""
        headers = connection.headers if connection.transport != "rawsocket" else {}  # long-poll: its /open request's
        extra = hello.authextra if isinstance(hello.authextra, Mapping) else None
        return cls(
            realm=hello.realm,
            authmethods=tuple(hello.authmethods or ()),
            authid=hello.authid,
            authrole=hello.authrole,
            authextra=extra,
            transport=connection.transport,
            host=connection.host,
            headers=headers,
            cookies=parse_cookies(headers.get("cookie")),
            session_id=session_id,
            client_cert=connection.client_cert,
        )


@dataclass(frozen=True)
class Accept:
    """Authentication succeeded: WELCOME with these details."""

    authid: str
    authrole: str
    authmethod: str
    authprovider: str = "static"
    authextra: Mapping[str, Any] | None = None
    """Goes into WELCOME C{details.authextra} when not None."""


@dataclass(frozen=True)
class Challenge:
    """
    Send CHALLENGE C{method} with C{extra}, then call
    C{RealmAuthenticator.verify(challenge, signature, extra)} with the
    client's AUTHENTICATE.  C{state} is the authenticator's own; the session
    only keeps the Challenge.
    """

    method: str
    extra: Mapping[str, Any]
    state: object = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Deny:
    """Refuse: ABORT with C{uri} and C{message}."""

    message: str
    uri: str = NOT_AUTHORIZED


@dataclass(frozen=True)
class ScramCredential:
    """
    What the router keeps of a WAMP-SCRAM password (never the password):
    the KDF and its parameters, the salt (base64, sent in the CHALLENGE as
    is) and the two keys (raw bytes).  Compute one with
    C{python -m router.auth.scram} (see L{router.auth.scram}).
    """

    kdf: str
    """C{"argon2id13"}, C{"argon2id-13"} (Autobahn's variant) or C{"pbkdf2"}."""
    salt: str
    iterations: int
    memory: int | None
    """Argon2 only: KiB."""
    stored_key: bytes = field(repr=False)
    server_key: bytes = field(repr=False)


@dataclass(frozen=True)
class Principal:
    """
    Someone who may authenticate, with the credential the router checks.

    Static principals come from the config; a dynamic authenticator may
    return one for C{wampcra} or C{cryptosign} (the router then runs the
    challenge against it).

      - C{ticket}: the ticket (method C{ticket}).
      - C{secret}: the WAMP-CRA secret.  With C{salt}, the key derived from
        the password: L{router.auth.derive_key}C{(password, salt,
        iterations, keylen)}.
      - C{pubkeys}: Ed25519 public keys, hex (method C{cryptosign}).
      - C{scram}: a L{ScramCredential} (method C{scram}).
      - C{tls_fingerprints}, C{tls_cn}: the client certificates (SHA-256
        fingerprints, lower-case hex) or the certificate subject CN that
        authenticate as this principal (method C{tls}).
    """

    authid: str
    role: str
    ticket: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    salt: str | None = None
    iterations: int = 1000
    keylen: int = 32
    pubkeys: tuple[str, ...] = ()
    scram: ScramCredential | None = field(default=None, repr=False)
    tls_fingerprints: tuple[str, ...] = ()
    tls_cn: str | None = None
    authprovider: str = "static"
    authextra: Mapping[str, Any] | None = None
    """Goes into WELCOME C{details.authextra} on success."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "pubkeys", tuple(key.lower() for key in self.pubkeys))
