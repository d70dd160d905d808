"""
``--log-format`` and ``--log-level`` under ``twistd`` and ``twist`` (real
subprocesses, their output read back), the same fields in both formats, and
``twist wampd`` keeping text when its output is a pipe.
"""

from __future__ import annotations

import json
import re
import socket
import sys

import pytest
import pytest_twisted

from tests.test_twistd import TWISTD, _ended, _run, spawn
from tests.wamp_clients import join, leave

TWIST_BARE = [sys.executable, "-m", "twisted"]  # no --log-format: twist picks by itself
LISTEN = ["--listen", "tcp:0:interface=127.0.0.1"]


async def _one_session(proto):
    """Join and leave once on the router ``proto`` runs, then SIGTERM it; the client's session id and authid."""
    try:
        m = await proto.wait_for(r"(ws://127\.0\.0\.1:\d+/ws)")
        client = await join(m.group(1))
        sid, authid = client.sid, (await client.joined).authid  # anonymous-<random>: unique by default
        await leave(client)
        await proto.wait_for(r"client_disconnected")
        proto.transport.signalProcess("TERM")
        code = await _ended(proto)
    finally:
        if not proto.ended.called:
            proto.transport.signalProcess("KILL")
    assert code == 0, "\n".join(proto.lines)
    return sid, authid


def _json_records(lines):
    return [json.loads(line) for line in lines if line.strip()]


@pytest_twisted.ensureDeferred
async def test_twistd_log_format_json_gives_one_object_per_line_with_the_fields():
    """`twistd -n wampd --log-format json`: every line is a JSON object; session_joined carries session, realm, authid, address."""
    proto = spawn(TWISTD + ["wampd", *LISTEN, "--log-format", "json"])
    sid, authid = await _one_session(proto)
    records = _json_records(proto.lines)  # fails on any line that is not JSON
    assert {"time", "level", "namespace", "message", "event", "session", "realm", "authid", "address"} <= set(records[0])
    by_event = {r["event"]: r for r in records if r["event"]}
    joined = by_event["session_joined"]
    assert (joined["session"], joined["realm"], joined["authid"], joined["address"]) == (sid, "realm1", authid, "127.0.0.1")
    assert by_event["client_connected"]["address"] == "127.0.0.1"
    assert by_event["session_left"]["session"] == sid
    assert joined["level"] == "info" and joined["namespace"] == "wampd.events"


@pytest_twisted.ensureDeferred
async def test_text_lines_carry_the_same_fields():
    """The text format's lifecycle lines name the event, session, realm, authid and address the JSON has."""
    proto = spawn(TWISTD + ["wampd", *LISTEN])
    sid, authid = await _one_session(proto)
    text = "\n".join(proto.lines)
    assert re.search(
        rf"\[wampd\.events#info\] session_joined: session {sid} joined realm1 as {authid} \(role anonymous\) from 127\.0\.0\.1$",
        text,
        re.M,
    ), text
    assert re.search(rf"session_left: session {sid} left realm1 .* \({authid} from 127\.0\.0\.1\)$", text, re.M), text


def test_twistd_log_level_error_drops_info_lines():
    """`--log-level error` under twistd: the error that stops the router shows, no info line does."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        quiet = _run(TWISTD + ["wampd", "--listen", f"tcp:{port}:interface=127.0.0.1", "--log-level", "error"])
        chatty = _run(TWISTD + ["wampd", "--listen", f"tcp:{port}:interface=127.0.0.1"])
    assert quiet.returncode == chatty.returncode == 1
    assert f"could not listen on websocket:tcp:{port}" in quiet.stdout + quiet.stderr
    assert "#info]" in chatty.stdout  # what the filter takes away is there without it
    assert "#info]" not in quiet.stdout + quiet.stderr, quiet.stdout


@pytest_twisted.ensureDeferred
async def test_twist_keeps_text_when_its_output_is_a_pipe():
    """`twist wampd` with stdout a pipe writes text lines, not the JSON twist would pick by itself."""
    proto = spawn(TWIST_BARE + ["wampd", *LISTEN])
    await _one_session(proto)
    assert not any(line.startswith("\x1e") or line.startswith("{") for line in proto.lines), proto.lines
    assert any("[wampd.events#info] session_joined: session" in line for line in proto.lines), proto.lines


@pytest_twisted.ensureDeferred
async def test_twist_plugin_log_format_json_and_level():
    """`twist wampd --log-format json --log-level info`: wampd's JSON lines under twist."""
    proto = spawn(TWIST_BARE + ["wampd", *LISTEN, "--log-format", "json", "--log-level", "info"])
    sid, authid = await _one_session(proto)
    records = _json_records(proto.lines)
    assert [r["session"] for r in records if r["event"] == "session_joined"] == [sid]


@pytest_twisted.ensureDeferred
async def test_twists_own_explicit_log_format_is_respected():
    """`twist --log-format json wampd`: asked for explicitly, twist's own JSON (record-separated) stays."""
    proto = spawn(TWIST_BARE + ["--log-format", "json", "wampd", *LISTEN])
    await _one_session(proto)
    assert all(line.startswith("\x1e") for line in proto.lines if line.strip()), proto.lines


@pytest.mark.parametrize(
    "extra,expected",
    [
        (["--syslog"], "leave out twistd's --syslog"),
        (["--logger", "twisted.logger.textFileLogObserver"], "leave out twistd's --logger"),
    ],
)
def test_twistd_log_options_that_compete_are_a_usage_error(extra, expected):
    """wampd's --log-format with twistd's own --syslog/--logger: a usage error naming the clash, exit 1."""
    out = _run(TWISTD[:-1] + extra + ["--pidfile=", "wampd", "--log-format", "json"])
    assert out.returncode == 1
    assert expected in out.stdout + out.stderr


def test_a_bad_log_level_is_a_usage_error():
    """An unknown --log-level names the option and the allowed levels."""
    out = _run(TWISTD + ["wampd", "--log-level", "loud"])
    assert out.returncode == 1
    assert "--log-level: must be one of debug, info, warn, error, critical, got 'loud'" in out.stdout + out.stderr
