"""
The deployment examples in examples/deploy/: the systemd unit passes
``systemd-analyze verify`` and its own command lines start a router that
stops cleanly on its KillSignal; the Docker image builds and serves where
docker works.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
import pytest_twisted

from tests.conftest import ROOT
from tests.test_cli import WAMPD, wampd
from tests.test_twistd import _ended, spawn
from tests.wamp_clients import join, leave

DEPLOY = ROOT / "examples" / "deploy"
UNIT = DEPLOY / "wampd.service"
INSTALLED = "/opt/wampd/bin/wampd"  # where the unit's and the Dockerfile's install puts the script
CONFIG = "/etc/wampd/wampd.toml"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def _command(line: str) -> list[str]:
    """One of the unit's Exec lines as this checkout runs it: our wampd, the shipped config."""
    argv = shlex.split(line)
    assert argv[0] == INSTALLED, line
    return [*WAMPD, *(str(DEPLOY / "wampd.toml") if arg == CONFIG else arg for arg in argv[1:])]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (no systemd here)")
def test_the_systemd_unit_verifies(tmp_path):
    """`systemd-analyze verify` accepts the unit, without a warning about it (its binary pointed at ours)."""
    script = Path(WAMPD[0])
    if not script.name == "wampd":
        pytest.skip("the wampd console script is not installed in this environment")
    text = UNIT.read_text().replace(INSTALLED, str(script)).replace(CONFIG, str(DEPLOY / "wampd.toml"))
    unit = tmp_path / "wampd.service"
    unit.write_text(text)
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    about_ours = [line for line in (out.stdout + out.stderr).splitlines() if "wampd.service" in line]
    assert out.returncode == 0 and not about_ours, out.stdout + out.stderr


def test_the_units_check_step_passes_on_the_shipped_config():
    """ExecStartPre (`wampd check` of the shipped config) succeeds, so the service is allowed to start."""
    pre = _command(_unit()["Service"]["ExecStartPre"])
    out = wampd(*pre[len(WAMPD):])
    assert out.returncode == 0, out.stderr
    assert "realm1" in out.stdout


@pytest_twisted.ensureDeferred
async def test_the_units_command_serves_and_stops_cleanly_on_its_kill_signal():
    """ExecStart with the shipped config serves a client; the unit's KillSignal stops it with status 0."""
    service = _unit()["Service"]
    assert service["KillSignal"] == "SIGTERM"
    # the shipped config listens on 8080; the test takes a free port instead
    proto = spawn([*_command(service["ExecStart"]), "--listen", "tcp:0:interface=127.0.0.1"])
    try:
        m = await proto.wait_for(r"wampd listening on (ws://127\.0\.0\.1:\d+/ws)")
        client = await join(m.group(1))
        await leave(client)
        proto.transport.signalProcess(service["KillSignal"].removeprefix("SIG"))
        code = await _ended(proto, timeout=float(service["TimeoutStopSec"]))
    finally:
        if not proto.ended.called:
            proto.transport.signalProcess("KILL")
    assert code == 0, "\n".join(proto.lines)


def _docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


@pytest.mark.skipif(not _docker_works(), reason="no working docker here (no client, or no daemon to talk to)")
def test_the_docker_image_builds_and_serves():
    """The image builds from the project root and its default command serves ws://…:8080/ws; `docker stop` exits 0."""
    tag = f"wampd-test-{uuid.uuid4().hex[:8]}"
    build = subprocess.run(
        ["docker", "build", "-q", "-f", str(DEPLOY / "Dockerfile"), "-t", tag, str(ROOT)],
        capture_output=True, text=True, timeout=900,
    )
    assert build.returncode == 0, build.stderr
    name = f"{tag}-run"
    try:
        subprocess.run(["docker", "run", "-d", "--name", name, tag], check=True, capture_output=True, timeout=120)
        follow = subprocess.Popen(["docker", "logs", "-f", name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        timer = threading.Timer(120, follow.kill)  # a container that never logs the line ends the wait
        timer.start()
        seen = []
        try:
            for line in follow.stdout:  # type: ignore[union-attr]
                seen.append(line)
                if "wampd listening on ws://0.0.0.0:8080/ws" in line:
                    break
        finally:
            timer.cancel()
            follow.kill()
            follow.wait()
        assert any("wampd listening on ws://0.0.0.0:8080/ws" in line for line in seen), "".join(seen)
        subprocess.run(["docker", "stop", "-t", "20", name], check=True, capture_output=True, timeout=60)
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.ExitCode}}", name], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        assert state == "0", subprocess.run(["docker", "logs", name], capture_output=True, text=True).stdout
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=60)
