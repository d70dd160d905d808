"""
C{wampd check CONFIG}: every error in a config file, or a one-screen summary.

Errors go to stderr, one per line as C{FILE: KEY: REASON}, and the status is
1. A file that is right is then loaded as C{wampd run --config FILE} would
load it (listener and app plugins imported and built, dynamic
authenticators and authorizers imported), so a plugin that can't be loaded
is found too; only listening is left out. Then the summary goes to stdout
and the status is 0.
"""

from __future__ import annotations

import dataclasses
import sys

from twisted.python import usage

from router.cli._usage import usage_error
from router.config import TRANSPORTS, AuthMethodConfig, RouterConfig, collect_errors

__all__ = ["check", "summary"]

_HELP = """\
Usage: wampd check CONFIG

Check the TOML config file CONFIG as `wampd run --config CONFIG` would read it.
Prints every error with its key path (exit status 1), or a summary of the realms,
endpoints, auth methods, listeners and changed settings (exit status 0).
"""


def check(args: list[str]) -> int:
    """Run C{wampd check} on C{args}; the exit status."""
    if args and args[0] in ("-h", "--help"):
        print(_HELP, end="")
        return 0
    if len(args) != 1 or args[0].startswith("-"):
        return usage_error("check", "give exactly one CONFIG file" if not args or len(args) != 1 else f"unknown option {args[0]}")
    path = args[0]
    config, errors = collect_errors(path)
    if errors:
        for error in errors:
            print(error, file=sys.stderr)
        count = len(errors)
        print(f"{path}: {count} error{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    from router.tap import Options  # lazy: loads the plugin machinery

    options = Options()
    try:
        options.parseOptions(["--config", path])
    except usage.UsageError as exc:
        print(str(exc).removeprefix("--config: "), file=sys.stderr)
        print(f"{path}: 1 error", file=sys.stderr)
        return 1
    print(summary(path, options["router_config"]))
    return 0


def _auth(method: AuthMethodConfig) -> str:
    text = method.method
    details = []
    if tuple(method.transports) != TRANSPORTS:  # the default: every transport
        details.append("/".join(method.transports) + " only")
    if method.role:
        details.append(f"role {method.role}")
    return f"{text} ({', '.join(details)})" if details else text


def summary(path: str, config: RouterConfig) -> str:
    """A few lines saying what C{config} will run."""
    lines = [f"{path}: OK", "endpoints:"]
    for listen in config.listen:
        path_note = f" path {listen.path}" if listen.transport == "websocket" else ""
        lines.append(f"  {listen.transport:<9} {listen.endpoint}{path_note}")
    if config.http is not None:
        lines.append(f"  {'http push':<9} {config.http.endpoint} (max body {config.http.max_body} bytes)")
    lines.append("realms:")
    for realm in config.realms:
        parts = ["auth " + ", ".join(_auth(method) for method in realm.auth)]
        if realm.principals:
            parts.append(f"{len(realm.principals)} principal{'s' if len(realm.principals) != 1 else ''}")
        if realm.roles:
            parts.append("roles " + ", ".join(role.name for role in realm.roles))
        elif realm.authorizer is None:
            parts.append("open (no roles)")
        if realm.authenticator:
            parts.append(f"authenticator {realm.authenticator}")
        if realm.authorizer:
            parts.append(f"authorizer {realm.authorizer}")
        lines.append(f"  {realm.name}: " + "; ".join(parts))
    listeners = (["listeners.log:LogListener (the default listener)"] if config.default_listener else []) + [
        listener.plugin + (f" (priority {listener.priority})" if listener.priority is not None else "")
        for listener in config.listeners
    ]
    lines.append("listeners: " + (", ".join(listeners) or "none"))
    lines.append("apps: " + (", ".join(app.plugin for app in config.apps) or "none"))
    defaults = RouterConfig()
    changed = [
        f"{field.name} = {getattr(config, field.name)!r}"
        for field in dataclasses.fields(RouterConfig)
        if field.name not in ("listen", "realms", "listeners", "apps", "http", "default_listener")
        and getattr(config, field.name) != getattr(defaults, field.name)
    ]
    lines.append("settings changed from the defaults: " + (", ".join(changed) or "none"))
    return "\n".join(lines)
