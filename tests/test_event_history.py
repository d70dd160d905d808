"""
Event history (``[[realm.history]]``, ``wamp.subscription.get_events``;
router/broker/_history.py, router/meta/_events.py): the routing rules on a
MemoryRouter with a Clock, and the call over real loopback sockets with
autobahn-python.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from router.config import RealmConfig
from router.config._history import HistoryConfig
from router.testing import MemoryRouter
from tests.config_helpers import config_error, config_from_toml, realm_from_toml
from tests.test_lifecycle import Started
from tests.wamp_clients import join, leave, named

GET = "wamp.subscription.get_events"
HISTORY = (
    HistoryConfig("com.example.log", limit=3),
    HistoryConfig("com.example.stock.", match="prefix", limit=5),
)
ACK = PublishOptions(acknowledge=True)


def memory_with_history(history=HISTORY, **options):
    return MemoryRouter(realms=[RealmConfig("realm1", history=history)], **options)


def publish(memory, client, topic, *args, options=ACK, **kwargs):
    return memory.result(client.publish(topic, *args, options=options, **kwargs)).id


def test_history_keeps_the_latest_events_of_a_topic_before_anyone_subscribed():
    """
    A history topic has a subscription from the start (its id is what
    ``wamp.subscription.lookup`` says), so events published before anyone
    subscribed are kept; the topic keeps its ``limit`` latest, oldest first,
    each with its timestamp, subscription, publication, details, args and kwargs.
    """
    memory = memory_with_history()
    client = memory.join()
    sub = memory.result(client.call("wamp.subscription.lookup", "com.example.log"))
    assert type(sub) is int
    pubs = [publish(memory, client, "com.example.log", n, n=n) for n in range(5)]
    memory.clock.advance(1.5)
    events = memory.result(client.call(GET, sub))
    assert [(e["publication"], e["args"], e["kwargs"], e["subscription"], e["details"]) for e in events] == [
        (pubs[n], [n], {"n": n}, sub, {}) for n in (2, 3, 4)
    ]
    assert all(e["timestamp"].endswith("Z") and "T" in e["timestamp"] for e in events)
    # a subscriber joins the same subscription; leaving does not end it
    subscriber = memory.join()
    joined = memory.result(subscriber.subscribe(lambda *a, **k: None, "com.example.log"))
    assert joined.id == sub
    memory.result(joined.unsubscribe())
    assert len(memory.result(client.call(GET, sub))) == 3


def test_queries_reverse_limit_publication_and_time():
    """The spec's query keywords: reverse, limit, the four publication bounds, the four time bounds, topic (prefix)."""
    memory = memory_with_history()
    client = memory.join()
    sub = memory.result(client.call("wamp.subscription.lookup", "com.example.stock.", {"match": "prefix"}))
    pubs = []
    stamps = []
    for n, topic in enumerate(["com.example.stock.a", "com.example.stock.b", "com.example.stock.a", "com.example.stock.b"]):
        memory.clock.advance(10)
        pubs.append(publish(memory, client, topic, n))
    events = memory.result(client.call(GET, sub))
    stamps = [e["timestamp"] for e in events]
    assert [e["details"]["topic"] for e in events] == ["com.example.stock.a", "com.example.stock.b"] * 2

    def query(**kw):
        return [e["args"][0] for e in memory.result(client.call(GET, sub, **kw))]

    assert query(reverse=True, limit=2) == [3, 2]
    assert query(limit=2) == [0, 1]
    assert query(after_publication=pubs[1]) == [2, 3]
    assert query(from_publication=pubs[1]) == [1, 2, 3]
    assert query(before_publication=pubs[2], reverse=True) == [1, 0]
    assert query(until_publication=pubs[2]) == [0, 1, 2]
    assert query(after_publication=123) == []
    assert query(from_time=stamps[1]) == [1, 2, 3]
    assert query(after_time=stamps[1]) == [2, 3]
    assert query(before_time=stamps[2]) == [0, 1]
    assert query(until_time=stamps[2], from_time=stamps[1]) == [1, 2]
    assert query(topic="com.example.stock.b") == [1, 3]
    for bad in (dict(limit=0), dict(limit="2"), dict(from_time="yesterday"), dict(after_time="2026-01-01T00:00:00"),
                dict(after_publication="x"), dict(topic=5)):
        with pytest.raises(ApplicationError) as info:
            memory.result(client.call(GET, sub, **bad))
        assert info.value.error == "wamp.error.invalid_argument", bad


def test_the_realm_bound_drops_the_oldest_event_of_any_topic():
    """``max_history_events`` bounds all history topics of a realm together: the oldest event goes first, whatever its topic."""
    memory = memory_with_history(max_history_events=4)
    client = memory.join()
    log = memory.result(client.call("wamp.subscription.lookup", "com.example.log"))
    stock = memory.result(client.call("wamp.subscription.lookup", "com.example.stock.", {"match": "prefix"}))
    publish(memory, client, "com.example.log", "L0")
    for n in range(3):
        publish(memory, client, "com.example.stock.x", f"S{n}")
    publish(memory, client, "com.example.log", "L1")
    assert [e["args"][0] for e in memory.result(client.call(GET, log))] == ["L1"]
    assert [e["args"][0] for e in memory.result(client.call(GET, stock))] == ["S0", "S1", "S2"]
    history = memory.router.realms["realm1"].broker.history
    assert history.total == 4
    for n in range(20):  # a topic's own limit (5) drops events too; the count stays exact
        publish(memory, client, "com.example.stock.x", f"T{n}")
    assert history.total == 4 and len(history._order) <= 2 * 4 + 64


def test_black_and_white_lists_in_history():
    """
    Publications with ``exclude``/``eligible`` (session IDs) are not kept (the
    spec); authid/authrole lists are kept and applied to whoever asks.
    """
    memory = memory_with_history()
    alice = memory.join(named("alice"))
    bob = memory.join(named("bob"))
    sub = memory.result(alice.call("wamp.subscription.lookup", "com.example.log"))
    publish(memory, alice, "com.example.log", "to bob by session", options=PublishOptions(acknowledge=True, eligible=[bob._session_id]))
    publish(memory, alice, "com.example.log", "not bob", options=PublishOptions(acknowledge=True, exclude_authid=["bob"]))
    publish(memory, alice, "com.example.log", "all", options=PublishOptions(acknowledge=True, exclude_me=False))
    assert [e["args"][0] for e in memory.result(alice.call(GET, sub))] == ["not bob", "all"]
    assert [e["args"][0] for e in memory.result(bob.call(GET, sub))] == ["all"]


def test_disclosed_publisher_is_in_the_details():
    """A disclosed publisher (here by its role's ``disclose``) has its session, authid and authrole in the kept event's details."""
    realm = realm_from_toml(
        '[[realm]]\nname = "realm1"\n[[realm.history]]\ntopic = "com.example.log"\n'
        '[[realm.role]]\nname = "anonymous"\ndisclose = true\npermissions = [\n'
        '  { uri = "com.", match = "prefix", publish = true, subscribe = true },\n'
        '  { uri = "wamp.subscription.", match = "prefix", call = true },\n]\n'
    )
    memory = MemoryRouter(realms=[realm])
    alice = memory.join(named("alice"))
    sub = memory.result(alice.call("wamp.subscription.lookup", "com.example.log"))
    publish(memory, alice, "com.example.log", 1)
    [event] = memory.result(alice.call(GET, sub))
    assert event["details"] == {"publisher": alice._session_id, "publisher_authid": "alice", "publisher_authrole": "anonymous"}


def test_refusals():
    """An unknown subscription: no_such_subscription; a subscription without history: invalid_argument."""
    memory = memory_with_history()
    client = memory.join()
    plain = memory.result(client.subscribe(lambda *a: None, "com.example.other"))
    for args, uri in (((1,), "wamp.error.no_such_subscription"), ((plain.id,), "wamp.error.invalid_argument")):
        with pytest.raises(ApplicationError) as info:
            memory.result(client.call(GET, *args))
        assert info.value.error == uri


def test_history_config():
    """``[[realm.history]]`` and ``max_history_events`` read from TOML; bad values name the key."""
    realm = realm_from_toml('[[realm]]\nname = "r"\n[[realm.history]]\ntopic = "com.a"\nlimit = 7\n')
    assert realm.history == (HistoryConfig("com.a", "exact", 7),)
    assert config_from_toml('[router]\nmax_history_events = 9\n').max_history_events == 9
    cases = [
        ('[[realm]]\nname = "r"\n[[realm.history]]\ntopic = "com.a"\nlimit = 0\n', "realm[0].history[0].limit"),
        ('[[realm]]\nname = "r"\n[[realm.history]]\nlimit = 3\n', "realm[0].history[0].topic"),
        ('[[realm]]\nname = "r"\n[[realm.history]]\ntopic = "wamp.x"\n', "realm[0].history[0].topic"),
        ('[[realm]]\nname = "r"\n[[realm.history]]\ntopic = "com.a"\nmatch = "regex"\n', "realm[0].history[0].match"),
        ('[[realm]]\nname = "r"\n[[realm.history]]\ntopic = "com.a"\nsize = 3\n', "realm[0].history[0].size"),
        ('[[realm]]\nname = "r"\nhistory = [{topic = "com.a"}, {topic = "com.a"}]\n', "realm[0].history"),
        ('[router]\nmax_history_events = 0\n', "router.max_history_events"),
    ]
    for text, key in cases:
        error = config_error(text)
        assert error.key == key, (text, error)


@pytest_twisted.ensureDeferred
async def test_get_events_over_the_wire_and_its_authorization():
    """
    With autobahn-python over loopback: a role allowed to call the meta
    procedure and to subscribe to the topic reads its history; one allowed to
    call it but not to subscribe gets ``not_authorized``, as the spec asks.
    """
    realm = realm_from_toml(
        '[[realm]]\nname = "realm1"\n'
        'auth = [ { method = "anonymous", role = "reader" } ]\n'
        '[[realm.history]]\ntopic = "com.example.log"\n'
        '[[realm.history]]\ntopic = "com.secret.log"\n'
        '[[realm.role]]\nname = "reader"\npermissions = [\n'
        '  { uri = "com.example.", match = "prefix", subscribe = true, publish = true },\n'
        '  { uri = "com.secret.", match = "prefix", publish = true },\n'
        '  { uri = "wamp.subscription.", match = "prefix", call = true },\n]\n'
    )
    async with Started(realms=(realm,)) as r:
        client = await join(r.ws_url, "websocket", "cbor")
        await client.publish("com.example.log", "hello", options=ACK)
        await client.publish("com.secret.log", "hidden", options=ACK)
        sub = await client.call("wamp.subscription.lookup", "com.example.log")
        [event] = await client.call(GET, sub)
        assert (event["args"], event["subscription"]) == (["hello"], sub)
        secret = await client.call("wamp.subscription.lookup", "com.secret.log")
        with pytest.raises(ApplicationError) as info:
            await client.call(GET, secret)
        assert info.value.error == "wamp.error.not_authorized"
        await leave(client)


def test_max_history_events_option():
    """``--max-history-events`` sets ``[router] max_history_events``; a bad value names the option."""
    from twisted.python.usage import UsageError

    from tests.test_tap import parse

    assert parse("--no-default-listener", "--max-history-events", "42")["router_config"].max_history_events == 42
    with pytest.raises(UsageError) as info:
        parse("--no-default-listener", "--max-history-events", "0")
    assert "max_history_events" in str(info.value) or "max-history-events" in str(info.value)
