"""
The one plugin finder: listeners, apps, dynamic authenticators and
authorizers are all found the same way.

A plugin is named either by a ``"package.module:Attribute"`` path or by the
name of an entry point in its group (``wampd.listeners``, ``wampd.apps``,
``wampd.authenticators``, ``wampd.authorizers``).  A listener plugin names
either a listener itself (an object with ``on_<event>(event)`` methods) or a
factory (a class or other callable) that makes one from the configured
options; an authenticator or authorizer plugin names a callable or a class
made without arguments.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import re
from collections.abc import Mapping
from typing import Any

from router.app import App
from router.config import ConfigError, ListenerConfig, RouterConfig

__all__ = [
    "APP_GROUP",
    "AUTHENTICATOR_GROUP",
    "AUTHORIZER_GROUP",
    "DEFAULT_LISTENER",
    "ENTRY_POINT_GROUP",
    "PluginError",
    "build_listener",
    "build_listeners",
    "listener_priority",
    "load_app",
    "load_callable",
    "load_object",
]

ENTRY_POINT_GROUP = "wampd.listeners"
APP_GROUP = "wampd.apps"
AUTHENTICATOR_GROUP = "wampd.authenticators"
AUTHORIZER_GROUP = "wampd.authorizers"
DEFAULT_LISTENER = "listeners.log:LogListener"

_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*", re.ASCII)


class PluginError(ValueError):
    """A plugin could not be found, loaded or built; the message says why."""


def _import_module(spec: str, module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name
        if missing is not None and (
            module_name == missing or module_name.startswith(missing + ".")
        ):
            raise PluginError(
                f"plugin {spec!r}: no module named {missing!r}"
            ) from None
        raise PluginError(
            f"plugin {spec!r}: importing module {module_name!r} failed: {exc}"
        ) from exc
    except Exception as exc:
        raise PluginError(
            f"plugin {spec!r}: importing module {module_name!r} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _load_by_path(spec: str) -> object:
    module_name, _, attribute_path = spec.partition(":")
    if not (_DOTTED_NAME.fullmatch(module_name) and _DOTTED_NAME.fullmatch(attribute_path)):
        raise PluginError(
            f"plugin {spec!r}: expected 'package.module:Attribute' "
            "(module path, a colon, then the attribute)"
        )
    obj = _import_module(spec, module_name)
    owner = module_name
    for part in attribute_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            reason = f"{owner!r} has no attribute {part!r}"
            close = difflib.get_close_matches(
                part, [name for name in dir(obj) if not name.startswith("_")], n=1
            )
            if close:
                reason += f" (did you mean {close[0]!r}?)"
            raise PluginError(f"plugin {spec!r}: {reason}") from None
        owner = f"{owner}.{part}" if owner != module_name else f"{module_name}:{part}"
    return obj


def _load_entry_point(name: str, group: str) -> object:
    found = importlib.metadata.entry_points(group=group)
    matches = [entry for entry in found if entry.name == name]
    if not matches:
        available = sorted({entry.name for entry in found})
        reason = (
            f"no entry point named {name!r} in group {group!r} "
            f"(available: {', '.join(available) if available else 'none'})"
        )
        if "." in name:
            module, _, attribute = name.rpartition(".")
            reason += (
                "; to name an object by its import path, put a colon between "
                f"module and attribute, e.g. '{module}:{attribute}'"
            )
        raise PluginError(f"plugin {name!r}: {reason}")
    targets = sorted({entry.value for entry in matches})
    if len(targets) > 1:
        raise PluginError(
            f"plugin {name!r}: several entry points named {name!r} in group "
            f"{group!r} point to different objects: {', '.join(targets)}"
        )
    entry = matches[0]
    try:
        return entry.load()
    except Exception as exc:
        raise PluginError(
            f"plugin {name!r}: loading entry point '{name} = {entry.value}' "
            f"in group {group!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def load_object(spec: str, group: str) -> object:
    """
    Resolve C{spec} to an object.

    C{"package.module:Attribute"} (the attribute may itself be dotted, as in
    C{"mod:Class.factory"}) imports the module and fetches the attribute; any
    other name is looked up among the entry points of C{group}.  A plain
    dotted path such as C{"package.module.Attribute"} is not supported: the
    colon is required.

    @raise PluginError: saying what was looked up and why it failed.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise PluginError(f"plugin {spec!r}: expected 'package.module:Attribute' or an entry-point name")
    if ":" in spec:
        return _load_by_path(spec)
    return _load_entry_point(spec, group)


def _has_handlers(obj: object) -> bool:
    """Whether C{obj} has at least one callable C{on_<event>} attribute."""
    for name in dir(obj):
        if name.startswith("on_") and len(name) > 3:
            try:
                if callable(getattr(obj, name)):
                    return True
            except Exception:
                continue
    return False


def _is_listener(obj: object) -> bool:
    return not isinstance(obj, type) and _has_handlers(obj)


def build_listener(config: ListenerConfig) -> object:
    """
    Load C{config.plugin} and make the listener from it.

    A class or other callable that is not already a listener is called with
    C{config.options} as keyword arguments; a listener instance (or any
    object that is not callable) is used as it is, and then it takes no
    options.  The result must have at least one C{on_<event>(event)} method.

    @raise PluginError: if the plugin cannot be loaded, does not accept the
        options, fails while being created, or does not give a listener.
    """
    spec = config.plugin
    obj = load_object(spec, ENTRY_POINT_GROUP)
    options: Mapping[str, Any] = dict(config.options)
    if _is_listener(obj) or not callable(obj):
        if options:
            what = "a listener instance" if _is_listener(obj) else "not callable"
            raise PluginError(
                f"plugin {spec!r}: options {options!r} were given, but "
                f"{obj!r} is {what}, so it cannot take them"
            )
        listener = obj
    else:
        try:
            signature: inspect.Signature | None = inspect.signature(obj)
        except (TypeError, ValueError):
            signature = None
        if signature is not None:
            try:
                signature.bind(**options)
            except TypeError as exc:
                raise PluginError(
                    f"plugin {spec!r} does not accept options {options!r}: {exc}"
                ) from None
        try:
            listener = obj(**options)
        except TypeError as exc:
            if signature is not None:
                raise PluginError(
                    f"plugin {spec!r}: creating the listener with options "
                    f"{options!r} raised TypeError: {exc}"
                ) from exc
            raise PluginError(
                f"plugin {spec!r} does not accept options {options!r}: {exc}"
            ) from exc
        except Exception as exc:
            raise PluginError(
                f"plugin {spec!r}: creating the listener with options "
                f"{options!r} raised {type(exc).__name__}: {exc}"
            ) from exc
    if not _has_handlers(listener):
        raise PluginError(
            f"plugin {spec!r} gave {listener!r}, which is not a listener: it has "
            "no on_<event>(event) methods (e.g. on_session_joined)"
        )
    return listener


def build_listeners(config: RouterConfig) -> list[tuple[ListenerConfig, object]]:
    """
    Build every listener C{config} asks for, as C{(ListenerConfig, listener)}
    pairs: the default listener first (if C{config.default_listener}), then
    C{config.listeners} in order.

    @raise PluginError: for the first listener that cannot be built.
    """
    configs = list(config.listeners)
    if config.default_listener:
        configs.insert(0, ListenerConfig(plugin=DEFAULT_LISTENER))
    return [(listener_config, build_listener(listener_config)) for listener_config in configs]


def listener_priority(config: ListenerConfig, listener: object) -> int:
    """
    The priority a listener runs with: C{config.priority} if set, else the
    listener's own C{priority} attribute, else 0.

    @raise PluginError: if the listener's C{priority} is not an integer.
    """
    if config.priority is not None:
        return config.priority
    priority = getattr(listener, "priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise PluginError(
            f"plugin {config.plugin!r}: the listener's priority must be an "
            f"integer, got {priority!r}"
        )
    return priority


def load_callable(spec: str, group: str, key: str) -> Any:
    """
    Load a dynamic authenticator or authorizer: C{"package.module:attr"} or
    an entry-point name in C{group}, as listeners are found.  A class is
    instantiated without arguments; the result must be callable.

    @raise ConfigError: against C{key}, saying why.
    """
    try:
        obj = load_object(spec, group)
    except PluginError as exc:
        raise ConfigError(key, str(exc)) from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigError(
                key, f"plugin {spec!r}: creating it raised {type(exc).__name__}: {exc}"
            ) from exc
    if not callable(obj):
        raise ConfigError(key, f"plugin {spec!r}: is not callable ({type(obj).__name__})")
    return obj


def load_app(spec: str) -> App:
    """
    Load a server-side L{App}: C{"package.module:attr"} or an entry-point
    name in group C{wampd.apps}; a callable that is not an App is called
    without arguments to make one.

    @raise PluginError: if it cannot be loaded or gives no App.
    """
    app = load_object(spec, APP_GROUP)
    if not isinstance(app, App) and callable(app):
        app = app()
    if not isinstance(app, App):
        raise PluginError(f"is {type(app).__name__}, not a router.app.App (or a factory of one)")
    return app
