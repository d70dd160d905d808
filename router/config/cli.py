"""
The tables of C{twistd wampd}'s command-line options (L{router.tap}): the
options with a value, and which L{RouterConfig} field each one sets.
"""

from __future__ import annotations

__all__ = ["LIST_OPTIONS", "NUMBER_OPTIONS", "OPT_PARAMETERS"]

# option name -> (RouterConfig field, converter, what the value must be)
NUMBER_OPTIONS = (
    ("max-message-size", "max_message_size", int, "an integer"),
    ("max-outbound-buffer", "max_outbound_buffer", int, "an integer"),
    ("slow-consumer", "slow_consumer", str, "a string"),
    ("ping-interval", "ping_interval", float, "a number"),
    ("ping-timeout", "ping_timeout", float, "a number"),
    ("listener-timeout", "listener_timeout", float, "a number"),
    ("shutdown-timeout", "shutdown_timeout", float, "a number"),
    ("hello-timeout", "hello_timeout", float, "a number"),
    ("max-connections", "max_connections", int, "an integer"),
    ("max-connections-per-address", "max_connections_per_address", int, "an integer"),
    ("auth-fail-window", "auth_fail_window", float, "a number"),
    ("auth-fail-limit-authid", "auth_fail_limit_authid", int, "an integer"),
    ("auth-fail-limit-address", "auth_fail_limit_address", int, "an integer"),
    ("auth-fail-tracked", "auth_fail_tracked", int, "an integer"),
    ("max-nesting-depth", "max_nesting_depth", int, "an integer"),
    ("max-retained-topics", "max_retained_topics", int, "an integer"),
    ("retained-ttl", "retained_ttl", float, "a number"),
    ("max-calls-in-flight", "max_calls_in_flight", int, "an integer"),
    ("max-queued-messages", "max_queued_messages", int, "an integer"),
    ("forwarded-header", "forwarded_header", str, "a string"),
    ("max-history-events", "max_history_events", int, "an integer"),
)
# repeatable option -> RouterConfig field (values added to the config file's)
LIST_OPTIONS = (
    ("allowed-origin", "allowed_origins"),
    ("allow-address", "allow_addresses"),
    ("deny-address", "deny_addresses"),
    ("trusted-proxy", "trusted_proxies"),
)

OPT_PARAMETERS = (
    (
        "ws-path",
        None,
        None,
        "The HTTP path of every WebSocket endpoint, e.g. /wamp; replaces the "
        "config file's [[listen]] path values [default: /ws].",
    ),
    ("log-format", None, None, "Log lines as 'text' or 'json' (one object per line) [default: text]."),
    ("log-level", None, None, "Log this level and above: debug, info, warn, error or critical [default: info]."),
    (
        "cluster",
        None,
        None,
        "Join a cluster over Redis: redis://HOST[:PORT][/DB] or unix:PATH "
        "(needs the cluster extra: pip install 'wampd[cluster]').",
    ),
    (
        "workers",
        None,
        None,
        "Run N router processes sharing the listening ports, joined as a cluster "
        "(a private redis-server unless --cluster is given) [default: 1].",
    ),
    ("worker-fds", None, None, "Internal, set by --workers: the listening sockets a worker inherits."),
    ("cluster-name", None, None, "This node's name in the cluster, unique among live nodes [default: <hostname>-<pid>]."),
    (
        "metrics",
        None,
        None,
        "Serve Prometheus metrics (GET /metrics), /healthz and /readyz on this Twisted endpoint string, "
        "or 'http' for the --http port. Needs pip install 'wampd[metrics]'.",
    ),
    ("status", None, None, "Serve the live status page (GET /status) on this endpoint, or 'http'. Needs --status-secret."),
    ("status-secret", None, None, "The status page's secret: open /status?token=SECRET once."),
    (
        "http",
        None,
        None,
        "Serve the HTTP push endpoint (POST /publish, POST /call) on this "
        "Twisted endpoint string, e.g. tcp:8081:interface=127.0.0.1. Needs --http-secret.",
    ),
    ("hello-timeout", None, None, "Seconds a connection may take for its transport handshake, and to join (HELLO to WELCOME); 0 disables [default: 10]."),
    ("max-connections", None, None, "Most open connections in total, counted from accept; 0 is unlimited [default: 0]."),
    ("max-connections-per-address", None, None, "Most open connections from one address, counted from accept; 0 is unlimited [default: 0]."),
    ("auth-fail-window", None, None, "Seconds over which failed authentications are counted [default: 60]."),
    (
        "auth-fail-limit-authid",
        None,
        None,
        "Failed authentications of one authid per window before its attempts are refused; 0 is off [default: 10].",
    ),
    (
        "auth-fail-limit-address",
        None,
        None,
        "Failed authentications from one address per window before its attempts are refused; 0 is off [default: 50].",
    ),
    ("auth-fail-tracked", None, None, "Most addresses, and most authids, tracked for failed authentications [default: 10000]."),
    (
        "max-nesting-depth",
        None,
        None,
        "How deeply arrays/objects may nest in one message; deeper requests get "
        "ERROR invalid_argument; 0 is no limit [default: 64].",
    ),
    (
        "max-retained-topics",
        None,
        None,
        "Topics with a retained event per realm; when full, the least recently "
        "retained topic's event goes; 0 is unlimited [default: 10000].",
    ),
    ("retained-ttl", None, None, "Seconds a retained event is kept; 0 is until replaced [default: 0]."),
    ("max-calls-in-flight", None, None, "Unanswered CALLs one session may have at once; 0 is unlimited [default: 1000]."),
    ("forwarded-header", None, None, "The header trusted proxies name the client in: x-forwarded-for or forwarded [default: x-forwarded-for]."),
    ("max-queued-messages", None, None, "Messages one session may send while an authorization is pending; 0 is unlimited [default: 1000]."),
    ("max-history-events", None, None, "Events kept for event history per realm, all its [[realm.history]] topics together [default: 10000]."),
    (
        "http-secret",
        None,
        None,
        "The shared secret push requests must send as 'Authorization: Bearer <secret>'.",
    ),
    (
        "config",
        None,
        None,
        "Read settings from this TOML file; the options below override it.",
    ),
    (
        "max-message-size",
        None,
        None,
        "Largest message accepted, in bytes [default: 1048576].",
    ),
    (
        "max-outbound-buffer",
        None,
        None,
        "Bytes that may wait for a client that stopped reading, beyond the socket's "
        "own buffer; 0 is unlimited [default: 1048576].",
    ),
    (
        "slow-consumer",
        None,
        None,
        "What happens to a client over --max-outbound-buffer: 'disconnect' it, or "
        "'drop' its events (anything else still disconnects) [default: disconnect].",
    ),
    (
        "ping-interval",
        None,
        None,
        "Seconds between WebSocket pings to an idle connection; "
        "0 disables pings [default: 30].",
    ),
    (
        "ping-timeout",
        None,
        None,
        "Seconds to wait for a pong before dropping the connection "
        "[default: 10].",
    ),
    (
        "listener-timeout",
        None,
        None,
        "Seconds a listener handler may take [default: 5].",
    ),
    (
        "shutdown-timeout",
        None,
        None,
        "Seconds to wait for sessions to say GOODBYE at shutdown [default: 3].",
    ),
)
