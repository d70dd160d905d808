"""
Every error in a configuration file at once, for C{wampd check}.

L{router.config.load_config} stops at the first problem, which is what a
starting router needs. A person fixing a file wants them all: this walks the
same tables with the same checks (the TOML walker's own functions), one table
or one C{[router]} key at a time, and keeps going after each error. Only when
every table is right on its own are the checks across tables run (a
principal's role must exist, realm names must differ), through
L{router.config.parse_config} itself, so C{wampd check} never accepts a file
that C{wampd run} would refuse.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

from router.config._errors import ConfigError, _describe
from router.config._toml import (
    _APP_KEYS,
    _HTTP_KEYS,
    _REALM_KEYS,
    _ROLE_KEYS,
    _ROUTER_KEYS,
    _TOP_LEVEL_KEYS,
    _parse_auth_table,
    _parse_listen_table,
    _parse_listener_table,
    _parse_permission_table,
    _parse_principal_table,
    _parse_realm_table,
    _parse_role_table,
    _reject_unknown,
    _required,
    _tables,
    parse_config,
)
from router.config._values import AppConfig, RouterConfig
from router.config._secrets import _read_secret

__all__ = ["collect_errors"]


class _Errors:
    """Errors gathered so far; C{attempt} runs one check and keeps its error."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[ConfigError] = []

    def attempt(self, check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return check(*args, **kwargs)
        except ConfigError as exc:
            self.found.append(exc.with_source(self.source))
            return None

    def unknown(self, table: Mapping, allowed: tuple[str, ...], where: str | None) -> None:
        for key in table:
            self.attempt(_reject_unknown, {key: None}, allowed, where)


def _items(errors: _Errors, data: Mapping, key: str, *, allow_empty: bool, where: str | None = None) -> list:
    found = errors.attempt(_tables, data, key, allow_empty=allow_empty, where=where)
    return found or []


def _check_router(errors: _Errors, data: Mapping) -> None:
    router = data.get("router", {})
    if not isinstance(router, Mapping):
        errors.found.append(ConfigError("router", f"must be a table ([router]), got {_describe(router)}", errors.source))
        return
    errors.unknown(router, _ROUTER_KEYS, "router")
    for key in router:
        if key in _ROUTER_KEYS:
            errors.attempt(lambda key=key: _under_router(RouterConfig, {key: router[key]}))


def _under_router(kind: type, kwargs: dict) -> Any:
    try:
        return kind(**kwargs)
    except ConfigError as exc:
        raise exc.under("router") from None


def _check_realm(errors: _Errors, where: str, table: Mapping, base_dir: str | None) -> None:
    before = len(errors.found)
    errors.unknown(table, _REALM_KEYS, where)
    if "name" not in table:
        errors.attempt(_required, table, "name", where)
    if "auth" in table:
        for path, item in _items(errors, table, "auth", allow_empty=False, where=where):
            errors.attempt(_parse_auth_table, path, item)
    if "principal" in table:
        for path, item in _items(errors, table, "principal", allow_empty=True, where=where):
            errors.attempt(_parse_principal_table, path, item, base_dir)
    if "role" in table:
        for path, item in _items(errors, table, "role", allow_empty=True, where=where):
            in_role = len(errors.found)
            if "permissions" in item:
                for perm_path, perm in _items(errors, item, "permissions", allow_empty=True, where=path):
                    errors.attempt(_parse_permission_table, perm_path, perm)
            if len(errors.found) == in_role:
                errors.attempt(_parse_role_table, path, item)
            else:
                errors.unknown(item, _ROLE_KEYS, path)
    if len(errors.found) == before:
        # each part is right: now the realm as a whole (roles named, names unique)
        errors.attempt(_parse_realm_table, where, table, base_dir)


def _check_http(errors: _Errors, table: Any, base_dir: str | None) -> None:
    if not isinstance(table, Mapping):
        errors.found.append(ConfigError("http", f"must be a table ([http]), got {_describe(table)}", errors.source))
        return
    errors.unknown(table, _HTTP_KEYS, "http")
    errors.attempt(_required, table, "endpoint", "http")
    errors.attempt(_read_secret, "http", table, "secret", base_dir, "the push endpoint needs a secret")


def collect_errors(path: str | os.PathLike[str]) -> tuple[RouterConfig | None, list[ConfigError]]:
    """
    Read the TOML file at C{path}: its L{RouterConfig} and no errors, or
    C{None} and every error found, each naming its key path.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as stream:
            data = tomllib.load(stream)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        from router.config._toml import load_config  # lazy: only to word the error as run does

        try:
            load_config(source)
        except ConfigError as exc:
            return None, [exc]
        raise
    errors = _Errors(source)
    base_dir = os.path.dirname(os.path.abspath(source))
    errors.unknown(data, _TOP_LEVEL_KEYS, None)
    _check_router(errors, data)
    if "listen" in data:
        for where, table in _items(errors, data, "listen", allow_empty=False):
            errors.attempt(_parse_listen_table, where, table)
    if "realm" in data:
        for where, table in _items(errors, data, "realm", allow_empty=False):
            _check_realm(errors, where, table, base_dir)
    if "listener" in data:
        for where, table in _items(errors, data, "listener", allow_empty=True):
            errors.attempt(_parse_listener_table, where, table)
    if "app" in data:
        for where, table in _items(errors, data, "app", allow_empty=True):
            errors.unknown(table, _APP_KEYS, where)
            plugin = errors.attempt(_required, table, "plugin", where)
            if plugin is not None:
                errors.attempt(lambda where=where, plugin=plugin: _app(where, plugin))
    if "http" in data:
        _check_http(errors, data["http"], base_dir)
    if errors.found:
        return None, errors.found
    try:
        return parse_config(data, source), []
    except ConfigError as exc:  # a check across tables
        return None, [exc]


def _app(where: str, plugin: Any) -> AppConfig:
    try:
        return AppConfig(plugin=plugin)
    except ConfigError as exc:
        raise exc.under(where) from None
