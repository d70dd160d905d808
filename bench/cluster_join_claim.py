#!/usr/bin/env python3
"""What claiming a session ID cluster-wide adds to a join's write to Redis.

    python bench/cluster_join_claim.py --joins 20000 --rounds 3 --others 4

Starts a private redis-server on a unix socket, and in this process makes
``--joins`` joins' Redis writes two ways, alternated ``--rounds`` times:

* ``before``: what a join wrote before session IDs were claimed (HSET of the
  node's sessions hash and PUBLISH of the ``ses+`` notice, replies unread);
* ``claim``: what it writes now (``router.cluster._sessions``: one Lua script
  that checks the ID against ``--others`` other nodes' hashes, then HSETs
  and PUBLISHes; its reply read, through a Deferred).

For each it prints this process's CPU (the router side) and redis-server's CPU
(from /proc) per join, in microseconds, medians over the rounds.  The client
waits for neither: WELCOME goes out before the write.  Needs redis-server on
PATH and the ``cluster`` extra (hiredis).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import defer, reactor  # noqa: E402

from router.cluster._address import parse_redis_url  # noqa: E402
from router.cluster._resp import connect  # noqa: E402
from router.cluster._sessions import ClusterSessions, _pack  # noqa: E402


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Node:
    """What ClusterSessions needs of a node: its name, prefix, notices channel and command connection."""

    def __init__(self, cmd) -> None:
        self.name, self.prefix, self._notices, self._cmd = "bench", "bench:", b"bench:notices", cmd
        self.router = None


def details(sid: int) -> dict:
    return {"session": sid, "authid": f"anonymous-{sid}", "authrole": "anonymous", "authmethod": "anonymous",
            "authprovider": "static", "transport": {"type": "websocket", "peer": "tcp4:127.0.0.1:5000",
                                                    "serializer": "json"}}


async def run(args) -> None:
    directory = tempfile.mkdtemp()
    sock = os.path.join(directory, "redis.sock")
    redis = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        cmd = await connect(reactor, parse_redis_url(f"unix:{sock}"))
        node = _Node(cmd)
        sessions = ClusterSessions(node)
        for n in range(args.others):
            sessions.add(f"other{n}", n + 1, "realm1", details(n + 1))
        results: dict[str, list[tuple[float, float]]] = {"before": [], "claim": []}
        next_sid = 1000
        for _ in range(args.rounds):
            for way in ("before", "claim"):
                await cmd.command("FLUSHALL")
                started, redis_started = time.process_time(), cpu_of(redis.pid)
                for _ in range(args.joins):
                    next_sid += 1
                    item = details(next_sid)
                    if way == "claim":
                        sessions.joined("realm1", item)
                    else:
                        if cmd.send("HSET", "bench:sessions:bench", next_sid, _pack("realm1", item)):
                            cmd.send("PUBLISH", node._notices, _pack("ses+", node.name, next_sid, "realm1", item))
                    if next_sid % 500 == 0:
                        await cmd.command("PING")  # let the replies in, as a reactor turn would
                await cmd.command("PING")
                results[way].append(((time.process_time() - started) / args.joins * 1e6,
                                     (cpu_of(redis.pid) - redis_started) / args.joins * 1e6))
        for way, rows in results.items():
            here = statistics.median(r[0] for r in rows)
            there = statistics.median(r[1] for r in rows)
            print(f"{way:7s} router CPU {here:6.1f} us/join   redis-server CPU {there:6.1f} us/join")
        cmd.close()
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--others", type=int, default=4, help="other nodes whose hashes the claim checks")
    args = parser.parse_args()
    d = defer.ensureDeferred(run(args))
    d.addErrback(lambda f: f.printTraceback())
    d.addBoth(lambda _: reactor.stop())
    reactor.run()


if __name__ == "__main__":
    main()
