"""
The meta API answering for the whole cluster.

``wamp.session.count``, ``list`` and ``get`` answer from the mirror of the
other nodes' sessions (:mod:`router.cluster._sessions`).  The procedures here
need the other nodes' own state, so they ask them (:mod:`router.cluster._ask`),
only when called: nothing is added to publishing, calling or joining.

* ``wamp.session.kill``: a session of this node is closed here; one the mirror
  places on another node is closed there (its GOODBYE carries the reason and
  message); an ID nobody has is ERROR ``wamp.error.no_such_session``.
* ``kill_by_authid``, ``kill_by_authrole``, ``kill_all``: run on every node;
  the caller is spared; the result (the killed sessions' IDs, or their number)
  is the cluster's.
* ``wamp.subscription.*`` and ``wamp.registration.*``: each node answers for
  its own subscribers and callees, and the answers are merged.  Subscription
  and registration IDs are derived from (realm, match, URI) (router.uri.ScopeIds),
  so one subscription has the same ID on every node, and ``get``,
  ``list_subscribers`` or ``count_callees`` of an ID answer for all of them
  (``created`` is the earliest).  ``wamp.registration.match`` names the
  registration a call from this node would reach: a local one first (local
  calls stay local), else the best of the other nodes', as calls are routed.

When a node does not answer (dead, or Redis away) the call fails closed with
ERROR ``wamp.error.unavailable`` naming it, within the cluster's ``timeout``;
a kill that ran on the nodes that did answer says so in the error's message.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from router.cluster._ask import Asking
from router.meta._procedures import NOTHING, MetaError

__all__ = ["ClusterMeta"]


def _raise(answer) -> None:
    raise MetaError(answer[1][0], answer[1][1])


def _ok_values(answers: list) -> list:
    """The results of the nodes that have the thing asked for; none: the first (this node's) error."""
    values = [value for ok, value in answers if ok]
    if not values:
        _raise(answers[0])
    return values


def _concat(answers: list) -> list:
    return [item for values in _ok_values(answers) for item in values]


def _total(answers: list) -> int:
    return sum(_ok_values(answers))


def _union_by_policy(answers: list) -> dict:
    merged: dict[str, list] = {}
    for found in _ok_values(answers):
        for policy, ids in found.items():
            have = merged.setdefault(policy, [])
            have += [i for i in ids if i not in have]
    return merged


def _union(answers: list):
    merged: list = []
    for ids in _ok_values(answers):
        merged += [i for i in ids or () if i not in merged]
    return merged or None


def _first(answers: list):
    for ok, value in answers:
        if ok and value is not None:
            return value
    return None


def _earliest(answers: list) -> dict:
    return min(_ok_values(answers), key=lambda details: details["created"])


class ClusterMeta:
    """The meta procedures that ask the other nodes; see the module docstring."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.asking = Asking(node)
        self._table = {
            "wamp.session.kill": self._kill,
            "wamp.session.kill_by_authid": partial(self._everywhere, _concat),
            "wamp.session.kill_by_authrole": partial(self._everywhere, _total),
            "wamp.session.kill_all": partial(self._everywhere, _total),
            "wamp.registration.match": self._reg_match,
        }
        for kind, count, listing in (("subscription", "count_subscribers", "list_subscribers"),
                                     ("registration", "count_callees", "list_callees")):
            self._table.update({
                f"wamp.{kind}.list": partial(self._everywhere, _union_by_policy),
                f"wamp.{kind}.lookup": partial(self._unless_here, _first),
                f"wamp.{kind}.get": partial(self._everywhere, _earliest),
                f"wamp.{kind}.{listing}": partial(self._everywhere, _concat),
                f"wamp.{kind}.{count}": partial(self._everywhere, _total),
            })
        self._table["wamp.subscription.match"] = partial(self._everywhere, _union)

    def received(self, kind: str, item: list) -> None:
        """An ``ask`` or ``told`` message on this node's channel."""
        self.asking.received(kind, item)

    def procedure(self, meta: Any, name: str, handler):
        """The handler of meta procedure ``name`` in ``meta``'s realm: this cluster's, or ``handler``."""
        mine = self._table.get(name)
        return handler if mine is None else partial(mine, meta, name)

    def held_elsewhere(self, kind: str, realm: str, match: str, uri: str) -> bool:
        """Whether another node has this subscription (``kind`` "sub") or registration ("reg")."""
        tables = self.node.tables if kind == "sub" else self.node.calls.procedures
        return tables.held((realm, match, uri))

    # -- the procedures ---------------------------------------------------------------

    @staticmethod
    def _here(meta, name: str, caller, args: list, kwargs: dict) -> tuple[bool, Any]:
        try:
            return True, meta.run_here(name, caller, args, kwargs)
        except MetaError as exc:
            return False, [exc.uri, exc.text]

    def _everywhere(self, merge, meta, name: str, caller, args: list, kwargs: dict):
        """Run ``name`` here (bad arguments are refused here, before any node is asked), then on every other node."""
        self.asking.reachable(name)
        self.asking.room(caller.session_id)  # before anything runs here
        here = self._here(meta, name, caller, args, kwargs)
        d = self.asking.ask(self.node.nodes, meta.realm.name, name, args, kwargs, caller.session_id)
        return d.addCallback(lambda answers: merge([here, *answers.values()]))

    def _unless_here(self, merge, meta, name: str, caller, args: list, kwargs: dict):
        """This node's answer when it has one (the same on every node), else the other nodes'."""
        found = meta.run_here(name, caller, args, kwargs)
        if found is not None:
            return found
        return self._everywhere(merge, meta, name, caller, args, kwargs)

    def _kill(self, meta, name: str, caller, args: list, kwargs: dict):
        sid = args[0]
        where = None if meta.session(sid) is not None or sid == caller.session_id else self.where(meta.realm.name, sid)
        if where is None:  # here, or nowhere: the realm's own answer
            return meta.run_here(name, caller, args, kwargs)
        d = self.asking.ask([where], meta.realm.name, name, args, kwargs, caller.session_id)
        return d.addCallback(lambda answers: NOTHING if answers[where][0] else _raise(answers[where]))

    def where(self, realm: str, sid: int) -> str | None:
        """The node the mirror places session ``sid`` of ``realm`` on (None: none)."""
        return self.node.sessions.node_of(realm, sid)

    def _reg_match(self, meta, name: str, caller, args: list, kwargs: dict):
        found = meta.run_here(name, caller, args, kwargs)
        if found is not None:
            return found  # a call from here is served here
        nodes = self.node.calls.procedures.best(meta.realm.name, args[0])
        if not nodes:
            return None
        nodes = sorted(nodes)[:1]  # every node holding the best registration has it under the same ID
        d = self.asking.ask(nodes, meta.realm.name, name, args, kwargs, caller.session_id)
        return d.addCallback(lambda answers: _first(list(answers.values())))
