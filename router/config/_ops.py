"""
The operations settings: Prometheus metrics (``[metrics]``) and the live
status page (``[status]``), and where their HTTP listener is.

Both are off by default.  Each is served on its own ``endpoint``, or, without
one, on the HTTP push port (``[http]``); the status page without an endpoint
of its own goes where the metrics are.  ``/healthz`` and ``/readyz`` are
answered on every listener that serves either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from router.config._endpoints import _check_endpoint
from router.config._errors import ConfigError, _check_bool, _check_int, _check_number, _check_str

__all__ = ["MetricsConfig", "StatusConfig", "METRICS_EXTRA", "OPS_TABLES", "check_ops", "ops_options", "prometheus_missing"]

#: the top-level TOML tables read here
OPS_TABLES = ("metrics", "status")
OPS_KEYS = {
    "metrics": ("enabled", "endpoint"),
    "status": ("enabled", "endpoint", "secret", "secret_env", "secret_file", "recent_events", "interval"),
}

#: what to install for metrics, named in every error about it
METRICS_EXTRA = "pip install 'wampd[metrics]'"


def prometheus_missing() -> str | None:
    """Why metrics cannot be served in this Python (prometheus_client is not importable), or None."""
    try:
        import prometheus_client  # noqa: F401  # lazy: an optional extra, looked for only when metrics are on
    except ImportError:
        return f"needs the prometheus_client package, which is not installed: {METRICS_EXTRA}"
    return None


def _check_endpoint_or_none(key: str, value: Any) -> None:
    if value is None:
        return
    _check_endpoint(key, _check_str(key, value))


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus metrics on ``GET /metrics`` (off by default)."""

    enabled: bool = False
    endpoint: str | None = None
    """A Twisted server endpoint of its own; None serves on the ``[http]`` push port."""

    def __post_init__(self) -> None:
        _check_bool("enabled", self.enabled)
        _check_endpoint_or_none("endpoint", self.endpoint)
        if self.enabled:
            missing = prometheus_missing()
            if missing is not None:
                raise ConfigError("enabled", missing)


@dataclass(frozen=True)
class StatusConfig:
    """The live status page on ``GET /status`` (off by default), behind a secret."""

    enabled: bool = False
    secret: str | None = field(default=None, repr=False)
    """Opens the page: ``/status?token=<secret>`` once (a cookie then), or ``Authorization: Bearer``."""
    endpoint: str | None = None
    """A Twisted server endpoint of its own; None: where the metrics are, else the ``[http]`` port."""
    recent_events: int = 50
    """Lifecycle events the page keeps and shows."""
    interval: float = 1.0
    """Seconds between updates pushed to open pages."""

    def __post_init__(self) -> None:
        _check_bool("enabled", self.enabled)
        _check_endpoint_or_none("endpoint", self.endpoint)
        if self.secret is not None and not _check_str("secret", self.secret):
            raise ConfigError("secret", "must not be empty")
        if self.enabled and self.secret is None:
            raise ConfigError("secret", "is required: the status page is never open (give secret, secret_env or secret_file)")
        if not 1 <= _check_int("recent_events", self.recent_events) <= 10000:
            raise ConfigError("recent_events", f"must be from 1 to 10000, got {self.recent_events}")
        value = _check_number("interval", self.interval, allow_zero=False)
        if value < 0.1:
            raise ConfigError("interval", f"must be at least 0.1 seconds, got {value}")
        object.__setattr__(self, "interval", value)


def check_ops(config: Any) -> None:
    """The checks across tables: the types, and a listener to serve on (an endpoint, or ``[http]``)."""
    for name, kind in (("metrics", MetricsConfig), ("status", StatusConfig)):
        value = getattr(config, name)
        if value is not None and not isinstance(value, kind):
            raise ConfigError(name, f"must be a {kind.__name__}, got {type(value).__name__}")
    metrics, status = config.metrics, config.status
    if metrics is not None and metrics.enabled and metrics.endpoint is None and config.http is None:
        raise ConfigError("metrics.endpoint", "needs an endpoint of its own, or [http] (--http) to share its port")
    if status is not None and status.enabled and status.endpoint is None and config.http is None:
        if metrics is None or not metrics.enabled:
            raise ConfigError("status.endpoint", "needs an endpoint of its own, or [metrics] or [http] (--http) to share a port")


def ops_options(metrics: str | None, status: str | None, secret: str | None, config: Any) -> dict[str, Any]:
    """
    The RouterConfig fields the command line's ``--metrics``, ``--status`` and
    ``--status-secret`` set (``'http'``: the push port); a ConfigError's key is the option's name.
    """
    import dataclasses

    changes: dict[str, Any] = {}
    try:
        if metrics is not None:
            changes["metrics"] = MetricsConfig(True, None if metrics == "http" else metrics)
    except ConfigError as exc:
        raise ConfigError("metrics", exc.reason) from None
    if status is None and secret is None:
        return changes
    base = config.status or StatusConfig()
    if status is None and not base.enabled:
        raise ConfigError("status-secret", "goes with --status (or an enabled [status] table)")
    try:
        endpoint = base.endpoint if status is None else (None if status == "http" else status)
        changes["status"] = dataclasses.replace(base, enabled=True, endpoint=endpoint, secret=secret or base.secret)
    except ConfigError as exc:
        raise ConfigError("status" if exc.key != "secret" else "status-secret", exc.reason) from None
    return changes
