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
    backlog = 4096                  # default: net.core.somaxconn, at least 1024
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

The package: L{router.config._errors} (ConfigError and the value checks),
L{router.config._permissions} and L{router.config._realm} (a realm's auth),
L{router.config._values} (everything else), L{router.config._toml} (the TOML
walker).  L{router.config.auth} builds a realm's authenticator and
authorizer from its RealmConfig; it is not imported here (it loads
L{router.auth}), so import it by name.
"""

from router.config._collect import collect_errors
from router.config._cluster import ClusterConfig
from router.config._backlog import default_backlog, effective_endpoint
from router.config._errors import TRANSPORTS, ConfigError
from router.config._ops import MetricsConfig, StatusConfig
from router.config._permissions import ACTIONS, MATCH_POLICIES, PermissionConfig, RoleConfig
from router.config._realm import AUTH_METHODS, AuthMethodConfig, PrincipalConfig, RealmConfig
from router.config._scram import ScramConfig
from router.config._toml import load_config, parse_config
from router.config._values import (
    DEFAULT_ENDPOINT,
    DEFAULT_REALM,
    SLOW_CONSUMER_POLICIES,
    AppConfig,
    HttpConfig,
    ListenConfig,
    ListenerConfig,
    RouterConfig,
)
from router.config._listen import parse_listen
from router.config._web import HttpCalleeConfig, LongPollConfig, UniversalConfig, WebConfig, WebhookConfig

__all__ = [
    "ACTIONS",
    "AUTH_METHODS",
    "DEFAULT_ENDPOINT",
    "DEFAULT_REALM",
    "MATCH_POLICIES",
    "SLOW_CONSUMER_POLICIES",
    "TRANSPORTS",
    "AuthMethodConfig",
    "ConfigError",
    "PermissionConfig",
    "PrincipalConfig",
    "ScramConfig",
    "RoleConfig",
    "AppConfig",
    "ClusterConfig",
    "HttpConfig",
    "HttpCalleeConfig",
    "LongPollConfig",
    "UniversalConfig",
    "WebConfig",
    "WebhookConfig",
    "MetricsConfig",
    "StatusConfig",
    "ListenConfig",
    "ListenerConfig",
    "RealmConfig",
    "RouterConfig",
    "collect_errors",
    "load_config",
    "parse_config",
    "parse_listen",
    "default_backlog",
    "effective_endpoint",
]
