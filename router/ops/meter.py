"""
The router's counters, kept cheaply on the hot path and read at scrape time.

Nothing here calls prometheus_client: the counters are plain ints in lists
and dicts on objects that exist anyway, and :mod:`router.ops.metrics` turns
them into metric families only when ``/metrics`` is read (the status page
reads the same counters).  Where each is kept:

* **Messages and bytes, in and out, by type**: per listening factory and
  serializer, in a :class:`Traffic` the protocols increment in place where
  they decode a message and where they write one (two list increments each;
  without metrics, one ``is None`` test).  Bytes are WAMP payload bytes,
  without WebSocket or RawSocket framing.  A message counts as sent when it
  is written to the transport; an EVENT dropped by the slow-consumer policy
  ``drop`` counts as dropped instead.
* **Call latency**: the dealer stamps a call when it starts and observes the
  time when it ends (RESULT, ERROR, timeout, cancel, callee gone), into a
  :class:`Histogram` per realm.
* **Listener handler time and failures**: the dispatcher's handlers are
  wrapped once, when the meter is installed (:meth:`Meter.wrap_handler`).
* **Rejections by reason, sessions dropped as slow consumers**: a listener
  of its own (``client_rejected``, ``session_left``).
* Connections, sessions, subscriptions, registrations and retained topics
  are counted from the router's own tables when read.

None of it exists unless metrics or the status page are on: a router without
them runs the same code as before, plus one ``is None`` test per CALL.
"""

from __future__ import annotations

import inspect
from bisect import bisect_left
from time import perf_counter
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.python.failure import Failure

from router.events import Reject
from router.messages import MESSAGE_NAMES
from router.states import SLOW_CONSUMER

__all__ = ["Histogram", "Meter", "Traffic", "LATENCY_BUCKETS", "HANDLER_BUCKETS"]

#: call latency buckets, seconds
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: listener handler time buckets, seconds
HANDLER_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
_TYPES = max(MESSAGE_NAMES) + 1


class Histogram:
    """Counts per bucket (``le`` bounds, then +Inf), a sum and a count: what Prometheus wants, nothing more."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs, cumulative, ending with ``+Inf``."""
        out, total = [], 0
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), self.counts):
            total += count
            out.append((bound, total))
        return out


class _CallTimer:
    """
    A realm's call latency: the dealer calls :meth:`start` at CALL and
    :meth:`stop` when the call ends.  Durations come from ``perf_counter``
    (monotonic, and a C call: cheaper than the reactor's clock and immune
    to wall-clock steps).
    """

    __slots__ = ("histogram", "_counts", "_bounds")

    def __init__(self) -> None:
        self.histogram = Histogram(LATENCY_BUCKETS)
        self._counts, self._bounds = self.histogram.counts, self.histogram.bounds

    def start(self) -> tuple:
        return (self, perf_counter())

    def stop(self, started: float) -> None:
        value = perf_counter() - started
        self._counts[bisect_left(self._bounds, value)] += 1
        self.histogram.sum += value


class Traffic:
    """
    The counters of one listening factory and serializer: WAMP messages and
    their payload bytes, received and sent, by message type (lists indexed by
    the type code), and EVENTs dropped for slow consumers.  The protocols
    increment them in place (``router.wire``: ``traffic`` on the factory and
    on each connection, None without metrics).
    """

    __slots__ = ("transport", "serializer", "in_msgs", "in_bytes", "out_msgs", "out_bytes", "dropped")

    def __init__(self, transport: str, serializer: str) -> None:
        self.transport, self.serializer = transport, serializer
        self.in_msgs = [0] * _TYPES
        self.in_bytes = [0] * _TYPES
        self.out_msgs = [0] * _TYPES
        self.out_bytes = [0] * _TYPES
        self.dropped = 0


class _MeterListener:
    """Counts rejections by reason and sessions dropped as slow consumers (run first: nothing to wait for)."""

    name = "wampd.metrics"
    priority = 2**31

    def __init__(self, meter: "Meter") -> None:
        self.meter = meter

    def on_client_rejected(self, event) -> None:
        rejections = self.meter.rejections
        rejections[event.reason] = rejections.get(event.reason, 0) + 1

    def on_session_left(self, event) -> None:
        if event.reason == SLOW_CONSUMER:
            self.meter.slow_consumers += 1


class Meter:
    """Every counter of one router; :meth:`install` wires it in, :meth:`meter_factory` per listening factory."""

    def __init__(self, router: Any) -> None:
        self.router = router
        self.traffics: list[Traffic] = []
        self.rejections: dict[str, int] = {}
        self.slow_consumers = 0
        self.calls: dict[str, _CallTimer] = {}  # realm -> its call timer
        self.handlers: dict[tuple[str, str], Histogram] = {}  # (listener, event) -> handler time
        self.handler_failures: dict[tuple[str, str], int] = {}
        self.started = router.clock.seconds()

    def install(self) -> None:
        router = self.router
        for realm in router.realms.values():
            self.time_calls(realm)
        router.dispatcher.instrument(self.wrap_handler)
        router.dispatcher.add(_MeterListener(self))

    def time_calls(self, realm: Any) -> None:
        """Time ``realm``'s calls (``install`` does it for the realms there are; call it for a realm added later)."""
        if realm.name not in self.calls:
            realm.dealer.latency = self.calls[realm.name] = _CallTimer()

    def meter_factory(self, factory: Any, transport: str) -> None:
        """Count what this WebSocket or RawSocket factory's connections receive and send, per serializer."""
        counters = {name: Traffic(transport, name) for name in factory.codecs}
        self.traffics.extend(counters.values())
        factory.traffic = counters

    def wrap_handler(self, listener: str, event: str, handler):
        """``handler`` timed into (listener, event)'s histogram, its failures counted (a Reject is no failure)."""
        if listener == _MeterListener.name:
            return handler
        key = (listener, event)
        histogram = self.handlers.setdefault(key, Histogram(HANDLER_BUCKETS))
        failures = self.handler_failures
        failures.setdefault(key, 0)

        def ended(result, start):
            histogram.observe(perf_counter() - start)
            if isinstance(result, Failure) and not result.check(Reject):
                failures[key] += 1
            return result

        def timed(value):
            start = perf_counter()
            try:
                result = handler(value)
            except Reject:
                histogram.observe(perf_counter() - start)
                raise
            except Exception:
                ended(Failure(), start)
                raise
            if inspect.isawaitable(result) and not isinstance(result, Deferred):
                result = ensureDeferred(result)
            if isinstance(result, Deferred):
                return result.addBoth(ended, start)
            histogram.observe(perf_counter() - start)
            return result

        return timed

    # -- reading ----------------------------------------------------------------

    def traffic(self) -> dict[tuple[str, str, str, str], tuple[int, int]]:
        """``(direction, transport, serializer, type) -> (messages, bytes)``, summed over factories, types seen only."""
        out: dict[tuple[str, str, str, str], list[int]] = {}
        for counts in self.traffics:
            for direction, msgs, sizes in (("in", counts.in_msgs, counts.in_bytes), ("out", counts.out_msgs, counts.out_bytes)):
                for kind, count in enumerate(msgs):
                    if count:
                        slot = out.setdefault((direction, counts.transport, counts.serializer, MESSAGE_NAMES[kind]), [0, 0])
                        slot[0] += count
                        slot[1] += sizes[kind]
        return {key: (value[0], value[1]) for key, value in out.items()}

    def totals(self) -> tuple[int, int]:
        """Messages received and sent so far, all kinds together (the status page's rates)."""
        return (sum(sum(c.in_msgs) for c in self.traffics), sum(sum(c.out_msgs) for c in self.traffics))

    def dropped(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for counts in self.traffics:
            key = (counts.transport, counts.serializer)
            out[key] = out.get(key, 0) + counts.dropped
        return out

    def connections(self) -> dict[tuple[str, str], int]:
        """Open connections past their handshake, by (transport, serializer)."""
        out: dict[tuple[str, str], int] = {}
        for session in self.router.connections:
            conn = session.connection
            key = (conn.transport, conn.serializer or "none")
            out[key] = out.get(key, 0) + 1
        return out

    def sessions(self) -> dict[tuple[str, str, str], int]:
        """Joined sessions by (realm, transport, serializer); the router's own internal sessions are not counted."""
        out: dict[tuple[str, str, str], int] = {}
        for name, realm in self.router.realms.items():
            for session in realm.sessions.values():
                conn = getattr(session, "connection", None)
                if conn is None:
                    continue
                key = (name, conn.transport, conn.serializer or "none")
                out[key] = out.get(key, 0) + 1
        return out
