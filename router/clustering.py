"""
A :class:`~router.service.RouterService` joining and leaving its cluster
(``[cluster]`` / ``--cluster``; see :mod:`router.cluster`).  The Redis client
(the ``wampd[cluster]`` extra) is imported only when a cluster is configured.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from router.cluster import parse_redis_url

__all__ = ["join_cluster", "leave_cluster", "watch_parent"]

_log = Logger(namespace="wampd.service")


def join_cluster(service: Any, ports: list) -> Deferred:
    """Join once listening; fires with ``ports``.  If it can't: stop listening, log why, exit with status 1."""
    from router.cluster._node import ClusterNode  # lazy: the cluster extra (hiredis) is needed only here

    cfg = service.config.cluster
    assert cfg is not None  # called only with a [cluster] config
    service.cluster = ClusterNode(
        service.router, parse_redis_url(cfg.url), name=cfg.name or None, prefix=cfg.prefix,
        heartbeat=cfg.heartbeat, timeout=cfg.timeout, push_role=cfg.push_role, prefer_local=cfg.prefer_local,
        reactor=service.reactor,
    )

    def failed(failure):
        service.cluster = None
        _log.critical("wampd did not start: cluster: {error}", error=failure.getErrorMessage())
        service.ports = list(ports)
        service._stop_listening()
        if service._standalone and service.reactor.running:
            service.reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
            service.reactor.stop()
        return failure

    def joined(_):
        ops = getattr(service, "ops", None)
        if ops is not None:  # /readyz: not ready while Redis is away
            ops.health.add_check("cluster: Redis reachable", lambda: service.cluster is not None and service.cluster.connected)
        return ports

    return ensureDeferred(service.cluster.start()).addCallbacks(joined, failed)


def leave_cluster(service: Any, result: Any) -> Any:
    """After the sessions have left: tell the other nodes; then ``result`` as it was."""
    return ensureDeferred(service.cluster.stop()).addBoth(lambda _: result)


def watch_parent(service: Any, interval: float = 1.0) -> LoopingCall:
    """
    A ``--workers`` worker: once a second, check that the parent that started it
    is still there.  If it is gone (killed with SIGKILL: no SIGTERM reached the
    workers), stop gracefully, and take the parent's private redis-server down
    with it (the parent says it is private through ``WAMPD_PRIVATE_REDIS``), so
    no orphan keeps the port's clients or the socket directory.
    """
    # the pool says who it is (WAMPD_PARENT_PID): a parent killed before this worker got here still counts
    parent = int(os.environ.get("WAMPD_PARENT_PID") or os.getppid())

    def check() -> None:
        if os.getppid() == parent:
            return
        loop.stop()
        _log.warn("the --workers parent (pid {pid}) is gone: stopping", pid=parent)
        if os.environ.get("WAMPD_PRIVATE_REDIS") and service.cluster is not None:
            service.cluster.cmd_send("SHUTDOWN", "NOSAVE")
        if service.reactor.running:
            service.reactor.stop()

    loop = LoopingCall(check)
    loop.clock = service.reactor
    loop.start(interval, now=True)
    return loop
