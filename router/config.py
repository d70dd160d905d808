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
    ping_interval = 30.0
    ping_timeout = 10.0
    listener_timeout = 5.0
    shutdown_timeout = 3.0
    default_listener = true

    [[listen]]
    endpoint = "tcp:8080:interface=127.0.0.1"
    transport = "websocket"
    path = "/ws"

    [[realm]]
    name = "realm1"

    [[listener]]
    plugin = "mypkg.mod:MyListener"
    priority = 10
    options = { greeting = "hi" }

Absent sections keep their defaults.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    "DEFAULT_ENDPOINT",
    "DEFAULT_REALM",
    "TRANSPORTS",
    "ConfigError",
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
_ROUTER_KEYS = (
    "max_message_size",
    "ping_interval",
    "ping_timeout",
    "listener_timeout",
    "shutdown_timeout",
    "default_listener",
)
_TOP_LEVEL_KEYS = ("router", "listen", "realm", "listener", "app", "http")
_APP_KEYS = ("plugin",)
_HTTP_KEYS = ("endpoint", "secret", "secret_env", "secret_file", "max_body")
_LISTEN_KEYS = ("endpoint", "transport", "path")
_REALM_KEYS = ("name",)
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


@dataclass(frozen=True)
class RealmConfig:
    """A realm the router serves."""

    name: str
    """A WAMP URI; URIs starting with C{"wamp."} are reserved."""

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
        plugin = _check_str("plugin", self.plugin)
        if not plugin or plugin != plugin.strip() or any(c.isspace() for c in plugin):
            raise ConfigError(
                "plugin", f"must be a non-empty name without whitespace, got {plugin!r}"
            )
        if ":" in plugin:
            module, _, attribute = plugin.partition(":")
            if not (_DOTTED_NAME.fullmatch(module) and _DOTTED_NAME.fullmatch(attribute)):
                raise ConfigError(
                    "plugin",
                    f"must look like 'package.module:Attribute', got {plugin!r}",
                )
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


def _tables(data: Mapping, key: str, *, allow_empty: bool) -> list[tuple[str, Mapping]]:
    """The C{[[key]]} tables of C{data}, each with its key path."""
    value = data[key]
    if isinstance(value, Mapping):
        raise ConfigError(key, f"must be an array of tables ([[{key}]]), got a single table")
    if not isinstance(value, list):
        raise ConfigError(key, f"must be an array of tables ([[{key}]]), got {_describe(value)}")
    if not value and not allow_empty:
        raise ConfigError(key, f"must not be empty; give at least one [[{key}]] table")
    tables = []
    for index, item in enumerate(value):
        path = f"{key}[{index}]"
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


def _parse_realm_table(where: str, table: Mapping) -> RealmConfig:
    _reject_unknown(table, _REALM_KEYS, where)
    return _build(where, RealmConfig, name=_required(table, "name", where))


def _parse_listener_table(where: str, table: Mapping) -> ListenerConfig:
    _reject_unknown(table, _LISTENER_KEYS, where)
    kwargs = {key: table[key] for key in _LISTENER_KEYS if key in table}
    kwargs["plugin"] = _required(table, "plugin", where)
    return _build(where, ListenerConfig, **kwargs)


def _parse(data: Mapping) -> RouterConfig:
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
            realm = _parse_realm_table(where, table)
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
    try:
        return _parse(data)
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
