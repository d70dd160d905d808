"""The router's configuration values: endpoints, listeners, apps, HTTP push, the router itself."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from router.config._errors import (
    LISTEN_TRANSPORTS,
    ConfigError,
    _check_bool,
    _check_int,
    _check_items,
    _check_number,
    _check_plugin_spec,
    _check_str,
    _describe,
)
from router.config._proxy import check_proxy_protocol_endpoint, check_proxy_settings
from router.config._cluster import ClusterConfig
from router.config._backlog import check_backlog
from router.config._endpoints import _check_endpoint
from router.config._ops import MetricsConfig, StatusConfig, check_ops
from router.config._realm import RealmConfig
from router.config._web import WebConfig
from router.config._tls import check_client_ca, check_deflate
from router.policy import ConnectionPolicy, origin_pattern

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_REALM",
    "SLOW_CONSUMER_POLICIES",
    "AppConfig",
    "HttpConfig",
    "ListenConfig",
    "ListenerConfig",
    "RouterConfig",
]

DEFAULT_ENDPOINT = "tcp:8080:interface=127.0.0.1"
DEFAULT_REALM = "realm1"
# A WebSocket path: starts with "/", printable ASCII, no query or fragment.
_HTTP_PATH = re.compile(r"/[!-~]*")
#: What ``slow_consumer`` may say (the first is the default).
SLOW_CONSUMER_POLICIES = ("disconnect", "drop")


@dataclass(frozen=True)
class ListenConfig:
    """One endpoint the router listens on."""

    endpoint: str
    """A Twisted server endpoint string, e.g. C{"tcp:8080:interface=127.0.0.1"}."""
    transport: str = "websocket"
    """C{"websocket"}, C{"rawsocket"}, C{"longpoll"} or C{"universal"} (all of them on one port)."""
    path: str = "/ws"
    """WebSocket and universal: the HTTP path WebSocket clients connect to."""
    proxy_protocol: bool = False
    """Every connection from a trusted proxy starts with a PROXY protocol v1/v2 header (router.wire.proxy)."""
    backlog: int | None = None
    """The listen backlog; None: the endpoint string's C{backlog=}, else the default (see L{_backlog})."""
    client_ca: str | None = None
    """C{ssl:} only: a PEM file of CAs; clients present a certificate they signed (method C{tls})."""
    client_cert: str = "required"
    """With C{client_ca}: C{"required"}, or C{"optional"} (see L{router.config._tls})."""

    def __post_init__(self) -> None:
        _check_endpoint("endpoint", _check_str("endpoint", self.endpoint))
        check_backlog(self.endpoint, self.backlog)
        check_proxy_protocol_endpoint(self)
        check_client_ca(self.endpoint, self.client_ca, self.client_cert)
        _check_str("transport", self.transport)
        if self.transport not in LISTEN_TRANSPORTS:
            raise ConfigError("transport", f"must be one of {', '.join(LISTEN_TRANSPORTS)}, got {self.transport!r}")
        _check_str("path", self.path)
        if not _HTTP_PATH.fullmatch(self.path) or "?" in self.path or "#" in self.path:
            raise ConfigError(
                "path",
                "must start with '/' and contain no whitespace, '?' or '#', "
                f"got {self.path!r}",
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
    web: WebConfig = field(default_factory=WebConfig)
    """The universal listener, the long-poll transport, webhooks and HTTP callees (router.config._web)."""
    cluster: ClusterConfig | None = None
    """Join a cluster over Redis (the ``[cluster]`` table, ``--cluster``); None: one process."""
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
    max_calls_in_flight: int = 1000
    """CALLs one session may have unanswered at once; one more gets ERROR C{wampd.error.too_many_calls}; 0 unlimited."""
    max_queued_messages: int = 1000
    """Messages one session may send while a dynamic authorizer's answer is pending; one more is a protocol violation; 0 unlimited."""
    trusted_proxies: tuple[str, ...] = ()
    """CIDR networks whose forwarded-client headers and PROXY headers are believed (router.wire.proxy)."""
    forwarded_header: str = "x-forwarded-for"
    """The header a trusted proxy names the client in: ``x-forwarded-for`` or ``forwarded`` (RFC 7239)."""
    metrics: MetricsConfig | None = None  # Prometheus /metrics (router.config._ops)
    status: StatusConfig | None = None  # the live status page (router.config._ops)
    websocket_deflate: bool = False
    """Offer permessage-deflate to WebSocket clients (L{router.wire.wsmodes}); inflating stops at C{max_message_size}."""
    max_history_events: int = 10000
    """Events kept for event history per realm, all topics together (C{[[realm.history]]}); the oldest go first."""

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
        object.__setattr__(self, "trusted_proxies", check_proxy_settings(self))
        object.__setattr__(self, "forwarded_header", self.forwarded_header.lower())
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
        if _check_int("max_history_events", self.max_history_events) < 1:
            raise ConfigError("max_history_events", f"must be 1 or more, got {self.max_history_events}")
        for name in ("max_calls_in_flight", "max_queued_messages"):
            if _check_int(name, getattr(self, name)) < 0:
                raise ConfigError(name, f"must be 0 (unlimited) or more, got {getattr(self, name)}")
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
        if self.cluster is not None and not isinstance(self.cluster, ClusterConfig):
            raise ConfigError("cluster", f"must be a ClusterConfig, got {_describe(self.cluster)}")
        _check_bool("default_listener", self.default_listener)
        check_ops(self)
        check_deflate(_check_bool("websocket_deflate", self.websocket_deflate))
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
