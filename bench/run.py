#!/usr/bin/env python3
"""wampd benchmark suite: wampd against the routers users would pick instead.

    python bench/run.py                        # full run (about 20 minutes on 2 cores)
    python bench/run.py --quick                # smoke run
    python bench/run.py --only wampd           # wampd alone
    python bench/run.py --only wampd,nexus     # wampd and nexus (1 and 2 cores)
    python bench/run.py --only wampd-workers2,nexus   # wampd --workers 2 against nexus

wampd runs twice: one process, and ``--workers 2`` (two worker processes and
their private redis-server; skipped with a message without redis-server),
whose figures are compared with nexus on two cores.  The peers: Crossbar.io and xconn's router (Python, each in its own
virtualenv under bench/, made on first use), nexus (Go; the binary named by
--nexus, skipped with a message when absent) with GOMAXPROCS=1 and 2, and a
plain Autobahn echo server as the floor.  Sets up what it needs (npm ci in
bench/loadgen, the virtualenvs), starts every server itself on a free
loopback port, drives it with the node load generator
(bench/loadgen/loadgen.mjs), prints the README's performance table (with the
date, versions, commit and the load average next to each figure) and writes
the raw results to bench/results/.  See bench/README.md.  Standard library
only; wampd and the echo server run under --python.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOADGEN = BENCH / "loadgen"
RESULTS = BENCH / "results"
DEFAULT_CB_VENV = BENCH / ".crossbar-venv"
DEFAULT_XCONN_VENV = BENCH / ".xconn-venv"
# nexusd from the project's shared anchors: beside the main checkout, or beside a worktree's parent
NEXUS_CANDIDATES = (ROOT.parent / "shared" / "anchors" / "nexusd", ROOT.parent.parent / "shared" / "anchors" / "nexusd")
#: Every router the suite knows, in table order; "nexus" in --only means both nexus entries.
TARGETS = ("wampd", "wampd-workers2", "crossbar", "xconn", "nexus-1", "nexus-2")
#: The --only name of each target (the table's entries for one router share one).
ONLY_NAME = {"nexus-1": "nexus", "nexus-2": "nexus"}
TARGET_LABELS = {
    "wampd": "wampd",
    "wampd-workers2": "wampd --workers 2",
    "crossbar": "Crossbar",
    "xconn": "xconn",
    "nexus-1": "nexus, 1 core",
    "nexus-2": "nexus, 2 cores",
}
SESSIONS_NEEDED_FDS = 10_000

# -- load shapes ----------------------------------------------------------------

FULL = {
    "repeat": 3,
    "warmup": 1.5,
    "duration": 4.0,
    "fanout_subs": [10, 100, 1000],
    "session_stages": [2000, 10_000],
    "bursts": [100, 1000],
    "settle": 1.0,
}
QUICK = {
    "repeat": 1,
    "warmup": 0.5,
    "duration": 1.5,
    "fanout_subs": [10, 100],
    "session_stages": [500, 2000],
    "bursts": [100, 1000],
    "settle": 0.5,
}
RPC = {"callers": 4, "inflight": 20, "payload": 100}
# window: publications outstanding, and window x N deliveries; at 20 the load generator's own
# cap left wampd idle part of the time (67-70% CPU at 100 subscribers); the table's router CPU% row shows the limit
FANOUT = {"window": 100, "payload": 100, "concurrency": 32}
JOIN_CONCURRENCY = 32

CROSSBAR_CONFIG = {
    "version": 2,
    "controller": {},
    "workers": [
        {
            "type": "router",
            "realms": [
                {
                    "name": "realm1",
                    "roles": [
                        {
                            "name": "anonymous",
                            "permissions": [
                                {
                                    "uri": "",
                                    "match": "prefix",
                                    "allow": {
                                        "call": True,
                                        "register": True,
                                        "publish": True,
                                        "subscribe": True,
                                    },
                                    "disclose": {"caller": False, "publisher": False},
                                    "cache": True,
                                }
                            ],
                        }
                    ],
                }
            ],
            "transports": [
                {
                    "type": "websocket",
                    "endpoint": {"type": "tcp", "port": None, "interface": "127.0.0.1"},
                    "serializers": ["json", "msgpack"],
                    "auth": {"anonymous": {"type": "static", "role": "anonymous"}},
                }
            ],
        }
    ],
}


def say(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# -- processes ------------------------------------------------------------------

_PIN = {"enabled": False}


def _child_setup(cpu: int | None):
    """preexec_fn: as many file descriptors as allowed, optionally one CPU."""

    def setup() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if cpu is not None and _PIN["enabled"]:
            os.sched_setaffinity(0, {cpu})

    return setup


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class Server:
    """A server subprocess: started in its own session, ended by PID."""

    live: list["Server"] = []

    def __init__(self, name: str, cmd: list[str], port: int, log: Path, *, env=None, cwd=None, cpu: int | None = 0):
        self.name, self.cmd, self.port, self.log_path = name, cmd, port, log
        self.extra_pids: list[int] = []  # e.g. Crossbar's router worker
        self.cpu_pid: int | list[int] | None = None  # the process(es) that do the routing
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_child_setup(cpu),
        )
        self.cpu_pid = self.proc.pid
        Server.live.append(self)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if port_open(self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not listening on {self.port} after {timeout}s:\n{self.log_tail()}")

    def log_text(self, start: int = 0) -> str:
        """The log from byte ``start`` on."""
        try:
            return self.log_path.read_bytes()[start:].decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f"  {self.name} (pid {self.proc.pid}) ignored SIGTERM for {timeout}s: SIGKILL")
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        for pid in self.extra_pids:
            deadline = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                say(f"  {self.name}: child {pid} still alive: SIGKILL")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log.close()
        if self in Server.live:
            Server.live.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for server in list(cls.live):
            try:
                server.stop(timeout=5)
            except Exception as exc:  # keep ending the others
                say(f"  stopping {server.name}: {exc}")


def start_wampd(args, workdir: Path) -> tuple[Server, str]:
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    cmd = [
        args.python, "-m", "twisted", "--log-format=text", "wampd",
        "--listen", f"ws:tcp:{port}:interface=127.0.0.1", "--no-default-listener",
    ]  # fmt: skip
    server = Server("wampd", cmd, port, workdir / "wampd.log", env=env, cwd=workdir)
    server.wait_ready(30)
    return server, f"ws://127.0.0.1:{port}/ws"


def start_crossbar(args, workdir: Path) -> tuple[Server, str]:
    port = free_port()
    cbdir = Path(tempfile.mkdtemp(prefix="crossbar-", dir=workdir)) / ".crossbar"
    cbdir.mkdir()
    config = json.loads(json.dumps(CROSSBAR_CONFIG))
    config["workers"][0]["transports"][0]["endpoint"]["port"] = port
    (cbdir / "config.json").write_text(json.dumps(config, indent=2))
    cmd = [str(args.crossbar_venv / "bin" / "crossbar"), "start", "--cbdir", str(cbdir), "--loglevel", "warn"]
    server = Server("crossbar", cmd, port, workdir / "crossbar.log", cwd=cbdir.parent)
    server.wait_ready(90)
    workers = [pid for pid in children_of(server.proc.pid) if "RouterController" in cmdline(pid)]
    if len(workers) != 1:
        server.stop()
        raise RuntimeError(f"expected one Crossbar router worker under pid {server.proc.pid}, found {workers}")
    server.extra_pids = workers
    server.cpu_pid = workers[0]
    return server, f"ws://127.0.0.1:{port}/"


def start_xconn(args, workdir: Path) -> tuple[Server, str]:
    """xconn's router as xconn's own command starts it (Router, add_realm, Server on aiohttp): realm1 at /ws."""
    port = free_port()
    cmd = [str(args.xconn_venv / "bin" / "python"), str(BENCH / "xconn_router.py"), str(port)]
    server = Server("xconn", cmd, port, workdir / "xconn.log", cwd=workdir)
    server.wait_ready(60)
    return server, f"ws://127.0.0.1:{port}/ws"


def nexus_config(port: int) -> dict:
    """An open realm1 over WebSocket on 127.0.0.1:port (path /), as the anchors' nexus.json."""
    return {
        "websocket": {
            "address": f"127.0.0.1:{port}",
            "keep_alive": 0,
            "enable_compression": False,
            "allow_origins": ["*"],
            # nexus's default of 64 answers "callee blocked" under 80 calls in flight
            "out_queue_size": 1024,
        },
        "log_path": "",
        "router": {
            "realms": [{"uri": "realm1", "strict_uri": False, "allow_disclose": False, "anonymous_auth": True}],
            "debug": False,
        },
    }


def start_nexus(args, workdir: Path, procs: int) -> tuple[Server, str]:
    port = free_port()
    config = workdir / f"nexus-{port}.json"
    config.write_text(json.dumps(nexus_config(port), indent=2))
    env = dict(os.environ, GOMAXPROCS=str(procs))
    # with --pin, one core means CPU 0 (as every other router); two cores are both CPUs
    server = Server(f"nexus-{procs}", [str(args.nexus), "-c", str(config)], port, workdir / f"nexus-{procs}.log",
                    env=env, cwd=workdir, cpu=0 if procs == 1 else None)  # fmt: skip
    server.wait_ready(30)
    return server, f"ws://127.0.0.1:{port}/"


def start_wampd_workers(args, workdir: Path, workers: int = 2) -> tuple[Server, str]:
    """
    ``twistd -n wampd --workers N`` (README "Several cores with one command"): a parent holding the
    socket, N worker processes and their private redis-server; ready once every worker joined the
    cluster.  Its CPU and RSS are the sums over the parent and all its descendants.
    """
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    cmd = [
        args.python, "-m", "twisted", "--log-format=text", "wampd", "--workers", str(workers),
        "--listen", f"ws:tcp:{port}:interface=127.0.0.1", "--no-default-listener",
    ]  # fmt: skip
    name = f"wampd-workers{workers}"
    log = workdir / f"{name}.log"
    seen = log.stat().st_size if log.exists() else 0  # the log is appended to by every start: read this one's
    # not pinned: it is the whole machine's figure, as nexus with 2 cores
    server = Server(name, cmd, port, log, env=env, cwd=workdir, cpu=None)
    server.wait_ready(30)
    deadline = time.monotonic() + 60
    while len(re.findall(r"cluster: node \S+ joined", server.log_text(seen))) < workers:
        if server.proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name}: not every worker joined the cluster:\n{server.log_tail()}")
        time.sleep(0.2)
    descendants = children_of(server.proc.pid)
    for pid in list(descendants):
        descendants += [p for p in children_of(pid) if p not in descendants]
    server.extra_pids = descendants
    server.cpu_pid = [server.proc.pid, *descendants]
    return server, f"ws://127.0.0.1:{port}/ws"


STARTERS = {
    "wampd": start_wampd,
    "wampd-workers2": start_wampd_workers,
    "crossbar": start_crossbar,
    "xconn": start_xconn,
    "nexus-1": lambda args, workdir: start_nexus(args, workdir, 1),
    "nexus-2": lambda args, workdir: start_nexus(args, workdir, 2),
}


def start_echo(args, workdir: Path) -> tuple[Server, str]:
    port = free_port()
    cmd = [args.python, str(BENCH / "echo_server.py"), str(port)]
    server = Server("echo", cmd, port, workdir / "echo.log", cwd=workdir)
    server.wait_ready(30)
    return server, f"ws://127.0.0.1:{port}/"


# -- the load generator ---------------------------------------------------------


def loadgen(args, config: dict, log: Path) -> dict:
    config = {"clkTck": os.sysconf("SC_CLK_TCK"), "verbose": args.verbose, **config}
    with open(log, "ab") as err:
        err.write(f"\n== {json.dumps(config)}\n".encode())
        err.flush()
        proc = subprocess.run(
            [args.node, str(LOADGEN / "loadgen.mjs"), json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None if args.verbose else err,
            timeout=config["timeout"] + 20,
            preexec_fn=_child_setup(1),
        )
    lines = proc.stdout.decode(errors="replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"load generator said nothing useful (exit {proc.returncode}); see {log}")
    if not answer.get("ok"):
        raise RuntimeError(f"load generator failed: {answer.get('error')}")
    return answer["result"]


def window_timeout(shape: dict, windows: int = 1, extra: float = 30) -> float:
    return windows * (shape["warmup"] + shape["duration"] + 6) + extra


# -- scenarios ------------------------------------------------------------------


def run_throughput(args, shape, target: str, url: str, server: Server, log: Path) -> dict:
    """RPC json/msgpack and fan-out json/msgpack against one running router."""
    common = {"url": url, "warmup": shape["warmup"], "duration": shape["duration"], "cpuPid": server.cpu_pid}
    out = {}
    for serializer in ("json", "msgpack"):
        name = f"rpc_{serializer}"
        say(f"  {target}: {name}")
        out[name] = guarded(
            lambda: loadgen(
                args,
                {"scenario": "rpc", "serializer": serializer, **RPC, **common, "timeout": window_timeout(shape)},
                log,
            )
        )
    for serializer, subs in (("json", shape["fanout_subs"]), ("msgpack", [100])):
        name = f"fanout_{serializer}"
        say(f"  {target}: {name} {subs}")
        timeout = window_timeout(shape, len(subs), extra=60 + max(subs) / 20)
        out[name] = guarded(
            lambda: loadgen(
                args,
                {"scenario": "fanout", "serializer": serializer, "subs": subs, **FANOUT, **common, "timeout": timeout},
                log,
            )
        )
    return out


def run_bursts(args, shape, target: str, url: str, server: Server, log: Path) -> dict:
    """Reconnect storms: each size in shape["bursts"] opened at once, each joining; joins/s."""
    say(f"  {target}: bursts {shape['bursts']}")
    config = {
        "scenario": "burst",
        "serializer": "json",
        "url": url,
        "bursts": shape["bursts"],
        "settle": shape["settle"],
        "cpuPid": server.cpu_pid,
        "timeout": 60 + sum(shape["bursts"]) / 20,
    }
    return guarded(lambda: loadgen(args, config, log))


def run_sessions(args, shape, target: str, url: str, server: Server, log: Path) -> dict:
    stages = shape["session_stages"]
    say(f"  {target}: sessions {stages}")
    config = {
        "scenario": "sessions",
        "serializer": "json",
        "url": url,
        "stages": stages,
        "concurrency": JOIN_CONCURRENCY,
        "settle": shape["settle"],
        "rssPid": server.cpu_pid,
        "cpuPid": server.cpu_pid,
        "timeout": 60 + max(stages) / 40,  # 40 joins/s at the very least
    }
    return guarded(lambda: loadgen(args, config, log))


def run_echo(args, shape, workdir: Path, log: Path) -> dict:
    say("  echo floor")
    try:
        server, url = start_echo(args, workdir)
    except Exception as exc:
        return {"error": str(exc)}
    try:
        config = {
            "scenario": "echo",
            "url": url,
            **RPC,
            "warmup": shape["warmup"],
            "duration": shape["duration"],
            "cpuPid": server.cpu_pid,
            "timeout": window_timeout(shape),
        }
        return guarded(lambda: loadgen(args, config, log))
    finally:
        server.stop()


def guarded(fn) -> dict:
    try:
        return fn()
    except Exception as exc:
        say(f"    ERROR: {exc}")
        return {"error": str(exc)}


def run_target(args, shape, target: str, workdir: Path, log: Path) -> dict:
    start = STARTERS[target]
    result: dict = {}
    # throughput scenarios share one router process ...
    try:
        server, url = start(args, workdir)
    except Exception as exc:
        say(f"  {target} did not start: {exc}")
        return {"error": str(exc)}
    try:
        result.update(run_throughput(args, shape, target, url, server, log))
        result["pid"] = server.cpu_pid
    finally:
        server.stop()
    # ... memory and reconnect storms are measured on fresh ones
    for name, scenario, stop_timeout in (("sessions", run_sessions, 30), ("bursts", run_bursts, 15)):
        try:
            server, url = start(args, workdir)
        except Exception as exc:
            result[name] = {"error": str(exc)}
            continue
        try:
            result[name] = scenario(args, shape, target, url, server, log)
        finally:
            server.stop(timeout=stop_timeout)
    return result


# -- figures ------------------------------------------------------------------------


def metrics(raw: dict) -> dict:
    """Flattens one repeat's raw results into metric -> number; ``<metric>.load1`` is the load average then."""
    m: dict[str, float] = {}

    def put(prefix: str, source: dict, keys) -> None:
        for key in keys:
            if source.get(key) is not None:
                m[f"{prefix}.{key}"] = source[key]
        if source.get("load1") is not None:
            m[f"{prefix}.load1"] = source["load1"]

    for ser in ("json", "msgpack"):
        put(f"rpc.{ser}", raw.get(f"rpc_{ser}") or {}, ("calls_per_s", "p50_ms", "p99_ms", "router_cpu_pct"))
        fan = (raw.get(f"fanout_{ser}") or {}).get("levels") or {}
        for n, level in fan.items():
            put(f"fanout.{ser}.{n}", level, ("publishes_per_s", "deliveries_per_s", "router_cpu_pct"))
    sessions = raw.get("sessions") or {}
    stages = sessions.get("stages") or []
    if stages:
        put("sessions", {"joins_per_s": stages[0]["joins_per_s"], "load1": stages[0].get("load1")}, ("joins_per_s",))
        m["sessions.rss_before_kib"] = sessions["rss_before_kib"]
        m["sessions.held"] = sessions["still_open"]
        for stage in stages:
            put(f"sessions.{stage['sessions']}", stage, ("kib_per_session", "rss_kib"))
    for n, burst in ((raw.get("bursts") or {}).get("bursts") or {}).items():
        put(f"burst.{n}", burst, ("joins_per_s", "join_failures", "router_cpu_pct"))
    echo = raw.get("echo") or {}
    put("echo", echo, ("echo_msgs_per_s", "echo_half_per_s", "p50_ms", "p99_ms", "router_cpu_pct"))
    return m


def medians(runs: list[dict]) -> dict:
    values: dict[str, list[float]] = {}
    for run in runs:
        for key, value in metrics(run).items():
            values.setdefault(key, []).append(value)
    return {key: statistics.median(vals) for key, vals in values.items()}


def table_rows(shape) -> list[tuple[str, str, bool, bool]]:
    """(label, metric, compare with echo/2, higher is better)."""
    rows = []
    for ser in ("json", "msgpack"):
        rows += [
            (f"RPC {ser}: calls/s (1 callee, 4 callers x 20 in flight, 100 B)", f"rpc.{ser}.calls_per_s", True, True),
            (f"RPC {ser}: p50 ms", f"rpc.{ser}.p50_ms", False, False),
            (f"RPC {ser}: p99 ms", f"rpc.{ser}.p99_ms", False, False),
        ]
    for ser, subs in (("json", shape["fanout_subs"]), ("msgpack", [100])):
        for n in subs:
            rows += [
                (f"fan-out {ser} 1 -> {n}: deliveries/s", f"fanout.{ser}.{n}.deliveries_per_s", False, True),
                (f"fan-out {ser} 1 -> {n}: router CPU %", f"fanout.{ser}.{n}.router_cpu_pct", False, False),
            ]
    first = shape["session_stages"][0]
    rows.append((f"joins/s, {JOIN_CONCURRENCY} joining at once ({first} sessions)", "sessions.joins_per_s", False, True))
    for n in shape["bursts"]:
        rows.append((f"joins/s, bursts of {n:,} connections at once", f"burst.{n}.joins_per_s", False, True))
    rows.append(("router RSS before the sessions, KiB", "sessions.rss_before_kib", False, False))
    for n in shape["session_stages"]:
        rows.append((f"KiB of router memory per idle session ({n:,} held)", f"sessions.{n}.kib_per_session", False, False))
    rows.append(("sessions held at the end", "sessions.held", False, True))
    return rows


def fmt(value) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _cell(med: dict, key: str) -> str:
    value = med.get(key)
    load = med.get(key.rsplit(".", 1)[0] + ".load1")  # the window the figure came from
    if value is None:
        return "-"
    return f"{fmt(value)} ({load:.1f})" if load is not None else fmt(value)


def render_table(shape, med: dict, targets) -> str:
    """The README's performance table: a column per router, each figure with the load average when it was taken."""
    echo = med.get("echo", {})
    half = echo.get("echo.echo_half_per_s")
    peers = [t for t in targets if not t.startswith("wampd")]
    # the ratio is taken against the fastest peer users compare with: nexus on one core, else the first peer
    anchor = "nexus-1" if "nexus-1" in peers else (peers[0] if peers else None)
    header = ["scenario", *(TARGET_LABELS[t] for t in targets)]
    if anchor and "wampd" in targets:
        header.append(f"wampd / {TARGET_LABELS[anchor]}")
    # --workers 2 against the whole-machine peer: nexus on two cores
    cores2 = "nexus-2" if "wampd-workers2" in targets and "nexus-2" in targets else None
    if cores2:
        header.append(f"{TARGET_LABELS['wampd-workers2']} / {TARGET_LABELS[cores2]}")
    header.append("wampd vs echo/2")
    lines = [header]
    wampd = med.get("wampd", {})
    for label, key, vs_echo, _higher in table_rows(shape):
        row = [label, *(_cell(med.get(t, {}), key) for t in targets)]
        if anchor and "wampd" in targets:
            w, a = wampd.get(key), med.get(anchor, {}).get(key)
            row.append(f"{w / a:.2f}x" if w is not None and a else "-")
        if cores2:
            w, a = med.get("wampd-workers2", {}).get(key), med.get(cores2, {}).get(key)
            row.append(f"{w / a:.2f}x" if w is not None and a else "-")
        w = wampd.get(key)
        row.append(f"{100 * w / half:.0f}%" if vs_echo and w is not None and half else "")
        lines.append(row)
    out = []
    for i, row in enumerate(lines):
        out.append("| " + " | ".join(row) + " |")
        if i == 0:
            out.append("|---|" + "--:|" * (len(header) - 1))
    if echo:
        out.append("")
        out.append(
            f"floor (Autobahn echo server, same load): {fmt(echo.get('echo.echo_msgs_per_s'))} messages/s, "
            f"echo/2 = {fmt(half)}; p50 {fmt(echo.get('echo.p50_ms'))} ms, p99 {fmt(echo.get('echo.p99_ms'))} ms"
        )
    out.append("")
    out.append("In brackets: the machine's 1-minute load average when the figure's window ended.")
    return "\n".join(out)


def readme_heading(report: dict, output: Path) -> str:
    """The paragraph the README's table stands under: date, machine, versions, commit, raw results."""
    v, m = report["versions"], report["machine"]
    cb = v.get("crossbar_venv", {}).get("crossbar")
    peers = [
        "wampd --workers 2 (two worker processes and their private redis-server, not pinned)"
        if "wampd-workers2" in report.get("targets", ()) else None,
        f"Crossbar {cb}" if cb else None,
        f"xconn {v['xconn']}" if v.get("xconn") else None,
        f"nexus {v['nexus']} (Go; GOMAXPROCS=1 and 2)" if v.get("nexus") else None,
    ]
    where = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
    return (
        f"A full run on {report['date'][:10]}: {m['cpus']} vCPUs ({m['cpu_model']}), wampd {v.get('wampd')} "
        f"at commit {v.get('wampd_commit')}, " + ", ".join(p for p in peers if p) + ", "
        f"Autobahn {v.get('autobahn')}, Twisted {v.get('twisted')}, CPython {v.get('python')}, node {v.get('node')}. "
        f"Figures are medians of {report['shape']['repeat']} interleaved rounds, JSON over loopback unless marked "
        f"msgpack{', servers pinned to CPU 0 and the load generator to CPU 1' if report['load']['pinned'] else ''}. "
        f"Raw results are in `{where}`."
    )


# -- setup --------------------------------------------------------------------------


def ensure_loadgen(args) -> None:
    marker = LOADGEN / "node_modules" / ".package-lock.json"
    lock = LOADGEN / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    say("setup: npm ci in bench/loadgen")
    subprocess.run(
        [args.npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=LOADGEN, check=True, timeout=300
    )


def ensure_crossbar(args) -> None:
    exe = args.crossbar_venv / "bin" / "crossbar"
    if exe.exists():
        return
    venv_python = args.crossbar_venv / "bin" / "python"
    if not venv_python.exists():
        say(f"setup: creating the Crossbar virtualenv {args.crossbar_venv}")
        subprocess.run([args.crossbar_python, "-m", "venv", str(args.crossbar_venv)], check=True, timeout=300)
    say("setup: pip install crossbar (first run only; a few minutes)")
    subprocess.run(
        [str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "crossbar"],
        check=True,
        timeout=1800,
    )


def ensure_xconn(args) -> None:
    python = args.xconn_venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import xconn"], capture_output=True).returncode == 0:
        return
    if not python.exists():
        say(f"setup: creating the xconn virtualenv {args.xconn_venv}")
        subprocess.run([args.crossbar_python, "-m", "venv", str(args.xconn_venv)], check=True, timeout=300)
    say("setup: pip install xconn (first run only)")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "xconn"],
        check=True,
        timeout=1800,
    )


def find_nexus(args) -> Path | None:
    """The nexusd binary: --nexus, else the project's shared anchors; None when there is none."""
    candidates = [args.nexus] if args.nexus else list(NEXUS_CANDIDATES)
    for path in candidates:
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return Path(path).resolve()
    return None


def nexus_version(binary: Path) -> str:
    """nexusd prints no version of its own; the anchors' README names the release it was built from."""
    try:
        text = (binary.parent / "README.md").read_text()
    except OSError:
        return "?"
    match = re.search(r"release (v[0-9][0-9.]*)", text)
    return match.group(1) if match else "?"


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def capture(cmd: list[str], **kw) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def checkout_state() -> str:
    """The short commit, with "+dirty" when router/, listeners/ or twisted/ have changes."""
    commit = capture(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = bool(capture(["git", "-C", str(ROOT), "status", "--porcelain", "--", "router", "listeners", "twisted"]))
    return commit + ("+dirty" if dirty else "")


def versions(args) -> dict:
    probe = (
        "import json, platform, autobahn, twisted, router; print(json.dumps({"
        "'wampd': router.__version__, 'autobahn': autobahn.__version__, "
        "'twisted': twisted.__version__, 'python': platform.python_version()}))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out: dict = {}
    try:
        out.update(json.loads(capture([args.python, "-c", probe], env=env, cwd=str(ROOT))))
    except ValueError:
        pass
    out["wampd_commit"] = checkout_state()
    if "xconn" in args.targets:
        probe = "import json, importlib.metadata as m; print(json.dumps(m.version('xconn')))"
        try:
            out["xconn"] = json.loads(capture([str(args.xconn_venv / "bin" / "python"), "-c", probe]))
        except ValueError:
            pass
    if args.nexus_binary is not None:
        out["nexus"] = nexus_version(args.nexus_binary)
    if "crossbar" in args.targets:
        cb_probe = (
            "import json, platform, crossbar, autobahn; print(json.dumps({"
            "'crossbar': crossbar.__version__, 'autobahn': autobahn.__version__, "
            "'python': platform.python_version()}))"
        )
        try:
            out["crossbar_venv"] = json.loads(capture([str(args.crossbar_venv / "bin" / "python"), "-c", cb_probe]))
        except ValueError:
            pass
    out["node"] = capture([args.node, "--version"])
    try:
        out["ws"] = json.loads((LOADGEN / "node_modules" / "ws" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        pass
    return out


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "memory_mib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20,
    }


# -- profile (optional) ---------------------------------------------------------------


def profile_rpc(args, shape, workdir: Path, log: Path, stamp: str) -> dict:
    """py-spy on wampd during the JSON RPC scenario; not counted in the figures."""
    pyspy = shutil.which("py-spy") or str(Path(args.python).parent / "py-spy")
    if not Path(pyspy).exists():
        return {"error": "py-spy not found (pip install py-spy)"}
    server, url = start_wampd(args, workdir)
    raw = RESULTS / f"{stamp}-rpc-profile.txt"
    try:
        seconds = shape["warmup"] + shape["duration"]
        spy = subprocess.Popen(
            [pyspy, "record", "--nonblocking", "--format", "raw", "--rate", "250", "--duration",
             str(int(seconds + 1)), "--pid", str(server.cpu_pid), "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=open(log, "ab"), start_new_session=True,
        )  # fmt: skip
        figures = guarded(
            lambda: loadgen(
                args,
                {"scenario": "rpc", "serializer": "json", "url": url, **RPC, "warmup": shape["warmup"],
                 "duration": shape["duration"], "cpuPid": server.cpu_pid, "timeout": window_timeout(shape)},
                log,
            )
        )  # fmt: skip
        try:
            spy.wait(seconds + 30)
        except subprocess.TimeoutExpired:
            os.kill(spy.pid, signal.SIGKILL)
            spy.wait(5)
    finally:
        server.stop()
    return {"rpc_json": figures, "raw_stacks": str(raw.relative_to(ROOT)), **top_functions(raw)}


def top_functions(raw: Path, count: int = 20) -> dict:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    by_package: dict[str, int] = {}
    total = 0
    try:
        lines = raw.read_text(errors="replace").splitlines()
    except OSError:
        return {"error": f"no profile written to {raw}"}
    for line in lines:
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        n = int(samples)
        total += n
        frames = [_function_name(frame) for frame in stack.split(";")]
        frames = [f for f in frames if f]
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + n
        package = _package(frames[-1])
        by_package[package] = by_package.get(package, 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n

    def top(counts):
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:count]
        return [{"function": name, "pct": round(100 * n / total, 1)} for name, n in ranked]

    mine = {name: n for name, n in inclusive.items() if "(router/" in name or "(listeners/" in name}
    return {
        "samples": total,
        "self_by_package": top(by_package),
        "top_self": top(own),
        "top_inclusive_wampd": top(mine),
    }


def _package(function: str) -> str:
    """'name (autobahn/websocket/protocol.py)' -> 'autobahn/websocket'."""
    path = function.rpartition(" (")[2].rstrip(")")
    parts = path.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else (parts[0] if len(parts) > 1 else path)


def _function_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/module.py:123)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = path.replace(str(ROOT) + "/", "")
    return f"{name} ({path})" if path else name


# -- main ---------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--python",
        help="interpreter for wampd and the echo server (default: this one if it has autobahn, else .venv/bin/python)",
    )
    p.add_argument("--repeat", type=int, help="runs per scenario; medians are reported (default 3, 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="short smoke run: 1 repeat, short windows, fewer sessions")
    p.add_argument(
        "--only",
        help="comma-separated routers to run, of wampd, wampd-workers2 (--workers 2; needs redis-server), crossbar, "
        "xconn, nexus (nexus: 1 and 2 cores); "
        "default all (the echo floor always runs)",
    )
    p.add_argument("--duration", type=float, help="measured seconds per window")
    p.add_argument("--warmup", type=float, help="unmeasured seconds before each window")
    p.add_argument(
        "--crossbar-venv",
        type=Path,
        default=Path(os.environ.get("BENCH_CROSSBAR_VENV") or DEFAULT_CB_VENV),
        help="Crossbar virtualenv, created with pip install crossbar if missing "
        "(default: $BENCH_CROSSBAR_VENV or bench/.crossbar-venv)",
    )
    p.add_argument("--crossbar-python", default="python3", help="interpreter that creates the Crossbar and xconn venvs")
    p.add_argument(
        "--xconn-venv",
        type=Path,
        default=Path(os.environ.get("BENCH_XCONN_VENV") or DEFAULT_XCONN_VENV),
        help="xconn virtualenv, created with pip install xconn if missing (default: $BENCH_XCONN_VENV or bench/.xconn-venv)",
    )
    p.add_argument(
        "--nexus",
        type=Path,
        default=os.environ.get("BENCH_NEXUS"),
        help="the nexusd binary (default: $BENCH_NEXUS, else shared/anchors/nexusd beside the checkout); "
        "skipped with a message when there is none",
    )
    p.add_argument("--fanout-window", type=int, help=f"fan-out publications in flight (default {FANOUT['window']})")
    p.add_argument("--node", default="node")
    p.add_argument("--npm", default="npm")
    p.add_argument("--pin", action="store_true", help="pin servers to CPU 0 and the load generator to CPU 1")
    p.add_argument("--profile", action="store_true", help="also run py-spy on wampd during one extra JSON RPC run")
    p.add_argument("--output", type=Path, help="results file (default bench/results/<date>.json)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the load generator's progress")
    args = p.parse_args(argv)
    args.crossbar_venv = args.crossbar_venv.resolve()
    args.xconn_venv = args.xconn_venv.resolve()
    wanted = {"wampd", "wampd-workers2", "crossbar", "xconn", "nexus"}
    only = {name.strip() for name in args.only.split(",")} if args.only else wanted
    if not only <= wanted:
        p.error(f"--only: unknown router(s) {sorted(only - wanted)}; choose from {sorted(wanted)}")
    args.targets = [t for t in TARGETS if ONLY_NAME.get(t, t) in only]
    if args.python is None:
        args.python = sys.executable
        local = ROOT / ".venv" / "bin" / "python"
        if not _has_server_deps(sys.executable) and local.exists():
            args.python = str(local)
    return args


def _has_server_deps(python: str) -> bool:
    probe = "import autobahn, twisted, msgpack, cbor2"
    try:
        return subprocess.run([python, "-c", probe], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def main(argv=None) -> int:
    args = parse_args(argv)
    shape = dict(QUICK if args.quick else FULL)
    for key in ("repeat", "duration", "warmup"):
        if getattr(args, key) is not None:
            shape[key] = getattr(args, key)
    _PIN["enabled"] = args.pin and (os.cpu_count() or 1) >= 2
    if args.fanout_window:
        FANOUT["window"] = args.fanout_window
    args.nexus_binary = None
    if any(t.startswith("nexus") for t in args.targets):
        args.nexus_binary = find_nexus(args)
        if args.nexus_binary is None:
            where = args.nexus or " or ".join(str(p) for p in NEXUS_CANDIDATES)
            say(f"nexus skipped: no nexusd at {where} (pass --nexus or set BENCH_NEXUS)")
            args.targets = [t for t in args.targets if not t.startswith("nexus")]
        else:
            args.nexus = args.nexus_binary
    if "wampd-workers2" in args.targets and not shutil.which("redis-server"):
        say("wampd --workers 2 skipped: no redis-server on PATH (Debian's redis-server package)")
        args.targets = [t for t in args.targets if t != "wampd-workers2"]
    targets = args.targets

    hard = raise_fd_limit()
    if hard < max(shape["session_stages"]) + 512:
        capped = hard - 512
        say(f"warning: RLIMIT_NOFILE hard limit is {hard}; the largest session stage is capped at {capped}")
        shape["session_stages"] = [min(n, capped) for n in shape["session_stages"]]

    if not _has_server_deps(args.python):
        say(f"error: {args.python} cannot import wampd's dependencies; pass --python or `pip install .` into it")
        return 2
    for tool in (args.node, args.npm):
        if not shutil.which(tool):
            say(f"error: {tool} not found")
            return 2
    ensure_loadgen(args)
    if "crossbar" in targets:
        ensure_crossbar(args)
    if "xconn" in targets:
        ensure_xconn(args)

    versions_at_start = versions(args)
    started = dt.datetime.now(dt.timezone.utc)
    stamp = started.strftime("%Y-%m-%dT%H%M%SZ") + ("-quick" if args.quick else "")
    RESULTS.mkdir(exist_ok=True)
    output = args.output or RESULTS / f"{stamp}.json"
    workdir = Path(tempfile.mkdtemp(prefix="wampd-bench-"))
    log = workdir / "loadgen.log"
    say(f"logs in {workdir}")

    runs: dict[str, list[dict]] = {"echo": [], **{t: [] for t in targets}}
    profile = None

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        for rep in range(shape["repeat"]):
            say(f"repeat {rep + 1}/{shape['repeat']}")
            runs["echo"].append({"echo": run_echo(args, shape, workdir, log)})
            # alternate the order so slow drift of a noisy machine hits all alike
            for target in targets if rep % 2 == 0 else targets[::-1]:
                runs[target].append(run_target(args, shape, target, workdir, log))
        if args.profile and "wampd" in targets:
            say("profile: py-spy on wampd during JSON RPC (not counted)")
            profile = profile_rpc(args, shape, workdir, log, stamp)
    except KeyboardInterrupt:
        say("interrupted: stopping servers")
        Server.stop_all()
        return 130
    finally:
        Server.stop_all()

    med = {name: medians(rs) for name, rs in runs.items()}
    table = render_table(shape, med, targets)
    elapsed = (dt.datetime.now(dt.timezone.utc) - started).total_seconds()
    report = {
        "date": started.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "quick": args.quick,
        "shape": shape,
        "load": {"rpc": RPC, "fanout": FANOUT, "join_concurrency": JOIN_CONCURRENCY, "bursts": shape["bursts"],
                 "pinned": _PIN["enabled"]},
        "targets": targets,
        "machine": machine(),
        "versions": versions_at_start,
        "medians": med,
        "runs": runs,
        "table": table,
    }
    if profile is not None:
        report["profile"] = profile
    commit_at_end = checkout_state()
    if commit_at_end != versions_at_start.get("wampd_commit") or commit_at_end.endswith("+dirty"):
        report["warning"] = (
            f"the checkout was {versions_at_start.get('wampd_commit')} at the start and {commit_at_end} at the end: "
            "wampd runs from the working tree, so uncommitted or changing code was measured"
        )
        say("warning: " + report["warning"])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")

    print()
    print(readme_heading(report, output))
    print()
    print(table)
    if profile and profile.get("top_self"):
        print()
        print(f"py-spy, wampd during JSON RPC ({profile['samples']} samples; stacks in {profile['raw_stacks']}):")
        print("  self time by package: " + ", ".join(f"{r['function']} {r['pct']}%" for r in profile["self_by_package"][:8]))
        print("  self time:")
        for row in profile["top_self"][:15]:
            print(f"  {row['pct']:5.1f}%  {row['function']}")
        print("  inclusive, wampd's own functions:")
        for row in profile["top_inclusive_wampd"][:10]:
            print(f"  {row['pct']:5.1f}%  {row['function']}")
    print()
    print(f"raw results: {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    errors = [
        f"{name}[{i}]" + (f".{key}" if key != "error" else "")
        for name, rs in runs.items()
        for i, r in enumerate(rs)
        for key, value in r.items()
        if key == "error" or (isinstance(value, dict) and "error" in value)
    ]
    if errors:
        say(f"errors in: {', '.join(errors)} (see {workdir})")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
