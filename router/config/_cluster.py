"""The ``[cluster]`` table: how a node joins a cluster over Redis (see the README's "Cluster")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from router.cluster import parse_redis_url
from router.config._errors import ConfigError, _check_bool, _check_number, _check_str, _describe

__all__ = ["ClusterConfig", "CLUSTER_KEYS", "parse_cluster"]

#: Keys of the ``[cluster]`` table.
CLUSTER_KEYS = ("url", "name", "prefix", "heartbeat", "timeout", "push_role", "prefer_local")
_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@dataclass(frozen=True)
class ClusterConfig:
    """One node's part in a cluster: Redis's URL, the node's name, the key prefix, the heartbeat."""

    url: str
    """``redis://HOST[:PORT][/DB]`` or ``unix:PATH[?db=N]``."""
    name: str = ""
    """This node's name, unique among live nodes; empty: ``<hostname>-<pid>``."""
    prefix: str = "wampd:"
    """Prefix of every Redis key and channel the cluster uses (several clusters can share a Redis)."""
    heartbeat: float = 1.0
    """Seconds between a node's heartbeats."""
    timeout: float = 3.0
    """Seconds without a heartbeat after which a node is gone (its sessions, subscriptions, calls)."""
    push_role: str = ""
    """Publish what programs push to the Redis list ``<prefix>push:<realm>``, authorized as this role; empty: off."""
    prefer_local: bool = False
    """Serve a call by a callee on this node when it has one; False: shared registrations' policies pick among every node's callees."""

    def __post_init__(self) -> None:
        try:
            parse_redis_url(_check_str("url", self.url))
        except ValueError as exc:
            raise ConfigError("url", str(exc)) from None
        if _check_str("name", self.name) and not _NAME.fullmatch(self.name):
            raise ConfigError("name", f"must be 1 to 64 of A-Z a-z 0-9 _ . @ -, got {self.name!r}")
        if not _check_str("prefix", self.prefix) or any(c.isspace() for c in self.prefix):
            raise ConfigError("prefix", f"must be a non-empty string without spaces, got {self.prefix!r}")
        if _check_str("push_role", self.push_role) != self.push_role.strip():
            raise ConfigError("push_role", f"must not start or end with spaces, got {self.push_role!r}")
        _check_bool("prefer_local", self.prefer_local)
        heartbeat = _check_number("heartbeat", self.heartbeat, allow_zero=False)
        timeout = _check_number("timeout", self.timeout, allow_zero=False)
        if timeout < 2 * heartbeat:
            raise ConfigError(
                "timeout", f"must be at least twice the heartbeat ({heartbeat:g} s), got {timeout:g}: "
                "one late heartbeat must not declare a live node gone"
            )
        object.__setattr__(self, "heartbeat", heartbeat)
        object.__setattr__(self, "timeout", timeout)


def parse_cluster(table) -> ClusterConfig:
    """The ``[cluster]`` table of a config file (errors name ``cluster.<key>``)."""
    if not isinstance(table, Mapping):
        raise ConfigError("cluster", f"must be a table ([cluster]), got {_describe(table)}")
    unknown = sorted(set(table) - set(CLUSTER_KEYS))
    if unknown:
        raise ConfigError(f"cluster.{unknown[0]}", f"unknown key; expected one of: {', '.join(CLUSTER_KEYS)}")
    if "url" not in table:
        raise ConfigError("cluster.url", "is required")
    try:
        return ClusterConfig(**table)
    except ConfigError as exc:
        raise exc.under("cluster") from None
