"""
Router-scope IDs (subscriptions, registrations): uniform over [1, 2**53],
derived from (realm, kind, match, URI) so that every node of a cluster gives a
subscription the same ID, so that the IDs one realm's sessions get say nothing
about the activity in another realm, and never equal to a live ID of the same kind.
"""

from __future__ import annotations

import random

from autobahn.twisted.wamp import ApplicationSession

from router.testing import MemoryRouter
from router.uri import MAX_ID, Counter, GlobalIds, ScopeIds


def _ids_in_realm1(busy_realm2: bool) -> list[int]:
    """Subscription and registration IDs a realm1 session gets, with or without work in realm2 in between."""
    memory = MemoryRouter(realms=("realm1", "realm2"), seed=7)
    mine = memory.join(ApplicationSession, realm="realm1")
    ids = [
        memory.result(mine.subscribe(lambda *a: None, "com.example.one")).id,
        memory.result(mine.register(lambda: None, "com.example.one")).id,
    ]
    if busy_realm2:
        other = memory.join(ApplicationSession, realm="realm2")
        for n in range(20):
            memory.result(other.subscribe(lambda *a: None, f"com.example.t{n}"))
            memory.result(other.register(lambda: None, f"com.example.p{n}"))
    ids.append(memory.result(mine.subscribe(lambda *a: None, "com.example.two")).id)
    ids.append(memory.result(mine.register(lambda: None, "com.example.two")).id)
    return ids


def test_ids_do_not_reveal_another_realms_activity():
    """realm1's subscription/registration IDs are the same whether or not realm2 created 40 meanwhile."""
    quiet = _ids_in_realm1(busy_realm2=False)
    busy = _ids_in_realm1(busy_realm2=True)
    assert busy == quiet
    assert len(set(quiet)) == 4


def test_ids_are_random_over_the_whole_range():
    """50 subscriptions get distinct IDs spread over [1, 2**53], not a count from 1."""
    memory = MemoryRouter()
    client = memory.join(ApplicationSession)
    ids = [memory.result(client.subscribe(lambda *a: None, f"com.example.t{n}")).id for n in range(50)]
    assert len(set(ids)) == 50
    assert all(1 <= i <= MAX_ID for i in ids)
    assert max(ids) > 2**45 and sorted(ids) != list(range(min(ids), min(ids) + 50))


def test_scope_id_never_repeats_a_live_one():
    """A draw that hits a live ID of the realm is drawn again."""
    first = random.Random(3).getrandbits(53) + 1
    second = ScopeIds(3).next({first: object()})
    assert second != first and 1 <= second <= MAX_ID
    assert ScopeIds(3).next({}) == first


def test_derived_ids_agree_between_routers_and_step_past_a_live_one():
    """
    Two routers with different seeds give the same subscription and the same
    registration the same IDs (what lets cluster nodes agree unasked); another
    realm, match or kind gives another ID; a derived ID already live for
    another URI is followed by the next derivation, the same on every router.
    """
    ids = []
    for seed in (1, 2):
        memory = MemoryRouter(realms=("realm1", "realm2"), seed=seed)
        client = memory.join(ApplicationSession)
        ids.append((
            memory.result(client.subscribe(lambda *a: None, "com.example.x")).id,
            memory.result(client.register(lambda: None, "com.example.x")).id,
        ))
    assert ids[0] == ids[1] and ids[0][0] != ids[0][1]
    derived = ScopeIds(realm="realm1").next({}, "exact", "com.example.x")
    assert derived == ids[0][0]
    assert derived not in (
        ScopeIds(realm="realm2").next({}, "exact", "com.example.x"),
        ScopeIds(realm="realm1").next({}, "prefix", "com.example.x"),
    )
    stepped = ScopeIds(1, "realm1").next({derived: object()}, "exact", "com.example.x")
    assert stepped != derived and stepped == ScopeIds(2, "realm1").next({derived: object()}, "exact", "com.example.x")
    assert 1 <= stepped <= MAX_ID


def test_session_scope_counter_wraps_from_2_53_to_1():
    """Session- and router-scope IDs run 1, 2, ... 2**53 and then start again at 1, as the spec says."""
    counter = Counter(start=MAX_ID - 1)
    assert [counter.next() for _ in range(4)] == [MAX_ID - 1, MAX_ID, 1, 2]
    assert [Counter().next() for _ in range(2)] == [1, 1]


def test_global_ids_are_in_range_and_repeatable_by_seed():
    """Publication IDs are drawn in [1, 2**53]; the same seed draws the same sequence (for reproducible tests)."""
    first, second = GlobalIds(5), GlobalIds(5)
    drawn = [first.next() for _ in range(200)]
    assert drawn == [second.next() for _ in range(200)]
    assert all(1 <= value <= MAX_ID for value in drawn)
    assert len(set(drawn)) == 200
