"""
Running the router in production: Prometheus metrics, health probes and the
live status page.

* :mod:`router.ops.meter`: the counters, cheap on the hot path.
* :mod:`router.ops.metrics`: ``/metrics`` (prometheus_client, the optional
  extra ``wampd[metrics]``, imported only when metrics are on).
* :mod:`router.ops.health`: ``/healthz`` and ``/readyz`` (with the hook for
  more readiness checks, such as a cluster backend).
* :mod:`router.ops.status`: the status page (server-sent events).
* :mod:`router.ops.site`: the HTTP resource and Site for all of them.

:class:`Ops` is what :class:`~router.service.RouterService` holds when
``[metrics]`` or ``[status]`` is enabled, and None otherwise.
"""

from __future__ import annotations

from typing import Any

from router.events import EndpointInfo
from router.ops.health import Health
from router.ops.meter import Meter
from router.ops.site import OpsResource, ops_site

__all__ = ["Ops", "build_ops"]


class Ops:
    """The operations parts of one router service, and the HTTP listeners they are served on."""

    def __init__(self, service: Any) -> None:
        config = service.config
        metrics_cfg = config.metrics if config.metrics is not None and config.metrics.enabled else None
        status_cfg = config.status if config.status is not None and config.status.enabled else None
        self.health = Health(service)
        self.meter = Meter(service.router)
        self.meter.install()
        self.metrics = self.status = None
        if metrics_cfg is not None:
            from router.ops.metrics import MetricsPage  # lazy: prometheus_client is an optional extra

            self.metrics = MetricsPage(self.meter)
        if status_cfg is not None:
            from router.ops.status import StatusPage  # lazy: only with the page enabled

            self.status = StatusPage(
                service.router, self.meter, status_cfg.secret, status_cfg.recent_events, status_cfg.interval
            )
        # endpoint (None: the push port) -> what is served there
        where: dict[str | None, dict[str, Any]] = {}
        if metrics_cfg is not None:
            where.setdefault(metrics_cfg.endpoint, {})["metrics"] = self.metrics
        if status_cfg is not None:
            endpoint = status_cfg.endpoint
            if endpoint is None and metrics_cfg is not None:
                endpoint = metrics_cfg.endpoint  # where the metrics are (None: the push port)
            where.setdefault(endpoint, {})["status"] = self.status
        self.resources = {endpoint: OpsResource(self.health, **parts) for endpoint, parts in where.items()}

    def meter_factory(self, factory: Any, transport: str) -> None:
        self.meter.meter_factory(factory, transport)

    def on_push_port(self) -> OpsResource | None:
        """What the HTTP push port serves besides /publish and /call, if anything."""
        return self.resources.get(None)

    def listeners(self) -> list[tuple[str, str, Any]]:
        """(name in errors, endpoint, factory) of each HTTP listener of its own."""
        return [(f"ops:{endpoint}", endpoint, ops_site(res)) for endpoint, res in self.resources.items() if endpoint]

    def endpoint_infos(self, ports: list) -> list[EndpointInfo]:
        infos = []
        for (_, endpoint, _), port in zip(self.listeners(), ports):
            address = port.getHost()
            host, number = getattr(address, "host", None), getattr(address, "port", None)
            scheme = "https" if endpoint.startswith("ssl:") else "http"
            shown = f"[{host}]" if host and ":" in host else host
            infos.append(EndpointInfo(endpoint, "http", host, number, f"{scheme}://{shown}:{number}" if number is not None else None))
        return infos

    def close(self) -> None:
        if self.status is not None:
            self.status.close()


def build_ops(service: Any) -> Ops | None:
    """The service's :class:`Ops`, or None when neither metrics nor the status page is enabled."""
    config = service.config
    wanted = [part for part in (config.metrics, config.status) if part is not None and part.enabled]
    return Ops(service) if wanted else None
