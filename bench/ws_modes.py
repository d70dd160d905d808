"""
In-memory cost of WebSocket connections for the h13 features (no sockets, no reactor):

    python bench/ws_modes.py joins N      # N plain WebSocket upgrades + HELLO/WELCOME + 200 CALL frames each
    python bench/ws_modes.py scram N      # N router-side SCRAM verifications (the router's whole per-login work)
    python bench/ws_modes.py opcodes N    # Python bytecodes run by "joins N" (after one warm-up), deterministic

Run under ``valgrind --tool=callgrind``, or with ``opcodes``, with PYTHONPATH pointing
at two checkouts to compare the work of plain connections (the figures in the h13 report).
"""

from __future__ import annotations

import json
import struct
import sys

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:27000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n"
)


def frame(payload: bytes) -> bytes:
    size = len(payload)
    head = bytes((0x81, 0x80 | size)) if size < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, size)
    mask = b"\x01\x02\x03\x04"
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def joins(count: int) -> None:
    from router.core import Router
    from router.wire import PingSweeper, WebSocketFactory

    router = Router(clock=Clock(), hello_timeout=0)
    factory = WebSocketFactory(router, PingSweeper(router.clock, 0, 10))
    hello = frame(json.dumps([1, "realm1", {"roles": {"caller": {}}}]).encode())
    calls = b"".join(frame(json.dumps([48, i, {}, "com.nowhere", [i]]).encode()) for i in range(1, 201))
    for n in range(count):
        peer = IPv4Address("TCP", "127.0.0.1", 20000 + n)
        proto = factory.buildProtocol(peer)
        proto.makeConnection(StringTransport(peerAddress=peer))
        proto.dataReceived(UPGRADE)
        proto.dataReceived(hello)
        proto.dataReceived(calls)
        proto.connectionLost(Failure(ConnectionDone()))


def scram(count: int) -> None:
    from router.auth import Principal, RealmAuthenticator
    from router.auth._types import HelloInfo
    from router.auth.scram import derive_scram_credential

    credential = derive_scram_credential("pw", "pbkdf2", iterations=1000)
    auth = RealmAuthenticator("r", {"scram": ("websocket",)}, [Principal("a", "user", scram=credential)])
    for n in range(count):
        hello = HelloInfo("r", ("scram",), "a", None, {"nonce": "AAAAAAAAAAAAAAAAAAAAAA=="}, "websocket", None, {}, {}, n + 1)
        challenge = auth.start(hello)
        auth.verify(challenge, "A" * 43 + "=", {})


def opcodes(count: int) -> None:
    joins(1)  # lazy imports and first-use caches
    counted = [0]

    def tracer(frame, event, arg):
        frame.f_trace_opcodes = True
        if event == "opcode":
            counted[0] += 1
        return tracer

    sys.settrace(tracer)
    try:
        joins(count)
    finally:
        sys.settrace(None)
    print(f"{counted[0]} bytecodes for {count} connections (upgrade, HELLO, 200 CALLs, close)")


if __name__ == "__main__":
    {"joins": joins, "scram": scram, "opcodes": opcodes}[sys.argv[1]](int(sys.argv[2]))
