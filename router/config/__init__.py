"""
Router configuration: frozen, validated values, read from TOML.

Every value object checks itself when it is built, so a ``RouterConfig`` made
in code is as trustworthy as one read from a file.  ``parse_config`` and
``load_config`` add what only a file can get wrong (unknown keys, sections of
the wrong shape) and name every problem by its key path in the file, for
example ``listen[1].transport``.

The TOML layout::

    [router]
    max_message_size = 1048576
    max_outbound_buffer = 1048576   # bytes waiting for a client that stopped reading
    slow_consumer = "disconnect"    # or "drop" (its EVENTs only)
    ping_interval = 30.0
    ping_timeout = 10.0
    listener_timeout = 5.0
    shutdown_timeout = 3.0
    default_listener = true
    auth_fail_limit_authid = 10     # failed logins per authid per window (0: off)
    auth_fail_limit_address = 50    # failed logins per address per window (0: off)
    auth_fail_window = 60.0

    [[listen]]
    endpoint = "tcp:8080:interface=127.0.0.1"
    transport = "websocket"
    path = "/ws"

    [[realm]]
    name = "realm1"
    # Everything below is optional; without it the realm is open to
    # anonymous clients, which may do anything on non-wamp.* URIs.
    auth = [                                  # default: [{ method = "anonymous" }]
        { method = "ticket", transports = ["websocket", "rawsocket"] },
        { method = "anonymous", role = "guest" },
    ]
    authenticator = "mypkg.auth:check"       # dynamic authenticator (optional)
    authorizer = "mypkg.auth:may"            # dynamic authorizer (optional)
    authorizer_cache = 1000                  # answers kept (0: none)
    authorizer_timeout = 10.0                # seconds for one answer, then denied

    [[realm.principal]]
    authid = "alice"
    role = "user"
    ticket_env = "ALICE_TICKET"   # or ticket / ticket_file
    # wampcra: secret / secret_env / secret_file, salt, iterations, keylen
    # cryptosign: pubkey = "<64 hex>" or pubkeys = [...]

    [[realm.role]]
    name = "user"
    disclose = false
    permissions = [
        { uri = "news.", match = "prefix", subscribe = true },
        { uri = "com.app..get", match = "wildcard", call = true, disclose = true },
    ]

    [[listener]]
    plugin = "mypkg.mod:MyListener"
    priority = 10
    options = { greeting = "hi" }

Absent sections keep their defaults.  Relative C{*_file} paths are read
relative to the config file's directory (the working directory for a
config that did not come from a file).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from types import MappingProxyType
from typing import Any

from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXServerEndpoint,
    serverFromString,
)
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor

__all__ = [
    "ACTIONS",
    "AUTH_METHODS",
    "DEFAULT_ENDPOINT",
    "DEFAULT_REALM",
    "MATCH_POLICIES",
    "TRANSPORTS",
    "AuthMethodConfig",
    "ConfigError",
    "PermissionConfig",
    "PrincipalConfig",
    "RoleConfig",
    "AppConfig",
    "HttpConfig",
    "ListenConfig",
    "ListenerConfig",
    "RealmConfig",
    "RouterConfig",
    "load_config",
    "parse_config",
    "parse_listen",
]

DEFAULT_ENDPOINT = "tcp:8080:interface=127.0.0.1"
DEFAULT_REALM = "realm1"
TRANSPORTS = ("websocket", "rawsocket")

# A WAMP URI in the spec's loose form: dot-separated, non-empty components
# without whitespace, "." or "#".
_URI = re.compile(r"[^\s.#]+(?:\.[^\s.#]+)*")
# A WebSocket path: starts with "/", printable ASCII, no query or fragment.
_HTTP_PATH = re.compile(r"/[!-~]*")
_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*", re.ASCII)

# Prefixes that ``parse_listen`` accepts before an endpoint string.
_CLI_TRANSPORT_PREFIXES = MappingProxyType(
    {"ws": "websocket", "websocket": "websocket", "rawsocket": "rawsocket"}
)
#: What ``slow_consumer`` may say (the first is the default).
SLOW_CONSUMER_POLICIES = ("disconnect", "drop")
_ROUTER_KEYS = (
    "max_message_size",
    "ping_interval",
    "ping_timeout",
    "listener_timeout",
    "shutdown_timeout",
    "default_listener",
    "hello_timeout",
    "allowed_origins",
    "allow_addresses",
    "deny_addresses",
    "max_connections",
    "max_connections_per_address",
    "auth_fail_window",
    "auth_fail_limit_authid",
    "auth_fail_limit_address",
    "auth_fail_tracked",
    "max_outbound_buffer",
    "slow_consumer",
    "max_nesting_depth",
    "max_retained_topics",
    "retained_ttl",
)
_TOP_LEVEL_KEYS = ("router", "listen", "realm", "listener", "app", "http")
_APP_KEYS = ("plugin",)
_HTTP_KEYS = ("endpoint", "secret", "secret_env", "secret_file", "max_body")
_LISTEN_KEYS = ("endpoint", "transport", "path")
_REALM_KEYS = (
    "name",
    "auth",
    "principal",
    "role",
    "authenticator",
    "authorizer",
    "authorizer_cache",
    "authorizer_timeout",
)
_AUTH_KEYS = ("method", "transports", "role")
_PRINCIPAL_KEYS = (
    "authid",
    "role",
    "ticket",
    "ticket_env",
    "ticket_file",
    "secret",
    "secret_env",
    "secret_file",
    "salt",
    "iterations",
    "keylen",
    "pubkey",
    "pubkeys",
)
_ROLE_KEYS = ("name", "permissions", "disclose")
_PERMISSION_KEYS = ("uri", "match", "call", "register", "publish", "subscribe", "disclose")

AUTH_METHODS = ("anonymous", "ticket", "wampcra", "cryptosign")
"""The authentication methods a realm can offer."""
ACTIONS = ("call", "register", "publish", "subscribe")
"""The actions a permission grants."""
MATCH_POLICIES = ("exact", "prefix", "wildcard")
"""How a permission's C{uri} is matched."""
# Which credential each method needs from a static principal.
_METHOD_CREDENTIAL = {"ticket": "ticket", "wampcra": "secret", "cryptosign": "pubkeys"}
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
# A role or authid: printable, no whitespace.
_NAME = re.compile(r"\S+")
_LISTENER_KEYS = ("plugin", "priority", "options")
_NO_SOURCE = "<config>"


class ConfigError(ValueError):
    """
    A configuration value is missing, unknown, of the wrong type or invalid.

    ``key`` is the key path of the offending value (``"listen[1].transport"``)
    or ``None`` when the problem is the whole file, ``reason`` says what is
    wrong, and ``source`` names the file it came from, if any.
    ``str(error)`` reads ``"[source: ]key: reason"``.
    """

    def __init__(self, key: str | None, reason: str, source: str | None = None):
        super().__init__(key, reason, source)
        self.key = key
        self.reason = reason
        self.source = source

    def __str__(self) -> str:
        parts = []
        if self.source is not None and self.source != _NO_SOURCE:
            parts.append(self.source)
        if self.key:
            parts.append(self.key)
        parts.append(self.reason)
        return ": ".join(parts)

    def under(self, prefix: str) -> ConfigError:
        """
        The same error with its key placed under C{prefix}
        (C{"transport"} under C{"listen[1]"} is C{"listen[1].transport"}).
        """
        key = f"{prefix}.{self.key}" if self.key else prefix
        return ConfigError(key, self.reason, self.source)

    def with_key(self, key: str | None) -> ConfigError:
        """The same error, reported against another key."""
        return ConfigError(key, self.reason, self.source)

    def with_source(self, source: str) -> ConfigError:
        """The same error, naming the file it came from."""
        return ConfigError(self.key, self.reason, source)


def _describe(value: object) -> str:
    """Name a value the way a TOML user would recognise it."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "an array"
    return f"{type(value).__name__} {value!r}"


def _check_str(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, got {_describe(value)}")
    return value


def _check_int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"must be an integer, got {_describe(value)}")
    return value


def _check_bool(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be a boolean, got {_describe(value)}")
    return value


def _check_number(key: str, value: object, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"must be a number, got {_describe(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(key, f"must be a finite number, got {value!r}")
    if allow_zero and number < 0:
        raise ConfigError(key, f"must be 0 or more, got {value!r}")
    if not allow_zero and number <= 0:
        raise ConfigError(key, f"must be greater than 0, got {value!r}")
    return number


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TypeError):
        # "_parseTCP() got an unexpected keyword argument 'foo'" -> the part
        # that means something to the person who wrote the string.
        text = re.sub(r"^_?\w+\(\) ", "", text)
    return text


def _check_endpoint(key: str, description: str) -> None:
    """
    Parse C{description} with Twisted's server endpoint parser against a
    memory reactor (so nothing listens), and check the port or socket path
    the endpoint would use.
    """
    if not description.strip():
        raise ConfigError(key, "must not be empty")
    reactor = MemoryReactor()
    try:
        endpoint = serverFromString(reactor, description)
    except Exception as exc:
        reason = f"not a valid Twisted server endpoint {description!r}: {_error_text(exc)}"
        if isinstance(exc, ImportError) and exc.name == "OpenSSL":
            reason += " (TLS endpoints need pyOpenSSL: pip install 'twisted[tls]')"
        raise ConfigError(key, reason) from None
    known = (
        TCP4ServerEndpoint,
        TCP6ServerEndpoint,
        SSL4ServerEndpoint,
        UNIXServerEndpoint,
    )
    if not isinstance(endpoint, known):
        return
    # The memory reactor only records what would be listened on.
    failures: list[object] = []
    endpoint.listen(Factory()).addErrback(failures.append)
    if failures:
        return
    for port, *_ in (*reactor.tcpServers, *reactor.sslServers):
        if not 0 <= port <= 65535:
            raise ConfigError(
                key,
                f"port must be between 0 and 65535 in {description!r}, got {port}",
            )
    for address, *_ in reactor.unixServers:
        if not address:
            raise ConfigError(key, f"a unix endpoint needs a socket path: {description!r}")


@dataclass(frozen=True)
class ListenConfig:
    """One endpoint the router listens on."""

    endpoint: str
    """A Twisted server endpoint string, e.g. C{"tcp:8080:interface=127.0.0.1"}."""
    transport: str = "websocket"
    """C{"websocket"} or C{"rawsocket"}."""
    path: str = "/ws"
    """WebSocket only: the HTTP path clients connect to."""

    def __post_init__(self) -> None:
        _check_endpoint("endpoint", _check_str("endpoint", self.endpoint))
        _check_str("transport", self.transport)
        if self.transport not in TRANSPORTS:
            raise ConfigError(
                "transport",
                f"must be 'websocket' or 'rawsocket', got {self.transport!r}",
            )
        _check_str("path", self.path)
        if not _HTTP_PATH.fullmatch(self.path) or "?" in self.path or "#" in self.path:
            raise ConfigError(
                "path",
                "must start with '/' and contain no whitespace, '?' or '#', "
                f"got {self.path!r}",
            )


def _check_plugin_spec(key: str, value: object) -> str:
    """A plugin name: C{"package.module:Attribute"} or an entry-point name."""
    plugin = _check_str(key, value)
    if not plugin or plugin != plugin.strip() or any(c.isspace() for c in plugin):
        raise ConfigError(
            key, f"must be a non-empty name without whitespace, got {plugin!r}"
        )
    if ":" in plugin:
        module, _, attribute = plugin.partition(":")
        if not (_DOTTED_NAME.fullmatch(module) and _DOTTED_NAME.fullmatch(attribute)):
            raise ConfigError(
                key,
                f"must look like 'package.module:Attribute', got {plugin!r}",
            )
    return plugin


def _check_name(key: str, value: object) -> str:
    """An authid or role name: a non-empty string without whitespace."""
    name = _check_str(key, value)
    if not _NAME.fullmatch(name):
        raise ConfigError(key, f"must be a non-empty string without whitespace, got {name!r}")
    return name


def _check_secret(key: str, value: object) -> str:
    secret = _check_str(key, value)
    if not secret:
        raise ConfigError(key, "must not be empty")
    return secret


def _is_wamp_pattern(uri: str, match: str) -> bool:
    """
    Whether a permission names C{wamp.*} URIs explicitly: its first URI
    component is literally C{wamp} (for a prefix: C{"wamp"} or C{"wamp.…"}).
    Only such permissions can let a client call or subscribe to a
    C{wamp.*} URI.
    """
    if match == "prefix":
        return uri == "wamp" or uri.startswith("wamp.")
    return uri.split(".", 1)[0] == "wamp"


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
                    f"must be 'websocket' or 'rawsocket', got {transport!r}",
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
        if self.ticket is None and self.secret is None and not self.pubkeys:
            raise ConfigError(
                None,
                "a principal needs a credential: ticket, secret (wampcra) or "
                "pubkey/pubkeys (cryptosign)",
            )

    def has_credential_for(self, method: str) -> bool:
        credential = _METHOD_CREDENTIAL.get(method)
        return credential is not None and bool(getattr(self, credential))


@dataclass(frozen=True)
class PermissionConfig:
    """
    What a role may do on the URIs a pattern matches.

    C{match} is C{exact}, C{prefix} (plain string prefix: C{"news."} matches
    C{"news.sport"} but not C{"news"}; C{""} matches every URI) or
    C{wildcard} (dot-separated components, an empty component matches any
    one component: C{"com..update"} matches C{"com.user.update"}).
    """

    uri: str
    match: str = "exact"
    call: bool = False
    register: bool = False
    publish: bool = False
    subscribe: bool = False
    disclose: bool | None = None
    """
    Disclose the caller's (call) or publisher's (publish) identity even when
    it did not ask with C{disclose_me}.  C{None}: the role's C{disclose}.
    """

    def __post_init__(self) -> None:
        uri = _check_str("uri", self.uri)
        match = _check_str("match", self.match)
        if match not in MATCH_POLICIES:
            raise ConfigError(
                "match", f"must be one of {', '.join(MATCH_POLICIES)}, got {match!r}"
            )
        if any(c.isspace() or c == "#" for c in uri):
            raise ConfigError("uri", f"must not contain whitespace or '#', got {uri!r}")
        if match == "exact" and not _URI.fullmatch(uri):
            raise ConfigError(
                "uri",
                "an exact URI must be dot-separated, non-empty components, "
                f"got {uri!r}",
            )
        if match == "wildcard" and "." not in uri:
            raise ConfigError(
                "uri",
                "a wildcard URI needs at least two components (an empty "
                f"component matches any one component), got {uri!r}",
            )
        for action in ACTIONS:
            _check_bool(action, getattr(self, action))
        if self.disclose is not None:
            _check_bool("disclose", self.disclose)
        if _is_wamp_pattern(uri, match):
            for action in ("register", "publish"):
                if getattr(self, action):
                    raise ConfigError(
                        action,
                        f"clients can never {action} wamp.* URIs (they are "
                        f"reserved for the router), got uri {uri!r}",
                    )

    @property
    def names_wamp(self) -> bool:
        """Whether this permission names C{wamp.*} URIs explicitly."""
        return _is_wamp_pattern(self.uri, self.match)


@dataclass(frozen=True)
class RoleConfig:
    """A role and its permissions (C{[[realm.role]]})."""

    name: str
    permissions: tuple[PermissionConfig, ...] = ()
    disclose: bool = False
    """
    Disclose this role's identity as caller/publisher even when it did not
    ask with C{disclose_me}, unless the matching permission says otherwise.
    """

    def __post_init__(self) -> None:
        _check_name("name", self.name)
        permissions = _check_items(
            "permissions", self.permissions, PermissionConfig, allow_empty=True
        )
        seen: dict[tuple[str, str], int] = {}
        for index, permission in enumerate(permissions):
            pattern = (permission.uri, permission.match)
            if pattern in seen:
                raise ConfigError(
                    f"permissions[{index}].uri",
                    f"duplicate {permission.match} uri {permission.uri!r} "
                    f"(also in permissions[{seen[pattern]}])",
                )
            seen[pattern] = index
        object.__setattr__(self, "permissions", permissions)
        _check_bool("disclose", self.disclose)


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

    def __post_init__(self) -> None:
        _check_str("name", self.name)
        if not _URI.fullmatch(self.name):
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
            for key in principal.pubkeys:
                if key in pubkeys:
                    raise ConfigError(
                        f"{where}.pubkeys",
                        f"public key {key!r} also belongs to principals[{pubkeys[key]}]",
                    )
                pubkeys[key] = index
            for method, credential in _METHOD_CREDENTIAL.items():
                if getattr(principal, credential) and method not in methods:
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
                credential = {"ticket": "ticket", "wampcra": "secret", "cryptosign": "pubkey"}
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


@dataclass(frozen=True)
class ListenerConfig:
    """A listener plugin and the options it is created with."""

    plugin: str
    """C{"pkg.module:Attr"}, or an entry-point name in group C{wampd.listeners}."""
    priority: int | None = None
    """C{None}: the listener's own C{priority} attribute, or 0."""
    options: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    """Keyword arguments for the listener factory (read-only)."""

    def __post_init__(self) -> None:
        _check_plugin_spec("plugin", self.plugin)
        if self.priority is not None:
            _check_int("priority", self.priority)
        if not isinstance(self.options, Mapping):
            raise ConfigError("options", f"must be a table, got {_describe(self.options)}")
        for name in self.options:
            if not isinstance(name, str) or not name.isidentifier():
                raise ConfigError(
                    f"options.{name}",
                    "option names must be Python identifiers "
                    "(they are passed as keyword arguments)",
                )
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))


def _default_listen() -> tuple[ListenConfig, ...]:
    return (ListenConfig(DEFAULT_ENDPOINT),)


def _default_realms() -> tuple[RealmConfig, ...]:
    return (RealmConfig(DEFAULT_REALM),)


def _check_items(key: str, value: object, kind: type, *, allow_empty: bool) -> tuple:
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise ConfigError(key, f"must be a sequence of {kind.__name__}, got {_describe(value)}")
    items = tuple(value)  # type: ignore[call-overload]
    for index, item in enumerate(items):
        if not isinstance(item, kind):
            raise ConfigError(
                f"{key}[{index}]", f"must be a {kind.__name__}, got {_describe(item)}"
            )
    if not items and not allow_empty:
        raise ConfigError(key, "must not be empty")
    return items


@dataclass(frozen=True)
class AppConfig:
    """A server-side App (topics, procedures, periodic services) to plug in."""

    plugin: str
    """C{"package.module:attribute"} or an entry-point name in C{wampd.apps}."""

    def __post_init__(self) -> None:
        if not _check_str("plugin", self.plugin).strip():
            raise ConfigError("plugin", "must not be empty")


@dataclass(frozen=True)
class HttpConfig:
    """The HTTP push endpoint (POST /publish, POST /call)."""

    endpoint: str
    secret: str
    """The shared secret clients send as C{Authorization: Bearer <secret>}."""
    max_body: int = 65536

    def __post_init__(self) -> None:
        _check_endpoint("endpoint", _check_str("endpoint", self.endpoint))
        if not _check_str("secret", self.secret):
            raise ConfigError("secret", "must not be empty")
        if _check_int("max_body", self.max_body) <= 0:
            raise ConfigError("max_body", f"must be greater than 0, got {self.max_body}")


def _http_secret(where: str, table: Mapping) -> str:
    given = [key for key in ("secret", "secret_env", "secret_file") if key in table]
    if len(given) != 1:
        raise ConfigError(where, "give exactly one of secret, secret_env, secret_file (the push endpoint needs a secret)")
    key = given[0]
    value = _check_str(f"{where}.{key}", table[key])
    if key == "secret":
        return value
    if key == "secret_env":
        if value not in os.environ:
            raise ConfigError(f"{where}.secret_env", f"environment variable {value} is not set")
        return os.environ[value]
    try:
        with open(value, encoding="utf-8") as stream:
            return stream.read().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{where}.secret_file", f"cannot read {value!r}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class RouterConfig:
    """Everything the router service needs to start."""

    listen: tuple[ListenConfig, ...] = field(default_factory=_default_listen)
    realms: tuple[RealmConfig, ...] = field(default_factory=_default_realms)
    listeners: tuple[ListenerConfig, ...] = ()
    default_listener: bool = True
    """Also run the shipped printing listener C{listeners.log:LogListener}."""
    max_message_size: int = 1048576
    """Largest message accepted, in bytes."""
    ping_interval: float = 30.0
    """Seconds between WebSocket pings to an idle connection; 0 disables them."""
    ping_timeout: float = 10.0
    """Seconds to wait for the pong."""
    listener_timeout: float = 5.0
    """Seconds a listener handler may take."""
    shutdown_timeout: float = 3.0
    """Seconds to wait for GOODBYE replies at shutdown."""
    apps: tuple[AppConfig, ...] = ()
    http: HttpConfig | None = None
    hello_timeout: float = 10.0
    """
    Seconds a connection may take to finish its WebSocket upgrade request or
    RawSocket handshake, and again to join (HELLO to WELCOME); 0 disables
    (the WebSocket upgrade request then still has 10 s).
    """
    allowed_origins: tuple[str, ...] = ()
    """Allowed WebSocket origins (exact or with *); empty allows any."""
    allow_addresses: tuple[str, ...] = ()
    """CIDR networks allowed to connect; empty allows any."""
    deny_addresses: tuple[str, ...] = ()
    """CIDR networks refused."""
    max_connections: int = 0
    """Open connections in total, counted from accept (handshake done or not); 0 is unlimited."""
    max_connections_per_address: int = 0
    """Open connections from one address, counted from accept; 0 is unlimited."""
    auth_fail_window: float = 60.0
    """
    Seconds over which failed authentications are counted (from the first
    failure of a key); see L{router.auth.LoginLimiter}.
    """
    auth_fail_limit_authid: int = 10
    """
    Failed authentications of one authid (per realm) within the window, after
    which its attempts are refused (ABORT, reason C{rate_limited}) until the
    window is over; 0 turns this limit off.
    """
    auth_fail_limit_address: int = 50
    """
    Failed authentications from one address (IPv6: its /64) within the window,
    after which its attempts are refused; 0 turns this limit off.
    """
    auth_fail_tracked: int = 10000
    """The most addresses, and the most authids, whose failures are tracked at once (the oldest go first)."""
    max_outbound_buffer: int = 1048576
    """
    Bytes that may wait for one client that stopped reading, beyond the
    socket's own buffer (Twisted's 64 KiB mark); past it the C{slow_consumer}
    policy acts.  0 is unlimited (Twisted buffers without bound: only for
    trusted clients).
    """
    slow_consumer: str = "disconnect"
    """
    What happens past C{max_outbound_buffer}: C{"disconnect"} drops the
    connection (C{session_left} reason C{wampd.close.slow_consumer});
    C{"drop"} drops that client's EVENTs (counted, logged once per stall)
    until it reads again, and still disconnects for anything else (RESULT,
    INVOCATION, ERROR can never be dropped).
    """
    max_nesting_depth: int = 64
    """
    How deeply arrays and objects may nest in one message (its own array is
    level 1), from 8 to 100000, or 0 for no limit.  A deeper request gets
    ERROR C{wamp.error.invalid_argument} (a PUBLISH without C{acknowledge}
    is dropped), anything else ABORT C{wamp.error.protocol_violation}.
    """
    max_retained_topics: int = 10000
    """
    Topics with a retained event, per realm; 0 is unlimited.  When full, the
    topic retained least recently loses its event to the new one.
    """
    retained_ttl: float = 0.0
    """Seconds a retained event is kept; 0 keeps it until replaced or evicted."""

    def __post_init__(self) -> None:
        listen = _check_items("listen", self.listen, ListenConfig, allow_empty=False)
        realms = _check_items("realms", self.realms, RealmConfig, allow_empty=False)
        seen: set[str] = set()
        for index, realm in enumerate(realms):
            if realm.name in seen:
                raise ConfigError(f"realms[{index}]", f"duplicate realm {realm.name!r}")
            seen.add(realm.name)
        listeners = _check_items(
            "listeners", self.listeners, ListenerConfig, allow_empty=True
        )
        object.__setattr__(self, "listen", listen)
        object.__setattr__(self, "realms", realms)
        object.__setattr__(self, "listeners", listeners)
        object.__setattr__(self, "apps", _check_items("apps", self.apps, AppConfig, allow_empty=True))
        for name in ("allowed_origins", "allow_addresses", "deny_addresses"):
            object.__setattr__(self, name, _check_items(name, getattr(self, name), str, allow_empty=True))
        for name in ("max_connections", "max_connections_per_address", "max_outbound_buffer", "max_retained_topics"):
            if _check_int(name, getattr(self, name)) < 0:
                raise ConfigError(name, f"must be 0 (unlimited) or more, got {getattr(self, name)}")
        if _check_str("slow_consumer", self.slow_consumer) not in SLOW_CONSUMER_POLICIES:
            raise ConfigError(
                "slow_consumer",
                f"must be one of {', '.join(map(repr, SLOW_CONSUMER_POLICIES))}, got {self.slow_consumer!r}",
            )
        object.__setattr__(
            self, "hello_timeout", _check_number("hello_timeout", self.hello_timeout, allow_zero=True)
        )
        object.__setattr__(
            self, "auth_fail_window", _check_number("auth_fail_window", self.auth_fail_window, allow_zero=False)
        )
        for name in ("auth_fail_limit_authid", "auth_fail_limit_address"):
            if _check_int(name, getattr(self, name)) < 0:
                raise ConfigError(name, f"must be 0 (off) or more, got {getattr(self, name)}")
        if _check_int("auth_fail_tracked", self.auth_fail_tracked) < 1:
            raise ConfigError("auth_fail_tracked", f"must be 1 or more, got {self.auth_fail_tracked}")
        depth = _check_int("max_nesting_depth", self.max_nesting_depth)
        if depth != 0 and not 8 <= depth <= 100000:
            raise ConfigError(
                "max_nesting_depth", f"must be 0 (no limit) or from 8 to 100000, got {depth}"
            )
        object.__setattr__(
            self, "retained_ttl", _check_number("retained_ttl", self.retained_ttl, allow_zero=True)
        )
        from router.policy import ConnectionPolicy, origin_pattern

        for index, pattern in enumerate(self.allowed_origins):
            try:
                origin_pattern(pattern)
            except ValueError as exc:
                raise ConfigError(f"allowed_origins[{index}]", str(exc)) from None
        try:
            ConnectionPolicy(allow_addresses=self.allow_addresses, deny_addresses=self.deny_addresses)
        except ValueError as exc:
            key = "allow_addresses" if str(exc).startswith("allow") else "deny_addresses"
            raise ConfigError(key, str(exc).split(": ", 1)[1]) from None
        if self.http is not None and not isinstance(self.http, HttpConfig):
            raise ConfigError("http", f"must be an HttpConfig, got {_describe(self.http)}")
        _check_bool("default_listener", self.default_listener)
        if _check_int("max_message_size", self.max_message_size) <= 0:
            raise ConfigError(
                "max_message_size", f"must be greater than 0, got {self.max_message_size}"
            )
        for name, allow_zero in (
            ("ping_interval", True),
            ("ping_timeout", False),
            ("listener_timeout", False),
            ("shutdown_timeout", False),
        ):
            value = _check_number(name, getattr(self, name), allow_zero=allow_zero)
            object.__setattr__(self, name, value)


def parse_listen(spec: str, key: str = "listen") -> ListenConfig:
    """
    Read a command-line listen spec: a Twisted server endpoint string,
    optionally prefixed with the transport.

        - C{"tcp:8080"} or C{"ws:tcp:8080"} or C{"websocket:unix:/tmp/s"}:
          WebSocket (on path C{/ws})
        - C{"rawsocket:tcp:9000"}: RawSocket

    Errors are reported against C{key}.
    """
    _check_str(key, spec)
    prefix, colon, rest = spec.partition(":")
    transport = "websocket"
    endpoint = spec
    if colon and prefix in _CLI_TRANSPORT_PREFIXES:
        transport = _CLI_TRANSPORT_PREFIXES[prefix]
        endpoint = rest
        if not endpoint:
            raise ConfigError(key, f"no endpoint after {prefix + ':'!r} in {spec!r}")
    try:
        return ListenConfig(endpoint, transport)
    except ConfigError as exc:
        raise exc.with_key(key) from None


def _reject_unknown(table: Mapping, allowed: tuple[str, ...], where: str | None) -> None:
    for key in table:
        if key in allowed:
            continue
        path = f"{where}.{key}" if where else str(key)
        reason = f"unknown key; expected one of: {', '.join(allowed)}"
        close = difflib.get_close_matches(str(key), allowed, n=1)
        if close:
            reason += f" (did you mean {close[0]!r}?)"
        raise ConfigError(path, reason)


def _tables(
    data: Mapping, key: str, *, allow_empty: bool, where: str | None = None
) -> list[tuple[str, Mapping]]:
    """
    The C{[[key]]} tables of C{data}, each with its key path (under
    C{where}, the path of C{data}, if given).
    """
    value = data[key]
    path = f"{where}.{key}" if where else key
    # How the user would write this array of tables.
    if where is None:
        form = f"[[{key}]]"
    elif key in ("principal", "role"):
        form = f"[[realm.{key}]]"
    else:
        form = f"{key} = [{{ ... }}, ...]"
    if isinstance(value, Mapping):
        raise ConfigError(path, f"must be an array of tables ({form}), got a single table")
    if not isinstance(value, list):
        raise ConfigError(path, f"must be an array of tables ({form}), got {_describe(value)}")
    if not value and not allow_empty:
        hint = f"; give at least one {form} table" if where is None else ""
        raise ConfigError(path, f"must not be empty{hint}")
    tables = []
    for index, item in enumerate(value):
        path = f"{where}.{key}[{index}]" if where else f"{key}[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(path, f"must be a table, got {_describe(item)}")
        tables.append((path, item))
    return tables


def _required(table: Mapping, key: str, where: str) -> Any:
    if key not in table:
        raise ConfigError(f"{where}.{key}", "is required")
    return table[key]


def _build(where: str, kind: type, **kwargs: Any) -> Any:
    try:
        return kind(**kwargs)
    except ConfigError as exc:
        raise exc.under(where) from None


def _parse_listen_table(where: str, table: Mapping) -> ListenConfig:
    _reject_unknown(table, _LISTEN_KEYS, where)
    kwargs = {key: table[key] for key in _LISTEN_KEYS if key in table}
    kwargs["endpoint"] = _required(table, "endpoint", where)
    listen = _build(where, ListenConfig, **kwargs)
    if "path" in table and listen.transport != "websocket":
        raise ConfigError(f"{where}.path", "only applies to transport 'websocket'")
    return listen


def _parse_realm_table(where: str, table: Mapping, base_dir: str | None = None) -> RealmConfig:
    _reject_unknown(table, _REALM_KEYS, where)
    kwargs: dict[str, Any] = {"name": _required(table, "name", where)}
    if "auth" in table:
        kwargs["auth"] = tuple(
            _parse_auth_table(path, item)
            for path, item in _tables(table, "auth", allow_empty=False, where=where)
        )
    if "principal" in table:
        kwargs["principals"] = tuple(
            _parse_principal_table(path, item, base_dir)
            for path, item in _tables(table, "principal", allow_empty=True, where=where)
        )
    if "role" in table:
        kwargs["roles"] = tuple(
            _parse_role_table(path, item)
            for path, item in _tables(table, "role", allow_empty=True, where=where)
        )
    for key in ("authenticator", "authorizer", "authorizer_cache", "authorizer_timeout"):
        if key in table:
            kwargs[key] = table[key]
    try:
        return RealmConfig(**kwargs)
    except ConfigError as exc:
        # Field names in code are plural; the TOML tables are singular.
        key, reason = exc.key, exc.reason
        if key is not None:
            key = re.sub(r"^principals(?=\[|$)", "principal", key)
            key = re.sub(r"^roles(?=\[|$)", "role", key)
        reason = re.sub(r"(also in )roles\[", r"\1role[", reason)
        reason = re.sub(r"(also in |belongs to )principals\[", r"\1principal[", reason)
        raise ConfigError(key, reason, exc.source).under(where) from None


def _parse_auth_table(where: str, table: Mapping) -> AuthMethodConfig:
    _reject_unknown(table, _AUTH_KEYS, where)
    kwargs = {key: table[key] for key in _AUTH_KEYS if key in table}
    kwargs["method"] = _required(table, "method", where)
    if "transports" in kwargs and not isinstance(kwargs["transports"], list):
        raise ConfigError(
            f"{where}.transports",
            f"must be an array of strings, got {_describe(kwargs['transports'])}",
        )
    return _build(where, AuthMethodConfig, **kwargs)


def _read_secret(where: str, table: Mapping, name: str, base_dir: str | None) -> str | None:
    """
    The secret C{name} of a principal table, given inline (C{name}), by
    environment variable (C{name_env}) or by file (C{name_file}, without its
    trailing newline).  At most one of the three may be given.
    """
    given = [key for key in (name, f"{name}_env", f"{name}_file") if key in table]
    if not given:
        return None
    if len(given) > 1:
        raise ConfigError(
            f"{where}.{given[1]}", f"give only one of {', '.join(given)}"
        )
    key = given[0]
    path = f"{where}.{key}"
    value = table[key]
    if key == name:
        return _check_secret(path, value)
    if key.endswith("_env"):
        variable = _check_str(path, value)
        if not variable:
            raise ConfigError(path, "must name an environment variable")
        secret = os.environ.get(variable)
        if secret is None:
            raise ConfigError(path, f"environment variable {variable} is not set")
        if not secret:
            raise ConfigError(path, f"environment variable {variable} is empty")
        return secret
    filename = _check_str(path, value)
    if not filename:
        raise ConfigError(path, "must name a file")
    full = os.path.join(base_dir, filename) if base_dir else filename
    try:
        with open(full, encoding="utf-8") as stream:
            secret = stream.read()
    except FileNotFoundError:
        raise ConfigError(path, f"no such file: {full}") from None
    except IsADirectoryError:
        raise ConfigError(path, f"is a directory, not a file: {full}") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read {full}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, f"not valid UTF-8: {full}") from None
    if secret.endswith("\r\n"):
        secret = secret[:-2]
    elif secret.endswith("\n"):
        secret = secret[:-1]
    if not secret:
        raise ConfigError(path, f"file {full} is empty")
    return secret


def _parse_principal_table(
    where: str, table: Mapping, base_dir: str | None
) -> PrincipalConfig:
    _reject_unknown(table, _PRINCIPAL_KEYS, where)
    kwargs: dict[str, Any] = {
        "authid": _required(table, "authid", where),
        "role": _required(table, "role", where),
        "ticket": _read_secret(where, table, "ticket", base_dir),
        "secret": _read_secret(where, table, "secret", base_dir),
    }
    for key in ("salt", "iterations", "keylen"):
        if key in table:
            kwargs[key] = table[key]
    if "pubkey" in table and "pubkeys" in table:
        raise ConfigError(f"{where}.pubkeys", "give only one of pubkey, pubkeys")
    if "pubkey" in table:
        kwargs["pubkeys"] = (_check_str(f"{where}.pubkey", table["pubkey"]),)
    elif "pubkeys" in table:
        if not isinstance(table["pubkeys"], list):
            raise ConfigError(
                f"{where}.pubkeys",
                f"must be an array of strings, got {_describe(table['pubkeys'])}",
            )
        kwargs["pubkeys"] = tuple(table["pubkeys"])
    try:
        return PrincipalConfig(**kwargs)
    except ConfigError as exc:
        if exc.key is None:  # about the whole principal
            raise exc.with_key(where) from None
        key = exc.key
        if "pubkey" in table and key.startswith("pubkeys"):
            key = "pubkey"
        raise exc.with_key(key).under(where) from None


def _parse_role_table(where: str, table: Mapping) -> RoleConfig:
    _reject_unknown(table, _ROLE_KEYS, where)
    kwargs: dict[str, Any] = {"name": _required(table, "name", where)}
    if "disclose" in table:
        kwargs["disclose"] = table["disclose"]
    if "permissions" in table:
        kwargs["permissions"] = tuple(
            _parse_permission_table(path, item)
            for path, item in _tables(table, "permissions", allow_empty=True, where=where)
        )
    return _build(where, RoleConfig, **kwargs)


def _parse_permission_table(where: str, table: Mapping) -> PermissionConfig:
    _reject_unknown(table, _PERMISSION_KEYS, where)
    kwargs = {key: table[key] for key in _PERMISSION_KEYS if key in table}
    kwargs["uri"] = _required(table, "uri", where)
    return _build(where, PermissionConfig, **kwargs)


def _parse_listener_table(where: str, table: Mapping) -> ListenerConfig:
    _reject_unknown(table, _LISTENER_KEYS, where)
    kwargs = {key: table[key] for key in _LISTENER_KEYS if key in table}
    kwargs["plugin"] = _required(table, "plugin", where)
    return _build(where, ListenerConfig, **kwargs)


def _parse(data: Mapping, base_dir: str | None = None) -> RouterConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(None, f"the configuration must be a table, got {_describe(data)}")
    _reject_unknown(data, _TOP_LEVEL_KEYS, None)
    kwargs: dict[str, Any] = {}

    router = data.get("router", {})
    if not isinstance(router, Mapping):
        raise ConfigError("router", f"must be a table ([router]), got {_describe(router)}")
    _reject_unknown(router, _ROUTER_KEYS, "router")
    kwargs.update(router)

    if "listen" in data:
        kwargs["listen"] = tuple(
            _parse_listen_table(where, table)
            for where, table in _tables(data, "listen", allow_empty=False)
        )
    if "realm" in data:
        realms = []
        seen: dict[str, str] = {}
        for where, table in _tables(data, "realm", allow_empty=False):
            realm = _parse_realm_table(where, table, base_dir)
            if realm.name in seen:
                raise ConfigError(
                    f"{where}.name",
                    f"duplicate realm {realm.name!r} (also in {seen[realm.name]})",
                )
            seen[realm.name] = where
            realms.append(realm)
        kwargs["realms"] = tuple(realms)
    if "listener" in data:
        kwargs["listeners"] = tuple(
            _parse_listener_table(where, table)
            for where, table in _tables(data, "listener", allow_empty=True)
        )
    if "app" in data:
        apps = []
        for where, table in _tables(data, "app", allow_empty=True):
            _reject_unknown(table, _APP_KEYS, where)
            apps.append(_build(where, AppConfig, plugin=_required(table, "plugin", where)))
        kwargs["apps"] = tuple(apps)
    if "http" in data:
        table = data["http"]
        if not isinstance(table, Mapping):
            raise ConfigError("http", f"must be a table ([http]), got {_describe(table)}")
        _reject_unknown(table, _HTTP_KEYS, "http")
        http_kwargs = {"endpoint": _required(table, "endpoint", "http"), "secret": _http_secret("http", table)}
        if "max_body" in table:
            http_kwargs["max_body"] = table["max_body"]
        kwargs["http"] = _build("http", HttpConfig, **http_kwargs)
    try:
        return RouterConfig(**kwargs)
    except ConfigError as exc:
        # Only the [router] scalars can still be wrong here.
        raise exc.under("router") from None


def parse_config(data: Mapping, source: str = _NO_SOURCE) -> RouterConfig:
    """
    Build a L{RouterConfig} from parsed TOML (a dict as C{tomllib} returns
    it).  Raises L{ConfigError} naming the offending key path and, unless
    C{source} is the default, the file.
    """
    base_dir = None
    if source != _NO_SOURCE:
        base_dir = os.path.dirname(os.path.abspath(source))
    try:
        return _parse(data, base_dir)
    except ConfigError as exc:
        raise exc.with_source(source) from None


def load_config(path: str | os.PathLike[str]) -> RouterConfig:
    """
    Read and parse a TOML configuration file.  A missing or unreadable file
    or a TOML syntax error is a L{ConfigError} naming the file.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(None, "no such file", source) from None
    except IsADirectoryError:
        raise ConfigError(None, "is a directory, not a TOML file", source) from None
    except OSError as exc:
        raise ConfigError(None, f"cannot read: {exc.strerror or exc}", source) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(None, f"not valid UTF-8: {exc}", source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(None, f"invalid TOML: {exc}", source) from None
    return parse_config(data, source)
