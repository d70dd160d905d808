#!/usr/bin/env python3
"""How many half-open connections a router holds against ``--max-connections``.

    python bench/handshake_limit.py                      # 2,000 silent connections, limit 1,000
    python bench/handshake_limit.py --connections 3000 --limit 500 --port 24100

Starts ``twistd -n wampd`` (WebSocket on --port, RawSocket on --port + 1) with
the limit and a long HELLO timeout, opens the connections alternately to both
ports without sending a byte (a WebSocket upgrade or RawSocket handshake never
started), then counts how many the router still holds open and how many it
closed, and how long the refused ones waited for their answer.  Standard
library only; run it with the project's virtualenv python.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--port", type=int, default=24100)
    parser.add_argument("--settle", type=float, default=1.0, help="seconds to wait before counting")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.connections + 256)), hard))
    ws, rs = args.port, args.port + 1
    cmd = [
        sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "wampd",
        "--no-default-listener", "--listen", f"ws:tcp:{ws}:interface=127.0.0.1",
        "--listen", f"rawsocket:tcp:{rs}:interface=127.0.0.1",
        "--max-connections", str(args.limit), "--hello-timeout", "60",
    ]
    env = dict(os.environ, PYTHONPATH=ROOT)
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", ws), timeout=1).close()
                socket.create_connection(("127.0.0.1", rs), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("the router did not start", file=sys.stderr)
                    return 1
                time.sleep(0.1)
        time.sleep(0.5)  # let the two probes' closes be counted out
        started = time.monotonic()
        socks = []
        for n in range(args.connections):
            s = socket.create_connection(("127.0.0.1", ws if n % 2 == 0 else rs))
            s.setblocking(False)
            socks.append(s)
        opening = time.monotonic() - started
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        closed = 0
        end = time.monotonic() + args.settle
        while time.monotonic() < end:
            for key, _ in sel.select(timeout=max(0.0, end - time.monotonic())):
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if not data:  # EOF or reset: the router closed it
                    closed += 1
                    sel.unregister(key.fileobj)
        # one more, over the limit: how soon does it get its answer?
        probe_started = time.monotonic()
        probe = socket.create_connection(("127.0.0.1", ws), timeout=30)
        probe.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            answer = probe.recv(200).split(b"\r\n", 1)[0].decode(errors="replace") or "(closed, no answer)"
        except OSError as exc:
            answer = f"({exc.__class__.__name__})"
        probe_wait = time.monotonic() - probe_started
        probe.close()
        print(f"connections opened: {args.connections} in {opening:.1f}s, limit: {args.limit}")
        print(f"held open by the router {args.settle:g}s later: {args.connections - closed}")
        print(f"closed by the router: {closed}")
        print(f"one more connection: {answer!r} after {probe_wait * 1000:.1f} ms")
        for s in socks:
            s.close()
        return 0
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(main())
