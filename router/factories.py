"""
The protocol factory for each listen endpoint of a :class:`~router.service.RouterService`:
WebSocket, RawSocket, HTTP long-poll, or the universal listener that sniffs
which of them a connection speaks; wrapped for the PROXY protocol where the
endpoint asks for it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from router.config import ListenConfig
from router.http import push_site
from router.wire import RawSocketFactory, WebSocketFactory
from router.wire.longpoll import LongPollResource, longpoll_site
from router.wire.proxy import ProxyProtocolFactory
from router.wire.universal import UniversalFactory

__all__ = ["transport_factory", "proxied"]


def proxied(service: Any, listen: ListenConfig, factory: Any) -> Any:
    """``factory`` as ``listen`` serves it: behind forwarded headers or the PROXY protocol where configured."""
    if listen.transport == "websocket" and service.proxy_trust.enabled:
        factory.proxy_trust = service.proxy_trust
    if listen.proxy_protocol:
        wait = service.config.hello_timeout or 10.0
        return ProxyProtocolFactory(factory, service.proxy_trust, service.reactor, wait)
    return factory


def transport_factory(service: Any, listen: ListenConfig) -> Any:
    """The transport's own factory for ``listen`` (``service``: a RouterService), before :func:`proxied`."""
    cfg = service.config
    if listen.transport == "longpoll":
        return _longpoll(service, listen)
    if listen.transport == "universal":
        web = cfg.web
        http = [(web.longpoll.path, _longpoll(service, listen))]
        push_config = getattr(cfg, "http", None)
        if push_config is not None:
            push = push_site(service.router, push_config.secret, push_config.max_body)
            http += [("/publish", push), ("/call", push)]
        return UniversalFactory(
            service.reactor,
            service._factory(replace(listen, transport="websocket")),
            service._factory(replace(listen, transport="rawsocket", path="/ws")),
            http,
            sniff_timeout=web.universal.sniff_timeout,
            max_request_line=web.universal.max_request_line,
        )
    if listen.transport == "rawsocket":
        return RawSocketFactory(
            service.router,
            endpoint=listen.endpoint,
            max_message_size=cfg.max_message_size,
            sweeper=service.sweeper,
            max_outbound_buffer=cfg.max_outbound_buffer,
            slow_consumer=cfg.slow_consumer,
        )
    return WebSocketFactory(
        service.router,
        service.sweeper,
        path=listen.path,
        endpoint=listen.endpoint,
        max_message_size=cfg.max_message_size,
        max_outbound_buffer=cfg.max_outbound_buffer,
        slow_consumer=cfg.slow_consumer,
        deflate=cfg.websocket_deflate,
    )


def _longpoll(service: Any, listen: ListenConfig) -> Any:
    cfg, lp = service.config, service.config.web.longpoll
    return longpoll_site(
        LongPollResource(
            service.router,
            base=lp.path,
            endpoint=listen.endpoint,
            request_timeout=lp.request_timeout,
            session_timeout=lp.session_timeout,
            max_message_size=cfg.max_message_size,
            max_outbound_buffer=cfg.max_outbound_buffer,
            slow_consumer=cfg.slow_consumer,
        )
    )
