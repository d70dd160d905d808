"""
The ``wampd`` console command as a real subprocess: ``wampd run`` (the
twistd plugin's options and behaviour), ``wampd check CONFIG``, ``wampd
--version``, and short usage errors.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
import pytest_twisted

from tests.conftest import ROOT
from tests.test_twistd import _ended, _env, spawn
from tests.wamp_clients import join, leave

import subprocess

_SCRIPT = Path(sys.executable).parent / "wampd"
# The installed console script; a checkout installed before it existed has
# none, and then `python -m router` (the same main()) stands in, except in CI.
WAMPD = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "router"]


def wampd(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*WAMPD, *args], env=_env(), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_the_console_script_is_installed():
    """`pip install .` puts a `wampd` script beside python, pointing at router.cli."""
    scripts = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == "wampd"]
    assert [ep.value for ep in scripts] == ["router.cli:console"]
    if not _SCRIPT.exists():
        if os.environ.get("CI"):
            pytest.fail(f"no {_SCRIPT}: the package was installed without its console script")
        pytest.skip(f"no {_SCRIPT}: reinstall (pip install -e .) to get the script")


def test_version_comes_from_the_package_metadata():
    """`wampd --version` prints the installed distribution's version, not Twisted's."""
    out = wampd("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"wampd {metadata.version('wampd')} (Twisted "), out.stdout
    # and the twistd plugin's own --version says the same
    plugin = subprocess.run(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "wampd", "--version"],
        env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert plugin.returncode == 0 and plugin.stdout == out.stdout, plugin


@pytest.mark.parametrize(
    "args,error,hint",
    [
        (["run", "--max-connections", "many"], "wampd run: --max-connections: must be an integer, got 'many'", "wampd run --help"),
        (["run", "--no-such-option"], "wampd run: option --no-such-option not recognized", "wampd run --help"),
        (["run", "--log-format", "xml"], "wampd run: --log-format: must be one of text, json, got 'xml'", "wampd run --help"),
        (
            ["run", "--ws-path", "wamp"],
            "wampd run: --ws-path: must start with '/' and contain no whitespace, '?' or '#', got 'wamp'",
            "wampd run --help",
        ),
        (["launch"], "wampd: unknown command 'launch'", "wampd --help"),
        ([], "wampd: no command given", "wampd --help"),
        (["check"], "wampd check: give exactly one CONFIG file", "wampd check --help"),
    ],
)
def test_a_usage_error_is_the_error_and_one_hint(args, error, hint):
    """A usage error prints two lines on stderr (the error, where the help is), nothing else, and exits 1."""
    out = wampd(*args)
    assert out.returncode == 1
    assert out.stdout == ""
    assert out.stderr.splitlines() == [error, f"run `{hint}` for the {'commands' if hint == 'wampd --help' else 'options'}"]


def test_run_help_lists_the_twistd_plugin_options():
    """`wampd run --help` is the plugin's help (every option twistd -n wampd has), exit 0."""
    out = wampd("run", "--help")
    assert out.returncode == 0
    assert out.stdout.startswith("Usage: wampd run [options]")
    for option in ("--listen=", "--config=", "--max-calls-in-flight=", "--log-format=", "--log-level=", "--ws-path="):
        assert option in out.stdout


@pytest_twisted.ensureDeferred
async def test_run_serves_logs_json_and_stops_on_sigterm_with_status_0():
    """`wampd run` serves a client on --ws-path, logs JSON lines with the event's fields, exits 0 on SIGTERM."""
    proto = spawn([*WAMPD, "run", "--listen", "tcp:0:interface=127.0.0.1", "--ws-path", "/wamp", "--log-format", "json"])
    try:
        m = await proto.wait_for(r"wampd listening on (ws://127\.0\.0\.1:\d+/wamp)")
        client = await join(m.group(1))
        authid = (await client.joined).authid  # anonymous-<random>: unique by default
        await proto.wait_for(r'"event": "session_joined"')
        await leave(client)
        await proto.wait_for(r'"event": "client_disconnected"')
        proto.transport.signalProcess("TERM")
        code = await _ended(proto)
    finally:
        if not proto.ended.called:
            proto.transport.signalProcess("KILL")
    assert code == 0, "\n".join(proto.lines)
    records = [json.loads(line) for line in proto.lines if line.strip()]
    joined = [r for r in records if r["event"] == "session_joined"]
    assert len(joined) == 1
    assert joined[0]["session"] == client.sid
    assert (joined[0]["realm"], joined[0]["authid"], joined[0]["address"]) == ("realm1", authid, "127.0.0.1")
    assert [r["event"] for r in records if r["event"]][-1] == "server_stopping"


def test_run_exits_1_naming_an_endpoint_that_cannot_listen():
    """A taken port: `wampd run` names the endpoint and the reason and exits 1, as twistd does."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        out = wampd("run", "--listen", f"tcp:{port}:interface=127.0.0.1")
    assert out.returncode == 1
    assert f"could not listen on websocket:tcp:{port}:interface=127.0.0.1: Address already in use" in out.stdout + out.stderr


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wampd.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_check_prints_every_error_with_its_key_path(tmp_path):
    """`wampd check` reports every bad key of a file (not only the first), each with its path, and exits 1."""
    path = _write(
        tmp_path,
        """
        [router]
        max_message_size = "big"
        ping_intervall = 3

        [[listen]]
        endpoint = "tcp:8080"
        transport = "carrier-pigeon"

        [[realm]]
        name = "wamp.reserved"

        [[realm]]
        name = "ok"
        auth = [{ method = "nope" }]

        [[realm.role]]
        name = "reader"
        permissions = [{ uri = "x", match = "sometimes" }]
        """,
    )
    out = wampd("check", str(path))
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    keys = [line.split(": ")[1] for line in lines[:-1]]
    assert keys == [
        "router.ping_intervall",
        "router.max_message_size",
        "listen[0].transport",
        "realm[0].name",
        "realm[1].auth[0].method",
        "realm[1].role[0].permissions[0].match",
    ], out.stderr
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert "did you mean 'ping_interval'?" in lines[0]
    assert lines[-1] == f"{path}: 6 errors"


def test_check_finds_a_plugin_that_cannot_be_loaded(tmp_path):
    """A well-formed file whose listener module does not exist fails the check, as it would fail `wampd run`."""
    path = _write(tmp_path, '[[listener]]\nplugin = "no_such_module_here:Thing"\n')
    out = wampd("check", str(path))
    assert out.returncode == 1
    assert "listener[0]" in out.stderr and "no_such_module_here" in out.stderr, out.stderr


def test_check_summarises_a_good_file(tmp_path):
    """A good file: a short summary of endpoints, realms with their auth, listeners and changed settings; exit 0."""
    path = _write(
        tmp_path,
        """
        [router]
        max_connections = 100

        [[listen]]
        endpoint = "tcp:8080:interface=127.0.0.1"
        path = "/wamp"

        [[listen]]
        endpoint = "tcp:8081:interface=127.0.0.1"
        transport = "rawsocket"

        [[realm]]
        name = "realm1"

        [[realm]]
        name = "secure"
        auth = [{ method = "ticket", transports = ["websocket"] }, { method = "anonymous", role = "guest" }]

        [[realm.principal]]
        authid = "alice"
        role = "reader"
        ticket = "s3cret"

        [[realm.role]]
        name = "reader"
        permissions = [{ uri = "news.", match = "prefix", subscribe = true }]

        [[realm.role]]
        name = "guest"

        [[listener]]
        plugin = "tests.print_listener:PrintAll"
        priority = 5
        """,
    )
    out = wampd("check", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"{path}: OK",
        "endpoints:",
        "  websocket tcp:8080:interface=127.0.0.1 path /wamp",
        "  rawsocket tcp:8081:interface=127.0.0.1",
        "realms:",
        "  realm1: auth anonymous; open (no roles)",
        "  secure: auth ticket (websocket only), anonymous (role guest); 1 principal; roles reader, guest",
        "listeners: listeners.log:LogListener (the default listener), tests.print_listener:PrintAll (priority 5)",
        "apps: none",
        "settings changed from the defaults: max_connections = 100",
    ]
    assert "s3cret" not in out.stdout


def test_check_of_a_missing_file_names_it():
    """A file that isn't there: one error naming it, exit 1."""
    out = wampd("check", "/nonexistent/wampd.toml")
    assert out.returncode == 1
    assert out.stderr.splitlines()[0] == "/nonexistent/wampd.toml: no such file"


def test_python_dash_m_router_is_the_same_command():
    """`python -m router` runs the same main() as the script, for an uninstalled checkout."""
    out = subprocess.run([sys.executable, "-m", "router", "--version"], env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert re.match(r"wampd \S+ \(Twisted ", out.stdout)
