#!/usr/bin/env python3
"""System calls per routed call, counted by strace on the running router.

    python bench/syscalls.py --calls 5000                    # JSON, 20 calls in flight
    python bench/syscalls.py --calls 2000 --inflight 1       # one call at a time
    python bench/syscalls.py --calls 5000 --root /tmp/base   # the same against another checkout

Starts wampd (from ``--root``) natively, joins a callee (``bench.rpc.echo``)
and a caller with bare WebSocket sockets (as bench/rpc_cost.py does), makes
200 warm-up calls, attaches ``strace -f -c`` to the router, makes
``--calls`` calls (100-byte payloads, ``--inflight`` in flight), detaches
and prints each system call's count divided by the number of calls.  The
count per call depends a little on how many messages share a reactor turn
(strace slows the router, and with more in flight more of them do), so
compare two trees with the same options; ``--inflight 1`` is the case
where nothing is shared.  Needs strace and permission to attach (ptrace).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from join_cost import free_port, join_one, start_router, stop, wait_port  # noqa: E402
from rpc_cost import PROC, Frames, call_arguments, callee, calls, send, use_msgpack  # noqa: E402


def parse_summary(text: str) -> dict[str, int]:
    """strace -c's table: syscall name -> calls."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            try:
                counts[parts[-1]] = int(parts[3])
            except ValueError:
                continue
    return counts


def main(argv=None) -> int:
    p = call_arguments(__doc__)
    args = p.parse_args(argv)
    args.root = args.root.resolve()
    if args.serializer == "msgpack":
        use_msgpack()
    workdir = Path(tempfile.mkdtemp(prefix="syscalls-"))
    port = free_port()
    proc = start_router(args, port, workdir, callgrind=False)
    stop_event = threading.Event()
    tracer = None
    try:
        wait_port(port, proc, 60)
        protocol = f"wamp.2.{args.serializer}"
        callee_sock, caller_sock = join_one(port, protocol), join_one(port, protocol)
        send(callee_sock, [64, 1, {}, PROC])
        if Frames(callee_sock).next()[0] != 65:
            raise RuntimeError("REGISTER was not answered with REGISTERED")
        threading.Thread(target=callee, args=(callee_sock, stop_event), daemon=True).start()
        frames = Frames(caller_sock)
        request = calls(caller_sock, frames, 200, args.inflight, 0)  # warm-up
        out = workdir / "strace.txt"
        tracer = subprocess.Popen(["strace", "-f", "-c", "-o", str(out), "-p", str(proc.pid)],
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(1.0)  # attached (strace prints nothing to say so)
        started = time.monotonic()
        calls(caller_sock, frames, args.calls, args.inflight, request)
        elapsed = time.monotonic() - started
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
        counts = parse_summary(out.read_text())
    finally:
        stop_event.set()
        if tracer is not None and tracer.poll() is None:
            tracer.kill()
        stop(proc)
    per_call = {name: round(n / args.calls, 3) for name, n in sorted(counts.items(), key=lambda kv: -kv[1])}
    print(json.dumps({
        "root": str(args.root), "serializer": args.serializer, "calls": args.calls, "inflight": args.inflight,
        "seconds_under_strace": round(elapsed, 2),
        "syscalls_per_call": round(sum(counts.values()) / args.calls, 3), "by_syscall": per_call,
    }, indent=2))  # fmt: skip
    return 0 if counts else 1


if __name__ == "__main__":
    sys.exit(main())
