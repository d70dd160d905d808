"""
The web side of the configuration: the universal listener's sniffing, the
HTTP long-poll transport, and the HTTP bridge (webhook subscribers and HTTP
callees).  TOML tables ``[universal]``, ``[longpoll]``, ``[[webhook]]`` and
``[[http_callee]]``, read by :func:`parse_web` into one :class:`WebConfig`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from router.config._errors import ConfigError, _check_int, _check_number, _check_str, _describe
from router.uri import is_valid_uri

__all__ = ["HttpCalleeConfig", "LongPollConfig", "UniversalConfig", "WebConfig", "WebhookConfig", "parse_web"]

_PATH = re.compile(r"/[!-~]*")
_MATCHES = ("exact", "prefix", "wildcard")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _positive(key: str, value: object, *, allow_zero: bool = False) -> float:
    return _check_number(key, value, allow_zero=allow_zero)


def _count(key: str, value: object, *, low: int = 1) -> int:
    if _check_int(key, value) < low:
        raise ConfigError(key, f"must be {low} or more, got {value}")
    return value


def _url(key: str, value: object) -> str:
    url = _check_str(key, value)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"must be an http:// or https:// URL with a host, got {url!r}")
    return url


def _headers(key: str, value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"must be a table of header names to strings, got {_describe(value)}")
    for name, text in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigError(f"{key}.{name}", "is not a valid HTTP header name")
        if not isinstance(text, str) or "\r" in text or "\n" in text:
            raise ConfigError(f"{key}.{name}", "must be a string on one line")
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class UniversalConfig:
    """How a ``universal`` listener tells its clients apart (``[universal]``)."""

    sniff_timeout: float = 10.0
    """Seconds a new connection has to send its first line (RawSocket's 4 bytes or an HTTP request line)."""
    max_request_line: int = 8192
    """The longest HTTP request line read while sniffing; a longer one (or garbage) is closed."""

    def __post_init__(self) -> None:
        _positive("sniff_timeout", self.sniff_timeout)
        _count("max_request_line", self.max_request_line, low=64)


@dataclass(frozen=True)
class LongPollConfig:
    """The HTTP long-poll transport (``[longpoll]``)."""

    path: str = "/lp"
    """The base path: ``<path>/open``, ``<path>/<transport>/send|receive|close``."""
    request_timeout: float = 10.0
    """Seconds a receive request is held open with nothing to deliver before it is answered empty (204)."""
    session_timeout: float = 30.0
    """Seconds a transport may go without a receive request before it is dropped."""

    def __post_init__(self) -> None:
        path = _check_str("path", self.path)
        if not _PATH.fullmatch(path) or "?" in path or "#" in path or path == "/":
            raise ConfigError("path", f"must start with '/', name a path and contain no whitespace, '?' or '#', got {path!r}")
        object.__setattr__(self, "path", path.rstrip("/"))
        _positive("request_timeout", self.request_timeout)
        _positive("session_timeout", self.session_timeout)
        if self.session_timeout <= self.request_timeout:
            raise ConfigError(
                "session_timeout",
                f"must be longer than request_timeout ({self.request_timeout:g}), got {self.session_timeout:g}",
            )


@dataclass(frozen=True)
class WebhookConfig:
    """Events on a topic POSTed as JSON to a URL (one ``[[webhook]]``)."""

    topic: str
    url: str
    realm: str = "realm1"
    match: str = "exact"
    timeout: float = 10.0
    """Seconds one POST may take (connecting included)."""
    retries: int = 3
    """Further attempts after a failed POST of one event, then the event is dropped."""
    backoff: float = 1.0
    """Seconds before the first retry; doubled for each later one (at most 60 s)."""
    max_queue: int = 1000
    """Events waiting for their POST; one more is dropped (counted, logged once per outage)."""
    max_body: int = 1048576
    """The largest event body POSTed; a bigger event is dropped."""
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __post_init__(self) -> None:
        topic = _check_str("topic", self.topic)
        match = _check_str("match", self.match)
        if match not in _MATCHES:
            raise ConfigError("match", f"must be one of {', '.join(_MATCHES)}, got {match!r}")
        # a wildcard pattern's empty components match any one component
        candidate = ".".join(part or "x" for part in topic.split(".")) if match == "wildcard" else topic
        if not is_valid_uri(candidate):
            raise ConfigError("topic", f"{topic!r} is not a valid {match} topic")
        _check_str("realm", self.realm)
        _url("url", self.url)
        _positive("timeout", self.timeout)
        _count("retries", self.retries, low=0)
        _positive("backoff", self.backoff)
        _count("max_queue", self.max_queue)
        _count("max_body", self.max_body)
        object.__setattr__(self, "headers", _headers("headers", self.headers))


@dataclass(frozen=True)
class HttpCalleeConfig:
    """A procedure answered by POSTing its arguments to a URL (one ``[[http_callee]]``)."""

    procedure: str
    url: str
    realm: str = "realm1"
    timeout: float = 10.0
    """Seconds the URL has to answer; then the caller gets ``wampd.error.http_timeout``."""
    max_response: int = 1048576
    """The largest response body read; a bigger one is ``wampd.error.http_response_too_large``."""
    max_body: int = 1048576
    """The largest request body sent; bigger arguments are ``wamp.error.invalid_argument``."""
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __post_init__(self) -> None:
        procedure = _check_str("procedure", self.procedure)
        if not is_valid_uri(procedure):
            raise ConfigError("procedure", f"{procedure!r} is not a valid URI")
        if procedure.startswith("wamp."):
            raise ConfigError("procedure", "wamp.* procedures belong to the router")
        _check_str("realm", self.realm)
        _url("url", self.url)
        _positive("timeout", self.timeout)
        _count("max_response", self.max_response)
        _count("max_body", self.max_body)
        object.__setattr__(self, "headers", _headers("headers", self.headers))


@dataclass(frozen=True)
class WebConfig:
    universal: UniversalConfig = field(default_factory=UniversalConfig)
    longpoll: LongPollConfig = field(default_factory=LongPollConfig)
    webhooks: tuple[WebhookConfig, ...] = ()
    http_callees: tuple[HttpCalleeConfig, ...] = ()


_TABLES = {
    "universal": (UniversalConfig, ("sniff_timeout", "max_request_line")),
    "longpoll": (LongPollConfig, ("path", "request_timeout", "session_timeout")),
}
_ARRAYS = {
    "webhook": (
        WebhookConfig,
        ("topic", "url", "realm", "match", "timeout", "retries", "backoff", "max_queue", "max_body", "headers"),
        ("topic", "url"),
    ),
    "http_callee": (
        HttpCalleeConfig,
        ("procedure", "url", "realm", "timeout", "max_response", "max_body", "headers"),
        ("procedure", "url"),
    ),
}
#: The top-level TOML keys this module reads.
WEB_KEYS = tuple(_TABLES) + tuple(_ARRAYS)


def _build(where: str, kind: type, table: object, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> Any:
    if not isinstance(table, Mapping):
        raise ConfigError(where, f"must be a table, got {_describe(table)}")
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}", f"unknown key; expected one of {', '.join(allowed)}")
    for key in required:
        if key not in table:
            raise ConfigError(f"{where}.{key}", "is required")
    try:
        return kind(**dict(table))
    except ConfigError as exc:
        raise exc.under(where) from None


def parse_web(data: Mapping, realms: tuple[str, ...]) -> WebConfig:
    """The web tables of a parsed TOML document; ``realms``: the realm names, which bridges must name."""
    kwargs: dict[str, Any] = {}
    for key, (kind, allowed) in _TABLES.items():
        if key in data:
            kwargs[key] = _build(key, kind, data[key], allowed)
    for key, (kind, allowed, required) in _ARRAYS.items():
        if key not in data:
            continue
        tables = data[key]
        if not isinstance(tables, list):
            raise ConfigError(key, f"must be an array of tables ([[{key}]]), got {_describe(tables)}")
        items = []
        for index, table in enumerate(tables):
            where = f"{key}[{index}]"
            item = _build(where, kind, table, allowed, required)
            if item.realm not in realms:
                raise ConfigError(f"{where}.realm", f"no realm {item.realm!r} is configured")
            items.append(item)
        kwargs["webhooks" if key == "webhook" else "http_callees"] = tuple(items)
    return WebConfig(**kwargs)
