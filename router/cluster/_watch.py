"""Waiting for a cluster node to reach a state, without polling (for operators' scripts and tests)."""

from __future__ import annotations

from twisted.internet import defer

__all__ = ["Watchable"]


class Watchable:
    """Mixed into a node with ``reactor`` and ``_watchers`` (a list); it calls :meth:`_changed`."""

    def until(self, predicate, timeout: float = 10.0) -> defer.Deferred:
        """
        Fires (with this node) once ``predicate(node)`` is true: now, or after a
        later change of membership, tables or connection; fails with
        TimeoutError after ``timeout`` seconds.  For operators' scripts and tests.
        """
        if predicate(self):
            return defer.succeed(self)
        d = defer.Deferred()
        entry = (predicate, d)
        self._watchers.append(entry)

        def forget(result):
            if entry in self._watchers:
                self._watchers.remove(entry)
            return result

        d.addTimeout(timeout, self.reactor)
        d.addErrback(forget)
        return d

    def _changed(self) -> None:
        for entry in list(self._watchers):
            predicate, d = entry
            if predicate(self):
                self._watchers.remove(entry)
                d.callback(self)
