"""
Asking the other nodes of a cluster to run a meta procedure on their own
sessions, subscriptions and registrations, and gathering the answers (for
:mod:`router.cluster._meta`).

A question (``ask``) goes to each node's channel ``P to:NAME``; each node runs
the procedure on its own part of the realm, as the realm's meta API would for
a caller elsewhere, and answers (``told``) on the asker's channel.  Nothing
here waits without bound: the question fails with ERROR
``wamp.error.unavailable`` naming the node(s) as soon as Redis says a node is
not listening (its channel has no subscriber: it is gone), when Redis is
unreachable, or when a node has not answered within the cluster's ``timeout``
(the time after which a silent node is taken for dead anyway).
"""

from __future__ import annotations

import itertools
from typing import Any

import msgpack
from twisted.internet import defer

from router.dealer._calls import TOO_MANY_CALLS
from router.meta._procedures import NOTHING, MetaError

__all__ = ["Asking", "UNAVAILABLE", "REMOTE_PROCEDURES"]

UNAVAILABLE = "wamp.error.unavailable"

#: What another node may ask this one to run (nothing else is run for it).
REMOTE_PROCEDURES = frozenset(
    {
        "wamp.session.kill",
        "wamp.session.kill_by_authid",
        "wamp.session.kill_by_authrole",
        "wamp.session.kill_all",
        *(
            f"wamp.{kind}.{name}"
            for kind, names in (
                ("subscription", ("list", "lookup", "match", "get", "list_subscribers", "count_subscribers")),
                ("registration", ("list", "lookup", "match", "get", "list_callees", "count_callees")),
            )
            for name in names
        ),
    }
)


class _Nobody:
    """The caller of a procedure run for another node: no session here (so none is spared or refused)."""

    session_id = None
    info = None


_NOBODY = _Nobody()


class _Question:
    __slots__ = ("name", "caller", "done", "waiting", "answers", "timer")

    def __init__(self, name: str, caller, nodes, timer) -> None:
        self.name = name
        self.caller = caller  # the asking session's id (None: the router's own)
        self.done: defer.Deferred = defer.Deferred()
        self.waiting = set(nodes)
        self.answers: dict[str, tuple[bool, Any]] = {}
        self.timer = timer


class Asking:
    def __init__(self, node: Any) -> None:
        self.node = node
        self._keys = itertools.count(1)
        self._open: dict[int, _Question] = {}
        self._per_caller: dict[int, int] = {}  # session id -> its questions open (max_calls_in_flight)

    def reachable(self, name: str) -> None:
        """Raise ERROR unavailable now if Redis is away (before anything is done here)."""
        node = self.node
        if not node.connected:
            raise MetaError(
                UNAVAILABLE,
                f"{name} answers for every node of the cluster, and Redis at {node.address} is unreachable",
            )

    def room(self, caller: int | None) -> None:
        """Raise ERROR too_many_calls if ``caller`` has ``max_calls_in_flight`` questions open already."""
        limit = self.node.router.max_calls_in_flight
        if caller is not None and limit and self._per_caller.get(caller, 0) >= limit:
            raise MetaError(
                TOO_MANY_CALLS,
                f"this session has {limit} calls in flight, the most max_calls_in_flight allows; wait for one to end",
            )

    def ask(self, nodes, realm: str, name: str, args: list, kwargs: dict, caller: int | None = None) -> defer.Deferred:
        """
        Run ``name`` on each of ``nodes`` for session ``caller``: fires with
        {node: (True, result) or (False, [error uri, text])}, or fails with
        :class:`MetaError` unavailable, or too_many_calls when ``caller``
        already has ``max_calls_in_flight`` questions open (as with its calls).
        """
        nodes = list(nodes)
        if not nodes:
            return defer.succeed({})
        self.reachable(name)
        node = self.node
        if caller is not None:
            self.room(caller)
            self._per_caller[caller] = self._per_caller.get(caller, 0) + 1
        key = next(self._keys)
        timer = node.reactor.callLater(node.timeout, self._expire, key)
        question = self._open[key] = _Question(name, caller, nodes, timer)
        payload = msgpack.packb(("ask", node.name, key, realm, name, args, kwargs), use_bin_type=True)
        cmd = node._cmd
        for other in nodes:
            d = cmd.command("PUBLISH", f"{node.prefix}to:{other}", payload)
            d.addCallbacks(self._published, self._unsent, callbackArgs=(key, other), errbackArgs=(key, other))
        return question.done

    def _published(self, receivers: int, key: int, other: str) -> None:
        if receivers == 0:
            self._fail(key, f"node {other} is not listening (it is gone)")

    def _unsent(self, failure, key: int, other: str) -> None:
        self._fail(key, f"the question to node {other} could not be sent: {failure.getErrorMessage()}")

    def _expire(self, key: int) -> None:
        question = self._open.get(key)
        if question is not None:
            question.timer = None
            late = ", ".join(sorted(question.waiting))
            self._fail(key, f"node(s) {late} did not answer within {self.node.timeout:g} s")

    def _closed(self, question: _Question) -> None:
        caller = question.caller
        if caller is not None:
            left = self._per_caller.pop(caller) - 1
            if left:
                self._per_caller[caller] = left

    def _fail(self, key: int, why: str) -> None:
        question = self._open.pop(key, None)
        if question is None:
            return
        self._closed(question)
        if question.timer is not None:
            question.timer.cancel()
        done_elsewhere = len(question.answers)
        text = f"{question.name} could not answer for the whole cluster: {why}"
        if done_elsewhere:
            text += f" (it did run on this node and on {done_elsewhere} other node(s))"
        question.done.errback(MetaError(UNAVAILABLE, text))

    # -- messages ---------------------------------------------------------------------

    def received(self, kind: str, item: list) -> None:
        if kind == "ask":
            self.serve(*item[1:])
        else:
            self.answered(*item[1:])

    def serve(self, origin: str, key: int, realm_name: str, name: str, args: list, kwargs: dict) -> None:
        """Another node's question: run it on this node's part of the realm, answer on its channel."""
        realm = self.node.router.realms.get(realm_name)
        if realm is None:
            outcome = (False, ["wamp.error.no_such_realm", f"no realm {realm_name!r} on node {self.node.name}"])
        elif name not in REMOTE_PROCEDURES:
            outcome = (False, ["wamp.error.no_such_procedure", f"{name} is not run for another node"])
        else:
            try:
                value = realm.meta.run_here(name, _NOBODY, args, kwargs)
                outcome = (True, None if value is NOTHING else value)
            except MetaError as exc:
                outcome = (False, [exc.uri, exc.text])
            except (TypeError, ValueError, IndexError, KeyError) as exc:
                outcome = (False, ["wamp.error.invalid_argument", f"bad arguments for {name}: {exc}"])
        self.node.send_to(origin, "told", key, self.node.name, *outcome)

    def answered(self, key: int, other: str, ok: bool, value) -> None:
        question = self._open.get(key)
        if question is None or other not in question.waiting:
            return  # expired or failed already
        question.waiting.discard(other)
        question.answers[other] = (ok, value)
        if not question.waiting:
            del self._open[key]
            self._closed(question)
            if question.timer is not None:
                question.timer.cancel()
            question.done.callback(question.answers)
