"""
Scale-out of a wampd cluster over Redis, side by side with one node, in one run.

    python bench/cluster.py [--python .venv/bin/python] [--duration 8] [--rounds 3]

Starts a private redis-server (unix socket) and wampd nodes as ``twistd``
subprocesses joined to it, then drives them with the suite's node load
generator (bench/loadgen):

* fan-out: 1 publisher (acknowledged, on node 1) -> 1,000 subscribers, all on
  one node, then spread over 2 nodes;
* RPC: 4 callers x 20 in flight, callers and callee on one node, then callers
  on node 1 and the callee on node 2.

Each runs twice: as fast as the load generator can drive it ("saturated",
the wall-clock figure), and at a fixed offered load that neither one node nor
two saturate ("paced": ``--fanout-rate`` publications/s, ``--rpc-rate``
calls/s).  On this 2-core machine the saturated two-node run starves: two
nodes, Redis and the load generator share 2 cores, so each node's reactor turns
carry fewer messages and pay more system calls per message.  The paced run
compares the cost of the same work, which is what carries over to a machine
with a core per process.

For each it reports throughput, p50 (RPC), and the routers' CPU seconds during
the measured window (every node process plus redis-server, read from
/proc/PID/stat while the load runs), and **scale-out efficiency**: work per
router CPU-second with 2 nodes over work per CPU-second with one.  Medians of
``--rounds`` alternated rounds.  Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TICK = os.sysconf("SC_CLK_TCK")


SCENARIOS = ("fanout", "rpc", "fanout-paced", "rpc-paced")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Sampler(threading.Thread):
    """Every 0.1 s: (time, {pid: CPU seconds}) for the watched processes."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.samples, self.running = pids, [], True

    def run(self) -> None:
        while self.running:
            self.samples.append((time.time(), {pid: cpu_seconds(pid) for pid in self.pids}))
            time.sleep(0.1)

    def used(self, start: float, end: float) -> float:
        """CPU seconds all watched processes used between two Unix times (nearest samples)."""
        before = min(self.samples, key=lambda s: abs(s[0] - start))[1]
        after = min(self.samples, key=lambda s: abs(s[0] - end))[1]
        return sum(after[pid] - before[pid] for pid in self.pids)


class Cluster:
    def __init__(self, args, nodes: int, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        sock = workdir / "redis.sock"
        self.redis = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.urls, self.nodes = [], []
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        for n in range(nodes):
            port = free_port()
            log = open(workdir / f"node{n}.log", "wb")
            proc = subprocess.Popen(
                [args.python, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "wampd",
                 "--listen", f"ws:tcp:{port}:interface=127.0.0.1", "--no-default-listener",
                 "--cluster", f"unix:{sock}", "--cluster-name", f"bench{n}", "--max-outbound-buffer", "0"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
            self.nodes.append(proc)
            self.urls.append(f"ws://127.0.0.1:{port}/ws")
            wait_port(port)
        time.sleep(1.0)  # the nodes' hello notices
        self.pids = [p.pid for p in self.nodes] + [self.redis.pid]

    def stop(self) -> None:
        for proc in self.nodes + [self.redis]:
            proc.terminate()
        for proc in self.nodes + [self.redis]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"no router on port {port}")


def loadgen(args, config: dict) -> dict:
    config = {"clkTck": TICK, "warmup": 2, "duration": args.duration, "timeout": args.duration + 120, **config}
    out = subprocess.run([args.node, str(BENCH / "loadgen" / "loadgen.mjs"), json.dumps(config)],
                         capture_output=True, timeout=config["timeout"] + 20)
    answer = json.loads(out.stdout.decode().strip().splitlines()[-1])
    if not answer.get("ok"):
        raise RuntimeError(answer.get("error"))
    return answer["result"]


def measure(args, nodes: int, scenario: str) -> dict:
    scenario, _, paced = scenario.partition("-")
    workdir = Path(tempfile.mkdtemp(prefix="wampd-cluster-bench-"))
    cluster = Cluster(args, nodes, workdir)
    sampler = Sampler(cluster.pids)
    sampler.start()
    try:
        first, last = cluster.urls[0], cluster.urls[-1]
        if scenario == "fanout":
            result = loadgen(args, {"scenario": "fanout", "serializer": "json", "subs": [1000], "window": 20,
                                    "payload": 100, "concurrency": 32, "url": first, "settle": 1.0,
                                    "sub_urls": cluster.urls, "rate": args.fanout_rate if paced else 0})
            level = result["levels"]["1000"]
            work, unit = level["deliveries_per_s"], "deliveries/s"
            extra = {"missing_deliveries": level["missing_deliveries"]}
        else:
            result = loadgen(args, {"scenario": "rpc", "serializer": "json", "callers": 4, "inflight": 20,
                                    "payload": 100, "url": first, "callee_url": last, "settle": 1.0,
                                    "rate": args.rpc_rate if paced else 0})
            work, unit = result["calls_per_s"], "calls/s"
            extra = {"p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"], "errors": result["errors"]}
        start, end = result["windows_unix"][-1]
        cpu = sampler.used(start, end)
        return {"nodes": nodes, unit: work, "router_cpu_s_per_s": round(cpu / (end - start), 3),
                "work_per_cpu_s": round(work / (cpu / (end - start)), 1), **extra}
    finally:
        sampler.running = False
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--node", default="node")
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fanout-rate", type=int, default=150, help="publications/s in the paced fan-out")
    parser.add_argument("--rpc-rate", type=int, default=8000, help="calls/s in the paced RPC")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="a comma-separated subset of " + ", ".join(SCENARIOS))
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("needs redis-server on PATH (Debian: apt install redis-server)")
    scenarios = [name for name in args.scenarios.split(",") if name]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"--scenarios: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    runs: dict[str, list] = {}
    for _ in range(args.rounds):
        for scenario in scenarios:
            for nodes in (1, 2):
                key = f"{scenario}/{nodes}"
                runs.setdefault(key, []).append(measure(args, nodes, scenario))
                print(key, runs[key][-1], flush=True)
    summary = {}
    for key, results in runs.items():
        summary[key] = {name: statistics.median(r[name] for r in results) for name in results[0] if name != "nodes"}
    for scenario in scenarios:
        one, two = summary[f"{scenario}/1"], summary[f"{scenario}/2"]
        summary[f"{scenario}/efficiency"] = round(two["work_per_cpu_s"] / one["work_per_cpu_s"], 3)
        unit = "deliveries/s" if scenario.startswith("fanout") else "calls/s"
        summary[f"{scenario}/wall_ratio"] = round(two[unit] / one[unit], 3)
    print(json.dumps(summary, indent=2))
    stamp = time.strftime("%Y-%m-%dT%H%MZ", time.gmtime())
    out = BENCH / "results" / f"{stamp}-cluster.json"
    out.write_text(json.dumps({"runs": runs, "summary": summary, "load": os.getloadavg()}, indent=2))
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
