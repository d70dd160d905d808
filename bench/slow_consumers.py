#!/usr/bin/env python3
"""Router memory with stalled subscribers under a publication flood.

    python bench/slow_consumers.py                      # 10 stalled, 60 s flood, default limit
    python bench/slow_consumers.py --max-outbound-buffer 1048576 --duration 60
    python bench/slow_consumers.py --root /tmp/old-checkout   # another checkout (no limit option there)

Starts ``twist wampd`` from ``--root`` (default: this checkout) on a loopback
port, joins ``--stalled`` subscribers that subscribe and then never read
(receive buffer 4 KiB) but publish something every ``--stalled-keepalive``
seconds, as in the issue, so that pings spare them; one healthy subscriber
that reads everything; and one publisher that sends ``--rate`` PUBLISHes of ``--size`` bytes a second for
``--duration`` seconds.  It samples the router's RSS (``VmRSS``) every 0.5 s
and prints, as JSON: the baseline (all joined, before the flood), the peak
and the end of the flood, the RSS after the stalled subscribers have gone,
how many stalled subscribers the router dropped, and whether the healthy
subscriber got every event.  ``within_bound`` checks the issue's figure:
peak - baseline <= limit x stalled + 20 MiB.  Standard library only; the
router runs under ``--python``.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MIB = 1024 * 1024


# -- a bare WAMP-over-WebSocket JSON client ------------------------------------------


def frame(payload: bytes) -> bytes:
    """A masked (zero mask) text frame."""
    size = len(payload)
    if size < 126:
        head = bytes((0x81, 0x80 | size))
    elif size < 65536:
        head = struct.pack("!BBH", 0x81, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
    return head + b"\0\0\0\0" + payload


class Client:
    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            (
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        self.at = 0  # parse position in self.buffer
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the WebSocket handshake")
            self.buffer += chunk
        status, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        if b" 101 " not in status.split(b"\r\n", 1)[0]:
            raise ConnectionError(status.decode(errors="replace"))

    def send(self, msg: list) -> None:
        self.sock.sendall(frame(json.dumps(msg).encode()))

    def recv(self) -> list | None:
        """The next WAMP message, or None when the connection closed."""
        buf = self.buffer
        at = self.at
        while True:
            if len(buf) - at >= 2:
                length = buf[at + 1] & 0x7F
                head = at + 2
                if length == 126:
                    length = struct.unpack_from("!H", buf, head)[0] if len(buf) - head >= 2 else -1
                    head += 2
                elif length == 127:
                    length = struct.unpack_from("!Q", buf, head)[0] if len(buf) - head >= 8 else -1
                    head += 8
                if length >= 0 and len(buf) - head >= length:
                    opcode = buf[at] & 0x0F
                    payload = buf[head : head + length]
                    at = head + length
                    self.at = at
                    if opcode == 8:
                        return None
                    if opcode in (1, 2):
                        return json.loads(payload)
                    if opcode == 9:  # the router's ping: answer, or it drops us after ping_timeout
                        self.sock.sendall(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
                    continue
            try:
                chunk = self.sock.recv(1 << 20)
            except (ConnectionError, OSError):
                return None
            if not chunk:
                return None
            buf = self.buffer = buf[at:] + chunk  # keep only what is not parsed yet
            at = self.at = 0

    def join(self) -> None:
        self.send([1, "realm1", {"roles": {"subscriber": {}, "publisher": {}}}])
        reply = self.recv()
        if not reply or reply[0] != 2:
            raise ConnectionError(f"no WELCOME: {reply}")

    def subscribe(self, topic: str) -> None:
        self.send([32, 1, {}, topic])
        reply = self.recv()
        if not reply or reply[0] != 33:
            raise ConnectionError(f"no SUBSCRIBED: {reply}")


def read_healthy(port, received, closed, ready) -> None:
    """The healthy subscriber (a child process): counts every EVENT until the connection closes."""
    client = Client(port)
    client.join()
    client.subscribe("bench.flood")
    ready.set()
    count = 0
    while True:
        msg = client.recv()
        if msg is None:
            closed.set()
            return
        if msg[0] == 36:
            count += 1
            received.value = count  # the only writer


# -- the router process ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def start_router(args, port: int) -> subprocess.Popen:
    cmd = [args.python, "-m", "twisted", "--log-format=text", "wampd", "--no-default-listener",
           "--listen", f"ws:tcp:{port}:interface=127.0.0.1"]
    if args.max_outbound_buffer is not None:
        cmd += ["--max-outbound-buffer", str(args.max_outbound_buffer)]
    env = dict(os.environ, PYTHONPATH=str(args.root))
    proc = subprocess.Popen(cmd, cwd=args.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read().decode(errors="replace"))
            time.sleep(0.1)
    stop_router(proc)
    raise RuntimeError("the router did not start listening within 30 s")


def stop_router(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- the run -------------------------------------------------------------------------------


def run(args) -> dict:
    port = args.port or free_port()
    proc = start_router(args, port)
    try:
        return measure(args, proc, port)
    finally:
        stop_router(proc)


def measure(args, proc, port: int) -> dict:
    stalled = []
    for _ in range(args.stalled):
        client = Client(port, rcvbuf=4096)
        client.join()
        client.subscribe("bench.flood")
        stalled.append(client)
    # the healthy subscriber reads in its own process, so the publisher's loop never starves it of the GIL
    received = multiprocessing.Value("q", 0)
    healthy_closed = multiprocessing.Event()
    healthy_ready = multiprocessing.Event()
    reader = multiprocessing.Process(target=read_healthy, args=(port, received, healthy_closed, healthy_ready), daemon=True)
    reader.start()
    if not healthy_ready.wait(30):
        raise RuntimeError("the healthy subscriber did not join")
    publisher = Client(port)
    publisher.join()
    time.sleep(args.settle)
    baseline = rss(proc.pid)

    samples = []
    body = "x" * args.size
    published = 0
    start = time.monotonic()
    next_sample = start
    next_keepalive = start + args.stalled_keepalive
    while (now := time.monotonic()) - start < args.duration:
        due = int((now - start) * args.rate)
        while published < due:
            published += 1
            publisher.send([16, published, {}, "bench.flood", [body]])
        if args.stalled_keepalive and now >= next_keepalive:
            # a stalled client that still sends now and then is never pinged (so never dropped for a missing pong)
            for client in stalled:
                try:
                    client.send([16, 1, {}, "bench.other", []])
                except OSError:
                    pass  # the router dropped it
            next_keepalive += args.stalled_keepalive
        if now >= next_sample:
            samples.append((round(now - start, 1), rss(proc.pid)))
            next_sample += 0.5
        time.sleep(0.002)
    flood_end = rss(proc.pid)
    samples.append((round(time.monotonic() - start, 1), flood_end))

    deadline = time.monotonic() + 30
    while received.value < published and time.monotonic() < deadline and not healthy_closed.is_set():
        time.sleep(0.1)
    reader.terminate()

    dropped = 0
    for client in stalled:  # read what is left: a dropped one ends in EOF/RST, a kept one in a timeout
        client.sock.settimeout(2)
        while True:
            try:
                chunk = client.sock.recv(1 << 20)
            except socket.timeout:
                break
            except OSError:
                dropped += 1
                break
            if not chunk:
                dropped += 1
                break
        client.sock.close()
    time.sleep(args.settle)
    after = rss(proc.pid)
    peak = max(value for _, value in samples)
    limit = args.max_outbound_buffer if args.max_outbound_buffer is not None else 1048576
    return {
        "root": str(args.root),
        "stalled": args.stalled,
        "rate_per_s": args.rate,
        "event_bytes": args.size,
        "duration_s": args.duration,
        "max_outbound_buffer": args.max_outbound_buffer,
        "stalled_keepalive_s": args.stalled_keepalive,
        "published": published,
        "healthy_received": received.value,
        "healthy_dropped_by_router": healthy_closed.is_set(),
        "stalled_dropped_by_router": dropped,
        "rss_baseline_mib": round(baseline / MIB, 1),
        "rss_peak_mib": round(peak / MIB, 1),
        "rss_flood_end_mib": round(flood_end / MIB, 1),
        "rss_after_stalled_left_mib": round(after / MIB, 1),
        "growth_peak_mib": round((peak - baseline) / MIB, 1),
        "bound_mib": round((limit * args.stalled + 20 * MIB) / MIB, 1),
        "within_bound": peak - baseline <= limit * args.stalled + 20 * MIB,
        "samples": [(t, round(v / MIB, 1)) for t, v in samples],
    }


def main(argv=None) -> int:
    default_python = ROOT / ".venv" / "bin" / "python"
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose router runs")
    parser.add_argument("--python", default=str(default_python) if default_python.exists() else sys.executable)
    parser.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    parser.add_argument("--stalled", type=int, default=10)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=2000, help="publications per second")
    parser.add_argument("--size", type=int, default=1024, help="event payload bytes")
    parser.add_argument("--max-outbound-buffer", type=int, default=None,
                        help="passed to the router (default: the router's default, 1 MiB)")
    parser.add_argument("--stalled-keepalive", type=float, default=10.0,
                        help="the stalled subscribers publish something this often (s), so pings spare them; 0: never")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait before the RSS readings")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    result = run(args)
    samples = result.pop("samples")
    text = json.dumps(result, indent=1)[:-2] + ',\n "samples": ' + json.dumps(samples) + "\n}"
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0 if result["within_bound"] and result["healthy_received"] == result["published"] else 1


if __name__ == "__main__":
    sys.exit(main())
