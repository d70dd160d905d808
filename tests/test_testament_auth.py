"""
Testaments are publications by the session that leaves them: their topic is
authorized as a PUBLISH by that session when the testament is added (ERROR
``wamp.error.not_authorized`` to the add_testament CALL) and again when the
session leaves (fail closed: a denial, a raising or a silent authorizer means
the testament is not published).
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet.defer import Deferred

from router.config import PermissionConfig, RealmConfig, RoleConfig
from router.testing import MemoryRouter
from tests.auth_helpers import bounded
from tests.conftest import in_namespaces, logged
from tests.config_helpers import config_error
from tests.test_lifecycle import Started
from tests.wamp_clients import join, leave

ADD = "wamp.session.add_testament"

# a role that may leave testaments, but publish only on news.allowed
_LEAVER = RoleConfig(
    "anonymous",
    (
        PermissionConfig(ADD, call=True),
        PermissionConfig("news.", match="prefix", subscribe=True),
        PermissionConfig("news.allowed", publish=True, subscribe=True),
    ),
)
STATIC = RealmConfig("realm1", roles=(_LEAVER,))


class _Gate:
    """A dynamic authorizer whose answer on PUBLISH the test sets: allow, deny, raise, or a Deferred."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.publish = "allow"
        self.pending: list[Deferred] = []
        self.asked: list[str] = []

    def __call__(self, session, action, uri):
        if action != "publish":
            return True
        self.asked.append(uri)
        mode = self.publish
        if mode == "raise":
            raise ConnectionError("policy service is down")
        if mode == "defer":
            d = Deferred()
            self.pending.append(d)
            return d
        return mode == "allow"


GATE = _Gate()


@pytest.fixture
def gate():
    GATE.reset()
    yield GATE
    GATE.reset()


@pytest.fixture
def meta_log():
    """Log events of the meta API (testaments refused as the session leaves)."""
    with logged(in_namespaces("wampd.meta")) as seen:
        yield seen


def _dynamic(**extra) -> RealmConfig:
    return RealmConfig("realm1", authorizer="tests.test_testament_auth:GATE", authorizer_timeout=3.0, **extra)


def _watcher(memory: MemoryRouter, topic: str = "news.testament") -> list:
    watcher = memory.join()
    got = []
    memory.result(watcher.subscribe(lambda *args: got.append(args), topic))
    return got


def test_static_role_may_not_leave_a_testament_where_it_may_not_publish(meta_log):
    """
    A role that may call add_testament but not publish on news.testament gets
    ERROR not_authorized for it, and nothing is published there when it
    leaves; a testament on a topic it may publish is kept and published.
    """
    memory = MemoryRouter(realms=[STATIC])
    refused = _watcher(memory, "news.testament")
    kept = _watcher(memory, "news.allowed")
    leaver = memory.join()
    with pytest.raises(ApplicationError) as info:
        memory.result(leaver.call(ADD, "news.testament", ["gone"], {}))
    assert info.value.error == "wamp.error.not_authorized"
    assert "may not publish 'news.testament'" in info.value.args[0]
    assert memory.result(leaver.call(ADD, "news.allowed", ["gone"], {})) is None
    memory.disconnect(leaver, clean=False)
    assert refused == []
    assert kept == [("gone",)]
    assert meta_log == []  # the refused one was never kept, so nothing to refuse at departure


def test_dynamic_authorizer_that_changes_its_mind_keeps_the_testament_unpublished(gate, meta_log):
    """
    Allowed when added, denied when the session leaves: not published, logged
    once.  The departure check asks afresh even though answers are cached.
    """
    memory = MemoryRouter(realms=[_dynamic(authorizer_cache=100)])
    got = _watcher(memory)
    leaver = memory.join()
    leaver_authid = memory.router.realms["realm1"].meta.session(leaver._session_id).authid
    memory.result(leaver.call(ADD, "news.testament", ["first"], {}))
    memory.result(leaver.call(ADD, "news.testament", ["second"], {}, scope="detached"))
    gate.publish = "deny"
    memory.disconnect(leaver, clean=False)
    assert got == []
    assert gate.asked == ["news.testament"] * 3  # once when added (then cached), twice (fresh) when leaving
    [line] = meta_log
    assert line["count"] == 2 and line["authid"] == leaver_authid and "news.testament" in line["topics"]


def test_dynamic_authorizer_that_raises_at_departure_publishes_nothing(gate, meta_log):
    """An authorizer that raises when the session leaves denies (fail closed)."""
    memory = MemoryRouter(realms=[_dynamic()])
    got = _watcher(memory)
    leaver = memory.join()
    memory.result(leaver.call(ADD, "news.testament", ["gone"], {}))
    gate.publish = "raise"
    leaver.leave()
    memory.flush()
    assert got == []
    assert len(meta_log) == 1


def test_dynamic_authorizer_that_never_answers_at_departure_times_out(gate, meta_log):
    """A silent authorizer is cancelled after authorizer_timeout (the router's clock) and the testament dropped."""
    memory = MemoryRouter(realms=[_dynamic()])
    got = _watcher(memory)
    leaver = memory.join()
    memory.result(leaver.call(ADD, "news.testament", ["gone"], {}))
    gate.publish = "defer"
    memory.disconnect(leaver, clean=False)
    assert got == [] and meta_log == []  # still waiting
    memory.clock.advance(3.0)
    memory.flush()
    assert got == []
    assert len(meta_log) == 1
    assert gate.pending[0].called  # cancelled, nothing left waiting


def test_dynamic_authorizer_async_answers_at_add_and_departure(gate, meta_log):
    """
    An asynchronous answer: the add_testament CALL is answered when it comes
    (denied: ERROR; allowed: RESULT), and at departure the testament goes out
    once the authorizer allows it.
    """
    memory = MemoryRouter(realms=[_dynamic()])
    got = _watcher(memory)
    leaver = memory.join()
    gate.publish = "defer"
    denied = leaver.call(ADD, "news.testament", ["denied"], {})
    memory.flush()
    assert not denied.called
    gate.pending.pop().callback(False)
    with pytest.raises(ApplicationError) as info:
        memory.result(denied)
    assert info.value.error == "wamp.error.not_authorized"
    allowed = leaver.call(ADD, "news.testament", ["kept"], {})
    memory.flush()
    gate.pending.pop().callback(True)
    assert memory.result(allowed) is None
    memory.disconnect(leaver, clean=False)
    assert got == []  # waits for the departure answer
    gate.pending.pop().callback(True)
    memory.flush()
    assert got == [("kept",)]
    assert meta_log == []


@pytest_twisted.ensureDeferred
async def test_static_role_testament_refused_over_a_real_socket():
    """The add_testament ERROR and the unpublished testament, with real autobahn-python clients."""
    from autobahn.wamp.types import SubscribeOptions

    async with Started(realms=(STATIC,)) as r:
        watcher = await join(r.ws_url)
        got = []
        await watcher.subscribe(lambda *args: got.append(args), "news.", options=SubscribeOptions(match="prefix"))
        leaver = await join(r.rs_port, "rawsocket", "msgpack")
        with pytest.raises(ApplicationError) as info:
            await bounded(leaver.call(ADD, "news.testament", ["refused"], {}))
        assert info.value.error == "wamp.error.not_authorized"
        await bounded(leaver.call(ADD, "news.allowed", ["kept"], {}))
        leaver.wire.transport.abortConnection()
        await r.recorder.wait_for(lambda e: e.name == "session_left" and e.session.session_id == leaver.sid)
        # testaments go out before session_left; one round trip on the watcher's connection brings them in
        await bounded(watcher.subscribe(lambda: None, "news.fence"))
        assert got == [("kept",)]
        await leave(watcher)


def test_a_silent_authorizer_denies_a_live_publish_after_authorizer_timeout(gate):
    """authorizer_timeout bounds every dynamic answer: an acknowledged PUBLISH waiting on it is refused, later messages go on."""
    from autobahn.wamp.types import PublishOptions

    memory = MemoryRouter(realms=[_dynamic()])
    got = _watcher(memory)
    publisher = memory.join()
    gate.publish = "defer"
    published = publisher.publish("news.testament", "hello", options=PublishOptions(acknowledge=True, exclude_me=False))
    memory.flush()
    assert not published.called
    memory.clock.advance(3.0)
    with pytest.raises(ApplicationError) as info:
        memory.result(published)
    assert info.value.error == "wamp.error.not_authorized"
    assert got == []
    assert memory.result(publisher.subscribe(lambda: None, "news.other"))  # the session was not held up


@pytest.mark.parametrize(
    "value, reason",
    [(0, "must be greater than 0, got 0"), ("soon", "must be a number, got string 'soon'"), (-1.5, "must be greater than 0, got -1.5")],
)
def test_authorizer_timeout_is_checked(value, reason):
    """A bad authorizer_timeout names its key in the realm table and the reason."""
    text = f'[[realm]]\nname = "r"\nauthorizer = "m:f"\nauthorizer_timeout = {value!r}\n'.replace("'", '"')
    assert str(config_error(text)) == f"realm[0].authorizer_timeout: {reason}"


def test_messages_behind_a_pending_authorization_are_bounded(gate):
    """
    While a dynamic authorizer's answer is pending, a session's later messages
    wait in order up to max_queued_messages; they are routed once it answers.
    One message more aborts that session (protocol_violation), not the router.
    """
    memory = MemoryRouter(realms=[_dynamic()], max_queued_messages=3)
    got = _watcher(memory, "news.allowed")
    patient, flooder = memory.join(), memory.join()
    gate.publish = "defer"
    patient.publish("news.allowed", 0)
    memory.flush()
    for n in (1, 2, 3):  # queued behind the pending answer (the watcher's own messages are long done)
        patient.publish("news.allowed", n)
    memory.flush()
    assert patient.is_attached() and len(gate.pending) == 1
    gate.publish = "allow"
    gate.pending.pop().callback(True)
    memory.flush()
    assert got == [(0,), (1,), (2,), (3,)]

    gate.publish = "defer"
    for n in range(5):  # one pending, three queued, the fifth is one too many
        flooder.publish("news.allowed", n)
    memory.flush()
    assert not flooder.is_attached()
    assert patient.is_attached()
