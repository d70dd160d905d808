"""
twistd integration: the ``wampd`` command-line options and ``makeService``.

The configuration file is read first and the command line goes on top of it;
every listener plugin is built while the options are parsed, so a bad plugin
is a usage error rather than a failure at startup.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from twisted.python import usage

from router.config import (
    AppConfig,
    HttpConfig,
    DEFAULT_REALM,
    ConfigError,
    ListenerConfig,
    RealmConfig,
    RouterConfig,
    load_config,
    parse_listen,
)
from router.config._ops import ops_options
from router.tap_cluster import cluster_config, worker_fds
from router.workers_tls import SHARED_TYPES, endpoint_type
from router.config.cli import LIST_OPTIONS, NUMBER_OPTIONS, OPT_PARAMETERS
from router.plugins import DEFAULT_LISTENER, PluginError, build_listener, load_app

__all__ = ["Options", "makeService"]


class Options(usage.Options):
    """Command-line options of C{twistd wampd}."""

    synopsis = "[options]"

    longdesc = (
        "Run a WAMP v2 router (publish/subscribe and routed calls) over "
        "WebSocket and RawSocket, reporting session lifecycle events to "
        "listener plugins. Settings come from the TOML file given with "
        "--config, if any; options given on the command line override it. "
        "Without either, the router serves realm 'realm1' over WebSocket on "
        "tcp:8080:interface=127.0.0.1 (path /ws). Listen specs are Twisted "
        "server endpoint strings (tcp:PORT, tcp:PORT:interface=ADDR, "
        "unix:PATH, ssl:PORT:privateKey=KEY:certKey=CERT), optionally "
        "prefixed with the transport: ws: (the default) or rawsocket:. "
        "Example: twistd -n wampd --listen tcp:8080 --listen "
        "rawsocket:tcp:9000 --realm realm1 --listener mypkg.listeners:Audit"
    )

    optParameters = OPT_PARAMETERS

    optFlags = (
        (
            "no-default-listener",
            None,
            "Do not run the shipped listener that logs every lifecycle event "
            f"({DEFAULT_LISTENER}).",
        ),
        ("websocket-deflate", None, "Offer permessage-deflate compression to WebSocket clients [default: off]."),
    )

    def parseOptions(self, options=None) -> None:
        """
        Under twistd, a usage error is printed with the usage and exits 1 here.

        twistd catches the UsageError itself, but before Twisted 26.10 it
        printed it and exited with status 0, so a supervisor or script took a
        typo for success. ``twist`` (and direct use) get the UsageError as usual.
        """
        self.argv = list(sys.argv[1:] if options is None else options)  # --workers hands them to each worker
        try:
            super().parseOptions(options)
        except usage.UsageError as exc:
            from twisted.application.app import ServerOptions  # lazy: needed only on a usage error

            parent = getattr(self, "parent", None)
            if not isinstance(parent, ServerOptions):
                raise
            print(parent)
            print(f"{' '.join(sys.argv[0:2])}: {exc}")
            raise SystemExit(1) from None

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["realm"] = []
        self["listener"] = []
        self["app"] = []
        for option, _ in LIST_OPTIONS:
            self[option] = []

    def opt_allowed_origin(self, pattern: str) -> None:
        """Allow WebSocket connections from this Origin (exact, or with * in the host); repeatable."""
        self["allowed-origin"].append(pattern)

    def opt_allow_address(self, cidr: str) -> None:
        """Accept connections only from these networks (CIDR, IPv4 or IPv6); repeatable."""
        self["allow-address"].append(cidr)

    def opt_deny_address(self, cidr: str) -> None:
        """Refuse connections from this network (CIDR); repeatable."""
        self["deny-address"].append(cidr)

    def opt_trusted_proxy(self, cidr: str) -> None:
        """Believe X-Forwarded-For/Forwarded and PROXY headers from this network (CIDR); repeatable."""
        self["trusted-proxy"].append(cidr)

    def opt_app(self, spec: str) -> None:
        """
        Plug in a server-side App (topic handlers, procedures, periodic
        services): 'package.module:attribute' or an entry-point name in group
        wampd.apps; repeat for several. Added after the config file's apps.
        """
        self["app"].append(spec)

    def opt_listen(self, spec: str) -> None:
        """
        Listen on this endpoint; repeat for several. A Twisted server
        endpoint string, optionally prefixed with the transport: tcp:8080,
        ws:tcp:8080:interface=127.0.0.1, websocket:unix:/tmp/wampd.sock,
        rawsocket:tcp:9000. Replaces the config file's [[listen]] tables.
        """
        self["listen"].append(spec)

    def opt_realm(self, name: str) -> None:
        """
        Serve this realm (a WAMP URI); repeat for several. Added to the
        config file's realms; replaces the default realm1.
        """
        self["realm"].append(name)

    def opt_listener(self, spec: str) -> None:
        """
        Run this listener plugin, 'package.module:Attribute' or an entry-point
        name in group wampd.listeners; repeat for several. Added after the
        config file's listeners.
        """
        self["listener"].append(spec)

    def opt_version(self) -> None:
        """Print wampd's version (and Twisted's, Autobahn's, Python's) and exit."""
        from router.version import describe  # lazy: only for --version

        print(describe())
        raise SystemExit(0)

    def postOptions(self) -> None:
        self._apply_log_options()
        config = self._read_config()
        config = self._apply_command_line(config)
        self._check_workers(config)
        self["router_config"] = config
        self["listener_objects"] = self._build_listeners(config)
        self["app_objects"] = self._build_apps(config)
        self._check_realm_plugins(config)

    def _apply_log_options(self) -> None:
        """--log-format and --log-level go to whichever runner parsed us (router.logs)."""
        from router.logs import apply_log_options, parse_format, parse_level  # lazy: keeps --help fast

        values = {}
        for option, parse in (("log-format", parse_format), ("log-level", parse_level)):
            try:
                values[option] = None if self[option] is None else parse(self[option])
            except ValueError as exc:
                raise usage.UsageError(f"--{option}: {exc}") from None
        self["log_settings"] = (values["log-format"], values["log-level"])
        try:
            apply_log_options(getattr(self, "parent", None), values["log-format"], values["log-level"])
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from None
    def reread(self) -> RouterConfig:
        """The configuration again, for a reload (SIGHUP): the --config file, with the command line on top."""
        return self._apply_command_line(self._read_config())
    def _check_workers(self, config: RouterConfig) -> None:
        """``--workers N`` and the sockets a worker inherits (``--worker-fds``)."""
        raw = self["workers"]
        try:
            self["workers"] = count = int(raw) if raw is not None else 1
        except ValueError:
            raise usage.UsageError(f"--workers: must be an integer, got {raw!r}") from None
        if not 1 <= count <= 256:
            raise usage.UsageError(f"--workers: must be from 1 to 256, got {count}")
        if count > 1:
            if self["cluster-name"] is not None or (config.cluster is not None and config.cluster.name):
                raise usage.UsageError("--workers: each worker names itself; drop --cluster-name (or [cluster] name)")
            for endpoint in [listen.endpoint for listen in config.listen] + ([config.http.endpoint] if config.http else []):
                if endpoint_type(endpoint) not in SHARED_TYPES:
                    raise usage.UsageError(f"--workers: {endpoint!r}: workers share tcp:, tcp6:, ssl: and unix: endpoints only")
        self["adopt"] = None
        if self["worker-fds"] is not None:  # the listen endpoints' sockets, then the HTTP push endpoint's
            self["adopt"] = worker_fds(self["worker-fds"], len(config.listen) + (config.http is not None))

    def _check_realm_plugins(self, config: RouterConfig) -> None:
        """Dynamic authenticators/authorizers load now: a bad one is a usage error, not a crash."""
        from router.config.auth import build_realm_auth  # lazy: loads router.auth; keeps twistd --help fast

        for index, realm in enumerate(config.realms):
            try:
                build_realm_auth(realm)
            except ConfigError as exc:
                raise usage.UsageError(f"--config: {exc.under(f'realm[{index}]')}") from None

    def _read_config(self) -> RouterConfig:
        if self["config"] is None:
            return RouterConfig()
        try:
            return load_config(self["config"])
        except ConfigError as exc:
            raise usage.UsageError(f"--config: {exc}") from None

    def _apply_command_line(self, config: RouterConfig) -> RouterConfig:
        changes: dict[str, Any] = {}

        if self["listen"]:
            listen = []
            for spec in self["listen"]:
                try:
                    listen.append(parse_listen(spec))
                except ConfigError as exc:
                    raise usage.UsageError(f"--listen {spec}: {exc.reason}") from None
            changes["listen"] = tuple(listen)

        if self["ws-path"] is not None:
            try:
                changes["listen"] = tuple(
                    dataclasses.replace(listen, path=self["ws-path"]) if listen.transport == "websocket" else listen
                    for listen in changes.get("listen", config.listen)
                )
            except ConfigError as exc:
                raise usage.UsageError(f"--ws-path: {exc.reason}") from None

        if self["realm"]:
            realms = list(config.realms)
            if realms == [RealmConfig(DEFAULT_REALM)]:
                realms = []
            names = {realm.name for realm in realms}
            for name in self["realm"]:
                try:
                    realm = RealmConfig(name)
                except ConfigError as exc:
                    raise usage.UsageError(f"--realm {name}: {exc.reason}") from None
                if realm.name in names:
                    raise usage.UsageError(
                        f"--realm {name}: realm {name!r} is already configured"
                    )
                names.add(realm.name)
                realms.append(realm)
            changes["realms"] = tuple(realms)

        if self["listener"]:
            added = []
            for spec in self["listener"]:
                try:
                    added.append(ListenerConfig(plugin=spec))
                except ConfigError as exc:
                    raise usage.UsageError(f"--listener {spec}: {exc.reason}") from None
            changes["listeners"] = config.listeners + tuple(added)

        option_for_field = {}
        for option, field_name, convert, kind in NUMBER_OPTIONS:
            option_for_field[field_name] = option
            raw = self[option]
            if raw is None:
                continue
            try:
                changes[field_name] = convert(raw)
            except ValueError:
                raise usage.UsageError(f"--{option}: must be {kind}, got {raw!r}") from None

        if self["app"]:
            added_apps = []
            for spec in self["app"]:
                try:
                    added_apps.append(AppConfig(plugin=spec))
                except ConfigError as exc:
                    raise usage.UsageError(f"--app {spec}: {exc.reason}") from None
            changes["apps"] = config.apps + tuple(added_apps)

        if self["http"] is not None or self["http-secret"] is not None:
            endpoint = self["http"] or (config.http.endpoint if config.http else None)
            secret = self["http-secret"] or (config.http.secret if config.http else None)
            if not endpoint or not secret:
                raise usage.UsageError("--http and --http-secret go together: the push endpoint needs both")
            try:
                changes["http"] = HttpConfig(endpoint, secret, config.http.max_body if config.http else 65536)
            except ConfigError as exc:
                raise usage.UsageError(f"--http: {exc.reason}") from None

        if self["cluster"] is not None or self["cluster-name"] is not None:
            changes["cluster"] = cluster_config(config, self["cluster"], self["cluster-name"])
        try:
            changes.update(ops_options(self["metrics"], self["status"], self["status-secret"], config))
        except ConfigError as exc:
            raise usage.UsageError(f"--{exc.key}: {exc.reason}") from None
        option_for_field.update({"metrics.endpoint": "metrics", "status.endpoint": "status"})

        for option, field_name in LIST_OPTIONS:
            if self[option]:
                changes[field_name] = getattr(config, field_name) + tuple(self[option])
                option_for_field[field_name] = option

        if self["no-default-listener"]:
            changes["default_listener"] = False
        if self["websocket-deflate"]:
            changes["websocket_deflate"] = True

        try:
            return dataclasses.replace(config, **changes)
        except ConfigError as exc:
            option = option_for_field.get((exc.key or "").split("[")[0], exc.key)
            raise usage.UsageError(f"--{option}: {exc.reason}") from None

    def _build_listeners(self, config: RouterConfig) -> list[tuple[ListenerConfig, object]]:
        wanted: list[tuple[str, ListenerConfig]] = []
        if config.default_listener:
            wanted.append(
                (
                    "default listener (disable with --no-default-listener)",
                    ListenerConfig(plugin=DEFAULT_LISTENER),
                )
            )
        from_file = len(config.listeners) - len(self["listener"])
        for index, listener_config in enumerate(config.listeners):
            if index < from_file:
                where = f"--config: {self['config']}: listener[{index}]"
            else:
                where = "--listener"
            wanted.append((where, listener_config))

        built = []
        for where, listener_config in wanted:
            try:
                built.append((listener_config, build_listener(listener_config)))
            except PluginError as exc:
                raise usage.UsageError(f"{where}: {exc}") from None
        return built

    def _build_apps(self, config: RouterConfig) -> list:
        built = []
        for app_config in config.apps:
            try:
                built.append(load_app(app_config.plugin))
            except PluginError as exc:
                raise usage.UsageError(f"app {app_config.plugin}: {exc}") from None
        return built


def makeService(options: Options) -> Any:
    """The router service for parsed L{Options} (with ``--workers N``, the pool of N router processes)."""
    if options["workers"] > 1:
        from router.workers import WorkerPool  # lazy: only --workers needs the pool

        return WorkerPool(options["router_config"], options.argv, options["workers"])
    from router.service import RouterService  # lazy: the router core; twistd --help must not import it

    # twistd's own options (``-n``) are the parent of ours; twist has no daemon mode
    parent = getattr(options, "parent", None)
    daemon = parent is not None and "nodaemon" in parent and not parent["nodaemon"]
    return RouterService(
        options["router_config"],
        listeners=options["listener_objects"],
        standalone=True,
        apps=options["app_objects"],
        daemon=daemon,
        reload_source=options.reread,
        adopt=options["adopt"],
    )
