#!/usr/bin/env python3
"""What a routed call costs wampd: instructions per CALL -> INVOCATION -> YIELD -> RESULT (callgrind).

    python bench/rpc_cost.py --calls 5000                  # JSON, 20 calls in flight
    python bench/rpc_cost.py --calls 5000 --serializer msgpack
    python bench/rpc_cost.py --calls 5000 --root /tmp/base  # the same against another checkout
    python bench/rpc_cost.py --calls 2000 --cluster         # caller on one node, callee on another

Starts wampd (from ``--root``) under ``valgrind --tool=callgrind``, joins a
callee that registers ``bench.rpc.echo`` and a caller (bare WebSocket JSON
sockets, from this script), makes 200 warm-up calls, zeroes the counters,
makes ``--calls`` calls with ``--inflight`` (20) in flight, 100-byte string
payloads as bench/run.py's RPC scenario, dumps the counters and prints the
router's instructions per call.  Independent of how busy the machine is.

With ``--cluster`` it starts a private redis-server (unix socket) and two
wampd nodes joined through it, both under callgrind; the callee joins the
second and the caller the first, and the figure is both nodes' instructions
per call (Redis, in C, is not counted: its CPU time is printed beside).
Standard library only (msgpack for ``--serializer msgpack``); needs valgrind.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from join_cost import ROOT, free_port, join_one, start_router, stop, wait_port  # noqa: E402

PROC = "bench.rpc.echo"


CODEC = {"encode": lambda msg: json.dumps(msg, separators=(",", ":")).encode(), "decode": json.loads, "opcode": 1}


def use_msgpack() -> None:
    import msgpack  # lazy: only for --serializer msgpack (wampd's venv has it)

    CODEC.update(encode=lambda msg: msgpack.packb(msg, use_bin_type=True),
                 decode=lambda data: msgpack.unpackb(data, raw=False), opcode=2)  # fmt: skip


def send(sock: socket.socket, msg) -> None:
    payload = CODEC["encode"](msg)
    n = len(payload)
    first = 0x80 | CODEC["opcode"]
    head = bytes((first, 0x80 | n)) if n < 126 else bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    sock.sendall(head + b"\0\0\0\0" + payload)


class Frames:
    """Reads the router's (unmasked) frames from a socket, one message at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def next(self) -> list:
        while True:
            if len(self.buf) >= 2:
                length, at = self.buf[1] & 0x7F, 2
                if length == 126 and len(self.buf) >= 4:
                    length, at = int.from_bytes(self.buf[2:4], "big"), 4
                elif length == 127 and len(self.buf) >= 10:
                    length, at = int.from_bytes(self.buf[2:10], "big"), 10
                if length < 126 or at > 2:
                    if len(self.buf) >= at + length:
                        payload, self.buf = self.buf[at : at + length], self.buf[at + length :]
                        return CODEC["decode"](payload)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the router closed the connection")
            self.buf += chunk


def callee(sock: socket.socket, stop_event: threading.Event) -> None:
    frames = Frames(sock)
    while not stop_event.is_set():
        try:
            msg = frames.next()
        except OSError:
            return
        if msg[0] == 68:  # INVOCATION -> YIELD
            send(sock, [70, msg[1], {}, msg[4] if len(msg) > 4 else []])


def calls(sock: socket.socket, frames: Frames, count: int, inflight: int, first: int) -> int:
    payload = ["x" * 100]
    sent = done = 0
    while sent < min(inflight, count):
        sent += 1
        send(sock, [48, first + sent, {}, PROC, payload])
    while done < count:
        msg = frames.next()
        if msg[0] != 50:
            raise RuntimeError(f"expected RESULT, got {msg!r:.200}")
        done += 1
        if sent < count:
            sent += 1
            send(sock, [48, first + sent, {}, PROC, payload])
    return first + sent


def wait_routable(sock: socket.socket, frames: Frames, request: int, timeout: float = 60) -> int:
    """Calls until one is answered with RESULT (a cluster spreads a registration in a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        request += 1
        send(sock, [48, request, {}, PROC, ["x"]])
        answer = frames.next()
        if answer[0] == 50:
            return request
        if time.monotonic() > deadline:
            raise RuntimeError(f"no RESULT in {timeout:g} s: {answer!r:.200}")
        time.sleep(0.1)


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    sock = workdir / "redis.sock"
    proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 10
    while not sock.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    return proc, f"unix:{sock}"


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def instructions(workdir: Path, pid: int) -> int | None:
    dumps = sorted(glob.glob(f"{workdir}/callgrind.out.{pid}.*"))
    for line in Path(dumps[0]).read_text().splitlines() if dumps else ():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return None


def call_arguments(doc: str) -> argparse.ArgumentParser:
    """The options every per-call cost script takes (this one and bench/syscalls.py)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=5000)
    p.add_argument("--inflight", type=int, default=20)
    p.add_argument("--serializer", choices=("json", "msgpack"), default="json")
    p.add_argument("--root", type=Path, default=ROOT)
    p.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    return p


def main(argv=None) -> int:
    p = call_arguments(__doc__)
    p.add_argument("--cluster", action="store_true", help="caller and callee on two nodes of a cluster")
    args = p.parse_args(argv)
    args.root = args.root.resolve()
    if args.serializer == "msgpack":
        use_msgpack()
    workdir = Path(tempfile.mkdtemp(prefix="rpc-cost-"))
    redis, extra = (start_redis(workdir) if args.cluster else (None, None))
    ports, procs = [], []
    for n in range(2 if args.cluster else 1):
        ports.append(free_port())
        cluster = ["--cluster", extra, "--cluster-name", f"cost{n}"] if args.cluster else []
        procs.append(start_router(args, ports[-1], workdir, callgrind=True, extra=cluster))
    stop_event = threading.Event()
    redis_cpu = None
    try:
        for port, proc in zip(ports, procs):
            wait_port(port, proc, 300)
        protocol = f"wamp.2.{args.serializer}"
        callee_sock, caller_sock = join_one(ports[-1], protocol), join_one(ports[0], protocol)
        send(callee_sock, [64, 1, {}, PROC])
        if Frames(callee_sock).next()[0] != 65:
            raise RuntimeError("REGISTER was not answered with REGISTERED")
        threading.Thread(target=callee, args=(callee_sock, stop_event), daemon=True).start()
        frames = Frames(caller_sock)
        request = wait_routable(caller_sock, frames, 0)
        request = calls(caller_sock, frames, 200, args.inflight, request)  # warm-up
        time.sleep(1)
        for proc in procs:
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True, timeout=60)
        redis_before = cpu_seconds(redis.pid) if redis else None
        calls(caller_sock, frames, args.calls, args.inflight, request)
        if redis:
            redis_cpu = round(cpu_seconds(redis.pid) - redis_before, 2)
        for proc in procs:
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True, timeout=60)
    finally:
        stop_event.set()
        for proc in procs:
            stop(proc)
        if redis:
            redis.terminate()
            redis.wait(10)
    counts = [instructions(workdir, proc.pid) for proc in procs]
    total = sum(counts) if all(counts) else None
    print(json.dumps({
        "root": str(args.root), "serializer": args.serializer, "calls": args.calls, "inflight": args.inflight,
        "nodes": len(procs), "instructions": total, "per_node": counts,
        "instructions_per_call": round(total / args.calls) if total else None,
        **({"redis_cpu_s": redis_cpu} if redis else {}), "workdir": str(workdir),
    }, indent=2))  # fmt: skip
    return 0 if total else 1


if __name__ == "__main__":
    sys.exit(main())
