"""
``twistd -n wampd`` (and ``twist wampd``) as real subprocesses: zero-config
start, listeners by dotted path, SIGTERM with sessions connected, bad options.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol

from tests.conftest import ROOT
from tests.wamp_clients import join, leave


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile="]
TWIST = [sys.executable, "-m", "twisted", "--log-format=text"]


class Watched(ProcessProtocol):
    """A child process whose output lines can be awaited (no polling, no sleep)."""

    def __init__(self):
        self.lines: list[str] = []
        self._partial = ""
        self._waiters: list[tuple[re.Pattern, Deferred]] = []
        self.ended = Deferred()

    def outReceived(self, data):
        self._partial += data.decode(errors="replace")
        *done, self._partial = self._partial.split("\n")
        for line in done:
            self.lines.append(line)
            for waiter in list(self._waiters):
                m = waiter[0].search(line)
                if m:
                    waiter[2][0] -= 1
                    if waiter[2][0] == 0:
                        self._waiters.remove(waiter)
                        waiter[1].callback(m)

    errReceived = outReceived

    def wait_for(self, pattern: str, timeout: float = 20.0, count: int = 1) -> Deferred:
        """Fires with the match of the ``count``-th line (seen or to come) that matches ``pattern``."""
        regex = re.compile(pattern)
        left = count
        for line in self.lines:
            m = regex.search(line)
            if m:
                left -= 1
                if left == 0:
                    d = Deferred()
                    d.callback(m)
                    return d
        d = Deferred()
        self._waiters.append((regex, d, [left]))
        d.addTimeout(timeout, reactor)
        d.addErrback(lambda f: f.trap(Exception) and pytest.fail(f"never saw {pattern!r} in:\n" + "\n".join(self.lines)))
        return d

    def processEnded(self, reason):
        if self._partial:
            self.lines.append(self._partial)
        self.ended.callback(reason.value.exitCode)


def spawn(argv) -> Watched:
    proto = Watched()
    reactor.spawnProcess(proto, argv[0], argv, env=_env(), path=str(ROOT))
    return proto


def _ended(proto, timeout=20.0):
    d = proto.ended
    d.addTimeout(timeout, reactor)
    return d


@pytest_twisted.ensureDeferred
async def test_twistd_launch_events_and_sigterm_with_a_session_connected():
    proto = spawn(
        TWISTD
        + [
            "wampd",
            "--listen",
            "ws:tcp:0:interface=127.0.0.1",
            "--listen",
            "rawsocket:tcp:0:interface=127.0.0.1",
            "--listener",
            "tests.print_listener:PrintAll",
        ]
    )
    try:
        m = await proto.wait_for(r"wampd listening on (ws://127\.0\.0\.1:\d+/ws) \(websocket\)")
        url = m.group(1)
        c = await join(url)
        await c.register(lambda: "pong", "com.example.ping")
        assert await c.call("com.example.ping") == "pong"
        await leave(c)
        await proto.wait_for(r"EVENT client_disconnected 1")
        stayer = await join(url, serializer="msgpack")
        proto.transport.signalProcess("TERM")
        details = await stayer.left
        assert details.reason == "wamp.close.system_shutdown"
        code = await _ended(proto)
    finally:
        if proto.ended.called is False:
            proto.transport.signalProcess("KILL")
    assert code == 0, "\n".join(proto.lines)
    events = [line.split("EVENT ")[1] for line in proto.lines if "EVENT " in line]
    assert events == [
        "server_launched -",
        "client_connected 1",
        "session_joining 1",
        "session_joined 1",
        "session_left 1",
        "client_disconnected 1",
        "client_connected 2",
        "session_joining 2",
        "session_joined 2",
        "server_stopping -",
        "session_left 2",
        "client_disconnected 2",
    ], "\n".join(proto.lines)
    text = "\n".join(proto.lines)
    # the default listener printed its lines too
    assert re.search(r"session \d+ joined realm1 as anonymous", text)
    assert "wampd stopping (wamp.close.system_shutdown)" in text


def test_zero_config_means_realm1_on_127_0_0_1_8080():
    """No options and no config file: one WebSocket endpoint, tcp:8080 on 127.0.0.1 at /ws, realm1, the default listener."""
    from router.config import ListenConfig
    from router.tap import Options

    options = Options()
    options.parseOptions([])
    config = options["router_config"]
    assert config.listen == (ListenConfig("tcp:8080:interface=127.0.0.1", "websocket", "/ws"),)
    assert [realm.name for realm in config.realms] == ["realm1"]
    assert [listener.plugin for listener, _ in options["listener_objects"]] == ["listeners.log:LogListener"]


@pytest_twisted.ensureDeferred
async def test_zero_config_twist_serves_realm1():
    """
    `twist wampd` with nothing but the port moved to a free one (the zero
    config's 8080 is pinned above; another program may hold it): it serves
    realm1 at /ws on 127.0.0.1, the default listener logs, SIGINT exits 0.
    """
    proto = spawn(TWIST + ["wampd", "--listen", "tcp:0:interface=127.0.0.1"])
    try:
        line = await proto.wait_for(r"wampd listening on (\S+) \(websocket\), realms: (\S+)")
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/ws", line.group(1)), line.group(1)
        assert line.group(2) == "realm1"
        c = await join(line.group(1))
        assert c.sid > 0
        await proto.wait_for(rf"session {c.sid} joined realm1 as anonymous")
        await leave(c)
        proto.transport.signalProcess("INT")
        code = await _ended(proto)
    finally:
        if not proto.ended.called:
            proto.transport.signalProcess("KILL")
    assert code == 0, "\n".join(proto.lines)


def _run(args, timeout=30):
    return subprocess.run(args, env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_twistd_help_lists_wampd():
    out = _run([sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "--help"])
    assert re.search(r"^\s+wampd\s+", out.stdout, re.M), out.stdout


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--listen", "tcp:notaport"], "--listen"),
        (["--listen", "carrier-pigeon:tcp:8080"], "carrier-pigeon"),
        (["--realm", "wamp.reserved"], "wamp.reserved"),
        (["--listener", "no.such.module:Thing"], "no.such.module"),
        (["--max-message-size", "-5"], "max-message-size"),
        (["--allowed-origin", "not a url"], "--allowed-origin: 'not a url' is not an origin pattern"),
        (["--config", "/nonexistent/wampd.toml"], "/nonexistent/wampd.toml"),
        (["--no-such-option"], "--no-such-option"),
    ],
)
def test_bad_options_name_the_problem_and_start_nothing(args, expected):
    out = _run(TWISTD + ["wampd", "--listen", "tcp:0:interface=127.0.0.1"] + args if args[0] != "--listen" else TWISTD + ["wampd"] + args)
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert expected in text, text
    assert "listening on" not in text


def test_bad_config_key_is_named(tmp_path):
    config = tmp_path / "wampd.toml"
    config.write_text('[router]\nmax_message_size = 1024\nping_intreval = 3\n\n[[realm]]\nname = "realm1"\n')
    out = _run(TWISTD + ["wampd", "--config", str(config)])
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "ping_intreval" in text, text
    assert "listening on" not in text


def test_bad_realm_plugin_is_a_usage_error(tmp_path):
    config = tmp_path / "wampd.toml"
    config.write_text(
        '[[realm]]\nname = "realm1"\nauthorizer = "no.such.module:may"\n'
        '[[realm.role]]\nname = "anonymous"\npermissions = [ { uri = "com.", match = "prefix", call = true } ]\n'
    )
    out = _run(TWISTD + ["wampd", "--config", str(config)])
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "realm[0].authorizer" in text and "no.such.module" in text, text
    assert "Traceback" not in text and "listening on" not in text


# -- SIGHUP reloads the configuration: tests/test_reload.py -----------------------


# -- an endpoint that can't listen stops the start (issue 9, item 13) ------------


def _taken_port():
    """A TCP port on 127.0.0.1 that this test holds (bound and listening) until closed."""
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


@pytest.mark.parametrize("runner", ["twistd", "twist"])
@pytest.mark.parametrize("broken", ["taken-port", "no-socket-dir"])
def test_a_listen_that_fails_stops_the_start(runner, broken, tmp_path):
    """
    One endpoint that can't listen (port in use, or a unix socket in a missing
    directory) makes the process exit non-zero at once, naming the endpoint
    and the reason; the good endpoint that did listen is closed again (its
    socket file removed) and server_launched never fires.
    """
    good = tmp_path / "good.sock"
    holder = _taken_port()
    try:
        if broken == "taken-port":
            bad = f"rawsocket:tcp:{holder.getsockname()[1]}:interface=127.0.0.1"
            reason = "Address already in use"
        else:
            bad = "unix:/nonexistent/dir/sock"
            reason = "No such file or directory"
        args = ["wampd", "--listen", f"unix:{good}", "--listen", bad, "--listener", "tests.print_listener:PrintAll"]
        out = _run((TWISTD if runner == "twistd" else TWIST) + args)
    finally:
        holder.close()
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    shown = bad if bad.startswith("rawsocket:") else "websocket:" + bad
    assert re.search(rf"could not listen on {re.escape(shown)}: {reason}", text), text
    assert "EVENT server_launched" not in text and "listening on ws" not in text, text
    assert "EVENT server_stopping" not in text, text
    assert "Traceback" not in text, text
    assert not good.exists(), "the endpoint that did listen left its socket file behind"


def test_daemonized_twistd_reports_a_failed_listen_to_its_parent(tmp_path):
    """twistd without -n: the parent process says the listen failed and exits 1 (a SystemExit would leave it waiting forever)."""
    log = tmp_path / "twistd.log"
    args = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", f"--pidfile={tmp_path / 'pid'}", f"--logfile={log}"]
    out = _run(args + ["wampd", "--listen", "unix:/nonexistent/dir/sock"], timeout=20)
    assert out.returncode == 1
    assert "could not listen on websocket:unix:/nonexistent/dir/sock" in out.stderr, out.stderr
    assert "could not listen on websocket:unix:/nonexistent/dir/sock: No such file or directory" in log.read_text()
    assert not (tmp_path / "pid").exists()


@pytest_twisted.ensureDeferred
async def test_embedded_service_start_fails_whole(tmp_path):
    """RouterService.startService fails with ListenError naming the endpoint; the endpoint that listened is closed, no server_launched."""
    from router.config import ListenConfig
    from router.service import ListenError
    from tests.conftest import make_service
    from tests.wamp_clients import Recorder

    good = tmp_path / "good.sock"
    holder = _taken_port()
    taken = holder.getsockname()[1]
    recorder = Recorder()
    service = make_service(
        recorder,
        listen=(
            ListenConfig(f"unix:{good}", "websocket"),
            ListenConfig(f"tcp:{taken}:interface=127.0.0.1", "rawsocket"),
        ),
    )
    try:
        with pytest.raises(ListenError) as caught:
            await service.startService()
    finally:
        holder.close()
    assert caught.value.failures == [(f"rawsocket:tcp:{taken}:interface=127.0.0.1", "Address already in use (EADDRINUSE)")]
    assert not good.exists(), "the endpoint that did listen is still open"
    assert not service.running
    assert recorder.events == []
    await service.stopService()  # harmless, and announces nothing
    assert recorder.events == []
