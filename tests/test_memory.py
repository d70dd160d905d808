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
from tests.wamp_clients import Recorder


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


def test_a_hanging_listener_is_timed_out_by_the_clock():
    hung = []

    class Hangs:
        def on_session_joining(self, event):
            d = Deferred()
            hung.append(d)
            return d

    recorder = Recorder()
    memory = MemoryRouter(listeners=[Hangs(), recorder], listener_timeout=2.0)
    client = memory.join()
    assert not client.is_attached()  # WELCOME waits for the listener
    memory.clock.advance(2.0)
    memory.flush()
    assert client.is_attached()  # the hung listener was cancelled and the join went on
    assert [e.name for e in recorder.events][-2:] == ["session_joining", "session_joined"]


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
