"""Every key a wampd TOML config may hold, table by table (the walker in :mod:`router.config._toml` refuses others)."""

from __future__ import annotations

from router.config._ops import OPS_TABLES
from router.config._web import WEB_KEYS

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
    "max_calls_in_flight",
    "max_queued_messages",
    "trusted_proxies",
    "forwarded_header",
    "websocket_deflate",
    "max_history_events",
)
_TOP_LEVEL_KEYS = ("router", "listen", "realm", "listener", "app", "http", "cluster", *OPS_TABLES) + WEB_KEYS
_APP_KEYS = ("plugin",)
_HTTP_KEYS = ("endpoint", "secret", "secret_env", "secret_file", "max_body")
_LISTEN_KEYS = ("endpoint", "transport", "path", "proxy_protocol", "backlog", "client_ca", "client_cert")
_REALM_KEYS = (
    "name",
    "auth",
    "principal",
    "role",
    "authenticator",
    "authorizer",
    "authorizer_cache",
    "authorizer_timeout",
    "anonymous_authid",
    "history",
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
    "scram",
    "tls_fingerprint",
    "tls_fingerprints",
    "tls_cn",
)
_ROLE_KEYS = ("name", "permissions", "disclose")
_PERMISSION_KEYS = ("uri", "match", "call", "register", "publish", "subscribe", "disclose")
_LISTENER_KEYS = ("plugin", "priority", "options")
