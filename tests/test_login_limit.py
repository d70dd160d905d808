"""
The limit on failed authentications (``auth_fail_*``): per authid and per
address, counted on the router's clock, refused before any credential is
looked at and with the same answer whether the authid exists or not, and
bounded in memory.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.types import ComponentConfig
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from router.auth import LoginLimiter
from router.config import AuthMethodConfig, PrincipalConfig, RealmConfig, RoleConfig
from router.testing import MemoryRouter
from tests.auth_helpers import AuthClient, bounded, open_session, ticket
from tests.test_lifecycle import Started, assert_well_ordered
from tests.wamp_clients import Recorder, leave

ALICE_TICKET = "alice-ticket-0123"
REALM = RealmConfig(
    "realm1",
    auth=(AuthMethodConfig("ticket"),),
    principals=(PrincipalConfig("alice", "user", ticket=ALICE_TICKET),),
    roles=(RoleConfig("user"),),
)
LIMITED = ("wamp.error.authentication_failed", "authentication failed: too many failed attempts; try again later")
FAILED = ("wamp.error.authentication_failed", "authentication failed")


def _attempt(memory: MemoryRouter, authid: str, secret, realm: str = "realm1") -> AuthClient:
    """One ticket login in memory; ``secret`` is the ticket or a callable answering the CHALLENGE."""
    answer = secret if callable(secret) else ticket(secret)
    client = AuthClient(ComponentConfig(realm), authmethods=["ticket"], authid=authid, answer=answer)
    client.joined.addErrback(lambda failure: None)  # a refusal is what most attempts get
    memory.connect(client)
    return client


def _outcome(client: AuthClient):
    if client.is_attached():
        return "joined"
    details = client.close_details
    return (details.reason, details.message)


def _memory(**limits) -> tuple[MemoryRouter, Recorder]:
    recorder = Recorder()
    return MemoryRouter(realms=[REALM], listeners=[recorder], login_limits=limits), recorder


def test_authid_limit_refuses_before_the_secret_and_lifts_after_the_window():
    """
    After per_authid failures in the window, even the right ticket is refused
    (no CHALLENGE, ABORT authentication_failed saying too many attempts,
    client_rejected rate_limited); after the window it works.
    """
    memory, recorder = _memory(per_authid=3, per_address=0, window=60.0)
    for _ in range(3):
        assert _outcome(_attempt(memory, "alice", "wrong")) == FAILED
    memory.clock.advance(30)
    right = _attempt(memory, "alice", ALICE_TICKET)
    assert _outcome(right) == LIMITED
    assert right.challenges == []  # refused at HELLO: the ticket was never asked for
    rejected = [e for e in recorder.events if e.name == "client_rejected"]
    assert [e.reason for e in rejected] == ["authentication"] * 3 + ["rate_limited"]
    assert rejected[-1].authid == "alice" and "too many failed authentication attempts for authid 'alice'" in rejected[-1].message
    memory.clock.advance(30)  # the window (from the first failure) is over
    assert _outcome(_attempt(memory, "alice", ALICE_TICKET)) == "joined"


def test_unknown_and_known_authids_get_the_same_answer_when_limited():
    """Limiting does not tell which authids exist: an unknown one is counted and answered exactly like alice."""
    memory, _ = _memory(per_authid=2, per_address=0)
    answers = {}
    for authid in ("alice", "mallory"):
        answers[authid] = [_outcome(_attempt(memory, authid, "guess")) for _ in range(3)]
    assert answers["alice"] == answers["mallory"] == [FAILED, FAILED, LIMITED]


def test_a_successful_login_resets_the_authid_but_not_the_address():
    """A correct login clears its authid's count; the address keeps its own."""
    memory, _ = _memory(per_authid=3, per_address=5)
    assert [_outcome(_attempt(memory, "alice", "wrong")) for _ in range(2)] == [FAILED] * 2
    assert _outcome(_attempt(memory, "alice", ALICE_TICKET)) == "joined"
    assert [_outcome(_attempt(memory, "alice", "wrong")) for _ in range(3)] == [FAILED] * 3  # 3 more fit again
    assert _outcome(_attempt(memory, "alice", ALICE_TICKET)) == LIMITED
    # the address has 5 failures now: anyone else from it is refused too
    assert _outcome(_attempt(memory, "bob", "wrong")) == LIMITED


def test_address_limit_spans_authids():
    """Guessing many authids from one address hits the per-address limit."""
    memory, recorder = _memory(per_authid=0, per_address=4)
    outcomes = [_outcome(_attempt(memory, f"user{index}", "wrong")) for index in range(6)]
    assert outcomes == [FAILED] * 4 + [LIMITED] * 2
    assert "from 127.0.0.1" in [e for e in recorder.events if e.name == "client_rejected"][-1].message


def test_parallel_attempts_are_checked_again_at_authenticate():
    """
    Attempts that all got their CHALLENGE before any failed are checked again
    when they AUTHENTICATE: once the limit is reached, the rest are refused
    without their secret being checked.
    """
    memory, recorder = _memory(per_authid=2, per_address=0)
    answers: list[Deferred] = []

    def held(challenge):
        d = Deferred()
        answers.append(d)
        return d

    clients = [_attempt(memory, "alice", held) for _ in range(4)]
    assert len(answers) == 4  # all four were challenged
    for d in answers:
        d.callback("wrong")
        memory.flush()
    assert [_outcome(c) for c in clients] == [FAILED, FAILED, LIMITED, LIMITED]
    assert [e.reason for e in recorder.events if e.name == "client_rejected"] == ["authentication"] * 2 + ["rate_limited"] * 2


def test_switched_off_limits_count_nothing():
    """per_authid = per_address = 0: any number of failures, and the right ticket still works."""
    memory, _ = _memory(per_authid=0, per_address=0)
    assert {_outcome(_attempt(memory, "alice", "wrong")) for _ in range(30)} == {FAILED}
    assert _outcome(_attempt(memory, "alice", ALICE_TICKET)) == "joined"
    assert memory.router.login_limiter.tracked == 0


def test_no_auth_method_is_not_a_failed_login():
    """Offering a method the realm lacks is not a guessed secret: it is not counted."""
    memory, _ = _memory(per_authid=1, per_address=1)
    client = AuthClient(ComponentConfig("realm1"), authmethods=["wampcra"], authid="alice")
    client.joined.addErrback(lambda failure: None)
    memory.connect(client)
    assert _outcome(client)[0] == "wamp.error.no_auth_method"
    assert _outcome(_attempt(memory, "alice", ALICE_TICKET)) == "joined"


def test_the_limiter_is_bounded_and_swept_without_timers():
    """At most max_tracked keys of each kind, the oldest evicted; expired ones go on the next failure."""
    clock = Clock()
    limiter = LoginLimiter(clock, per_authid=5, per_address=1000, window=60.0, max_tracked=100)
    for index in range(1000):
        limiter.failed("realm1", f"user{index}", "10.0.0.1")
        clock.advance(0.01)
    assert limiter.tracked == 100 + 1  # 100 authids (the newest), 1 address
    assert limiter.refusal("realm1", "user0", None) is None  # evicted long ago
    clock.advance(60)
    limiter.failed("realm1", "late", "10.0.0.2")
    assert limiter.tracked == 2  # everything expired was swept
    huge = "x" * 100_000  # a client-chosen authid is kept as a digest, and still counted as itself
    for _ in range(5):
        limiter.failed("realm1", huge, None)
    assert limiter.refusal("realm1", huge, None) is not None
    assert limiter.refusal("realm1", huge + "y", None) is None
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(50):  # 5 MB of authids, each dropped by the caller at once, as a HELLO's is
            limiter.failed("realm1", f"{index:06d}" + huge, None)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000, grown  # the limiter keeps digests, not copies of what clients sent
    assert clock.getDelayedCalls() == []


def test_ipv6_addresses_are_counted_by_their_64():
    """One host rotating addresses within its IPv6 /64 shares one count; IPv4-mapped addresses count as IPv4."""
    limiter = LoginLimiter(Clock(), per_authid=0, per_address=3)
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"):
        limiter.failed("realm1", None, host)
    assert limiter.refusal("realm1", None, "2001:db8:1:2::77") is not None
    assert limiter.refusal("realm1", None, "2001:db8:1:3::1") is None
    for _ in range(3):
        limiter.failed("realm1", None, "::ffff:192.0.2.7")
    assert limiter.refusal("realm1", None, "192.0.2.7") is not None


@pytest_twisted.ensureDeferred
async def test_rate_limited_abort_over_a_real_socket():
    """
    With real autobahn-python clients: after auth_fail_limit_authid wrong
    tickets, the right one gets ABORT authentication_failed saying too many
    failed attempts, and client_rejected says rate_limited.
    """
    async with Started(realms=(REALM,), auth_fail_limit_authid=2, auth_fail_limit_address=0) as r:
        for expected in (FAILED, FAILED, LIMITED):
            client = await open_session(r.ws_url, authmethods=["ticket"], authid="alice", answer=ticket("wrong"))
            with pytest.raises(RuntimeError, match="aborted"):
                await bounded(client.joined)
            await bounded(client.disconnected)
            assert (client.close_details.reason, client.close_details.message) == expected
        right = await open_session(r.rs_port, "rawsocket", authmethods=["ticket"], authid="alice", answer=ticket(ALICE_TICKET))
        with pytest.raises(RuntimeError, match="too many failed attempts"):
            await bounded(right.joined)
        assert right.challenges == []
        rejected = [e for e in r.recorder.events if e.name == "client_rejected"]
        assert [e.reason for e in rejected] == ["authentication", "authentication", "rate_limited", "rate_limited"]
        await r.recorder.wait_disconnected(rejected[-1].connection.id)
        # another authid from the same address is not affected (the address limit is off)
        joe = await open_session(r.ws_url, authmethods=["ticket"], authid="joe", answer=ticket("x"))
        with pytest.raises(RuntimeError, match="aborted"):
            await bounded(joe.joined)
        assert joe.close_details.message == "authentication failed"
        await bounded(joe.disconnected)
    assert_well_ordered(r.recorder)
