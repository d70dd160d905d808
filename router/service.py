"""
The Twisted service that runs a router from a :class:`~router.config.RouterConfig`.

Embed it in your own application::

    from twisted.application.service import Application
    from router.config import RouterConfig
    from router.service import RouterService

    application = Application("mine")
    RouterService(RouterConfig(), listeners=[(None, MyListener())]).setServiceParent(application)

Starting listens on every endpoint, then fires ``server_launched``.  Stopping
fires ``server_stopping``, stops listening, sends GOODBYE
``wamp.close.system_shutdown`` to every session, waits for them to go (at
most ``shutdown_timeout`` seconds) and for every listener to finish.

Starting is all or nothing: if any endpoint can't listen (port taken, no such
socket directory, bad certificate), the endpoints that did start listening are
stopped again, ``server_launched`` does not fire, and the Deferred returned by
``startService`` fails with :class:`ListenError`, which names the endpoint and
the reason.  ``server_stopping`` then never fires either: it pairs with
``server_launched``, so a listener that set something up at launch is told to
tear it down only when there is something to tear down.  Under twistd or twist
(``standalone=True``) a failed start exits the process with status 1 and the
message, before the reactor runs.
"""

from __future__ import annotations

from typing import Any, Iterable

import errno
import os
import platform
import socket

from autobahn.websocket import USES_NVX
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger

from listeners.log import LogListener
from router.auth import LoginLimiter
from router.clustering import join_cluster, leave_cluster, watch_parent
from router.signals import SignalHandling
from router.config import ListenerConfig, RouterConfig, effective_endpoint
from router.config.auth import build_realm_auth
from router.core import Router
from router.events import EndpointInfo, ServerLaunched
from router.http import push_site
from router.ops import build_ops
from router.policy import ConnectionPolicy
from router.factories import proxied, transport_factory
from router.wire import PingSweeper
from router.wire.forwarded import ProxyTrust
from router.wire.tls import listening_reactor
from router.workers_tls import adopt

__all__ = ["ListenError", "RouterService"]

_log = Logger(namespace="wampd.service")


class ListenError(Exception):
    """One or more endpoints could not listen; the router did not start."""

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        self.failures = failures  # (endpoint as configured, reason)
        super().__init__(
            "; ".join(f"could not listen on {endpoint}: {reason}" for endpoint, reason in failures)
        )


def _reason(failure) -> str:
    """The cause of a failed listen, without Twisted's "Couldn't listen on ..." wrapping."""
    exc = failure.value
    cause = getattr(exc, "socketError", None) or exc
    if isinstance(cause, OSError) and cause.errno is not None and cause.errno in errno.errorcode and cause.strerror:
        # not str(cause): for a unix socket it may name Twisted's lock file
        return f"{cause.strerror} ({errno.errorcode[cause.errno]})"
    return str(cause) or type(cause).__name__


class RouterService(SignalHandling, Service):
    """
    The router, its endpoints and its ping sweeper as one Twisted service.

    ``standalone`` is for the service that is the whole process (``twistd
    wampd`` and ``twist wampd`` set it): SIGTERM and SIGINT then shut
    down gracefully and exit with status 0, SIGHUP reloads the configuration, and an endpoint that can't listen
    exits the process with status 1 instead of leaving a half-started router.
    ``daemon`` says that twistd daemonized (no ``-n``): a failed start then
    raises :class:`ListenError` for twistd to report to the parent process.
    """

    name = "wampd"

    def __init__(
        self,
        config: RouterConfig | None = None,
        listeners: Iterable[tuple[ListenerConfig | None, object]] = (),
        reactor: Any = None,
        standalone: bool = False,
        apps: Iterable[object] = (),
        daemon: bool = False,
        reload_source: Any = None,
        adopt: tuple[tuple[int, str], ...] | None = None,
    ) -> None:
        """``reload_source``: a callable giving the config a SIGHUP applies (router.reload); twistd's re-reads ``--config``."""
        if reactor is None:
            from twisted.internet import reactor  # lazy: the reactor is passed in; the global one is only the default
        self.config = config = config if config is not None else RouterConfig()
        self.reactor = reactor
        pairs = list(listeners)
        if config.default_listener and not any(_is_log_listener(obj) for _, obj in pairs):
            pairs.insert(0, (None, LogListener()))
        self.router = Router(
            realms=(),
            listeners=[(obj, cfg.priority if cfg is not None else None) for cfg, obj in pairs],
            listener_timeout=config.listener_timeout,
            clock=reactor,
            policy=ConnectionPolicy(
                allowed_origins=config.allowed_origins,
                allow_addresses=config.allow_addresses,
                deny_addresses=config.deny_addresses,
                max_connections=config.max_connections,
                max_connections_per_address=config.max_connections_per_address,
            ),
            hello_timeout=config.hello_timeout,
            login_limiter=LoginLimiter(
                reactor,
                per_authid=config.auth_fail_limit_authid,
                per_address=config.auth_fail_limit_address,
                window=config.auth_fail_window,
                max_tracked=config.auth_fail_tracked,
            ),
            max_nesting_depth=config.max_nesting_depth,
            max_retained_topics=config.max_retained_topics,
            retained_ttl=config.retained_ttl,
            max_calls_in_flight=config.max_calls_in_flight,
            max_queued_messages=config.max_queued_messages,
            max_history_events=config.max_history_events,
        )
        for realm in config.realms:
            added = self.router.add_realm(realm.name, *build_realm_auth(realm, reactor))
            if realm.history:  # event history (router.broker._history)
                added.broker.enable_history([(h.topic, h.match, h.limit) for h in realm.history], config.max_history_events)
        for app in apps:
            self.router.install_app(app)
        self.bridges = None
        if config.web.webhooks or config.web.http_callees:
            from router.bridge import Bridges  # lazy: twisted.web.client only for a router that POSTs out

            self.bridges = Bridges(self.router, config.web.webhooks, config.web.http_callees, reactor)
        self.sweeper = PingSweeper(reactor, config.ping_interval, config.ping_timeout)
        self.proxy_trust = ProxyTrust(config.trusted_proxies, config.forwarded_header)
        self.factories: list = []  # (ListenConfig, its transport factory), for router.reload
        self.reload_source = reload_source
        self.ports: list = []
        self.cluster: Any = None  # the router.cluster node, with a [cluster] config, once joined
        self._adopt = adopt  # (fd, family) per listen endpoint: sockets inherited from a --workers parent
        self.endpoints: tuple[EndpointInfo, ...] = ()
        self._standalone = standalone
        self._daemon = daemon
        self._launched_event = False
        self.ops = build_ops(self)  # metrics, health, status page (router.ops); None when all are off

    @property
    def launched(self) -> bool:
        """``server_launched`` fired: every endpoint listened (``running`` says whether it still runs)."""
        return self._launched_event

    def _factory(self, listen):
        """The protocol factory of one listen endpoint (router.factories), recorded for reloads."""
        factory = transport_factory(self, listen)
        factory.client_ca, factory.client_cert = listen.client_ca, listen.client_cert  # router.wire.tls
        self.factories.append((listen, factory))
        return proxied(self, listen, factory)

    def startService(self) -> Deferred:
        super().startService()
        _check_accelerators()
        if self._standalone:
            # now (twistd starts services with the reactor running, its handlers
            # in place), and again once running in case we were started earlier
            self._install_signal_handlers()
            if not self.reactor.running:
                self.reactor.callWhenRunning(self._install_signal_handlers)
        # (the endpoint as an error message names it, the endpoint string, the factory)
        wanted = [
            (f"{listen.transport}:{listen.endpoint}", listen.endpoint, self._factory(listen), listen.backlog)
            for listen in self.config.listen
        ]
        ops = self.ops
        if ops is not None:  # count what each endpoint's connections send and receive; add the ops listeners
            for listen, factory in self.factories:  # the transports' own factories (universal's inner ones too)
                if listen.transport in ("websocket", "rawsocket"):
                    ops.meter_factory(factory, listen.transport)
            wanted += [(*listener, None) for listener in ops.listeners()]
        http = getattr(self.config, "http", None)
        if http is not None:
            site = push_site(self.router, http.secret, http.max_body, self.proxy_trust, ops=ops.on_push_port() if ops else None)
            wanted.append((f"http:{http.endpoint}", http.endpoint, site, None))
        listening = []
        # a --workers worker's inherited sockets: one per listen endpoint, then the HTTP push endpoint's
        slots = [*range(len(self.config.listen)), *([len(wanted) - 1] if http is not None else [])]
        adopted = dict(zip(slots, self._adopt or ()))
        for index, (shown, endpoint, factory, backlog) in enumerate(wanted):
            if index in adopted:
                fd, family = adopted[index]
                d = maybeDeferred(adopt, self.reactor, endpoint, fd, _FAMILIES[family], factory)
            else:
                d = maybeDeferred(_listen, self.reactor, endpoint, factory, backlog)
            listening.append(d.addErrback(_as_failed, shown))
        d = DeferredList(listening)
        d.addCallback(self._all_listening)
        if self.config.cluster is not None:
            d.addCallback(self._join_cluster)
        d.addCallback(self._launched)
        if self._standalone:
            # Every endpoint Twisted ships listens synchronously, and twistd and
            # twist start this service before the reactor runs: a failure is
            # known by now, and the honest answer is to exit with status 1 at
            # once (nothing has been announced, there is no reactor to stop).
            # SystemExit is what reaches the runner: one raised from a reactor
            # callback would only be logged.
            failed = []
            d.addErrback(lambda failure: failed.append(failure) if failure.check(ListenError) else failure)
            if failed:
                if self._daemon:
                    # twistd without -n: its waiting parent process hears of
                    # an Exception (and says so), but never of a SystemExit.
                    raise failed[0].value
                # The reason is logged already (critical: twist shows it on
                # stderr even before its logging starts); no second copy,
                # and no traceback.
                raise SystemExit(1)
            # An endpoint plugin that listens later can only stop the reactor.
            d.addErrback(self._failed_late)
        return d

    def _failed_late(self, failure):
        if failure.check(ListenError) and self.reactor.running:
            self.reactor.stop()
        return failure

    def _all_listening(self, results):
        """All endpoints' ports, or (after stopping those that listen) a ListenError."""
        ports = [value for _, value in results if not isinstance(value, _Failed)]
        failed = [(value.endpoint, value.reason) for _, value in results if isinstance(value, _Failed)]
        if not failed:
            return ports
        error = ListenError(failed)
        _log.critical("wampd did not start: {error}", error=str(error))
        stopped = [maybeDeferred(port.stopListening) for port in ports]
        self.running = 0
        if self._standalone and not self.reactor.running:
            # The process exits before the reactor runs, so Twisted's own
            # clean-up of a unix socket file never happens: remove ours.
            for port in ports:
                _remove_socket_file(port)
            raise error

        def fail(_):
            raise error

        return DeferredList(stopped).addCallback(fail)

    def _join_cluster(self, ports):
        """Join the cluster once listening (router.clustering); if it can't, stop listening and exit 1."""
        return join_cluster(self, ports)

    def _launched(self, ports):
        self.ports = list(ports)
        if self._adopt is not None and self._standalone:  # a --workers worker: not without its parent
            watch_parent(self)
        infos = []
        http = getattr(self.config, "http", None)
        if http is not None:
            address = ports[-1].getHost()
            host, number = getattr(address, "host", None), getattr(address, "port", None)
            scheme = "https" if http.endpoint.startswith("ssl:") else "http"
            url = f"{scheme}://{host}:{number}" if number is not None else None
            infos_http = [EndpointInfo(http.endpoint, "http", host, number, url)]
        else:
            infos_http = []
        for listen, port in zip(self.config.listen, ports):
            address = port.getHost()
            host = getattr(address, "host", None)
            number = getattr(address, "port", None)
            url = None
            if listen.transport != "rawsocket" and number is not None:
                tls = listen.endpoint.startswith("ssl:")
                shown = f"[{host}]" if host and ":" in host else host
                if listen.transport == "longpoll":  # the base URL autobahn-js's longpoll transport wants
                    url = f"{'https' if tls else 'http'}://{shown}:{number}{self.config.web.longpoll.path}"
                else:
                    url = f"{'wss' if tls else 'ws'}://{shown}:{number}{listen.path}"
            infos.append(EndpointInfo(listen.endpoint, listen.transport, host, number, url))
        if self.ops is not None:
            count = len(self.config.listen)
            infos += self.ops.endpoint_infos(self.ports[count : count + len(self.ops.listeners())])
        self.endpoints = tuple(infos + infos_http)
        self.sweeper.start()
        self.router.start_periodics()
        self._launched_event = True
        launched = self.router.dispatcher.emit(
            ServerLaunched(self.endpoints, tuple(self.router.realms), self.reactor, self.router)
        )
        return launched

    def stopService(self) -> Deferred:
        super().stopService()
        self.sweeper.stop()
        if self.ops is not None:
            self.ops.close()
        if not self._launched_event:
            # never launched (a listen failed): nothing to announce or close
            return self._stop_listening()
        d = self.router.shutdown(
            "wamp.close.system_shutdown",
            self.config.shutdown_timeout,
            stop_accepting=self._stop_listening,
        )
        if self.cluster is not None:  # the sessions have left: now tell the other nodes
            d.addBoth(self._stop_cluster)
        if self.bridges is None:
            return d
        return d.addBoth(self._stop_bridges)

    def _stop_bridges(self, result: Any) -> Any:
        """After the sessions: the webhooks and HTTP callees (router.bridge); then ``result`` as it was."""
        bridges = self.bridges
        assert bridges is not None  # only added when there are bridges
        return maybeDeferred(bridges.stop).addBoth(lambda _: result)

    def _stop_cluster(self, result: Any) -> Any:
        """After the sessions: leave the cluster; then ``result`` as it was."""
        return leave_cluster(self, result)

    def _stop_listening(self):
        ports, self.ports = self.ports, []
        return DeferredList([maybeDeferred(port.stopListening) for port in ports])


#: ``--worker-fds`` family names (router.workers writes them).
_FAMILIES = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "unix": socket.AF_UNIX}


def _listen(reactor, endpoint: str, factory, backlog: int | None = None):
    return serverFromString(listening_reactor(reactor, factory), effective_endpoint(endpoint, backlog)).listen(factory)


class _Failed:
    """A listen that failed, kept in the DeferredList as a value."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint, self.reason = endpoint, reason


def _as_failed(failure: Any, shown: str) -> _Failed:
    return _Failed(shown, _reason(failure))


def _remove_socket_file(port) -> None:
    name = getattr(port.getHost(), "name", None)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if name and not name.startswith("\0") and os.path.exists(name):
        try:
            os.unlink(name)
        except OSError:
            pass


def _check_accelerators() -> None:
    """Autobahn's NVX (C UTF-8 validation and XOR masking) should be on under CPython."""
    if platform.python_implementation() == "CPython" and not USES_NVX:
        _log.warn(
            "Autobahn's NVX accelerator is not active (AUTOBAHN_USE_NVX or a build without cffi?): "
            "WebSocket frames are validated and masked in pure Python, several times slower"
        )


def _is_log_listener(obj) -> bool:
    return isinstance(obj, LogListener)
