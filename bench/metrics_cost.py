#!/usr/bin/env python3
"""What metrics cost: the router's CPU time per routed call, metrics on vs off.

    python bench/metrics_cost.py                      # 6 rounds, JSON RPC, 3 s windows
    python bench/metrics_cost.py --rounds 10 --serializer msgpack --duration 5

Starts ``twist wampd`` (this checkout, under ``--python``) on a free loopback
port, once with ``--metrics`` (and ``--status``, so the status page's
listener is running too) and once without, alternating, ``--rounds`` times
each.  Each run drives the RPC scenario of ``bench/loadgen/loadgen.mjs`` (4
callers x 20 calls in flight, 100-byte payloads, as ``bench/run.py``) and
reads the router's own CPU time over the measured window from
``/proc/PID/stat``.  The figure compared is **router CPU microseconds per
call**, which the noise of a shared machine moves far less than calls per
second (other processes take wall-clock time, not the router's CPU time).
Alternating the two, and comparing medians, cancels slow drifts of the
machine.  While on, ``/metrics`` is scraped once per window, as Prometheus
would.  Prints one JSON object: the raw runs, the medians, and
``on_vs_off`` (the ratio of the medians; the issue's bound is 1.05).

Needs node (``npm ci`` in bench/loadgen is done if missing) and
prometheus_client next to ``--python``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOADGEN = BENCH / "loadgen"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_router(python: str, metrics: bool, log, status: bool = True) -> tuple[subprocess.Popen, int, int | None]:
    port = free_port()
    args = [python, "-m", "twisted", "wampd", "--listen", f"ws:tcp:{port}:interface=127.0.0.1", "--no-default-listener"]
    ops_port = None
    if metrics:
        ops_port = free_port()
        args += ["--metrics", f"tcp:{ops_port}:interface=127.0.0.1"]
        if status:
            args += ["--status", f"tcp:{ops_port}:interface=127.0.0.1", "--status-secret", "bench"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port, ops_port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"the router exited with {proc.returncode}; see {log.name}")
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the router did not listen within 30 s")


def stop_router(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_once(args, metrics: bool, log) -> dict:
    proc, port, ops_port = start_router(args.python, metrics, log, args.status)
    try:
        config = {
            "scenario": "rpc", "serializer": args.serializer, "url": f"ws://127.0.0.1:{port}/ws",
            "callers": 4, "inflight": 20, "payload": 100, "warmup": args.warmup, "duration": args.duration,
            "cpuPid": proc.pid, "clkTck": os.sysconf("SC_CLK_TCK"), "timeout": args.warmup + args.duration + 30,
        }
        gen = subprocess.Popen([args.node, str(LOADGEN / "loadgen.mjs"), json.dumps(config)], stdout=subprocess.PIPE, stderr=log)
        if ops_port is not None and args.scrape:  # one scrape in the window, as Prometheus would
            time.sleep(args.warmup + args.duration / 2)
            with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/metrics", timeout=10) as response:
                assert b"wampd_messages_received_total" in response.read()
        out, _ = gen.communicate(timeout=config["timeout"] + 20)
        answer = json.loads(out.decode().strip().splitlines()[-1])
        if not answer.get("ok"):
            raise SystemExit(f"loadgen failed: {answer}")
        result = answer["result"]
        cpu_seconds = result["router_cpu_pct"] / 100 * result["seconds"]
        return {
            "metrics": metrics, "calls": result["calls"], "calls_per_s": result["calls_per_s"],
            "router_cpu_pct": result["router_cpu_pct"], "cpu_us_per_call": round(1e6 * cpu_seconds / result["calls"], 2),
        }
    finally:
        stop_router(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--serializer", default="json", choices=("json", "msgpack"))
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable)
    parser.add_argument("--node", default="node")
    parser.add_argument("--no-scrape", dest="scrape", action="store_false", help="do not read /metrics in the window")
    parser.add_argument("--no-status", dest="status", action="store_false", help="metrics without the status page")
    args = parser.parse_args()
    if not (LOADGEN / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=LOADGEN, check=True, stdout=subprocess.DEVNULL)
    runs = []
    with tempfile.NamedTemporaryFile("wb", prefix="metrics_cost-", suffix=".log", delete=False) as log:
        for round_ in range(args.rounds):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            for metrics in order:
                runs.append(run_once(args, metrics, log))
                print(json.dumps(runs[-1]), file=sys.stderr)
    medians = {}
    for state in (False, True):
        mine = [run for run in runs if run["metrics"] is state]
        medians["on" if state else "off"] = {
            "cpu_us_per_call": statistics.median(run["cpu_us_per_call"] for run in mine),
            "calls_per_s": statistics.median(run["calls_per_s"] for run in mine),
        }
    print(json.dumps({
        "serializer": args.serializer, "rounds": args.rounds, "scrape": args.scrape, "status": args.status, "medians": medians,
        "on_vs_off": {
            "cpu_per_call": round(medians["on"]["cpu_us_per_call"] / medians["off"]["cpu_us_per_call"], 4),
            "calls_per_s": round(medians["on"]["calls_per_s"] / medians["off"]["calls_per_s"], 4),
        },
        "runs": runs,
    }, indent=1))


if __name__ == "__main__":
    main()
