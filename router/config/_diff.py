"""What changed between two configurations, as key paths (for a reload and its ``server_reloaded`` event)."""

from __future__ import annotations

from dataclasses import fields

__all__ = ["RESTART_ONLY", "config_changes"]

#: Key paths (or their heads) a running router cannot take on: they need a restart.
RESTART_ONLY = ("listen", "listener", "app", "http", "router.default_listener")

_TOML_NAMES = {"principals": "principal", "roles": "role"}  # the TOML tables are singular
_TABLES = {"listen", "realms", "listeners", "apps", "http"}


def config_changes(old, new) -> list[str]:
    """
    The key paths that differ between two RouterConfigs, in the TOML's words:
    ``router.<key>``; ``realm[<name>]`` (added or removed) or
    ``realm[<name>].<key>``; ``listen[<endpoint>]`` (added or removed) or
    ``listen[<endpoint>].<key>``; ``listener``, ``app``, ``http``.
    """
    changed = []
    for item in fields(old):
        if item.name not in _TABLES and getattr(old, item.name) != getattr(new, item.name):
            changed.append(f"router.{item.name}")
    changed += _keyed("listen", {x.endpoint: x for x in old.listen}, {x.endpoint: x for x in new.listen})
    changed += _keyed("realm", {x.name: x for x in old.realms}, {x.name: x for x in new.realms})
    for key, name in (("listener", "listeners"), ("app", "apps"), ("http", "http")):
        if getattr(old, name) != getattr(new, name):
            changed.append(key)
    return changed


def _keyed(kind: str, old: dict, new: dict) -> list[str]:
    changed = [f"{kind}[{key}]" for key in old.keys() ^ new.keys()]
    for key in old.keys() & new.keys():
        before, after = old[key], new[key]
        for item in fields(before):
            if getattr(before, item.name) != getattr(after, item.name):
                changed.append(f"{kind}[{key}].{_TOML_NAMES.get(item.name, item.name)}")
    return sorted(changed)
