"""
``twistd -n wampd --workers 2``: one worker killed with SIGKILL, with a
callee that has a call in flight.  The caller on the other worker gets ERROR
(never silence), the killed worker's session leaves (``on_leave`` published by
the survivor), and the parent restarts the worker, which joins the cluster
again.
"""

from __future__ import annotations

import os
import re
import shutil
import signal

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from router.cluster import parse_redis_url
from router.cluster._resp import connect
from tests.test_twistd import TWISTD, _ended, spawn
from tests.test_workers import URL, on_another_worker
from tests.wamp_clients import join, leave

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (.ci/run installs it)")


async def worker_pid_of(redis_url: str, session_id: int) -> int:
    """The pid of the worker (node ``<host>-<pid>``) where ``session_id`` is joined, as the cluster's Redis says."""
    redis = await connect(reactor, parse_redis_url(redis_url))
    try:
        cursor = b"0"
        while True:
            cursor, keys = await redis.command("SCAN", cursor, "MATCH", "wampd:sessions:*")
            for key in keys:
                if await redis.command("HEXISTS", key, session_id):
                    return int(key.decode().rsplit("-", 1)[1])
            if cursor == b"0":
                raise AssertionError(f"session {session_id} is on no node")
    finally:
        redis.close()


@pytest_twisted.ensureDeferred
async def test_a_worker_killed_with_sigkill_fails_its_calls_leaves_its_sessions_and_comes_back():
    """kill -9 of the callee's worker: the call in flight gets wamp.error.unavailable, on_leave reaches the other worker, the worker restarts and joins again."""
    parent = spawn(TWISTD + ["wampd", "--workers", "2", "--listen", "ws:tcp:0:interface=127.0.0.1"])
    try:
        url = (await parent.wait_for(URL, timeout=60)).group(1)
        redis_url = "unix:" + (await parent.wait_for(r"joined through unix:(\S+redis\.sock)", timeout=60)).group(1)
        await parent.wait_for(r"1 other node\(s\)", timeout=60)
        caller = await join(url)
        callee = await on_another_worker(url, caller)
        await callee.register(lambda: Deferred(), "com.example.never")  # a call that is never answered
        await callee.register(lambda: "pong", "com.example.ping")
        for _ in range(50):  # the registrations reach the caller's worker through Redis (in order: never, then ping)
            try:
                assert await caller.call("com.example.ping") == "pong"
                break
            except ApplicationError as exc:
                assert exc.error == "wamp.error.no_such_procedure"
        left = Deferred()
        await caller.subscribe(lambda sid, *_: sid == callee.sid and not left.called and left.callback(sid),
                               "wamp.session.on_leave")
        in_flight = caller.call("com.example.never")
        pid = await worker_pid_of(redis_url, callee.sid)
        os.kill(pid, signal.SIGKILL)  # a process this test started (through the parent)
        with pytest.raises(ApplicationError) as info:
            await in_flight.addTimeout(10, reactor)
        assert info.value.error == "wamp.error.unavailable"
        assert await left.addTimeout(10, reactor) == callee.sid
        index = (await parent.wait_for(r"worker (\d) exited \(signal 9\); restarting it", timeout=10)).group(1)
        restarted = (await parent.wait_for(r"worker %s started \(pid (?!%d\))(\d+)" % (index, pid), timeout=30)).group(1)
        await parent.wait_for(r"cluster: node \S+-%s joined" % restarted, timeout=60)
        assert await caller.call("wamp.session.count") == 1  # the killed worker's session is gone everywhere
        await leave(caller)
        parent.transport.signalProcess("TERM")
        assert await _ended(parent, timeout=60) == 0, "\n".join(parent.lines)
    finally:
        if not parent.ended.called:
            parent.transport.signalProcess("KILL")
    assert not any(re.search(r"Unhandled|Traceback", line) for line in parent.lines), "\n".join(parent.lines)
