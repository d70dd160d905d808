"""The listen backlog: a default that suits a router, settable per endpoint."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from router.config import ConfigError, ListenConfig, default_backlog, effective_endpoint
from router.config._backlog import check_backlog
from tests.config_helpers import config_error, config_from_toml
from tests.conftest import make_service


def _somaxconn() -> int:
    with open("/proc/sys/net/core/somaxconn") as f:
        return int(f.read())


def _kernel_backlog(port: int) -> int:
    """The backlog the kernel holds for a listening TCP socket: ss's Send-Q."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True, timeout=10
    ).stdout.split()
    # State Recv-Q Send-Q Local:Port Peer:Port
    assert out and out[0] == "LISTEN", out
    return int(out[2])


needs_ss = pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")


def test_default_is_somaxconn_at_least_1024(tmp_path):
    """The default backlog is net.core.somaxconn, raised to 1024 when the kernel says less or can't be read."""
    path = tmp_path / "somaxconn"
    path.write_text("128\n")
    assert default_backlog(str(path)) == 1024
    path.write_text("8192\n")
    assert default_backlog(str(path)) == 8192
    assert default_backlog(str(tmp_path / "missing")) == 1024
    path.write_text("garbage")
    assert default_backlog(str(path)) == 1024


def test_effective_endpoint_adds_the_backlog_only_where_it_applies():
    """tcp/tcp6/ssl/unix endpoints without backlog= get one; an explicit one and other types are left alone."""
    n = default_backlog()
    assert effective_endpoint("tcp:9000:interface=127.0.0.1") == f"tcp:9000:interface=127.0.0.1:backlog={n}"
    assert effective_endpoint("unix:/run/w.sock", 300) == "unix:/run/w.sock:backlog=300"
    assert effective_endpoint("TCP6:9000", 7) == "TCP6:9000:backlog=7"
    assert effective_endpoint("tcp:9000:backlog=20") == "tcp:9000:backlog=20"
    assert effective_endpoint("systemd:domain=INET:index=0") == "systemd:domain=INET:index=0"


@needs_ss
@pytest.mark.parametrize(
    "listen, expected",
    [
        (ListenConfig("tcp:0:interface=127.0.0.1"), lambda: min(default_backlog(), _somaxconn())),
        (ListenConfig("tcp:0:interface=127.0.0.1", backlog=300), lambda: 300),
        (ListenConfig("tcp:0:interface=127.0.0.1:backlog=200"), lambda: 200),
    ],
    ids=["default", "key", "endpoint-string"],
)
async def test_listening_socket_gets_the_backlog(listen, expected):
    """The kernel's listening socket has the configured backlog (ss Send-Q), not Twisted's 50."""
    service = make_service(listen=(listen,))
    await service.startService()
    try:
        port = service.ports[0]
        assert _kernel_backlog(port.getHost().port) == expected()
        assert _kernel_backlog(port.getHost().port) != 50
    finally:
        await service.stopService()


async def test_unix_listener_gets_the_backlog(tmp_path):
    """A unix endpoint is listened on with the backlog of its [[listen]] key."""
    service = make_service(listen=(ListenConfig(f"unix:{tmp_path}/w.sock", "rawsocket", backlog=77),))
    await service.startService()
    try:
        assert service.ports[0].backlog == 77
    finally:
        await service.stopService()


def test_toml_backlog_key():
    """[[listen]] backlog is read from the config file."""
    config = config_from_toml('[[listen]]\nendpoint = "tcp:8080"\nbacklog = 2048\n')
    assert config.listen[0].backlog == 2048


@pytest.mark.parametrize(
    "table, reason",
    [
        ('endpoint = "tcp:8080"\nbacklog = 0', "must be at least 1, got 0"),
        ('endpoint = "tcp:8080"\nbacklog = "many"', "must be an integer"),
        ('endpoint = "tcp:8080:backlog=5"\nbacklog = 10', "given twice"),
    ],
)
def test_bad_backlog_names_the_key(table, reason):
    """A bad backlog names listen[i].backlog and the reason, and builds no config."""
    error = config_error(f"[[listen]]\n{table}\n")
    assert error.key == "listen[0].backlog"
    assert reason in error.reason


def test_bad_backlog_in_code():
    """ListenConfig made in code checks its backlog too."""
    with pytest.raises(ConfigError) as info:
        ListenConfig("tcp:8080", backlog=-3)
    assert info.value.key == "backlog"


def test_backlog_key_only_on_endpoints_that_take_one():
    """A backlog for an endpoint type without one (e.g. systemd's inherited sockets) is refused, not ignored."""
    with pytest.raises(ConfigError) as info:
        check_backlog("systemd:domain=INET:index=0", 10)
    assert info.value.key == "backlog"
    assert "only applies to tcp, tcp6, ssl and unix" in info.value.reason
