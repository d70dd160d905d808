"""A realm's configuration: its auth methods, principals and roles, checked together."""

from __future__ import annotations

import re
from dataclasses import MISSING, dataclass, field, fields

from router.config._errors import (
    TRANSPORTS,
    ConfigError,
    _check_int,
    _check_items,
    _check_name,
    _check_number,
    _check_plugin_spec,
    _check_secret,
    _check_str,
    _describe,
)
from router.config._history import HistoryConfig
from router.config._permissions import RoleConfig, _is_uri
from router.config._scram import ScramConfig, check_tls_credentials

__all__ = ["AUTH_METHODS", "AuthMethodConfig", "PrincipalConfig", "RealmConfig"]

#: ``anonymous_authid`` values (router.auth._anonymous.ANONYMOUS_AUTHIDS; not imported: config stays light).
ANONYMOUS_AUTHIDS = ("unique", "shared")

AUTH_METHODS = ("anonymous", "ticket", "wampcra", "cryptosign", "scram", "tls")
"""The authentication methods a realm can offer."""
# Which credential each method needs from a static principal.
_METHOD_CREDENTIAL = {
    "ticket": "ticket",
    "wampcra": "secret",
    "cryptosign": "pubkeys",
    "scram": "scram",
    "tls": "tls_fingerprints",  # or tls_cn (has_credential_for)
}
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class AuthMethodConfig:
    """One authentication method a realm offers (an entry of C{auth = [...]})."""

    method: str
    """One of L{AUTH_METHODS}."""
    transports: tuple[str, ...] = TRANSPORTS
    """The transports the method is offered on."""
    role: str | None = None
    """C{anonymous} only: the role anonymous sessions get (default C{"anonymous"})."""

    def __post_init__(self) -> None:
        method = _check_str("method", self.method)
        if method not in AUTH_METHODS:
            raise ConfigError(
                "method",
                f"must be one of {', '.join(AUTH_METHODS)}, got {method!r}",
            )
        transports = _check_items("transports", self.transports, str, allow_empty=False)
        for index, transport in enumerate(transports):
            if transport not in TRANSPORTS:
                raise ConfigError(
                    f"transports[{index}]",
                    f"must be one of {', '.join(TRANSPORTS)}, got {transport!r}",
                )
            if transport in transports[:index]:
                raise ConfigError(f"transports[{index}]", f"duplicate transport {transport!r}")
        object.__setattr__(self, "transports", transports)
        if self.role is not None:
            if method != "anonymous":
                raise ConfigError(
                    "role",
                    "only applies to method 'anonymous' (other methods take the "
                    "role from the principal or the authenticator)",
                )
            _check_name("role", self.role)

    @property
    def anonymous_role(self) -> str:
        return self.role if self.role is not None else "anonymous"


def _default_auth() -> tuple[AuthMethodConfig, ...]:
    return (AuthMethodConfig("anonymous"),)


@dataclass(frozen=True)
class PrincipalConfig:
    """
    A static principal (C{[[realm.principal]]}): who may authenticate, as
    which role, with which credentials.  Secrets read from C{*_env} or
    C{*_file} keys are already resolved here; they are left out of C{repr}.
    """

    authid: str
    role: str
    ticket: str | None = field(default=None, repr=False)
    """The ticket (method C{ticket})."""
    secret: str | None = field(default=None, repr=False)
    """
    The WAMP-CRA secret (method C{wampcra}).  With C{salt}, this is the key
    derived from the password (C{router.auth.derive_key(password, salt,
    iterations, keylen)}), as the WAMP spec's password salting describes: the
    router never stores the password itself.
    """
    salt: str | None = None
    iterations: int | None = None
    """PBKDF2 iterations; with C{salt} only, default 1000."""
    keylen: int | None = None
    """
    PBKDF2 derived key length in bytes; with C{salt} only, default 32.
    Autobahn|JS derives C{keylen / 4} 32-bit words, so keep it a multiple of 4.
    """
    pubkeys: tuple[str, ...] = ()
    """Ed25519 public keys, 64 hex digits each (method C{cryptosign}), lower-cased."""
    scram: ScramConfig | None = field(default=None, repr=False)
    """The WAMP-SCRAM credential (method C{scram}): C{python -m router.auth.scram} prints it."""
    tls_fingerprints: tuple[str, ...] = ()
    """SHA-256 fingerprints of client certificates (method C{tls}), lower-case hex without colons."""
    tls_cn: str | None = None
    """The client certificate subject CN that authenticates as this principal (method C{tls})."""

    def __post_init__(self) -> None:
        _check_name("authid", self.authid)
        _check_name("role", self.role)
        if self.ticket is not None:
            _check_secret("ticket", self.ticket)
        if self.secret is not None:
            _check_secret("secret", self.secret)
        if self.salt is not None:
            if self.secret is None:
                raise ConfigError("salt", "only applies together with a wampcra secret")
            _check_secret("salt", self.salt)
            for name, default in (("iterations", 1000), ("keylen", 32)):
                value = getattr(self, name)
                if value is None:
                    object.__setattr__(self, name, default)
                elif _check_int(name, value) < 1:
                    raise ConfigError(name, f"must be 1 or more, got {value}")
        else:
            for name in ("iterations", "keylen"):
                if getattr(self, name) is not None:
                    raise ConfigError(name, "only applies together with salt")
        if isinstance(self.pubkeys, str):
            raise ConfigError("pubkeys", f"must be a sequence of str, got {_describe(self.pubkeys)}")
        pubkeys = _check_items("pubkeys", self.pubkeys, str, allow_empty=True)
        normalised = []
        for index, key in enumerate(pubkeys):
            if not _HEX_KEY.fullmatch(key):
                raise ConfigError(
                    f"pubkeys[{index}]",
                    "must be an Ed25519 public key as 64 hex digits, got "
                    f"{key!r}",
                )
            key = key.lower()
            if key in normalised:
                raise ConfigError(f"pubkeys[{index}]", f"duplicate public key {key!r}")
            normalised.append(key)
        object.__setattr__(self, "pubkeys", tuple(normalised))
        if self.scram is not None and not isinstance(self.scram, ScramConfig):
            raise ConfigError("scram", f"must be a ScramConfig, got {_describe(self.scram)}")
        object.__setattr__(self, "tls_fingerprints", check_tls_credentials(self.tls_fingerprints, self.tls_cn))
        if not any((self.ticket, self.secret, self.pubkeys, self.scram, self.tls_fingerprints, self.tls_cn)):
            raise ConfigError(
                None,
                "a principal needs a credential: ticket, secret (wampcra), "
                "pubkey/pubkeys (cryptosign), scram, or tls_fingerprint(s)/tls_cn (tls)",
            )

    def has_credential_for(self, method: str) -> bool:
        if method == "tls":
            return bool(self.tls_fingerprints or self.tls_cn)
        credential = _METHOD_CREDENTIAL.get(method)
        return credential is not None and bool(getattr(self, credential))


@dataclass(frozen=True, repr=False)
class RealmConfig:
    """
    A realm the router serves, with who may join it and what they may do.

    With only a C{name}, the realm is the zero-config one: open to anonymous
    clients, which may do anything on non-C{wamp.*} URIs.  That implied
    openness of role C{anonymous} holds only while the realm has no
    C{roles} and no C{authorizer}; as soon as one role is configured, every
    role (C{anonymous} included) may do only what its permissions allow.
    """

    name: str
    """A WAMP URI; URIs starting with C{"wamp."} are reserved."""
    auth: tuple[AuthMethodConfig, ...] = field(default_factory=_default_auth)
    """The authentication methods offered, each on its transports."""
    principals: tuple[PrincipalConfig, ...] = ()
    roles: tuple[RoleConfig, ...] = ()
    authenticator: str | None = None
    """A dynamic authenticator plugin: C{"pkg.mod:attr"} or an entry-point name."""
    authorizer: str | None = None
    """A dynamic authorizer plugin: C{"pkg.mod:attr"} or an entry-point name."""
    authorizer_cache: int = 0
    """How many dynamic authorizer answers to keep (per session, action and URI); 0: none."""
    authorizer_timeout: float = 10.0
    """
    Seconds the dynamic authorizer may take for one answer; after that the
    action is denied (fail closed) and the session's later messages go on.
    """
    anonymous_authid: str = "unique"
    history: tuple[HistoryConfig, ...] = ()
    """Topics whose latest events C{wamp.subscription.get_events} returns (C{[[realm.history]]})."""
    """C{unique}: each anonymous session its own random authid (as Crossbar); C{shared}: all C{anonymous}."""

    def __post_init__(self) -> None:
        _check_str("name", self.name)
        if not _is_uri(self.name):
            raise ConfigError(
                "name",
                "must be a WAMP URI (dot-separated, non-empty components, "
                f"no whitespace or '#'), got {self.name!r}",
            )
        if self.name.startswith("wamp."):
            raise ConfigError(
                "name", f"realm names starting with 'wamp.' are reserved, got {self.name!r}"
            )
        auth = _check_items("auth", self.auth, AuthMethodConfig, allow_empty=False)
        methods: dict[str, int] = {}
        for index, entry in enumerate(auth):
            if entry.method in methods:
                raise ConfigError(
                    f"auth[{index}].method",
                    f"duplicate method {entry.method!r} (also in auth[{methods[entry.method]}]); "
                    "list its transports in one entry",
                )
            methods[entry.method] = index
        principals = _check_items("principals", self.principals, PrincipalConfig, allow_empty=True)
        roles = _check_items("roles", self.roles, RoleConfig, allow_empty=True)
        object.__setattr__(self, "auth", auth)
        object.__setattr__(self, "principals", principals)
        object.__setattr__(self, "roles", roles)
        if self.authenticator is not None:
            _check_plugin_spec("authenticator", self.authenticator)
        if self.authorizer is not None:
            _check_plugin_spec("authorizer", self.authorizer)
        if _check_int("authorizer_cache", self.authorizer_cache) < 0:
            raise ConfigError(
                "authorizer_cache", f"must be 0 or more, got {self.authorizer_cache}"
            )
        history = _check_items("history", self.history, HistoryConfig, allow_empty=True)
        object.__setattr__(self, "history", history)
        if len({(h.topic, h.match) for h in history}) != len(history):
            raise ConfigError("history", "names a topic (with its match) twice")
        if self.anonymous_authid not in ANONYMOUS_AUTHIDS:
            raise ConfigError(
                "anonymous_authid",
                f"must be one of {', '.join(ANONYMOUS_AUTHIDS)}, got {_describe(self.anonymous_authid)}",
            )
        if self.authorizer_cache and self.authorizer is None:
            raise ConfigError("authorizer_cache", "only applies together with an authorizer")
        object.__setattr__(
            self,
            "authorizer_timeout",
            _check_number("authorizer_timeout", self.authorizer_timeout, allow_zero=False),
        )

        role_names: dict[str, int] = {}
        for index, role in enumerate(roles):
            if role.name in role_names:
                raise ConfigError(
                    f"roles[{index}].name",
                    f"duplicate role {role.name!r} (also in roles[{role_names[role.name]}])",
                )
            role_names[role.name] = index

        authids: dict[str, int] = {}
        pubkeys: dict[str, int] = {}
        for index, principal in enumerate(principals):
            where = f"principals[{index}]"
            if principal.authid in authids:
                raise ConfigError(
                    f"{where}.authid",
                    f"duplicate authid {principal.authid!r} "
                    f"(also in principals[{authids[principal.authid]}])",
                )
            authids[principal.authid] = index
            for key in (*principal.tls_fingerprints, *((f"cn={principal.tls_cn}",) if principal.tls_cn else ())):
                if key in pubkeys:  # a certificate maps to one principal
                    name = "tls_cn" if key.startswith("cn=") else "tls_fingerprints"
                    raise ConfigError(f"{where}.{name}", f"{key!r} also belongs to principals[{pubkeys[key]}]")
                pubkeys[key] = index
            for key in principal.pubkeys:
                if key in pubkeys:
                    raise ConfigError(
                        f"{where}.pubkeys",
                        f"public key {key!r} also belongs to principals[{pubkeys[key]}]",
                    )
                pubkeys[key] = index
            for method, credential in _METHOD_CREDENTIAL.items():
                if principal.has_credential_for(method) and method not in methods:
                    raise ConfigError(
                        f"{where}.{credential}",
                        f"method {method!r} is not enabled in this realm's auth; "
                        f'add {{ method = "{method}" }} to auth',
                    )
            if self.authorizer is None and principal.role not in role_names:
                if roles or principal.role != "anonymous":
                    raise ConfigError(
                        f"{where}.role",
                        f"role {principal.role!r} is not defined; add a [[realm.role]] "
                        f"table with name = {principal.role!r} (without permissions a "
                        "role may do nothing)",
                    )
        for method, index in methods.items():
            if method == "anonymous" or self.authenticator is not None:
                continue
            if not any(p.has_credential_for(method) for p in principals):
                credential = {"ticket": "ticket", "wampcra": "secret", "cryptosign": "pubkey",
                              "scram": "scram credential", "tls": "tls_fingerprint or tls_cn"}
                raise ConfigError(
                    f"auth[{index}].method",
                    f"method {method!r} needs a principal with a {credential[method]} "
                    "or an authenticator",
                )
        anonymous = auth[methods["anonymous"]] if "anonymous" in methods else None
        if (
            anonymous is not None
            and self.authorizer is None
            and roles
            and anonymous.anonymous_role not in role_names
        ):
            raise ConfigError(
                f"auth[{methods['anonymous']}].role",
                f"role {anonymous.anonymous_role!r} is not defined; add a [[realm.role]] "
                f"table with name = {anonymous.anonymous_role!r}",
            )

    def __repr__(self) -> str:
        # Only what differs from the defaults, so a plain realm reads
        # RealmConfig(name='realm1').
        parts = [f"name={self.name!r}"]
        for item in fields(self)[1:]:
            value = getattr(self, item.name)
            default = (
                item.default_factory()  # type: ignore[misc]
                if item.default_factory is not MISSING
                else item.default
            )
            if value != default:
                parts.append(f"{item.name}={value!r}")
        return f"RealmConfig({', '.join(parts)})"

    @property
    def is_open(self) -> bool:
        """
        Whether role C{anonymous} is implied open: no roles and no
        authorizer are configured (the zero-config realm).
        """
        return not self.roles and self.authorizer is None
