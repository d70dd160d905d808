"""
The slow-consumer metrics over real loopback sockets (the set-ups of
tests/test_backpressure.py): a dropped subscriber counts in
``wampd_slow_consumer_disconnects_total``, dropped EVENTs in
``wampd_outbound_dropped_events_total``.
"""

from __future__ import annotations

import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families

from router.config import MetricsConfig
from tests.test_backpressure import (
    BATCH, CHUNK, EVENT, MAX_MESSAGES, PUBLISH, joined, router_peer, small_send_buffer, stalled_subscriber, started, stop, subscribe,
)

METRICS = MetricsConfig(True, "tcp:0:interface=127.0.0.1")


def scraped(service) -> dict:
    values = {}
    for family in text_string_to_metric_families(service.ops.metrics.render().decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


@pytest_twisted.ensureDeferred
async def test_a_dropped_slow_consumer_is_counted():
    """A subscriber dropped for not reading counts once in wampd_slow_consumer_disconnects_total."""
    service, recorder, addresses = await started(metrics=METRICS)
    assert scraped(service)[("wampd_slow_consumer_disconnects_total", ())] == 0
    await stalled_subscriber(service, recorder, addresses["rawsocket"], "rawsocket")
    assert scraped(service)[("wampd_slow_consumer_disconnects_total", ())] == 1


@pytest_twisted.ensureDeferred
async def test_events_dropped_for_a_slow_consumer_are_counted():
    """With slow_consumer = "drop", every EVENT not sent counts in wampd_outbound_dropped_events_total, and not as sent."""
    service, recorder, addresses = await started(slow_consumer="drop", metrics=METRICS)
    peers = []
    try:
        address = addresses["websocket"]
        stalled = await joined(address, "websocket", peers)
        healthy = await joined(address, "websocket", peers)
        publisher = await joined(address, "websocket", peers)
        await subscribe(stalled, 1)
        await subscribe(healthy, 1)
        proto = router_peer(service, stalled)
        small_send_buffer(proto.transport)
        stalled.stop_reading(small_buffer=False)
        sent = 0
        while proto.dropped_events < 20 and sent < MAX_MESSAGES:
            for _ in range(BATCH):
                sent += 1
                publisher.send([PUBLISH, sent, {}, "com.flood", [sent, CHUNK]])
            await healthy.wait_nth(EVENT, sent)
        assert proto.dropped_events >= 20
        values = scraped(service)
        labels = (("serializer", "json"), ("transport", "websocket"))
        assert values[("wampd_outbound_dropped_events_total", labels)] == proto.dropped_events
        events_sent = values[("wampd_messages_sent_total", labels + (("type", "EVENT"),))]
        assert events_sent == 2 * sent - proto.dropped_events  # two subscribers, the drops not written
        assert values[("wampd_messages_received_total", labels + (("type", "PUBLISH"),))] == sent
    finally:
        await stop(service, peers)
