"""
The ``[cluster]`` table and ``--cluster``/``--cluster-name``: defaults, and a
bad value names its key and the reason (nothing starts).
"""

from __future__ import annotations

import pytest

from router.cluster import parse_redis_url
from router.config import ClusterConfig
from tests.config_helpers import config_error, config_from_toml
from tests.test_tap import parse, usage_error


def test_cluster_table_with_defaults():
    """Only ``url`` is required; name empty (hostname-pid at start), prefix wampd:, heartbeat 1 s, timeout 3 s, prefer_local off."""
    config = config_from_toml('[cluster]\nurl = "redis://127.0.0.1:6379/2"\n')
    assert config.cluster == ClusterConfig(url="redis://127.0.0.1:6379/2")
    assert (config.cluster.name, config.cluster.prefix, config.cluster.heartbeat, config.cluster.timeout) == (
        "", "wampd:", 1.0, 3.0,
    )
    assert config.cluster.prefer_local is False
    assert config_from_toml('[cluster]\nurl = "unix:/r.sock"\nprefer_local = true\n').cluster.prefer_local is True
    assert config_from_toml("").cluster is None


@pytest.mark.parametrize(
    "table,key,reason",
    [
        ('url = "http://x"', "cluster.url", "is not a redis:// or unix: URL"),
        ('url = "redis://h:99999"', "cluster.url", "port that is not a number"),
        ('url = "unix:"', "cluster.url", "names no socket path"),
        ('url = "redis://h/x"', "cluster.url", "must be a database number"),
        ('url = "redis://h"\nname = "two words"', "cluster.name", "must be 1 to 64 of"),
        ('url = "redis://h"\nheartbeat = 0', "cluster.heartbeat", "must be greater than 0"),
        ('url = "redis://h"\nheartbeat = 1\ntimeout = 1.5', "cluster.timeout", "at least twice the heartbeat"),
        ('url = "redis://h"\nprefix = ""', "cluster.prefix", "non-empty string"),
        ('url = "redis://h"\nprefer_local = "yes"', "cluster.prefer_local", "must be a boolean"),
        ('url = "redis://h"\nnodes = 3', "cluster.nodes", "unknown key"),
        ('name = "a"', "cluster.url", "is required"),
    ],
)
def test_bad_cluster_values_name_the_key(table, key, reason):
    """Each bad [cluster] value is refused with its key path and what is wrong."""
    error = config_error(f"[cluster]\n{table}\n")
    assert error.key == key, str(error)
    assert reason in error.reason


def test_redis_urls():
    """redis://HOST[:PORT][/DB], IPv6 hosts, and unix:PATH[?db=N] are understood."""
    tcp = parse_redis_url("redis://10.0.0.5:6380/3")
    assert (tcp.host, tcp.port, tcp.db, tcp.path) == ("10.0.0.5", 6380, 3, None)
    assert parse_redis_url("redis://[::1]").host == "::1"
    unix = parse_redis_url("unix:/run/redis/redis.sock?db=2")
    assert (unix.path, unix.db) == ("/run/redis/redis.sock", 2)
    assert parse_redis_url("unix:///tmp/r.sock").path == "/tmp/r.sock"


def test_cluster_options():
    """--cluster sets the URL and --cluster-name the name; a bad URL or a name without a URL is a usage error."""
    config = parse("--cluster", "unix:/tmp/r.sock", "--cluster-name", "edge-1")["router_config"]
    assert (config.cluster.url, config.cluster.name) == ("unix:/tmp/r.sock", "edge-1")
    assert "--cluster: " in usage_error("--cluster", "http://nope")
    assert "--cluster-name needs --cluster" in usage_error("--cluster-name", "x")
    assert "--cluster-name: must be 1 to 64" in usage_error("--cluster", "unix:/r", "--cluster-name", "a b")


def test_redis_urls_with_credentials_never_show_the_password():
    """USER:PASSWORD in a redis:// URL, user=/password= on a unix: URL; errors and the address's text leave the password out."""
    tcp = parse_redis_url("redis://app:s%40cret@10.0.0.5:6380/1")
    assert (tcp.username, tcp.password, tcp.host, tcp.db) == ("app", "s@cret", "10.0.0.5", 1)
    assert parse_redis_url("redis://:only@h").password == "only"
    unix = parse_redis_url("unix:/run/r.sock?db=2&password=p%26w")
    assert (unix.password, unix.db, unix.username) == ("p&w", 2, None)
    assert "cret" not in str(tcp)
    with pytest.raises(ValueError) as info:
        parse_redis_url("redis://u:hunter2@host:99999")
    assert "hunter2" not in str(info.value)
