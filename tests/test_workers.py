"""
``twistd -n wampd --workers 2``: two router processes sharing one listening
port, joined through a private redis-server the parent starts; clients that
land on different workers route to each other; a killed worker is restarted;
SIGTERM stops everything with status 0.
"""

from __future__ import annotations

import os
import re
import shutil
import signal

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from tests.test_twistd import TWISTD, _ended, spawn
from tests.wamp_clients import join, leave

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (.ci/run installs it)")
URL = r"wampd listening on (ws://127\.0\.0\.1:\d+/ws) \(websocket\)"


async def on_another_worker(url: str, first, join=join):
    """
    A client joined (by ``join(url)``) to a different worker than ``first``: a call is served by
    a registration of the caller's own worker first, so its own prefix
    registration answers a call that, on ``first``'s worker, the exact one does.
    """
    await first.register(lambda: "first's worker", "com.example.marker")
    for _ in range(40):
        client = await join(url)
        await client.register(lambda: "another worker", "com.example.mark", RegisterOptions(match="prefix"))
        if await client.call("com.example.marker") == "another worker":
            return client
        await leave(client)
    raise AssertionError("40 connections all landed on the first client's worker")


@pytest_twisted.ensureDeferred
async def test_two_workers_share_a_port_route_across_restart_and_stop():
    """Clients on different workers publish/subscribe and call; a SIGKILLed worker comes back; SIGTERM exits 0."""
    parent = spawn(TWISTD + ["wampd", "--workers", "2", "--listen", "ws:tcp:0:interface=127.0.0.1"])
    try:
        url = (await parent.wait_for(URL, timeout=60)).group(1)
        await parent.wait_for(r"1 other node\(s\)", timeout=60)  # the second worker met the first
        first = await join(url)
        second = await on_another_worker(url, first)
        received = Deferred()
        await second.subscribe(lambda text: received.callback(text), "com.example.news")
        await second.register(lambda x: x * 2, "com.example.double")
        for _ in range(50):  # the tables reach the other worker through Redis: retry, each a round trip
            try:
                assert await first.call("com.example.double", 21) == 42
                break
            except ApplicationError as exc:
                assert exc.error == "wamp.error.no_such_procedure"
        await first.publish("com.example.news", "hi", options=PublishOptions(acknowledge=True))
        assert await received.addTimeout(10, reactor) == "hi"
        await leave(first)
        await leave(second)

        pids = [int(m.group(1)) for m in (re.search(r"worker \d started \(pid (\d+)\)", line) for line in parent.lines) if m]
        os.kill(pids[0], signal.SIGKILL)  # a process this test started (through the parent)
        await parent.wait_for(r"worker 0 exited \(signal 9\); restarting it", timeout=10)
        # (the killed worker may still count among the others until its heartbeat expires)
        restarted = (await parent.wait_for(r"worker 0 started \(pid (?!%d\))(\d+)" % pids[0], timeout=30)).group(1)
        await parent.wait_for(r"cluster: node \S+-%s joined .* other node" % restarted, timeout=60)
        parent.transport.signalProcess("TERM")
        assert await _ended(parent, timeout=60) == 0, "\n".join(parent.lines)
    finally:
        if not parent.ended.called:
            parent.transport.signalProcess("KILL")
    text = "\n".join(parent.lines)
    assert text.count("wampd stopping (wamp.close.system_shutdown)") >= 2, text


@pytest_twisted.ensureDeferred
async def test_workers_stop_and_take_the_private_redis_down_when_the_parent_is_killed():
    """SIGKILL of the --workers parent: its workers notice within a second, stop, and shut the private Redis down."""
    from twisted.internet.task import deferLater

    parent = spawn(TWISTD + ["wampd", "--workers", "2", "--listen", "ws:tcp:0:interface=127.0.0.1"])
    try:
        await parent.wait_for(r"1 other node\(s\)", timeout=60)
        sock = (await parent.wait_for(r"joined through unix:(\S+redis\.sock)")).group(1)
        pids = [int(m.group(1)) for m in (re.search(r"worker \d started \(pid (\d+)\)", line) for line in parent.lines) if m]
        parent.transport.signalProcess("KILL")
        await _ended(parent)

        def alive(pid):
            try:
                os.kill(pid, 0)  # signal 0: only asks whether the process exists
            except ProcessLookupError:
                return False
            return True

        for _ in range(200):  # bounded: at most 20 s for the workers' graceful stop
            if not any(alive(pid) for pid in pids) and not os.path.exists(sock):
                break
            await deferLater(reactor, 0.1, lambda: None)
        assert not any(alive(pid) for pid in pids), "workers outlived their parent"
        assert not os.path.exists(sock), "the private redis-server outlived the workers"
    finally:
        if not parent.ended.called:
            parent.transport.signalProcess("KILL")


@pytest_twisted.ensureDeferred
async def test_a_killed_private_redis_is_restarted_and_the_workers_route_across_again():
    """SIGKILL of the private redis-server: the parent restarts it, both workers resynchronize, cross-worker pub/sub and RPC work again."""
    parent = spawn(TWISTD + ["wampd", "--workers", "2", "--listen", "ws:tcp:0:interface=127.0.0.1"])
    try:
        url = (await parent.wait_for(URL, timeout=60)).group(1)
        redis_pid = int((await parent.wait_for(r"private redis-server started \(pid (\d+)\)")).group(1))
        await parent.wait_for(r"1 other node\(s\)", timeout=60)
        first = await join(url)
        second = await on_another_worker(url, first)
        await leave(first)
        await leave(second)

        os.kill(redis_pid, signal.SIGKILL)  # a process this test started (through the parent)
        await parent.wait_for(r"private redis-server exited \(killed by a signal\); restarting it", timeout=10)
        await parent.wait_for(r"private redis-server restarted \(pid \d+\)", timeout=10)
        await parent.wait_for(r"cluster: lost Redis at", timeout=10, count=2)  # each worker logs it once
        # each worker writes its state into the new Redis and reads the other's
        await parent.wait_for(r"cluster: Redis at .* is back; resynchronized", timeout=30, count=2)

        first = await join(url)
        second = await on_another_worker(url, first)
        received = Deferred()
        await second.subscribe(lambda text: received.callback(text), "com.example.news")
        await second.register(lambda x: x * 2, "com.example.double")
        for _ in range(50):  # the new tables reach the other worker through Redis: retry, each a round trip
            try:
                assert await first.call("com.example.double", 21) == 42
                break
            except ApplicationError as exc:
                assert exc.error == "wamp.error.no_such_procedure"
        else:
            raise AssertionError("the call never reached the other worker after Redis came back")
        await first.publish("com.example.news", "again", options=PublishOptions(acknowledge=True))
        assert await received.addTimeout(10, reactor) == "again"
        await leave(first)
        await leave(second)
        parent.transport.signalProcess("TERM")
        assert await _ended(parent, timeout=60) == 0, "\n".join(parent.lines)
    finally:
        if not parent.ended.called:
            parent.transport.signalProcess("KILL")
