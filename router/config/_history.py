"""
Event history configuration of a realm (``[[realm.history]]``; the broker's
side is :mod:`router.broker._history`).

Each table names a topic (``match`` exact, prefix or wildcard, as a
subscription) and how many of its latest events are kept (``limit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from router.config._errors import ConfigError, _check_int, _check_str
from router.config._permissions import _is_uri

__all__ = ["HistoryConfig", "HISTORY_KEYS", "DEFAULT_HISTORY_LIMIT", "MAX_HISTORY_LIMIT", "parse_history_table"]

HISTORY_KEYS = ("topic", "match", "limit")
DEFAULT_HISTORY_LIMIT = 100
#: The most events one topic may keep (the realm's max_history_events bounds them all together).
MAX_HISTORY_LIMIT = 100_000
_MATCHES = ("exact", "prefix", "wildcard")


@dataclass(frozen=True)
class HistoryConfig:
    """A topic whose events are kept for ``wamp.subscription.get_events``."""

    topic: str
    match: str = "exact"
    limit: int = DEFAULT_HISTORY_LIMIT

    def __post_init__(self) -> None:
        _check_str("topic", self.topic)
        if _check_str("match", self.match) not in _MATCHES:
            raise ConfigError("match", f"must be one of {', '.join(_MATCHES)}, got {self.match!r}")
        if self.match == "exact" and not _is_uri(self.topic):
            raise ConfigError("topic", f"must be a WAMP URI, got {self.topic!r}")
        if not self.topic or self.topic.startswith("wamp."):
            raise ConfigError("topic", f"must be a non-empty topic outside wamp.*, got {self.topic!r}")
        if not 1 <= _check_int("limit", self.limit) <= MAX_HISTORY_LIMIT:
            raise ConfigError("limit", f"must be from 1 to {MAX_HISTORY_LIMIT}, got {self.limit}")


def parse_history_table(where: str, table: Mapping) -> HistoryConfig:
    """One ``[[realm.history]]`` table (its unknown keys already refused by the caller)."""
    if "topic" not in table:
        raise ConfigError(f"{where}.topic", "is required")
    try:
        return HistoryConfig(**{key: table[key] for key in HISTORY_KEYS if key in table})
    except ConfigError as exc:
        raise exc.under(where) from None
