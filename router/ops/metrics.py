"""
``GET /metrics``: the router's counters in Prometheus' text format.

prometheus_client (the optional extra ``wampd[metrics]``) is only used here,
and only when ``/metrics`` is read: a custom collector walks the
:class:`~router.ops.meter.Meter` and the router's tables and yields metric
families.  No prometheus_client object is touched per message.

Metrics (all prefixed ``wampd_``):

=======================================  ========  =====================================
name                                     kind      labels
=======================================  ========  =====================================
connections                              gauge     transport, serializer
connections_accepted                     gauge     (open sockets, handshake done or not)
sessions                                 gauge     realm, transport, serializer
messages_received_total, _sent_total     counter   transport, serializer, type
message_bytes_received_total, _sent_     counter   transport, serializer, type
rejections_total                         counter   reason
listener_handler_seconds                 histogram listener, event
listener_handler_failures_total          counter   listener, event
call_latency_seconds                     histogram realm
slow_consumer_disconnects_total          counter
outbound_dropped_events_total            counter   transport, serializer
subscriptions, registrations             gauge     realm
retained_topics                          gauge     realm
=======================================  ========  =====================================

and prometheus_client's own ``process_*`` metrics (memory, CPU, open files).
"""

from __future__ import annotations

from typing import Any, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from router.ops.meter import Meter

__all__ = ["MetricsPage", "CONTENT_TYPE"]

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class _Collector:
    """A prometheus_client custom collector over one :class:`Meter`."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def describe(self) -> list:
        return []  # families are only known when collected

    def collect(self) -> Iterator[Any]:
        meter, router = self.meter, self.meter.router
        family = GaugeMetricFamily(
            "wampd_connections", "Open connections past their transport handshake", labels=["transport", "serializer"]
        )
        for (transport, serializer), count in sorted(meter.connections().items()):
            family.add_metric([transport, serializer], count)
        yield family
        yield GaugeMetricFamily(
            "wampd_connections_accepted", "Open sockets, handshake done or not (what max_connections counts)",
            value=router.open_connections,
        )
        family = GaugeMetricFamily(
            "wampd_sessions", "Joined sessions", labels=["realm", "transport", "serializer"]
        )
        for key, count in sorted(meter.sessions().items()):
            family.add_metric(list(key), count)
        yield family
        yield from self._traffic(meter)
        family = CounterMetricFamily("wampd_rejections", "Connections and joins refused, by reason", labels=["reason"])
        for reason, count in sorted(meter.rejections.items()):
            family.add_metric([reason], count)
        yield family
        family = HistogramMetricFamily(
            "wampd_listener_handler_seconds", "Time listener handlers took, by listener and event",
            labels=["listener", "event"],
        )
        failures = CounterMetricFamily(
            "wampd_listener_handler_failures", "Listener handlers that raised, failed or timed out",
            labels=["listener", "event"],
        )
        for key, histogram in sorted(meter.handlers.items()):
            family.add_metric(list(key), histogram.cumulative(), histogram.sum)
            failures.add_metric(list(key), meter.handler_failures.get(key, 0))
        yield family
        yield failures
        family = HistogramMetricFamily(
            "wampd_call_latency_seconds", "Time from CALL to its end (RESULT, ERROR, timeout, cancel) in the dealer",
            labels=["realm"],
        )
        for realm, timer in sorted(meter.calls.items()):
            family.add_metric([realm], timer.histogram.cumulative(), timer.histogram.sum)
        yield family
        yield CounterMetricFamily(
            "wampd_slow_consumer_disconnects", "Sessions dropped because they stopped reading", value=meter.slow_consumers
        )
        family = CounterMetricFamily(
            "wampd_outbound_dropped_events", "EVENTs not sent to a client over max_outbound_buffer (slow_consumer = drop)",
            labels=["transport", "serializer"],
        )
        for key, count in sorted(meter.dropped().items()):
            family.add_metric(list(key), count)
        yield family
        subs = GaugeMetricFamily("wampd_subscriptions", "Subscriptions", labels=["realm"])
        regs = GaugeMetricFamily("wampd_registrations", "Registrations", labels=["realm"])
        retained = GaugeMetricFamily("wampd_retained_topics", "Topics holding a retained event", labels=["realm"])
        for name, realm in sorted(router.realms.items()):
            subs.add_metric([name], len(realm.broker.subscriptions()))
            regs.add_metric([name], len(realm.dealer.registrations()))
            retained.add_metric([name], len(realm.broker.retained_topics()))
        yield subs
        yield regs
        yield retained

    @staticmethod
    def _traffic(meter: Meter) -> Iterator[Any]:
        labels = ["transport", "serializer", "type"]
        families = {
            direction: (
                CounterMetricFamily(f"wampd_messages_{word}", f"WAMP messages {word}", labels=labels),
                CounterMetricFamily(
                    f"wampd_message_bytes_{word}", f"WAMP message bytes {word} (payload, without framing)", labels=labels
                ),
            )
            for direction, word in (("in", "received"), ("out", "sent"))
        }
        for (direction, transport, serializer, kind), (count, size) in sorted(meter.traffic().items()):
            messages, sizes = families[direction]
            messages.add_metric([transport, serializer, kind], count)
            sizes.add_metric([transport, serializer, kind], size)
        for pair in families.values():
            yield from pair


class MetricsPage:
    """What ``GET /metrics`` answers: a registry of this router's collector and the process collector."""

    def __init__(self, meter: Meter) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(meter))
        ProcessCollector(registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
