"""
The chat example (examples/chat), end to end with real parts, as a new user
runs it: ``twistd -n wampd --config examples/chat/wampd.toml`` in a
subprocess (only the ports moved to free ones; the push secret comes from
CHAT_PUSH_SECRET through the config's ``secret_env``), autobahn-js sessions
under node (tests/js/chat.mjs) as the chatters, and plain urllib as the web
application that pushes over HTTP.

Every wait is bounded; nothing sleeps.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol

from tests.conftest import ROOT
from tests.test_twistd import TWISTD, Watched, _env

JS_DIR = Path(__file__).resolve().parent / "js"
CHAT_JS = JS_DIR / "chat.mjs"
NODE = shutil.which("node")
NODE_MODULES_OK = (JS_DIR / "node_modules" / "autobahn").is_dir() and (JS_DIR / "node_modules" / "ws").is_dir()
IN_CI = bool(os.environ.get("CI"))
TIMEOUT = 10.0

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH (needed for the autobahn-js chatters)"),
    pytest.mark.skipif(not NODE_MODULES_OK and not IN_CI, reason="tests/js/node_modules is missing (run `npm ci` in tests/js)"),
]


def bounded(d: Deferred, timeout: float = TIMEOUT, what: str = "") -> Deferred:
    d.addTimeout(timeout, reactor)
    if what:
        d.addErrback(lambda f: f.trap(Exception) and pytest.fail(f"timed out waiting for {what}"))
    return d


class Chatters(ProcessProtocol):
    """tests/js/chat.mjs: autobahn-js sessions that run the commands written to its stdin."""

    def __init__(self) -> None:
        self.lines: list[dict] = []
        self.stderr = ""
        self._partial = ""
        self._next_id = 0
        self._answers: dict[int, Deferred] = {}
        self._waiters: list[tuple] = []
        self.ended = Deferred()

    @classmethod
    def start(cls, ws_url: str) -> Chatters:
        proto = cls()
        argv = [NODE, str(CHAT_JS), "--url", ws_url, "--realm", "realm1", "--timeout-ms", "30000"]
        reactor.spawnProcess(proto, NODE, argv, env=dict(os.environ), path=str(JS_DIR))
        return proto

    def outReceived(self, data: bytes) -> None:
        self._partial += data.decode()
        *done, self._partial = self._partial.split("\n")
        for line in done:
            if not line.strip():
                continue
            obj = json.loads(line)
            self.lines.append(obj)
            if "id" in obj and obj["id"] in self._answers:
                self._answers.pop(obj["id"]).callback(obj)
            for waiter in list(self._waiters):
                if waiter[0](obj):
                    self._waiters.remove(waiter)
                    waiter[1].callback(obj)

    def errReceived(self, data: bytes) -> None:
        self.stderr += data.decode(errors="replace")

    def processEnded(self, reason) -> None:
        self.ended.callback(reason.value.exitCode)

    def diagnostics(self) -> str:
        return "--- chat.mjs stdout ---\n" + "\n".join(map(json.dumps, self.lines)) + "\n--- stderr ---\n" + self.stderr

    def command(self, op: str, **fields) -> Deferred:
        """Send one command; fires with its answer line."""
        self._next_id += 1
        d = self._answers[self._next_id] = Deferred()
        self.transport.write((json.dumps({"id": self._next_id, "op": op, **fields}) + "\n").encode())
        return bounded(d, what=f"the answer to {op} {fields}\n{self.diagnostics()}")

    async def ok(self, op: str, **fields) -> dict:
        answer = await self.command(op, **fields)
        assert answer["ok"], (op, fields, answer, self.diagnostics())
        return answer

    def wait_for(self, predicate, what: str) -> Deferred:
        """The first line (seen or to come) that matches."""
        for obj in self.lines:
            if predicate(obj):
                d = Deferred()
                d.callback(obj)
                return d
        d = Deferred()
        self._waiters.append((predicate, d))
        return bounded(d, what=f"{what}\n{self.diagnostics()}")

    def received(self, who: str, topic: str) -> list[dict]:
        return [o for o in self.lines if o.get("event") == "received" and o["as"] == who and o["topic"] == topic]

    def wait_received(self, who: str, topic: str, count: int) -> Deferred:
        """Fires with the count-th event ``who`` received on ``topic``."""
        d = self.wait_for(
            lambda o: o.get("event") == "received" and len(self.received(who, topic)) >= count,
            f"{count} events on {topic} for {who}",
        )
        d.addCallback(lambda _: self.received(who, topic)[count - 1])
        return d


def http_post(url: str, body: dict, secret: str | None) -> Deferred:
    """POST JSON with urllib (in a thread, so the reactor keeps running); fires with (status, JSON)."""

    def post():
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
        if secret is not None:
            request.add_header("Authorization", f"Bearer {secret}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    return bounded(threads.deferToThread(post), TIMEOUT + 2, what=f"POST {url}")


def start_router(secret: str) -> Watched:
    proto = Watched()
    argv = TWISTD + [
        "wampd",
        "--config",
        "examples/chat/wampd.toml",
        "--listen",
        "ws:tcp:0:interface=127.0.0.1",
        "--http",
        "tcp:0:interface=127.0.0.1",
    ]
    env = _env()
    env["CHAT_PUSH_SECRET"] = secret
    reactor.spawnProcess(proto, sys.executable, argv, env=env, path=str(ROOT))
    return proto


@pytest_twisted.ensureDeferred
async def test_chat_example_end_to_end():
    if not NODE_MODULES_OK:
        pytest.fail("CI is set but tests/js/node_modules is missing or incomplete (run `npm ci` in tests/js)")
    secret = secrets.token_urlsafe(16)
    router = start_router(secret)
    chat = None
    try:
        launched = await router.wait_for(r"wampd listening on (ws://\S+) \(websocket\), (http://\S+) \(http\), realms: realm1")
        ws_url, http_url = launched.group(1), launched.group(2)
        chat = Chatters.start(ws_url)

        # alice is in; bob's arrival is announced by the Announcer listener
        alice = await chat.ok("open", **{"as": "alice", "authid": "alice"})
        assert alice["authid"] == "alice"
        await chat.ok("subscribe", **{"as": "alice", "topic": "chat.announce"})
        bob = await chat.ok("open", **{"as": "bob", "authid": "bob"})
        announced = await chat.wait_received("alice", "chat.announce", 1)
        assert announced["args"] == [f"session {bob['session']} joined"], chat.diagnostics()
        assert announced["kwargs"] == {"session": bob["session"], "authid": "bob"}

        # both join the lobby; alice's message reaches bob with her authid in front
        for who in ("alice", "bob"):
            await chat.ok("subscribe", **{"as": who, "topic": "chat.room.lobby"})
        await chat.ok("publish", **{"as": "alice", "topic": "chat.room.lobby", "args": ["hello bob"], "options": {"acknowledge": True}})
        message = await chat.wait_received("bob", "chat.room.lobby", 1)
        assert message["args"] == ["alice: hello bob"], chat.diagnostics()
        assert message["kwargs"] == {"kind": "message", "author": "alice", "text": "hello bob"}

        # refused messages: an ERROR for alice, nothing for bob
        for text in ("", "   ", "x" * 501):
            refused = await chat.command(
                "publish", **{"as": "alice", "topic": "chat.room.lobby", "args": [text], "options": {"acknowledge": True}}
            )
            assert not refused["ok"] and refused["error"] == "chat.error.invalid_message", refused
        refused = await chat.command("publish", **{"as": "alice", "topic": "chat.room.lobby", "options": {"acknowledge": True}})
        assert refused["error"] == "chat.error.invalid_message", refused
        # a sentinel from the same publisher: it arrives after anything published before it
        await chat.ok("publish", **{"as": "alice", "topic": "chat.room.lobby", "args": ["still here"], "options": {"acknowledge": True}})
        await chat.wait_received("bob", "chat.room.lobby", 2)
        assert [e["args"] for e in chat.received("bob", "chat.room.lobby")] == [["alice: hello bob"], ["alice: still here"]]
        assert chat.received("alice", "chat.room.lobby") == []  # publishers are excluded by default

        # room names follow the requirement
        bad_room = await chat.command("subscribe", **{"as": "bob", "topic": "chat.room.Lobby"})
        assert not bad_room["ok"] and bad_room["error"] == "chat.error.invalid_room", bad_room

        # the member count, from a client and from the web application
        members = await chat.ok("call", **{"as": "bob", "procedure": "chat.room.lobby.members"})
        assert members["args"] == [2], members
        assert await http_post(f"{http_url}/call", {"procedure": "chat.room.lobby.members"}, secret) == (
            200,
            {"args": [2], "kwargs": {}},
        )

        # the README's curl, as urllib: every subscriber gets the pushed event as sent
        status, answer = await http_post(
            f"{http_url}/publish", {"topic": "chat.room.lobby", "args": ["hello from curl"]}, secret
        )
        assert status == 200, answer
        for who, count in (("bob", 3), ("alice", 1)):
            await chat.wait_received(who, "chat.room.lobby", count)
            pushed = chat.received(who, "chat.room.lobby")[-1]
            assert (pushed["args"], pushed["publication"]) == (["hello from curl"], answer["publication"]), who
        status, answer = await http_post(f"{http_url}/publish", {"topic": "chat.room.lobby", "args": ["no"]}, "wrong")
        assert (status, answer["error"]) == (401, "wamp.error.not_authorized")

        # bob leaves: announced, and the room shrinks
        closed = await chat.ok("close", **{"as": "bob"})
        assert closed["wamp_reason"] == "wamp.close.goodbye_and_out", closed
        left = await chat.wait_received("alice", "chat.announce", 2)
        assert left["args"] == [f"session {bob['session']} left"]
        members = await chat.ok("call", **{"as": "alice", "procedure": "chat.room.lobby.members"})
        assert members["args"] == [1], members

        # SIGTERM with alice still in: she is told, and twistd exits 0
        router.transport.signalProcess("TERM")
        shutdown = await chat.wait_for(lambda o: o.get("event") == "closed" and o["as"] == "alice", "alice's close")
        assert shutdown["wamp_reason"] == "wamp.close.system_shutdown", shutdown
        code = await bounded(router.ended, 20, what="twistd to exit")
        assert code == 0, "\n".join(router.lines)
        chat.transport.write(b'{"op": "exit"}\n')
        assert await bounded(chat.ended, what="chat.mjs to exit") == 0, chat.diagnostics()
    finally:
        if chat is not None and not chat.ended.called:
            chat.transport.signalProcess("KILL")
        if not router.ended.called:
            router.transport.signalProcess("KILL")

    log = "\n".join(router.lines)
    assert re.search(r"session \d+ joined realm1 as alice", log), log
    assert "Traceback" not in log, log
