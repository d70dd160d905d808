"""
``GET /healthz`` and ``GET /readyz`` for load balancers and Kubernetes probes.

* ``/healthz``: 200 ``ok`` whenever the process answers HTTP (its reactor
  runs).  A liveness probe: restart the process only when this fails.
* ``/readyz``: 200 when the router is launched and every endpoint it was
  configured with (WebSocket, RawSocket, HTTP push, these HTTP listeners) is
  listening, and every extra readiness check passes; else 503, with one
  line per failed check.  While shutting down it answers 503 at once, so a
  load balancer stops sending clients before the endpoints close.

**Extra checks** (the hook for a cluster backend, e.g. "Redis is
reachable"): :meth:`Health.add_check` takes a name and a function of no
arguments returning True/False or a Deferred of one.  They fail closed: one
that raises, fails, answers anything but True, or takes longer than
``check_timeout`` seconds makes ``/readyz`` answer 503.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred

__all__ = ["Health"]


class Health:
    """The service's readiness: launched, every port listening, every extra check passing."""

    def __init__(self, service: Any, check_timeout: float = 2.0) -> None:
        self.service = service
        self.check_timeout = check_timeout
        self.checks: list[tuple[str, Callable[[], Any]]] = []

    def add_check(self, name: str, check: Callable[[], Any]) -> None:
        """Add a readiness check: ``check()`` gives True (ready) or a Deferred of it; anything else is not ready."""
        self.checks.append((name, check))

    def _own_problems(self) -> list[str]:
        service = self.service
        if not service.running:
            return ["stopping" if getattr(service, "launched", False) else "not started"]
        if not getattr(service, "launched", False):
            return ["not launched yet"]
        problems = []
        for port, info in zip(service.ports, service.endpoints):  # both in the order they were listened on
            if not getattr(port, "connected", True):  # twisted's listening ports say so
                problems.append(f"not listening: {info.url or info.description} ({info.transport})")
        return problems

    def ready(self) -> Deferred:
        """Fires with ``(ready, lines)``: whether the router is ready, and what was checked (or failed)."""
        problems = self._own_problems()
        if problems or not self.checks:
            return _done(not problems, problems or ["listening"])
        clock = self.service.reactor
        runs = []
        for name, check in self.checks:
            d = maybeDeferred(check)
            d.addTimeout(self.check_timeout, clock)
            d.addCallbacks(
                lambda ok, name=name: (ok is True, f"{name}: {'ok' if ok is True else f'not ready ({ok!r})'}"),
                lambda failure, name=name: (False, f"{name}: failed ({failure.getErrorMessage() or failure.type.__name__})"),
            )
            runs.append(d)

        def gather(results):
            answers = [value if ok else (False, "check failed") for ok, value in results]
            return all(ok for ok, _ in answers), [line for _, line in answers]

        return DeferredList(runs).addCallback(gather)


def _done(ready: bool, lines: list[str]) -> Deferred:
    d: Deferred = Deferred()
    d.callback((ready, lines))
    return d
