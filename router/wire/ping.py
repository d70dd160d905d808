"""One sweeping timer for every connection's pings and pong timeouts."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import LoopingCall

__all__ = ["PingSweeper", "PING_PAYLOAD"]

PING_PAYLOAD = b"wampd"


class PingSweeper:
    """
    One timer for all connections' pings and pong timeouts.  A member has
    ``ping_sent``, ``last_heard``, ``wampd_session``, ``sendPing(payload)``
    and ``ping_timed_out(waited)``: WebSocket connections, and RawSocket
    connections that answer RawSocket pings.
    """

    def __init__(self, clock: Any, interval: float, timeout: float) -> None:
        self.clock = clock
        self.interval = interval
        self.timeout = timeout
        self._members: set = set()
        self._loop: LoopingCall | None = None

    def start(self) -> None:
        if self.interval <= 0 or self._loop is not None:
            return
        self._loop = LoopingCall(self.sweep)
        self._loop.clock = self.clock
        tick = max(0.05, min(self.interval, self.timeout) / 4)
        self._loop.start(tick, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def add(self, proto) -> None:
        self._members.add(proto)

    def discard(self, proto) -> None:
        self._members.discard(proto)

    def sweep(self) -> None:
        now = self.clock.seconds()
        interval, timeout = self.interval, self.timeout
        for proto in list(self._members):
            sent = proto.ping_sent
            if sent is not None:
                if now - sent >= timeout:
                    proto.ping_timed_out(now - sent)
            elif now - max(proto.last_heard, proto.wampd_session.last_seen) >= interval:
                # silent (no message, no pong) for a whole interval: ping it
                proto.ping_sent = now
                proto.sendPing(PING_PAYLOAD)
