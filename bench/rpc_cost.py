#!/usr/bin/env python3
"""What a routed call costs wampd: instructions per CALL -> INVOCATION -> YIELD -> RESULT (callgrind).

    python bench/rpc_cost.py --calls 5000                  # JSON, 20 calls in flight
    python bench/rpc_cost.py --calls 5000 --serializer msgpack
    python bench/rpc_cost.py --calls 5000 --root /tmp/base  # the same against another checkout

Starts wampd (from ``--root``) under ``valgrind --tool=callgrind``, joins a
callee that registers ``bench.rpc.echo`` and a caller (bare WebSocket JSON
sockets, from this script), makes 200 warm-up calls, zeroes the counters,
makes ``--calls`` calls with ``--inflight`` (20) in flight, 100-byte string
payloads as bench/run.py's RPC scenario, dumps the counters and prints the
router's instructions per call.  Independent of how busy the machine is.
Standard library only (msgpack for ``--serializer msgpack``); needs valgrind.
"""

from __future__ import annotations

import argparse
import glob
import json
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=5000)
    p.add_argument("--inflight", type=int, default=20)
    p.add_argument("--serializer", choices=("json", "msgpack"), default="json")
    p.add_argument("--root", type=Path, default=ROOT)
    p.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    args = p.parse_args(argv)
    args.root = args.root.resolve()
    if args.serializer == "msgpack":
        use_msgpack()
    workdir = Path(tempfile.mkdtemp(prefix="rpc-cost-"))
    port = free_port()
    proc = start_router(args, port, workdir, callgrind=True)
    stop_event = threading.Event()
    try:
        wait_port(port, proc, 300)
        protocol = f"wamp.2.{args.serializer}"
        callee_sock, caller_sock = join_one(port, protocol), join_one(port, protocol)
        send(callee_sock, [64, 1, {}, PROC])
        if Frames(callee_sock).next()[0] != 65:
            raise RuntimeError("REGISTER was not answered with REGISTERED")
        threading.Thread(target=callee, args=(callee_sock, stop_event), daemon=True).start()
        frames = Frames(caller_sock)
        request = calls(caller_sock, frames, 200, args.inflight, 0)  # warm-up
        time.sleep(1)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True, timeout=60)
        calls(caller_sock, frames, args.calls, args.inflight, request)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True, timeout=60)
    finally:
        stop_event.set()
        stop(proc)
    dumps = sorted(glob.glob(f"{workdir}/callgrind.out.{proc.pid}.*"))
    total = None
    for line in Path(dumps[0]).read_text().splitlines() if dumps else ():
        if line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
            break
    print(json.dumps({
        "root": str(args.root), "serializer": args.serializer, "calls": args.calls, "inflight": args.inflight, "instructions": total,
        "instructions_per_call": round(total / args.calls) if total else None, "dump": dumps[0] if dumps else None,
    }, indent=2))  # fmt: skip
    return 0 if total else 1


if __name__ == "__main__":
    sys.exit(main())
