#!/usr/bin/env python3
"""What a join costs wampd: instructions per join (callgrind) and KiB per idle session.

    python bench/join_cost.py --joins 500                 # instructions for 500 joins
    python bench/join_cost.py --memory 3000               # KiB per idle session, 3000 sessions
    python bench/join_cost.py --root /tmp/base --joins 500   # the same against another checkout

Both are independent of how busy the machine is, so they compare two checkouts
fairly on a shared machine where wall-clock rates would not.

``--joins N``: starts wampd (from ``--root``, default this checkout) under
``valgrind --tool=callgrind``, makes 20 warm-up joins (then closed), zeroes
the counters (``callgrind_control -z``), makes N joins with
``--concurrency`` (32) in progress at a time from threads of this script
(a bare socket each: HTTP upgrade, HELLO, WELCOME, kept open), dumps the
counters and prints the router's instructions per join: accept, upgrade,
HELLO/WELCOME and the lifecycle events, with the default listener off as in
bench/run.py.  Leaving is not counted.

``--memory N``: starts wampd natively, makes N idle sessions the same way
and prints (VmRSS after - VmRSS before) / N, as bench/run.py's sessions
scenario does.  Standard library only; needs node and bench/loadgen's npm
packages (``npm ci`` there), and valgrind for ``--joins``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the router exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the router is not listening on {port} after {timeout}s")


def start_router(args, port: int, workdir: Path, callgrind: bool, extra: list[str] = ()) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(args.root))
    cmd = [args.python, "-m", "twisted", "--log-format=text", "wampd",
           "--listen", f"ws:tcp:{port}:interface=127.0.0.1", "--no-default-listener", *extra]  # fmt: skip
    if callgrind:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir}/callgrind.out.%p", *cmd]
    log = open(workdir / f"router-{port}.log", "ab")
    return subprocess.Popen(cmd, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def joins(args, url: str, count: int, pid: int, timeout: float) -> dict:
    config = {
        "scenario": "sessions", "serializer": "json", "url": url, "stages": [count],
        "concurrency": args.concurrency, "settle": 0.5, "rssPid": pid, "cpuPid": pid, "timeout": timeout,
    }  # fmt: skip
    out = subprocess.run(
        [args.node, str(BENCH / "loadgen" / "loadgen.mjs"), json.dumps(config)],
        capture_output=True, text=True, timeout=timeout + 30,
    )  # fmt: skip
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    if not answer.get("ok"):
        raise RuntimeError(answer.get("error"))
    return answer["result"]


_HELLO = b'[1,"realm1",{"roles":{"caller":{},"callee":{},"publisher":{},"subscriber":{}}}]'
_UPGRADE = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
)


def join_one(port: int, protocol: str = "wamp.2.json") -> socket.socket:
    """A bare WebSocket session: upgrade, HELLO (zero mask), WELCOME; left open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(_UPGRADE.format(port=port, protocol=protocol).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the upgrade")
        buf += chunk
    if not buf.startswith(b"HTTP/1.1 101 "):
        raise ConnectionError(buf.split(b"\r\n", 1)[0].decode(errors="replace"))
    if protocol == "wamp.2.msgpack":
        import msgpack  # lazy: only for msgpack sessions (wampd's venv has it)

        hello = msgpack.packb(json.loads(_HELLO))
        sock.sendall(bytes((0x82, 0x80 | len(hello))) + b"\0\0\0\0" + hello)
        welcome = b"\x93\x02"  # fixarray of 3, WELCOME
    else:
        sock.sendall(bytes((0x81, 0x80 | len(_HELLO))) + b"\0\0\0\0" + _HELLO)
        welcome = b"[2,"
    buf = buf.split(b"\r\n\r\n", 1)[1]
    while welcome not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before WELCOME")
        buf += chunk
    return sock


def join_many(port: int, count: int, concurrency: int) -> list[socket.socket]:
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda _: join_one(port), range(count)))


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def instructions(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="join-cost-"))
    port = free_port()
    proc = start_router(args, port, workdir, callgrind=True)
    try:
        wait_port(port, proc, 300)
        for sock in join_many(port, 20, 10):  # warm-up: imports, first-use caches
            sock.close()
        time.sleep(2)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True, timeout=60)
        socks = join_many(port, args.joins, args.concurrency)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True, timeout=60)
        for sock in socks:
            sock.close()
    finally:
        stop(proc)
    dumps = sorted(glob.glob(f"{workdir}/callgrind.out.{proc.pid}.*"))
    if not dumps:
        raise RuntimeError(f"no callgrind dump in {workdir}")
    total = None
    for line in Path(dumps[0]).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
            break
    return {
        "joins": args.joins,
        "instructions": total,
        "instructions_per_join": round(total / args.joins) if total else None,
        "dump": dumps[0],
    }


def memory(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="join-mem-"))
    port = free_port()
    proc = start_router(args, port, workdir, callgrind=False)
    try:
        wait_port(port, proc, 60)
        result = joins(args, f"ws://127.0.0.1:{port}/ws", args.memory, proc.pid, timeout=120 + args.memory / 20)
    finally:
        stop(proc)
    stage = result["stages"][0]
    return {
        "sessions": stage["sessions"],
        "rss_before_kib": result["rss_before_kib"],
        "rss_kib": stage["rss_kib"],
        "kib_per_session": stage["kib_per_session"],
        "still_open": result["still_open"],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--joins", type=int, help="count instructions for this many joins (callgrind)")
    p.add_argument("--memory", type=int, help="measure KiB per idle session with this many sessions")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--root", type=Path, default=ROOT, help="the wampd checkout to run (default: this one)")
    p.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    p.add_argument("--node", default="node")
    args = p.parse_args(argv)
    args.root = args.root.resolve()
    if not args.joins and not args.memory:
        p.error("give --joins N and/or --memory N")
    out: dict = {"root": str(args.root)}
    if args.memory:
        out["memory"] = memory(args)
    if args.joins:
        out["callgrind"] = instructions(args)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
