"""Reading a TOML configuration: unknown keys, table shapes and secrets, each named by its key path."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from router.config._errors import _NO_SOURCE, ConfigError, _check_str, _describe
from router.config._keys import (
    _ROUTER_KEYS,
    _TOP_LEVEL_KEYS,
    _APP_KEYS,
    _HTTP_KEYS,
    _LISTEN_KEYS,
    _REALM_KEYS,
    _AUTH_KEYS,
    _PRINCIPAL_KEYS,
    _ROLE_KEYS,
    _PERMISSION_KEYS,
    _LISTENER_KEYS,
)
from router.config._ops import OPS_KEYS, OPS_TABLES, MetricsConfig, StatusConfig
from router.config._history import HISTORY_KEYS, parse_history_table
from router.config._permissions import PermissionConfig, RoleConfig
from router.config._realm import AuthMethodConfig, PrincipalConfig, RealmConfig
from router.config._scram import ScramConfig
from router.config._secrets import _read_secret
from router.config._cluster import parse_cluster
from router.config._values import DEFAULT_REALM, AppConfig, HttpConfig, ListenConfig, ListenerConfig, RouterConfig
from router.config._web import parse_web

__all__ = ["load_config", "parse_config"]



def _reject_unknown(table: Mapping, allowed: tuple[str, ...], where: str | None) -> None:
    for key in table:
        if key in allowed:
            continue
        path = f"{where}.{key}" if where else str(key)
        reason = f"unknown key; expected one of: {', '.join(allowed)}"
        close = difflib.get_close_matches(str(key), allowed, n=1)
        if close:
            reason += f" (did you mean {close[0]!r}?)"
        raise ConfigError(path, reason)


def _tables(
    data: Mapping, key: str, *, allow_empty: bool, where: str | None = None
) -> list[tuple[str, Mapping]]:
    """
    The C{[[key]]} tables of C{data}, each with its key path (under
    C{where}, the path of C{data}, if given).
    """
    value = data[key]
    path = f"{where}.{key}" if where else key
    # How the user would write this array of tables.
    if where is None:
        form = f"[[{key}]]"
    elif key in ("principal", "role"):
        form = f"[[realm.{key}]]"
    else:
        form = f"{key} = [{{ ... }}, ...]"
    if isinstance(value, Mapping):
        raise ConfigError(path, f"must be an array of tables ({form}), got a single table")
    if not isinstance(value, list):
        raise ConfigError(path, f"must be an array of tables ({form}), got {_describe(value)}")
    if not value and not allow_empty:
        hint = f"; give at least one {form} table" if where is None else ""
        raise ConfigError(path, f"must not be empty{hint}")
    tables = []
    for index, item in enumerate(value):
        path = f"{where}.{key}[{index}]" if where else f"{key}[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(path, f"must be a table, got {_describe(item)}")
        tables.append((path, item))
    return tables


def _required(table: Mapping, key: str, where: str) -> Any:
    if key not in table:
        raise ConfigError(f"{where}.{key}", "is required")
    return table[key]


def _build(where: str, kind: type, **kwargs: Any) -> Any:
    try:
        return kind(**kwargs)
    except ConfigError as exc:
        raise exc.under(where) from None


def _parse_listen_table(where: str, table: Mapping) -> ListenConfig:
    _reject_unknown(table, _LISTEN_KEYS, where)
    kwargs = {key: table[key] for key in _LISTEN_KEYS if key in table}
    kwargs["endpoint"] = _required(table, "endpoint", where)
    listen = _build(where, ListenConfig, **kwargs)
    if "path" in table and listen.transport not in ("websocket", "universal"):
        raise ConfigError(f"{where}.path", "only applies to transports 'websocket' and 'universal'")
    return listen


def _parse_realm_table(where: str, table: Mapping, base_dir: str | None = None) -> RealmConfig:
    _reject_unknown(table, _REALM_KEYS, where)
    kwargs: dict[str, Any] = {"name": _required(table, "name", where)}
    if "auth" in table:
        kwargs["auth"] = tuple(
            _parse_auth_table(path, item)
            for path, item in _tables(table, "auth", allow_empty=False, where=where)
        )
    if "principal" in table:
        kwargs["principals"] = tuple(
            _parse_principal_table(path, item, base_dir)
            for path, item in _tables(table, "principal", allow_empty=True, where=where)
        )
    if "role" in table:
        kwargs["roles"] = tuple(
            _parse_role_table(path, item)
            for path, item in _tables(table, "role", allow_empty=True, where=where)
        )
    if "history" in table:  # event history (router.config._history)
        kwargs["history"] = tuple(
            _parse_history(path, item) for path, item in _tables(table, "history", allow_empty=True, where=where)
        )
    for key in ("authenticator", "authorizer", "authorizer_cache", "authorizer_timeout", "anonymous_authid"):
        if key in table:
            kwargs[key] = table[key]
    try:
        return RealmConfig(**kwargs)
    except ConfigError as exc:
        # Field names in code are plural; the TOML tables are singular.
        key, reason = exc.key, exc.reason
        if key is not None:
            key = re.sub(r"^principals(?=\[|$)", "principal", key)
            key = re.sub(r"^roles(?=\[|$)", "role", key)
        reason = re.sub(r"(also in )roles\[", r"\1role[", reason)
        reason = re.sub(r"(also in |belongs to )principals\[", r"\1principal[", reason)
        raise ConfigError(key, reason, exc.source).under(where) from None


def _parse_history(where: str, table: Mapping):
    _reject_unknown(table, HISTORY_KEYS, where)
    return parse_history_table(where, table)


def _parse_auth_table(where: str, table: Mapping) -> AuthMethodConfig:
    _reject_unknown(table, _AUTH_KEYS, where)
    kwargs = {key: table[key] for key in _AUTH_KEYS if key in table}
    kwargs["method"] = _required(table, "method", where)
    if "transports" in kwargs and not isinstance(kwargs["transports"], list):
        raise ConfigError(
            f"{where}.transports",
            f"must be an array of strings, got {_describe(kwargs['transports'])}",
        )
    return _build(where, AuthMethodConfig, **kwargs)


def _parse_principal_table(
    where: str, table: Mapping, base_dir: str | None
) -> PrincipalConfig:
    _reject_unknown(table, _PRINCIPAL_KEYS, where)
    kwargs: dict[str, Any] = {
        "authid": _required(table, "authid", where),
        "role": _required(table, "role", where),
        "ticket": _read_secret(where, table, "ticket", base_dir),
        "secret": _read_secret(where, table, "secret", base_dir),
    }
    for key in ("salt", "iterations", "keylen"):
        if key in table:
            kwargs[key] = table[key]
    if "pubkey" in table and "pubkeys" in table:
        raise ConfigError(f"{where}.pubkeys", "give only one of pubkey, pubkeys")
    if "pubkey" in table:
        kwargs["pubkeys"] = (_check_str(f"{where}.pubkey", table["pubkey"]),)
    elif "pubkeys" in table:
        if not isinstance(table["pubkeys"], list):
            raise ConfigError(
                f"{where}.pubkeys",
                f"must be an array of strings, got {_describe(table['pubkeys'])}",
            )
        kwargs["pubkeys"] = tuple(table["pubkeys"])
    if "scram" in table:
        try:
            kwargs["scram"] = ScramConfig.from_table(table["scram"])
        except ConfigError as exc:
            raise exc.under(f"{where}.scram") from None
    if "tls_fingerprint" in table and "tls_fingerprints" in table:
        raise ConfigError(f"{where}.tls_fingerprints", "give only one of tls_fingerprint, tls_fingerprints")
    if "tls_fingerprint" in table:
        kwargs["tls_fingerprints"] = (_check_str(f"{where}.tls_fingerprint", table["tls_fingerprint"]),)
    elif "tls_fingerprints" in table:
        if not isinstance(table["tls_fingerprints"], list):
            raise ConfigError(f"{where}.tls_fingerprints", f"must be an array of strings, got {_describe(table['tls_fingerprints'])}")
        kwargs["tls_fingerprints"] = tuple(table["tls_fingerprints"])
    if "tls_cn" in table:
        kwargs["tls_cn"] = table["tls_cn"]
    try:
        return PrincipalConfig(**kwargs)
    except ConfigError as exc:
        if exc.key is None:  # about the whole principal
            raise exc.with_key(where) from None
        key = exc.key
        if "pubkey" in table and key.startswith("pubkeys"):
            key = "pubkey"
        if "tls_fingerprint" in table and key.startswith("tls_fingerprints"):
            key = "tls_fingerprint"
        raise exc.with_key(key).under(where) from None


def _parse_role_table(where: str, table: Mapping) -> RoleConfig:
    _reject_unknown(table, _ROLE_KEYS, where)
    kwargs: dict[str, Any] = {"name": _required(table, "name", where)}
    if "disclose" in table:
        kwargs["disclose"] = table["disclose"]
    if "permissions" in table:
        kwargs["permissions"] = tuple(
            _parse_permission_table(path, item)
            for path, item in _tables(table, "permissions", allow_empty=True, where=where)
        )
    return _build(where, RoleConfig, **kwargs)


def _parse_permission_table(where: str, table: Mapping) -> PermissionConfig:
    _reject_unknown(table, _PERMISSION_KEYS, where)
    kwargs = {key: table[key] for key in _PERMISSION_KEYS if key in table}
    kwargs["uri"] = _required(table, "uri", where)
    return _build(where, PermissionConfig, **kwargs)


def _parse_listener_table(where: str, table: Mapping) -> ListenerConfig:
    _reject_unknown(table, _LISTENER_KEYS, where)
    kwargs = {key: table[key] for key in _LISTENER_KEYS if key in table}
    kwargs["plugin"] = _required(table, "plugin", where)
    return _build(where, ListenerConfig, **kwargs)


def _parse_ops_table(name: str, table: Any, base_dir: str | None) -> MetricsConfig | StatusConfig:
    """``[metrics]`` or ``[status]`` (router.config._ops)."""
    if not isinstance(table, Mapping):
        raise ConfigError(name, f"must be a table ([{name}]), got {_describe(table)}")
    _reject_unknown(table, OPS_KEYS[name], name)
    kwargs = {key: table[key] for key in OPS_KEYS[name] if key in table and not key.startswith("secret")}
    if name == "metrics":
        return _build(name, MetricsConfig, **kwargs)
    kwargs["secret"] = _read_secret(name, table, "secret", base_dir)
    return _build(name, StatusConfig, **kwargs)


def _parse(data: Mapping, base_dir: str | None = None) -> RouterConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(None, f"the configuration must be a table, got {_describe(data)}")
    _reject_unknown(data, _TOP_LEVEL_KEYS, None)
    kwargs: dict[str, Any] = {}

    router = data.get("router", {})
    if not isinstance(router, Mapping):
        raise ConfigError("router", f"must be a table ([router]), got {_describe(router)}")
    _reject_unknown(router, _ROUTER_KEYS, "router")
    kwargs.update(router)

    if "listen" in data:
        kwargs["listen"] = tuple(
            _parse_listen_table(where, table)
            for where, table in _tables(data, "listen", allow_empty=False)
        )
    if "realm" in data:
        realms = []
        seen: dict[str, str] = {}
        for where, table in _tables(data, "realm", allow_empty=False):
            realm = _parse_realm_table(where, table, base_dir)
            if realm.name in seen:
                raise ConfigError(
                    f"{where}.name",
                    f"duplicate realm {realm.name!r} (also in {seen[realm.name]})",
                )
            seen[realm.name] = where
            realms.append(realm)
        kwargs["realms"] = tuple(realms)
    if "listener" in data:
        kwargs["listeners"] = tuple(
            _parse_listener_table(where, table)
            for where, table in _tables(data, "listener", allow_empty=True)
        )
    if "app" in data:
        apps = []
        for where, table in _tables(data, "app", allow_empty=True):
            _reject_unknown(table, _APP_KEYS, where)
            apps.append(_build(where, AppConfig, plugin=_required(table, "plugin", where)))
        kwargs["apps"] = tuple(apps)
    if "http" in data:
        table = data["http"]
        if not isinstance(table, Mapping):
            raise ConfigError("http", f"must be a table ([http]), got {_describe(table)}")
        _reject_unknown(table, _HTTP_KEYS, "http")
        http_kwargs = {
            "endpoint": _required(table, "endpoint", "http"),
            "secret": _read_secret("http", table, "secret", base_dir, "the push endpoint needs a secret"),
        }
        if "max_body" in table:
            http_kwargs["max_body"] = table["max_body"]
        kwargs["http"] = _build("http", HttpConfig, **http_kwargs)
    kwargs["web"] = parse_web(data, tuple(realm.name for realm in kwargs.get("realms", ())) or (DEFAULT_REALM,))
    if "cluster" in data:
        kwargs["cluster"] = parse_cluster(data["cluster"])
    for name in OPS_TABLES:
        if name in data:
            kwargs[name] = _parse_ops_table(name, data[name], base_dir)
    try:
        return RouterConfig(**kwargs)
    except ConfigError as exc:
        if (exc.key or "").split(".")[0] in OPS_TABLES:
            raise  # a check across tables ([metrics] or [status] and [http])
        # Only the [router] scalars can still be wrong here.
        raise exc.under("router") from None


def parse_config(data: Mapping, source: str = _NO_SOURCE) -> RouterConfig:
    """
    Build a L{RouterConfig} from parsed TOML (a dict as C{tomllib} returns
    it).  Raises L{ConfigError} naming the offending key path and, unless
    C{source} is the default, the file.
    """
    base_dir = None
    if source != _NO_SOURCE:
        base_dir = os.path.dirname(os.path.abspath(source))
    try:
        return _parse(data, base_dir)
    except ConfigError as exc:
        raise exc.with_source(source) from None


def load_config(path: str | os.PathLike[str]) -> RouterConfig:
    """
    Read and parse a TOML configuration file.  A missing or unreadable file
    or a TOML syntax error is a L{ConfigError} naming the file.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(None, "no such file", source) from None
    except IsADirectoryError:
        raise ConfigError(None, "is a directory, not a TOML file", source) from None
    except OSError as exc:
        raise ConfigError(None, f"cannot read: {exc.strerror or exc}", source) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(None, f"not valid UTF-8: {exc}", source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(None, f"invalid TOML: {exc}", source) from None
    return parse_config(data, source)
