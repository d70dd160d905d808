"""
router.testing.MemoryRouter: real Autobahn sessions against the real router,
in memory (no sockets, no reactor), as users test their listeners.
"""

from __future__ import annotations

import pytest
from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError
from twisted.internet.defer import Deferred

from router.events import Reject
from router.testing import MemoryRouter
from tests.conftest import in_namespaces, logged
from tests.wamp_clients import Recorder

ENDED = ["client_connected", "session_joining", "session_joined", "session_left", "client_disconnected"]


def test_join_call_and_events_in_memory():
    recorder = Recorder()
    memory = MemoryRouter(listeners=[recorder])
    callee = memory.join()
    caller = memory.join(serializer="msgpack")
    assert callee.is_attached() and caller.is_attached()
    memory.result(callee.register(lambda x: x + 1, "com.example.inc"))
    assert memory.result(caller.call("com.example.inc", 41)) == 42
    with pytest.raises(ApplicationError) as info:
        memory.result(caller.call("com.example.nothing"))
    assert info.value.error == "wamp.error.no_such_procedure"
    memory.disconnect(callee, clean=False)
    memory.disconnect(caller)
    names = [e.name for e in recorder.events]
    assert names.count("client_connected") == 2
    assert names.count("client_disconnected") == 2
    reasons = sorted(e.reason for e in recorder.events if e.name == "session_left")
    assert reasons == ["wamp.close.transport_lost", "wamp.close.transport_lost"]


def test_a_hanging_non_veto_listener_is_timed_out_by_the_clock():
    """A session_joined handler that never answers is cancelled after listener_timeout; later events still flow."""
    hung = []

    class Hangs:
        def on_session_joined(self, event):
            d = Deferred(lambda _: hung.append("cancelled"))
            return d

    recorder = Recorder()
    memory = MemoryRouter(listeners=[recorder, Hangs()], listener_timeout=2.0)
    client = memory.join()
    assert client.is_attached()  # session_joined never holds up the join
    memory.disconnect(client)
    assert [e.name for e in recorder.events][-1] == "session_joined"  # the rest wait for the slow handler
    memory.clock.advance(2.0)
    assert hung == ["cancelled"]
    assert [e.name for e in recorder.events][-2:] == ["session_left", "client_disconnected"]


@pytest.fixture
def dispatcher_log():
    """Log events of the listener dispatcher, as they are emitted."""
    with logged(in_namespaces("wampd.dispatcher")) as seen:
        yield seen


class _BrokenVeto:
    """A ban list whose database is down: its veto raises, fails later, or never answers."""

    name = "tests.banlist"

    def __init__(self, event: str, how: str) -> None:
        self.how = how
        self.pending: list[Deferred] = []
        setattr(self, "on_" + event, self._check)

    def _check(self, event):
        how = self.how
        if how == "sync":
            raise ConnectionError("ban database is down")
        if how == "deferred":
            d = Deferred()
            self.pending.append(d)  # fails after the handler returned
            return d
        if how == "coroutine":

            async def check():
                raise ConnectionError("ban database is down")

            return check()
        d = Deferred()  # "timeout": never answers
        self.pending.append(d)
        return d

    def settle(self, memory: MemoryRouter) -> None:
        """Let a late failure or the listener timeout happen."""
        if self.how == "deferred":
            self.pending[0].errback(ConnectionError("ban database is down"))
        elif self.how == "timeout":
            memory.clock.advance(2.0)
        memory.flush()


@pytest.mark.parametrize("how", ["sync", "deferred", "coroutine", "timeout"])
def test_a_failing_join_veto_refuses_the_session(how, dispatcher_log):
    """
    A session_joining handler that raises something other than Reject, fails
    its Deferred or coroutine, or times out refuses the join (fail closed):
    ABORT wamp.error.authorization_failed, client_rejected reason listener,
    logged once with the listener's name; nothing is left in the realm.
    """
    recorder = Recorder()
    broken = _BrokenVeto("session_joining", how)
    memory = MemoryRouter(listeners=[recorder, broken], listener_timeout=2.0)
    left = []

    class Watch(ApplicationSession):
        def onLeave(self, details):
            left.append((details.reason, details.message))

    client = memory.join(Watch)
    broken.settle(memory)
    assert not client.is_attached()
    what = "did not answer in time" if how == "timeout" else "failed"
    assert left == [("wamp.error.authorization_failed", f"listener tests.banlist {what} on session_joining; refused")]
    rejected = [e for e in recorder.events if e.name == "client_rejected"]
    assert [(e.reason, e.realm) for e in rejected] == [("listener", "realm1")]
    assert "session_joined" not in [e.name for e in recorder.events]
    assert memory.router.realms["realm1"].sessions == {}
    logged = [e for e in dispatcher_log if e.get("listener") == "tests.banlist"]
    assert len(logged) == 1 and logged[0]["event_name"] == "session_joining"
    assert "refused (fail closed)" in logged[0]["log_format"]


@pytest.mark.parametrize("how", ["sync", "deferred", "coroutine", "timeout"])
def test_a_failing_connect_veto_refuses_the_connection(how, dispatcher_log):
    """
    A client_connected handler that cannot answer refuses the connection
    (RawSocket handshake error, no HELLO answered), with client_rejected
    reason listener and then client_disconnected.
    """
    recorder = Recorder()
    broken = _BrokenVeto("client_connected", how)
    memory = MemoryRouter(listeners=[recorder, broken], listener_timeout=2.0)
    client = memory.join()
    broken.settle(memory)
    assert not client.is_attached()
    assert [e.name for e in recorder.events] == ["client_connected", "client_rejected", "client_disconnected"]
    rejected = recorder.events[1]
    what = "did not answer in time" if how == "timeout" else "failed"
    assert (rejected.reason, rejected.message) == ("listener", f"listener tests.banlist {what} on client_connected; refused")
    assert memory.router.connections == ()
    assert len([e for e in dispatcher_log if e.get("listener") == "tests.banlist"]) == 1


def test_a_failing_non_veto_listener_changes_nothing(dispatcher_log):
    """A listener raising on session_joined, session_left or client_disconnected is logged; the session works."""

    class Raises:
        name = "tests.raiser"

        def on_session_joined(self, event):
            raise RuntimeError("listener bug")

        async def on_session_left(self, event):
            raise RuntimeError("listener bug")

        def on_client_disconnected(self, event):
            raise Reject("too late to refuse")

    recorder = Recorder()
    memory = MemoryRouter(listeners=[Raises(), recorder])
    client = memory.join()
    assert client.is_attached()
    memory.result(client.register(lambda: 1, "com.example.one"))
    assert memory.result(client.call("com.example.one")) == 1
    memory.disconnect(client)
    assert [e.name for e in recorder.events] == ENDED
    assert {e["event_name"] for e in dispatcher_log if e.get("listener") == "tests.raiser"} == {
        "session_joined",
        "session_left",
        "client_disconnected",
    }


def test_async_veto_before_welcome():
    class Gate:
        def __init__(self):
            self.pending = Deferred()

        def on_session_joining(self, event):
            return self.pending

    gate = Gate()
    recorder = Recorder()
    memory = MemoryRouter(listeners=[gate, recorder])
    left = []

    class Watch(ApplicationSession):
        def onLeave(self, details):
            left.append(details.reason)

    client = memory.join(Watch)
    gate.pending.errback(Reject("closed for maintenance", "listener", "com.example.error.maintenance"))
    memory.flush()
    assert not client.is_attached()
    assert left == ["com.example.error.maintenance"]
    rejected = [e for e in recorder.events if e.name == "client_rejected"]
    assert [(e.reason, e.message) for e in rejected] == [("listener", "closed for maintenance")]


def test_events_keep_order_when_a_listener_is_slow():
    """A slow handler delays later events for that listener; they never overtake."""
    seen = []

    class Slow:
        def __init__(self):
            self.release = Deferred()

        def on_session_joined(self, event):
            seen.append("joined-start")
            return self.release.addCallback(lambda _: seen.append("joined-end"))

        def on_session_left(self, event):
            seen.append("left")

        def on_client_disconnected(self, event):
            seen.append("disconnected")

    slow = Slow()
    memory = MemoryRouter(listeners=[slow], listener_timeout=10)
    client = memory.join()
    assert client.is_attached()  # session_joined does not hold up routing
    memory.disconnect(client)
    assert seen == ["joined-start"]
    slow.release.callback(None)
    assert seen == ["joined-start", "joined-end", "left", "disconnected"]


def test_shutdown_in_memory():
    recorder = Recorder()
    memory = MemoryRouter(listeners=[recorder])
    client = memory.join()
    reasons = []
    client.onLeave = lambda details: reasons.append(details.reason)
    d = memory.shutdown()
    memory.flush()
    assert reasons == ["wamp.close.system_shutdown"]
    assert memory.result(d) is None
    names = [e.name for e in recorder.events]
    assert names[-3:] == ["server_stopping", "session_left", "client_disconnected"]


def test_callee_error_with_args_in_memory():
    memory = MemoryRouter()
    callee = memory.join(serializer="cbor")
    caller = memory.join()

    def refuse(*args):
        raise ApplicationError("com.example.error.refused", "no", 1, why="because")

    memory.result(callee.register(refuse, "com.example.refuse"))
    with pytest.raises(ApplicationError) as info:
        memory.result(caller.call("com.example.refuse"))
    error = info.value
    assert (error.error, error.args, error.kwargs) == ("com.example.error.refused", ("no", 1), {"why": "because"})


def test_calls_in_flight_per_session_are_bounded():
    """
    A caller with max_calls_in_flight unanswered CALLs gets ERROR
    wampd.error.too_many_calls for one more (nothing reaches the callee), and
    may call again once one of them is answered; another caller is not affected.
    """
    from autobahn.wamp.exception import ApplicationError
    from twisted.internet.defer import Deferred

    memory = MemoryRouter(max_calls_in_flight=3)
    waiting: list[Deferred] = []

    def slow():
        d = Deferred()
        waiting.append(d)
        return d

    callee, caller, other = memory.join(), memory.join(), memory.join()
    memory.result(callee.register(slow, "com.example.slow"))
    pending = [caller.call("com.example.slow") for _ in range(3)]
    memory.flush()
    errors = []
    caller.call("com.example.slow").addErrback(errors.append)
    memory.flush()
    [failure] = errors
    assert failure.check(ApplicationError) and failure.value.error == "wampd.error.too_many_calls"
    assert len(waiting) == 3  # the refused CALL never reached the callee
    third = other.call("com.example.slow")  # another session's budget is its own
    memory.flush()
    assert len(waiting) == 4
    waiting[0].callback("done")
    memory.flush()
    assert memory.result(pending[0]) == "done"
    again = caller.call("com.example.slow")
    memory.flush()
    assert len(waiting) == 5
    for d in waiting[1:]:
        d.callback("ok")
    memory.flush()
    assert [memory.result(d) for d in (*pending[1:], third, again)] == ["ok"] * 4
