"""
The HTTP bridge out of the router: webhook subscribers (events POSTed to a
URL, :mod:`router.bridge.webhook`) and HTTP callees (procedures answered by
a URL, :mod:`router.bridge.callee`), built from the ``[[webhook]]`` and
``[[http_callee]]`` config tables.  HTTP into the router is
:mod:`router.http` (push) and the long-poll transport.
"""

from __future__ import annotations

from twisted.web.client import Agent, HTTPConnectionPool

from router.bridge.callee import install_callee
from router.bridge.webhook import Webhook

__all__ = ["Bridges", "Webhook", "install_callee"]


class Bridges:
    """Every webhook and HTTP callee of a router, over one HTTP connection pool."""

    def __init__(self, router, webhooks=(), callees=(), reactor=None) -> None:
        self.webhooks: list[Webhook] = []
        self.pool = None
        if not webhooks and not callees:
            return
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = 4
        agent = Agent(reactor, pool=self.pool, connectTimeout=30)
        for cfg in callees:
            install_callee(router.realms[cfg.realm], cfg, agent, reactor)
        for cfg in webhooks:
            self.webhooks.append(Webhook(router.realms[cfg.realm], cfg, agent, reactor))

    def stop(self):
        for hook in self.webhooks:
            hook.stop()
        if self.pool is not None:
            return self.pool.closeCachedConnections()
        return None
