"""
Server-side topics, procedures and periodic services (router.app), with real
Autobahn sessions against the real router in memory.
"""

from __future__ import annotations

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions
from twisted.internet.defer import Deferred

from router.app import App, Refuse, Result, Route, TopicHandler
from router.testing import MemoryRouter
from tests.wamp_clients import Recorder


class Room(TopicHandler):
    interval = 1.0

    def __init__(self):
        self.calls = []
        self.ticks = []

    def on_subscribe(self, session, topic, params):
        self.calls.append(("subscribe", session.session_id, topic, params))
        if params["room"] == "staff":
            raise Refuse("staff only")

    def on_unsubscribe(self, session, topic, params):
        self.calls.append(("unsubscribe", session.session_id, topic, params))

    def on_publish(self, session, topic, params, args, kwargs):
        self.calls.append(("publish", session.session_id, topic, params))
        if not args:
            raise Refuse("empty message", uri="chat.error.empty")
        if args[0] == "boom":
            raise RuntimeError("handler bug")
        return [f"{params['room']}: {args[0]}"], kwargs

    def on_timer(self, topic, params):
        self.ticks.append(topic)
        self.api.publish(topic, "tick")


def make(app=None, **kw):
    recorder = Recorder()
    app = app or App()
    memory = MemoryRouter(apps=[app], listeners=[recorder], **kw)
    return memory, recorder


def subscribe(memory, session, topic, **options):
    got = []
    memory.result(session.subscribe(lambda *a, **k: got.append((a, k)), topic, options=SubscribeOptions(**options) if options else None))
    return got


def test_route_placeholders_and_requirements():
    route = Route("game.{id}.move", {"id": r"\d+"})
    assert route.wamp_pattern == "game..move" and route.match == "wildcard"
    assert route.params("game.42.move") == {"id": "42"}
    assert route.params("game.x.move") is None
    assert route.params("game.42.jump") is None
    assert Route("chat.lobby").match == "exact"
    with pytest.raises(ValueError, match="unknown placeholders"):
        Route("a.{b}", {"c": "x"})
    with pytest.raises(ValueError, match="empty URI component"):
        Route("a..b")


def test_topic_hooks_change_refuse_and_fail_closed():
    app = App()
    room = Room()
    app.add_topic("chat.room.{room}", room, room=r"[a-z]+")
    memory, recorder = make(app)
    alice, bob = memory.join(), memory.join()
    got = subscribe(memory, bob, "chat.room.lobby")
    assert room.calls[0] == ("subscribe", bob._session_id, "chat.room.lobby", {"room": "lobby"})

    # changed on the way through
    memory.result(alice.publish("chat.room.lobby", "hi", options=PublishOptions(acknowledge=True)))
    assert got == [(("lobby: hi",), {})]

    # refused publish: the publisher gets the handler's URI, nobody gets anything, the session stays
    with pytest.raises(ApplicationError) as info:
        memory.result(alice.publish("chat.room.lobby", options=PublishOptions(acknowledge=True)))
    assert info.value.error == "chat.error.empty"
    assert len(got) == 1

    # a handler that raises: ERROR runtime_error, nothing broadcast, client_error reported
    with pytest.raises(ApplicationError) as info:
        memory.result(alice.publish("chat.room.lobby", "boom", options=PublishOptions(acknowledge=True)))
    assert info.value.error == "wamp.error.runtime_error"
    assert len(got) == 1
    errors = [e for e in recorder.events if e.name == "client_error"]
    assert [(e.message_type, type(e.exception).__name__) for e in errors] == [("PUBLISH", "RuntimeError")]

    # refused subscribe: not_authorized, no subscription made
    with pytest.raises(ApplicationError) as info:
        memory.result(alice.subscribe(lambda: None, "chat.room.staff"))
    assert info.value.error == "wamp.error.not_authorized"
    assert memory.router.realms["realm1"].broker.lookup("chat.room.staff") is None

    # requirement not met: no handler, plain routing
    other = subscribe(memory, bob, "chat.room.R2D2")
    memory.result(alice.publish("chat.room.R2D2", "raw", options=PublishOptions(acknowledge=True)))
    assert other == [(("raw",), {})]
    assert alice.is_attached() and bob.is_attached()

    bob_id = bob._session_id
    memory.disconnect(bob)
    assert ("unsubscribe", bob_id, "chat.room.lobby", {"room": "lobby"}) in room.calls


def test_async_hooks():
    gate = Deferred()

    class Slow(TopicHandler):
        def on_subscribe(self, session, topic, params):
            return gate

    app = App()
    app.add_topic("slow.{x}", Slow)
    memory, _ = make(app)
    client = memory.join()
    d = client.subscribe(lambda: None, "slow.one")
    memory.flush()
    assert not d.called
    gate.callback(None)
    assert memory.result(d).id > 0


def test_timers_start_with_first_subscriber_and_stop_with_last():
    app = App()
    room = Room()
    app.add_topic("chat.room.{room}", room)
    memory, _ = make(app)
    hooks = memory.router.realms["realm1"].topic_hooks
    a, b = memory.join(), memory.join()
    got_a = subscribe(memory, a, "chat.room.one")
    subscribe(memory, b, "chat.room.one")
    subscribe(memory, b, "chat.room.two")
    assert sorted(hooks.timers) == ["chat.room.one", "chat.room.two"]
    memory.clock.advance(1.0)
    memory.flush()
    assert sorted(room.ticks) == ["chat.room.one", "chat.room.two"]
    assert got_a == [(("tick",), {})]
    memory.disconnect(a)
    assert sorted(hooks.timers) == ["chat.room.one", "chat.room.two"]  # b still there
    memory.disconnect(b)
    assert hooks.timers == ()
    room.ticks.clear()
    memory.clock.advance(5.0)
    assert room.ticks == []


def test_router_procedures_behave_like_callees():
    app = App()

    @app.procedure("chat.room.{room}.members")
    def members(call, *args, **kwargs):
        return {"room": call.params["room"], "caller": call.session.session_id, "subs": call.api.subscribers(f"chat.room.{call.params['room']}")}

    @app.procedure("math.divmod")
    def divide(call, a, b):
        if b == 0:
            raise ApplicationError("math.error.zero", "division by zero")
        q, r = divmod(a, b)
        return Result([q, r], {"exact": r == 0})

    @app.procedure("broken")
    def broken(call):
        raise KeyError("oops")

    waiting = Deferred()

    @app.procedure("slow")
    async def slow(call):
        return await waiting

    memory, _ = make(app)
    c = memory.join()
    subscribe(memory, c, "chat.room.42")
    result = memory.result(c.call("chat.room.42.members"))
    assert result == {"room": "42", "caller": c._session_id, "subs": [c._session_id]}
    from autobahn.wamp.types import CallResult

    res = memory.result(c.call("math.divmod", 7, 2))
    assert isinstance(res, CallResult) and list(res.results) == [3, 1] and res.kwresults == {"exact": False}
    with pytest.raises(ApplicationError) as info:
        memory.result(c.call("math.divmod", 1, 0))
    assert (info.value.error, info.value.args) == ("math.error.zero", ("division by zero",))
    with pytest.raises(ApplicationError) as info:
        memory.result(c.call("broken"))
    assert info.value.error == "wamp.error.runtime_error"
    d = c.call("slow")
    memory.flush()
    assert not d.called
    waiting.callback("done")
    assert memory.result(d) == "done"
    # visible in the registration meta API, and a client cannot take the name
    reg_id = memory.result(c.call("wamp.registration.lookup", "math.divmod"))
    internal = memory.router.realms["realm1"].internal.session_id
    assert memory.result(c.call("wamp.registration.list_callees", reg_id)) == [internal]
    with pytest.raises(ApplicationError) as info:
        memory.result(c.register(lambda: 0, "math.divmod"))
    assert info.value.error == "wamp.error.procedure_already_exists"


def test_api_publish_and_call_and_periodic():
    app = App()
    ticks = []

    @app.periodic(500)
    def every_half_second(api):
        ticks.append(api.realm)
        if len(ticks) == 2:
            raise RuntimeError("one bad tick")
        api.publish("stats.tick", len(ticks))

    memory, _ = make(app)
    c = memory.join()
    got = subscribe(memory, c, "stats.tick")
    memory.result(c.register(lambda x: x * 3, "com.example.triple"))
    api = memory.router.api("realm1")
    assert memory.result(api.call("com.example.triple", 5)) == 15
    with pytest.raises(ApplicationError) as info:
        memory.result(api.call("com.example.none"))
    assert info.value.error == "wamp.error.no_such_procedure"
    api.publish("stats.tick", "direct", options={"eligible": [c._session_id]})
    memory.flush()
    assert got == [(("direct",), {})]
    with pytest.raises(ValueError, match="unknown publish options"):
        api.publish("stats.tick", options={"acknowledge": True})

    memory.router.start_periodics()
    for _ in range(3):
        memory.clock.advance(0.5)
    memory.flush()
    assert ticks == ["realm1"] * 3  # the failing second tick did not stop the third
    assert got[1:] == [((1,), {}), ((3,), {})]
    memory.router.stop_periodics()
    memory.clock.advance(5)
    assert len(ticks) == 3


def test_durations_are_milliseconds_and_the_old_interval_warns():
    """Every duration of the App API is in milliseconds; a handler's ``interval`` (seconds) still works, with a warning."""

    class Ms(Room):
        interval = None
        interval_ms = 1500

    app = App()
    ms = Ms()
    app.add_topic("chat.ms.{room}", ms)
    with pytest.warns(DeprecationWarning, match="'interval' \\(seconds\\) is deprecated"):
        app.add_topic("chat.room.{room}", Room())
    memory, _ = make(app)
    subscribe(memory, memory.join(), "chat.ms.one")
    memory.clock.advance(1.0)
    assert ms.ticks == []
    memory.clock.advance(0.5)
    assert ms.ticks == ["chat.ms.one"]
