"""ConfigError and the checks every configuration value runs when it is built."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

__all__ = ["LISTEN_TRANSPORTS", "TRANSPORTS", "ConfigError"]

TRANSPORTS = ("websocket", "rawsocket", "longpoll")
#: What a ``[[listen]]`` may serve: a transport, or ``universal`` (WebSocket, RawSocket and HTTP on one port).
LISTEN_TRANSPORTS = TRANSPORTS + ("universal",)
_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*", re.ASCII)
# A role or authid: printable, no whitespace.
_NAME = re.compile(r"\S+")
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
