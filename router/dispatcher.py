"""
Runs listener plugins for lifecycle events, in order, isolated from each other
and from routing.

* Listeners run by descending priority, then in registration order.
* A handler may return a plain value, a Deferred or a coroutine.  The next
  listener runs once the previous handler's result is in (or it timed out).
* A handler that raises is logged with its listener's name and skipped; a
  handler that does not answer within ``timeout`` seconds is cancelled and
  logged the same way.  Neither stops the other listeners nor routing.
* Events of one connection go through a :class:`Chain`, so each listener sees
  them in the order they happened even when some handlers are slow.
* For vetoable events a :class:`~router.events.Reject` stops the run and is
  passed to the caller; anywhere else it is logged and ignored.
* Vetoes fail closed: a ``client_connected`` or ``session_joining`` handler
  that raises anything else, fails its Deferred or coroutine, or times out
  refuses the client as a ``Reject`` with reason ``listener`` would (HTTP 403,
  or ABORT ``wamp.error.authorization_failed``), logged with the listener's
  name.  A ban list whose database is down must not admit everyone.  The
  refusal's message names the listener and the event, never the exception
  (which may hold a database address or worse): that goes to the log only.

When no listener handles an event, emitting it costs a dict look-up: no
Deferred is created.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from router.events import EVENT_TYPES, Event, Reject
from router.interfaces import LISTENER_METHODS

#: event name -> the IListener method that handles it (the documented names, nothing else)
_HANDLERS = {kind.name: "on_" + kind.name for kind in EVENT_TYPES}
assert set(_HANDLERS.values()) == LISTENER_METHODS, "router.interfaces.IListener and router.events disagree"

__all__ = ["Dispatcher", "Chain", "listener_name"]

_log = Logger(namespace="wampd.dispatcher")

LISTENER_FAILED = "wamp.error.authorization_failed"
"""
The ABORT reason for a join refused because a ``session_joining`` handler
failed or timed out: the spec's URI for "the authorization operation itself
failed", as opposed to a decision (``wamp.error.not_authorized``).
"""


def listener_name(listener: object) -> str:
    """A readable name for logs: ``module.Class`` or the object's own ``name``."""
    own = getattr(listener, "name", None)
    if isinstance(own, str) and own:
        return own
    kind = listener if isinstance(listener, type) else type(listener)
    return f"{kind.__module__}.{kind.__qualname__}"


class Chain:
    """Keeps one connection's events in order: the tail of its pending run."""

    __slots__ = ("tail",)

    def __init__(self) -> None:
        self.tail: Deferred | None = None


class Dispatcher:
    def __init__(
        self,
        listeners: Iterable[tuple[object, int | None]] = (),
        timeout: float = 5.0,
        clock: Any = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self._clock = clock
        self.timeout = timeout
        self._listeners: list[tuple[int, int, object]] = []
        self._handlers: dict[str, tuple[tuple[str, Callable], ...]] = {}
        self._pending: set[Deferred] = set()
        for listener, priority in listeners:
            self.add(listener, priority)

    # -- registration -------------------------------------------------------

    def add(self, listener: object, priority: int | None = None) -> None:
        """Plug in a listener; ``priority`` defaults to ``listener.priority`` or 0."""
        if priority is None:
            priority = getattr(listener, "priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise TypeError(f"listener {listener_name(listener)}: priority must be an int")
        self._listeners.append((priority, len(self._listeners), listener))
        self._build()

    def instrument(self, wrap: Callable[[str, str, Callable], Callable]) -> None:
        """Run every handler, of listeners plugged in before and after, as ``wrap(listener name, event, handler)`` (metrics)."""
        self._wrap = wrap
        self._build()

    _wrap: Callable | None = None

    def _build(self) -> None:
        ordered = sorted(self._listeners, key=lambda item: (-item[0], item[1]))
        wrap = self._wrap
        table = {}
        for event, method in _HANDLERS.items():
            found = []
            for _, _, obj in ordered:
                handler = getattr(obj, method, None)
                if callable(handler):
                    name = listener_name(obj)
                    found.append((name, handler if wrap is None else wrap(name, event, handler)))
            table[event] = tuple(found)
        self._handlers = table

    # -- running ------------------------------------------------------------

    def emit(self, event: Event, chain: Chain | None = None) -> Deferred | None:
        """
        Run the handlers for ``event``.  Returns None when everything ran
        synchronously, else a Deferred that fires (never fails, except with
        Reject for vetoable events) when the run is over.
        """
        handlers = self._handlers.get(event.name)
        if not handlers:
            if chain is not None and chain.tail is not None:
                # keep order: later events wait for earlier ones
                return self._after(chain, event, handlers)
            return None
        if chain is not None and chain.tail is not None:
            return self._after(chain, event, handlers)
        result = self._run(event, handlers, 0)
        if result is None:
            return None
        if isinstance(result, Failure):
            return fail(result)
        return self._track(chain, result)

    def _after(self, chain: Chain, event: Event, handlers) -> Deferred:
        d = Deferred()
        previous = chain.tail

        def go(_):
            result = self._run(event, handlers or (), 0)
            if result is None:
                d.callback(None)
            elif isinstance(result, Failure):
                d.errback(result)
            else:
                result.chainDeferred(d)
            return None

        previous.addBoth(go)
        return self._track(chain, d)

    def _track(self, chain: Chain | None, d: Deferred) -> Deferred:
        """Remember ``d`` until it fires; it becomes the chain's tail."""
        self._pending.add(d)
        quiet = Deferred()

        def done(result):
            self._pending.discard(d)
            if chain is not None and chain.tail is quiet:
                chain.tail = None
            quiet.callback(None)
            return result

        if chain is not None:
            chain.tail = quiet
        d.addBoth(done)
        return d

    def _run(self, event: Event, handlers, index: int):
        """
        Run handlers from ``index`` on.  Returns None (all done synchronously),
        a Failure (a vetoable event was rejected synchronously), or a Deferred.
        """
        count = len(handlers)
        while index < count:
            name, handler = handlers[index]
            index += 1
            try:
                result = handler(event)
            except Reject as reject:
                if event.vetoable:
                    return Failure(reject)
                self._ignored_reject(name, event)
                continue
            except Exception:
                failure = self._handler_failed(Failure(), name, event)
                if failure is not None:
                    return failure
                continue
            if inspect.isawaitable(result) and not isinstance(result, Deferred):
                result = ensureDeferred(result)
            if isinstance(result, Deferred):
                if result.called:
                    outcome = []
                    result.addBoth(outcome.append)
                    if outcome and isinstance(outcome[0], Failure):
                        failure = self._handler_failed(outcome[0], name, event)
                        if failure is not None:
                            return failure
                    continue
                return self._wait(result, event, handlers, index, name)
        return None

    def _wait(self, d: Deferred, event: Event, handlers, index: int, name: str) -> Deferred:
        d.addTimeout(self.timeout, self._clock)

        def finished(result):
            if isinstance(result, Failure):
                failure = self._handler_failed(result, name, event)
                if failure is not None:
                    return failure
            rest = self._run(event, handlers, index)
            return rest  # None, Failure or Deferred: all fine as callback results

        d.addBoth(finished)
        return d

    def _handler_failed(self, failure: Failure, name: str, event: Event) -> Failure | None:
        if failure.check(Reject):
            if event.vetoable:
                return failure
            self._ignored_reject(name, event)
            return None
        from twisted.internet.defer import TimeoutError as DeferTimeout

        timed_out = failure.check(DeferTimeout) is not None
        if event.vetoable:
            # fail closed: a veto that could not be decided refuses
            if timed_out:
                _log.error(
                    "listener {listener} did not answer {event_name} within {timeout}s; "
                    "it was cancelled and the client is refused (fail closed)",
                    listener=name,
                    event_name=event.name,
                    timeout=self.timeout,
                )
            else:
                _log.failure(
                    "listener {listener} failed handling {event_name}; the client is refused (fail closed)",
                    failure=failure,
                    listener=name,
                    event_name=event.name,
                )
            what = "did not answer in time" if timed_out else "failed"
            return Failure(
                Reject(
                    f"listener {name} {what} on {event.name}; refused",
                    reason="listener",
                    uri=LISTENER_FAILED,
                )
            )
        if timed_out:
            _log.error(
                "listener {listener} did not answer {event_name} within {timeout}s; "
                "it was cancelled and the other listeners went on",
                listener=name,
                event_name=event.name,
                timeout=self.timeout,
            )
        else:
            _log.failure(
                "listener {listener} failed handling {event_name}",
                failure=failure,
                listener=name,
                event_name=event.name,
            )
        return None

    def _ignored_reject(self, name: str, event: Event) -> None:
        _log.warn(
            "listener {listener} raised Reject on {event_name}, which cannot be refused; ignored",
            listener=name,
            event_name=event.name,
        )

    def drained(self) -> Deferred:
        """Fires when every handler run started so far is over."""
        pending = list(self._pending)
        if not pending:
            return succeed(None)
        from twisted.internet.defer import DeferredList

        d = DeferredList([self._quiet(p) for p in pending], consumeErrors=True)
        d.addCallback(lambda _: self.drained())
        return d

    @staticmethod
    def _quiet(d: Deferred) -> Deferred:
        q = Deferred()

        def relay(result):
            q.callback(None)
            return result

        d.addBoth(relay)
        return q
