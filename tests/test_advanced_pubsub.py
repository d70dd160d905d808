"""
The advanced profile's publish & subscribe features with real autobahn-python
clients over loopback: publisher exclusion and identification, subscriber
black- and whitelisting, pattern-based subscriptions, event retention, the
subscription meta API, and the router's reserved ``wamp.*`` topics.

EVENT details are checked on the messages as they arrived (``Client.inbox``),
because autobahn-python fills some details in itself (``EventDetails.topic``
falls back to the subscription's topic).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import pytest_twisted
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from tests.raw_client import Calls, answer_to, departed, fence, send_any
from tests.wamp_clients import SERIALIZERS, TRANSPORTS, join, join_as, leave

COMBOS = [(t, s) for t in TRANSPORTS for s in SERIALIZERS]
ACK = PublishOptions(acknowledge=True)
DETAILS = SubscribeOptions(details=True)



def events(client, subscription=None):
    """The EVENT messages a client received (optionally for one subscription)."""
    return [
        m
        for m in client.inbox
        if isinstance(m, message.Event) and (subscription is None or m.subscription == subscription)
    ]


# -- publisher exclusion and identification ----------------------------------------


@pytest.mark.parametrize("transport,serializer", COMBOS)
@pytest_twisted.ensureDeferred
async def test_publisher_exclusion_and_identification(live_router, transport, serializer):
    """
    ``exclude_me`` (default true) keeps an event from its publisher; ``disclose_me``
    puts ``publisher``, ``publisher_authid`` and ``publisher_authrole`` in the
    EVENT details, and nothing of the kind without it.  Autobahn-python has no
    ``disclose_me`` option, so that PUBLISH is sent as a hand-made message.
    """
    pub = await join_as(live_router, "alice", transport, serializer)
    sub = await join_as(live_router, "bob", transport, serializer)
    got_pub, got_sub = Calls(), Calls()
    await pub.subscribe(got_pub, "com.example.news", options=DETAILS)
    subscription = await sub.subscribe(got_sub, "com.example.news", options=DETAILS)

    await pub.publish("com.example.news", 1, options=ACK)  # exclude_me defaults to true
    await pub.publish("com.example.news", 2, options=PublishOptions(acknowledge=True, exclude_me=True))
    await pub.publish("com.example.news", 3, options=PublishOptions(acknowledge=True, exclude_me=False))
    send_any(pub, [16, 1_000_001, {"acknowledge": True, "disclose_me": True}, "com.example.news", [4]])
    ack = await answer_to(pub, 1_000_001)
    assert isinstance(ack, message.Published)
    await fence(sub, pub)

    assert got_pub.args == [(3,)]
    assert got_sub.args == [(1,), (2,), (3,), (4,)]
    received = events(sub, subscription.id)
    for event in received[:3]:
        assert (event.publisher, event.publisher_authid, event.publisher_authrole) == (None, None, None)
    disclosed = received[3]
    assert disclosed.publication == ack.publication
    assert (disclosed.publisher, disclosed.publisher_authid, disclosed.publisher_authrole) == (
        pub.sid,
        "alice",
        "anonymous",
    )
    details = got_sub.details[3]
    assert (details.publisher, details.publisher_authid, details.publisher_authrole) == (pub.sid, "alice", "anonymous")
    # the publisher's own copy (exclude_me false) carries no identity it did not ask to disclose
    assert got_pub.details[0].publisher is None
    await leave(pub)
    await leave(sub)


@pytest_twisted.ensureDeferred
async def test_publishing_to_reserved_topics_is_not_authorized(live_router):
    c = await join(live_router.ws_url)
    for topic in ("wamp.session.on_join", "wamp.anything"):
        with pytest.raises(ApplicationError) as info:
            await c.publish(topic, 1, options=ACK)
        assert info.value.error == "wamp.error.not_authorized"
    # the session stays, and may subscribe to the router's topics
    await c.subscribe(lambda *a: None, "wamp.session.on_join")
    await leave(c)


# -- subscriber black- and whitelisting ------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_black_and_whitelisting_in_combination(live_router):
    """
    A subscriber receives an event if and only if it is in every ``eligible*``
    list given and in no ``exclude*`` list (the spec's six rules); publisher
    exclusion applies on top.
    """
    pub = await join_as(live_router, "pub")
    a = await join_as(live_router, "alice")
    b = await join_as(live_router, "bob")
    c = await join_as(live_router, "carol")
    d = await join_as(live_router, "bob")
    subscribers = {"pub": pub, "a": a, "b": b, "c": c, "d": d}
    seen = {name: Calls() for name in subscribers}
    for name, client in subscribers.items():
        await client.subscribe(seen[name], "com.example.filtered")
    sid = {name: client.sid for name, client in subscribers.items()}

    cases = [
        (dict(exclude=[sid["a"]]), {"b", "c", "d"}),
        (dict(exclude=[sid["a"], sid["c"]]), {"b", "d"}),
        (dict(exclude_authid=["bob"]), {"a", "c"}),
        (dict(exclude_authrole=["anonymous"]), set()),
        (dict(exclude_authrole=["admin"]), {"a", "b", "c", "d"}),
        (dict(eligible=[sid["a"], sid["b"]]), {"a", "b"}),
        (dict(eligible_authid=["bob"]), {"b", "d"}),
        (dict(eligible_authrole=["anonymous"]), {"a", "b", "c", "d"}),
        (dict(eligible_authrole=["admin"]), set()),
        (dict(eligible=[]), set()),
        # the spec's example: eligible and exclude together
        (dict(eligible=[sid["a"], sid["b"], sid["c"]], exclude=[sid["a"]]), {"b", "c"}),
        (dict(eligible_authid=["bob", "carol"], exclude=[sid["d"]]), {"b", "c"}),
        (dict(eligible=[sid["a"], sid["b"], sid["d"]], eligible_authid=["bob"]), {"b", "d"}),
        (dict(exclude_authid=["alice"], exclude=[sid["b"]]), {"c", "d"}),
        (dict(eligible_authid=["alice", "bob"], exclude_authid=["bob"]), {"a"}),
        (dict(eligible_authrole=["anonymous"], exclude_authid=["carol"], eligible=[sid["c"], sid["d"]]), {"d"}),
        # publisher exclusion still applies to an eligible publisher ...
        (dict(eligible=[sid["pub"], sid["a"]]), {"a"}),
        # ... unless it asks for its own events
        (dict(eligible=[sid["pub"], sid["a"]], exclude_me=False), {"pub", "a"}),
        (dict(exclude=[sid["pub"]], exclude_me=False), {"a", "b", "c", "d"}),
    ]
    for number, (options, _) in enumerate(cases):
        await pub.publish("com.example.filtered", number, options=PublishOptions(acknowledge=True, **options))
    await fence(pub, a, b, c, d)

    for number, (options, expected) in enumerate(cases):
        got = {name for name, calls in seen.items() if (number,) in calls.args}
        assert got == expected, f"case {number}: {options}"
    for client in subscribers.values():
        await leave(client)


# -- pattern-based subscriptions -------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", COMBOS)
@pytest_twisted.ensureDeferred
async def test_pattern_subscriptions(live_router, transport, serializer):
    """
    The spec's prefix and wildcard examples.  One EVENT per matching
    subscription reaches the session, all with the same publication id;
    ``details.topic`` is the concrete topic for pattern matches and absent for
    the exact one.
    """
    address = live_router.address(transport)
    sub = await join(address, transport, serializer)
    pub = await join(address, transport, serializer)
    other = await join(address, transport, serializer)
    prefix = await sub.subscribe(Calls(), "com.myapp.topic.emergency", options=SubscribeOptions(match="prefix"))
    exact = await sub.subscribe(Calls(), "com.myapp.topic.emergency.11")
    wild_11 = await sub.subscribe(Calls(), "com.myapp.topic..11", options=SubscribeOptions(match="wildcard"))
    wild = await sub.subscribe(Calls(), "com.myapp..userevent", options=SubscribeOptions(match="wildcard"))
    # the same URI under another policy is another subscription; the same pattern is shared
    exact_prefix_uri = await sub.subscribe(Calls(), "com.myapp.topic.emergency")
    shared = await other.subscribe(Calls(), "com.myapp.topic.emergency", options=SubscribeOptions(match="prefix"))
    assert len({prefix.id, exact.id, wild_11.id, wild.id, exact_prefix_uri.id}) == 5
    assert shared.id == prefix.id

    topics = [
        "com.myapp.topic.emergency.11",  # prefix, exact, wildcard
        "com.myapp.topic.emergency-low",  # prefix
        "com.myapp.topic.emergency.category.severe",  # prefix
        "com.myapp.topic.emergency",  # prefix, and the exact subscription to the same URI
        "com.myapp.topic.emerge",  # nothing
        "com.myapp.foo.userevent",  # wildcard
        "com.myapp.bar.userevent",
        "com.myapp.a12.userevent",
        "com.myapp.foo.userevent.bar",  # nothing
        "com.myapp.foo.user",
        "com.myapp2.foo.userevent",
    ]
    publications = {}
    for topic in topics:
        publications[topic] = (await pub.publish(topic, topic, options=ACK)).id
    await fence(pub, sub, other)

    got = sorted((e.publication, e.subscription, e.topic, tuple(e.args)) for e in events(sub))
    expected = []
    for topic, subscription, concrete in [
        ("com.myapp.topic.emergency.11", prefix.id, True),
        ("com.myapp.topic.emergency.11", exact.id, False),
        ("com.myapp.topic.emergency.11", wild_11.id, True),
        ("com.myapp.topic.emergency-low", prefix.id, True),
        ("com.myapp.topic.emergency.category.severe", prefix.id, True),
        ("com.myapp.topic.emergency", prefix.id, True),
        ("com.myapp.topic.emergency", exact_prefix_uri.id, False),
        ("com.myapp.foo.userevent", wild.id, True),
        ("com.myapp.bar.userevent", wild.id, True),
        ("com.myapp.a12.userevent", wild.id, True),
    ]:
        expected.append((publications[topic], subscription, topic if concrete else None, (topic,)))
    assert got == sorted(expected)
    # another subscriber of the shared prefix subscription got the four prefix matches
    assert sorted(e.topic for e in events(other)) == sorted(topics[:4])
    await leave(sub)
    await leave(pub)
    await leave(other)


@pytest_twisted.ensureDeferred
async def test_invalid_patterns_get_invalid_uri(live_router):
    """Empty components are only allowed in wildcard patterns; the session stays."""
    c = await join(live_router.ws_url)
    send_any(c, [32, 1_000_001, {}, "com..empty"])
    send_any(c, [32, 1_000_002, {"match": "prefix"}, "com..empty"])
    send_any(c, [32, 1_000_003, {"match": "wildcard"}, "com.#.x"])
    for request in (1_000_001, 1_000_002, 1_000_003):
        reply = await answer_to(c, request)
        assert (type(reply), reply.request_type, reply.error) == (message.Error, 32, "wamp.error.invalid_uri")
    await c.subscribe(lambda: None, "com..ok", options=SubscribeOptions(match="wildcard"))
    await leave(c)


# -- event retention -----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_event_retention(live_router):
    """
    ``retain`` keeps the topic's most recent retained event; ``get_retained``
    delivers it on subscribing, with ``details.retained``, the original
    publication id and (if disclosed) the publisher.  A publish without
    ``retain`` does not replace it; subscribing without ``get_retained`` gets
    nothing.
    """
    pub = await join_as(live_router, "sensor")
    await pub.publish("com.example.temp", 20, options=PublishOptions(acknowledge=True, retain=True))
    latest = await pub.publish("com.example.temp", 21, unit="C", options=PublishOptions(acknowledge=True, retain=True))
    await pub.publish("com.example.temp", 99, options=ACK)  # not retained
    send_any(pub, [16, 1_000_001, {"acknowledge": True, "retain": True, "disclose_me": True}, "com.example.hum", [55]])
    hum = await answer_to(pub, 1_000_001)

    plain = Calls()
    without = await join(live_router.ws_url)
    await without.subscribe(plain, "com.example", options=SubscribeOptions(match="prefix"))
    late = await join(live_router.ws_url)
    retained = Calls()
    subscription = await late.subscribe(
        retained, "com.example.temp", options=SubscribeOptions(get_retained=True, details=True)
    )
    first = await retained.wait(1)
    assert first[0] == (21,) and first[1] == {"unit": "C"}
    assert first[2].retained is True
    event = events(late, subscription.id)[0]
    assert (event.publication, event.retained, event.topic, event.publisher) == (latest.id, True, None, None)

    # a prefix subscription gets every matching topic's retained event, with details.topic
    pattern = await late.subscribe(
        Calls(), "com.example", options=SubscribeOptions(match="prefix", get_retained=True)
    )
    await fence(late)
    by_topic = {e.topic: e for e in events(late, pattern.id)}
    assert set(by_topic) == {"com.example.temp", "com.example.hum"}
    assert by_topic["com.example.temp"].args == [21]
    hum_event = by_topic["com.example.hum"]
    assert (hum_event.publication, hum_event.retained, hum_event.args) == (hum.publication, True, [55])
    assert (hum_event.publisher, hum_event.publisher_authid, hum_event.publisher_authrole) == (
        pub.sid,
        "sensor",
        "anonymous",
    )

    # live events after that are not marked retained
    await pub.publish("com.example.temp", 22, options=ACK)
    await retained.wait(2)
    assert events(late, subscription.id)[-1].retained is None
    await fence(without)
    assert plain.args == [(22,)]  # subscribing without get_retained delivered nothing old
    await leave(pub)
    await leave(late)
    await leave(without)


@pytest_twisted.ensureDeferred
async def test_retained_events_respect_who_could_have_received_them(live_router):
    """
    The spec: the broker MUST send the most recent retained event the
    subscriber would have received had it been subscribed when it was
    published, and MUST NOT send one it would not have received.  So a
    whitelisted retained event goes only to eligible subscribers, whose
    ineligible peers still get the last event meant for everyone, and the
    publisher (excluded by ``exclude_me``) does not get its own event back.
    """
    pub = await join_as(live_router, "pub")
    await pub.publish("com.example.state", "public", options=PublishOptions(acknowledge=True, retain=True))
    await pub.publish(
        "com.example.state",
        "vip only",
        options=PublishOptions(acknowledge=True, retain=True, eligible_authid=["vip"]),
    )

    vip = await join_as(live_router, "vip")
    nobody = await join_as(live_router, "nobody")
    got_vip, got_nobody, got_pub = Calls(), Calls(), Calls()
    await vip.subscribe(got_vip, "com.example.state", options=SubscribeOptions(get_retained=True))
    await nobody.subscribe(got_nobody, "com.example.state", options=SubscribeOptions(get_retained=True))
    await pub.subscribe(got_pub, "com.example.state", options=SubscribeOptions(get_retained=True))
    await fence(vip, nobody, pub)
    assert got_vip.args == [("vip only",)]
    assert got_nobody.args == [("public",)]
    assert got_pub.args == []

    # an event for everyone replaces them all, for everyone but its own publisher
    other = await join_as(live_router, "other")
    await other.publish("com.example.state", "new", options=PublishOptions(acknowledge=True, retain=True))
    late_vip = await join_as(live_router, "vip")
    got_late = Calls()
    await late_vip.subscribe(got_late, "com.example.state", options=SubscribeOptions(get_retained=True))
    got_other = Calls()
    await other.subscribe(got_other, "com.example.state", options=SubscribeOptions(get_retained=True))
    await fence(late_vip, other)
    assert got_late.args == [("new",)]
    assert got_other.args == []
    for client in (pub, vip, nobody, other, late_vip):
        await leave(client)


# -- the subscription meta API ----------------------------------------------------------------------


def _iso_now(created: str) -> float:
    assert created.endswith("Z")
    when = datetime.fromisoformat(created[:-1] + "+00:00")
    return abs((datetime.now(timezone.utc) - when).total_seconds())


@pytest_twisted.ensureDeferred
async def test_subscription_meta_events(live_router):
    """
    on_create (session, SubscriptionDetails) then on_subscribe (session, id) for
    the first subscriber; on_subscribe only for the next; on_unsubscribe, and
    on_delete after the last one leaves (here by GOODBYE), each with exact args.
    """
    observer = await join(live_router.ws_url)
    seen = []
    for kind in ("on_create", "on_subscribe", "on_unsubscribe", "on_delete"):
        topic = f"wamp.subscription.{kind}"
        await observer.subscribe(lambda *args, kind=kind: seen.append((kind, list(args))), topic)
    await fence(observer)
    seen.clear()  # the observer's own subscriptions

    s = await join(live_router.ws_url)
    t = await join(live_router.ws_url)
    sub_s = await s.subscribe(lambda: None, "com.example.meta", options=SubscribeOptions(match="prefix"))
    sub_t = await t.subscribe(lambda: None, "com.example.meta", options=SubscribeOptions(match="prefix"))
    await sub_t.unsubscribe()
    await leave(s)
    await departed(live_router, s)
    await fence(observer)

    sub_id = sub_s.id
    create = seen[0]
    assert create[0] == "on_create" and create[1][0] == s.sid
    details = create[1][1]
    assert set(details) == {"id", "created", "uri", "match"}
    assert (details["id"], details["uri"], details["match"]) == (sub_id, "com.example.meta", "prefix")
    assert _iso_now(details["created"]) < 60
    assert seen[1:] == [
        ("on_subscribe", [s.sid, sub_id]),
        ("on_subscribe", [t.sid, sub_id]),
        ("on_unsubscribe", [t.sid, sub_id]),
        ("on_unsubscribe", [s.sid, sub_id]),
        ("on_delete", [s.sid, sub_id]),
    ]
    await leave(t)
    await leave(observer)


@pytest_twisted.ensureDeferred
async def test_subscription_meta_procedures(live_router):
    a = await join(live_router.ws_url)
    b = await join(live_router.ws_url)
    exact = await a.subscribe(lambda: None, "com.example.a.b")
    await b.subscribe(lambda: None, "com.example.a.b")
    prefix = await a.subscribe(lambda: None, "com.example.a", options=SubscribeOptions(match="prefix"))
    wildcard = await b.subscribe(lambda: None, "com.example..b", options=SubscribeOptions(match="wildcard"))

    assert await a.call("wamp.subscription.list") == {
        "exact": [exact.id],
        "prefix": [prefix.id],
        "wildcard": [wildcard.id],
    }
    # lookup: the subscription for exactly this pattern under a match policy (exact by default)
    assert await a.call("wamp.subscription.lookup", "com.example.a.b") == exact.id
    assert await a.call("wamp.subscription.lookup", "com.example.a.b", {"match": "exact"}) == exact.id
    assert await a.call("wamp.subscription.lookup", "com.example.a", {"match": "prefix"}) == prefix.id
    assert await a.call("wamp.subscription.lookup", "com.example..b", {"match": "wildcard"}) == wildcard.id
    assert await a.call("wamp.subscription.lookup", "com.example.a") is None
    assert await a.call("wamp.subscription.lookup", "com.example.a.b", {"match": "prefix"}) is None
    # match: every subscription a publication to this topic would reach, or null
    assert sorted(await a.call("wamp.subscription.match", "com.example.a.b")) == sorted(
        [exact.id, prefix.id, wildcard.id]
    )
    assert await a.call("wamp.subscription.match", "com.example.a.c") == [prefix.id]
    assert await a.call("wamp.subscription.match", "com.other") is None
    # get
    details = await a.call("wamp.subscription.get", wildcard.id)
    assert set(details) == {"id", "created", "uri", "match"}
    assert (details["id"], details["uri"], details["match"]) == (wildcard.id, "com.example..b", "wildcard")
    assert _iso_now(details["created"]) < 60
    # subscribers
    assert sorted(await a.call("wamp.subscription.list_subscribers", exact.id)) == sorted([a.sid, b.sid])
    assert await a.call("wamp.subscription.count_subscribers", exact.id) == 2
    assert await a.call("wamp.subscription.list_subscribers", prefix.id) == [a.sid]
    assert await a.call("wamp.subscription.count_subscribers", prefix.id) == 1

    missing = exact.id + prefix.id + wildcard.id + 1000
    for procedure in (
        "wamp.subscription.get",
        "wamp.subscription.list_subscribers",
        "wamp.subscription.count_subscribers",
    ):
        with pytest.raises(ApplicationError) as info:
            await a.call(procedure, missing)
        assert info.value.error == "wamp.error.no_such_subscription", procedure

    # a subscription is gone once its last subscriber is
    await leave(b)
    await departed(live_router, b)
    with pytest.raises(ApplicationError) as info:
        await a.call("wamp.subscription.get", wildcard.id)
    assert info.value.error == "wamp.error.no_such_subscription"
    assert await a.call("wamp.subscription.list_subscribers", exact.id) == [a.sid]
    await leave(a)
