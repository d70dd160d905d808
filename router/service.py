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
"""

from __future__ import annotations

from typing import Any, Iterable

from twisted.application.service import Service
from twisted.internet.defer import DeferredList, gatherResults, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger

from router.config import ListenerConfig, RouterConfig
from router.core import Router
from router.events import EndpointInfo, ServerLaunched
from router.policy import ConnectionPolicy
from router.transport import PingSweeper, RawSocketFactory, WebSocketFactory

__all__ = ["RouterService"]

_log = Logger(namespace="wampd.service")


class RouterService(Service):
    name = "wampd"

    def __init__(
        self,
        config: RouterConfig | None = None,
        listeners: Iterable[tuple[ListenerConfig | None, object]] = (),
        reactor: Any = None,
        clean_exit_on_signals: bool = False,
        apps: Iterable[object] = (),
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.config = config = config if config is not None else RouterConfig()
        self.reactor = reactor
        pairs = list(listeners)
        if config.default_listener and not any(_is_log_listener(obj) for _, obj in pairs):
            from listeners.log import LogListener

            pairs.insert(0, (None, LogListener()))
        self.router = Router(
            realms=config.realms,
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
            max_nesting_depth=config.max_nesting_depth,
            max_retained_topics=config.max_retained_topics,
            retained_ttl=config.retained_ttl,
        )
        for app in apps:
            self.router.install_app(app)
        self.sweeper = PingSweeper(reactor, config.ping_interval, config.ping_timeout)
        self.ports: list = []
        self.endpoints: tuple[EndpointInfo, ...] = ()
        self._clean_exit_on_signals = clean_exit_on_signals

    def _factory(self, listen):
        cfg = self.config
        if listen.transport == "rawsocket":
            return RawSocketFactory(
                self.router, endpoint=listen.endpoint, max_message_size=cfg.max_message_size
            )
        return WebSocketFactory(
            self.router,
            self.sweeper,
            path=listen.path,
            endpoint=listen.endpoint,
            max_message_size=cfg.max_message_size,
        )

    def startService(self):
        super().startService()
        _check_accelerators()
        if self._clean_exit_on_signals:
            # now (twistd starts services with the reactor running, its handlers
            # in place), and again once running in case we were started earlier
            self._install_signal_handlers()
            if not self.reactor.running:
                self.reactor.callWhenRunning(self._install_signal_handlers)
        listening = [
            serverFromString(self.reactor, listen.endpoint).listen(self._factory(listen))
            for listen in self.config.listen
        ]
        http = getattr(self.config, "http", None)
        if http is not None:
            from router.http import push_site

            site = push_site(self.router, http.secret, http.max_body)
            listening.append(serverFromString(self.reactor, http.endpoint).listen(site))
        d = gatherResults(listening, consumeErrors=True)
        d.addCallback(self._launched)
        d.addErrback(self._listen_failed)
        return d

    def _launched(self, ports):
        self.ports = list(ports)
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
            if listen.transport == "websocket" and number is not None:
                scheme = "wss" if listen.endpoint.startswith("ssl:") else "ws"
                shown = f"[{host}]" if host and ":" in host else host
                url = f"{scheme}://{shown}:{number}{listen.path}"
            infos.append(EndpointInfo(listen.endpoint, listen.transport, host, number, url))
        self.endpoints = tuple(infos + infos_http)
        self.sweeper.start()
        self.router.start_periodics()
        launched = self.router.dispatcher.emit(
            ServerLaunched(self.endpoints, tuple(self.router.realms), self.reactor, self.router)
        )
        return launched

    def _install_signal_handlers(self) -> None:
        """
        SIGTERM and SIGINT stop the reactor (and so this service, gracefully)
        without twistd re-raising the signal afterwards: a graceful shutdown
        exits with status 0, which is what process supervisors expect.
        """
        import signal

        def stop(signum, frame):
            self.reactor.callFromThread(self._stop_reactor, signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _stop_reactor(self, name: str) -> None:
        _log.info("received {signal}: shutting down gracefully", signal=name)
        if self.reactor.running:
            self.reactor.stop()

    def _listen_failed(self, failure):
        first = getattr(failure.value, "subFailure", failure)
        _log.critical("wampd could not listen: {error}", error=first.getErrorMessage())
        for d in self.ports:
            d.stopListening()
        if self.reactor.running:
            self.reactor.stop()
        return first

    def stopService(self):
        super().stopService()
        self.sweeper.stop()
        return self.router.shutdown(
            "wamp.close.system_shutdown",
            self.config.shutdown_timeout,
            stop_accepting=self._stop_listening,
        )

    def _stop_listening(self):
        ports, self.ports = self.ports, []
        return DeferredList([maybeDeferred(port.stopListening) for port in ports])


def _check_accelerators() -> None:
    """Autobahn's NVX (C UTF-8 validation and XOR masking) should be on under CPython."""
    import platform

    from autobahn.websocket import USES_NVX

    if platform.python_implementation() == "CPython" and not USES_NVX:
        _log.warn(
            "Autobahn's NVX accelerator is not active (AUTOBAHN_USE_NVX or a build without cffi?): "
            "WebSocket frames are validated and masked in pure Python, several times slower"
        )


def _is_log_listener(obj) -> bool:
    from listeners.log import LogListener

    return isinstance(obj, LogListener)
