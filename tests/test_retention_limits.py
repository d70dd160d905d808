"""
Bounded event retention (``max_retained_topics``, ``retained_ttl``) and the
prefix index of retained topics, on the in-memory router with a Clock:
real autobahn-python subscribers, the router's own publisher.
"""

from __future__ import annotations

from autobahn.wamp.types import SubscribeOptions

import router.broker._retention
from router.testing import MemoryRouter
from tests.raw_client import Calls


def retained_events(memory, client, topic, match="prefix"):
    """What a new subscription with ``get_retained`` receives: (topic, args) pairs."""
    got = Calls()
    memory.result(client.subscribe(got, topic, options=SubscribeOptions(match=match, get_retained=True, details=True)))
    memory.flush()
    return sorted((details.topic or topic, args) for args, _, details in got.calls)


def test_retained_topics_are_bounded_least_recently_retained_first():
    """
    Past ``max_retained_topics`` the topic retained least recently loses its
    event (re-retaining a topic makes it recent again); the others stay.
    """
    memory = MemoryRouter(max_retained_topics=3)
    api = memory.router.api("realm1")
    for name in "abcd":
        api.publish(f"com.r.{name}", name, options={"retain": True})
    broker = memory.router.realms["realm1"].broker
    assert broker.retained_topics() == ("com.r.b", "com.r.c", "com.r.d")
    api.publish("com.r.b", "b2", options={"retain": True})
    api.publish("com.r.e", "e", options={"retain": True})
    assert broker.retained_topics() == ("com.r.d", "com.r.b", "com.r.e")
    client = memory.join()
    assert retained_events(memory, client, "com.r.") == [("com.r.b", ("b2",)), ("com.r.d", ("d",)), ("com.r.e", ("e",))]
    assert retained_events(memory, client, "com.r.c", "exact") == []


def test_many_retained_topics_stay_within_the_bound():
    """50,000 retained topics against the default bound of 10,000 keep 10,000 (the newest), index included."""
    memory = MemoryRouter()
    api = memory.router.api("realm1")
    for n in range(50_000):
        api.publish(f"com.many.t{n}", n, options={"retain": True})
    broker = memory.router.realms["realm1"].broker
    topics = broker.retained_topics()
    assert len(topics) == 10_000 and topics[0] == "com.many.t40000"
    assert sorted(topics) == broker._retained_sorted


def test_retained_events_expire_after_the_ttl():
    """
    With ``retained_ttl`` an event older than the TTL is not delivered and its
    topic is swept (no timer per topic); a newer retain starts a new lifetime.
    """
    memory = MemoryRouter(retained_ttl=10.0)
    api = memory.router.api("realm1")
    broker = memory.router.realms["realm1"].broker
    api.publish("com.ttl.a", "a", options={"retain": True})
    memory.clock.advance(5)
    api.publish("com.ttl.b", "b", options={"retain": True})
    assert memory.clock.getDelayedCalls() == []
    client = memory.join()
    memory.clock.advance(5)  # a is exactly 10 s old: expired
    assert retained_events(memory, client, "com.ttl.") == [("com.ttl.b", ("b",))]
    assert broker.retained_topics() == ("com.ttl.b",)
    api.publish("com.ttl.a", "a2", options={"retain": True})
    memory.clock.advance(9.5)
    assert retained_events(memory, client, "com.ttl.") == [("com.ttl.a", ("a2",))]
    assert retained_events(memory, client, "com.ttl.b", "exact") == []
    memory.clock.advance(1)
    assert retained_events(memory, client, "com.ttl.", "wildcard") == []
    assert broker.retained_topics() == ()


def test_prefix_get_retained_costs_what_it_returns(monkeypatch):
    """
    A prefix ``get_retained`` walks the sorted index from the prefix instead
    of testing every retained topic (it took about 2 s over 50,000 topics):
    no topic outside the result is looked at.
    """
    memory = MemoryRouter(max_retained_topics=0)
    api = memory.router.api("realm1")
    for n in range(5_000):
        api.publish(f"com.idx.t{n:05d}", n, options={"retain": True})
    tested = []
    real = router.broker._retention.topic_matches  # where the retention code looks it up
    monkeypatch.setattr(router.broker._retention, "topic_matches", lambda *a: tested.append(a) or real(*a))
    client = memory.join()
    assert retained_events(memory, client, "com.idx.t0420") == [
        (f"com.idx.t0420{d}", (4200 + d,)) for d in range(10)
    ]
    assert tested == []


def test_the_service_passes_the_retention_settings():
    """``[router] max_retained_topics`` and ``retained_ttl`` reach the router."""
    from tests.conftest import make_service

    service = make_service(max_retained_topics=7, retained_ttl=3.5, max_nesting_depth=12)
    router_ = service.router
    assert (router_.max_retained_topics, router_.retained_ttl) == (7, 3.5)
    from router.wire import RawSocketFactory, WebSocketFactory

    assert router_.max_nesting_depth == 12
    for factory in (RawSocketFactory(router_), WebSocketFactory(router_, service.sweeper)):
        assert factory.codecs["cbor"].max_depth == 12
