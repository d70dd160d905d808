"""
A testament is a PUBLISH made later: ``wamp.session.add_testament`` refuses
what a PUBLISH would be refused (ERROR ``wamp.error.invalid_argument``), and
a testament that still fails to publish never cuts a departure short.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp import message

from router.testing import MemoryPeer, MemoryRouter
from tests.raw_client import CALL, ERROR, RESULT, SUBSCRIBE, SUBSCRIBED, bounded, connect_raw
from tests.wamp_clients import Recorder

ADD = "wamp.session.add_testament"
ROLES = {"publisher": {}, "subscriber": {}, "caller": {}}


@pytest.mark.parametrize("serializer", ["msgpack", "cbor"])
@pytest_twisted.ensureDeferred
async def test_add_testament_refuses_what_publish_refuses(live_router, serializer):
    """
    Over RawSocket with msgpack and CBOR (which carry bytes keys): a testament
    whose kwargs have a bytes key, or whose publish_options break PUBLISH's
    option rules, gets ERROR invalid_argument naming the problem; a good one
    still gets RESULT, and the session's departure then completes
    (session_left and client_disconnected).
    """
    peer = await connect_raw(live_router.rs_port, "rawsocket", serializer)
    assert (await peer.hello(ROLES))[0] == 2
    ok = await peer.request([CALL, 1, {}, ADD, ["news.x", ["good"]]], (RESULT, ERROR))
    assert ok[0] == RESULT, ok
    refused = {
        2: ([CALL, 2, {}, ADD, ["news.x", ["bad"], {b"k": 1}]], "kwargs keys must be strings"),
        3: ([CALL, 3, {}, ADD, ["news.x", []], {"publish_options": {"retain": "yes"}}], "'retain'"),
        4: ([CALL, 4, {}, ADD, ["news.x", []], {"publish_options": {"exclude": "abc"}}], "'exclude'"),
        5: ([CALL, 5, {}, ADD, ["news.x", []], {"publish_options": {"exclude_me": 5}}], "'exclude_me'"),
        6: ([CALL, 6, {}, ADD, ["news.x", "not a list"]], "args must be a list"),
    }
    for request, (raw, named) in refused.items():
        reply = await peer.request(raw, (RESULT, ERROR))
        assert reply[0] == ERROR and reply[4] == "wamp.error.invalid_argument", reply
        assert named in reply[5][0], reply
    session_id = peer.session_id
    peer.drop()
    await bounded(peer.closed)
    recorder = live_router.recorder
    await bounded(recorder.wait_for(lambda e: e.name == "client_disconnected" and e.session and e.session.session_id == session_id))
    assert any(e.name == "session_left" and e.session.session_id == session_id for e in recorder.events)


class RaisesOnEvents(MemoryPeer):
    """A peer (a test double) whose send raises for an EVENT: a subscriber the broker cannot deliver to."""

    def send(self, msg) -> bool:
        if type(msg) is message.Event:
            raise RuntimeError("this peer breaks on events")
        return super().send(msg)


def test_a_testament_that_fails_to_publish_does_not_stop_the_departure():
    """
    Publishing a testament raises (its only subscriber's peer raises on
    EVENT): the departing msgpack session still gets session_left and
    client_disconnected, later departures too, and the router's shutdown
    completes at once (no connection left to time out).
    """
    recorder = Recorder()
    memory = MemoryRouter(listeners=[recorder])
    breaker = RaisesOnEvents("json")
    subscriber = memory.router.connect(
        breaker, transport="rawsocket", peer_address="memory", host=None, serializer="json", endpoint="memory"
    )
    subscriber.opened()
    subscriber.receive(breaker.codec.decode(b'[1,"realm1",{"roles":{"subscriber":{}}}]'))
    subscriber.receive(breaker.codec.decode(b'[32,1,{},"news.x"]'))
    assert [m.MESSAGE_TYPE for m in breaker.sent] == [message.Welcome.MESSAGE_TYPE, message.Subscribed.MESSAGE_TYPE]

    leaving = memory.join(serializer="msgpack")
    memory.result(leaving.call(ADD, "news.x", ["bye"]))
    leaving_id = leaving._session_id
    memory.disconnect(leaving, clean=False)
    left = [e for e in recorder.events if e.name == "session_left" and e.session.session_id == leaving_id]
    gone = [e for e in recorder.events if e.name == "client_disconnected" and e.session and e.session.session_id == leaving_id]
    assert len(left) == 1 and left[0].reason == "wamp.close.transport_lost"
    assert len(gone) == 1
    assert leaving_id not in memory.router.realms["realm1"].sessions

    other = memory.join()
    memory.disconnect(other)
    assert [e.name for e in recorder.events][-2:] == ["session_left", "client_disconnected"]
    subscriber.lost(orderly=True)  # its transport goes: nothing the shutdown should wait for is left
    done = []
    memory.shutdown().addBoth(done.append)
    memory.flush()
    assert done and not isinstance(done[0], Exception), done
