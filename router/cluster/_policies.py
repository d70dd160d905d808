"""
Invocation policies of shared registrations across the cluster.

Every node knows, for each (realm, match, URI) registered anywhere, a
:class:`Spread`: how many callees each other node has, and for ``first`` and
``last`` the registration times of each node's earliest and latest callee; and
its own callees with their times.  A CALL decides from these tables alone (no
Redis round trip per call), over every callee of the cluster:

* ``roundrobin`` takes turns over all callees (this node's first, then each
  other node's as many turns as it has callees), so a node with 3 callees gets
  3 calls of every 4 when the other has 1;
* ``random`` draws one of all callees, each as likely;
* ``first`` / ``last`` take the callee registered earliest / latest cluster-wide.

When the choice is another node, the call is forwarded to it, and that node
picks among its own callees by the same policy (its next in turn, a random one,
its earliest or latest), which over all calls is the cluster-wide choice; and
it stays right when a callee has just left and the caller's node has not heard
yet.  A call served for another node's caller, a progressive call invocation and
a passthru call (neither crosses nodes) and every call while Redis is away are
served by a local callee when there is one; so is every call of a registration
one of whose callees is the router's own session (an App's procedure, which
every node runs).  With ``prefer_local`` a local
callee is always served first (the policy then applies among the other nodes'
callees only when this node has none).

Registration time is taken from Redis, not from the nodes' clocks (which may
disagree): ``TIME`` in microseconds, raised to one more than the last time
handed out when the clock is not ahead (so times are unique and only grow, even
in one microsecond or after a clock step back), kept in ``P stamp``.  A plain
``INCR`` counter would restart at 1 when a Redis without persistence (the
``--workers`` private one) restarts, and the callees registered after it would
rank before the older ones.  The stamp is asked for as the callee registers
(its REGISTERED is not delayed); until it comes the callee counts as the
newest.  Each node publishes its callees per procedure in the value of its
``P regs:<node>`` field and in the ``reg+`` notice: ``policy count first last``.
"""

from __future__ import annotations

import random
from typing import Any

import msgpack

from router.matching import PatternIndex

__all__ = ["Spread", "RemoteProcedures", "parse_value"]

Entry = tuple[str, str, str]  # (realm, match, uri)
_LATEST = float("inf")  # the time of a callee Redis has not stamped yet: the newest
_SEP = "\x1f"

# KEYS[1] the stamp key.  Redis time in microseconds, unique and only growing.
_STAMP = """
local now = redis.call('TIME')
local stamp = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if stamp <= last then stamp = last + 1 end
redis.call('SET', KEYS[1], string.format('%d', stamp))
return stamp
"""


def parse_value(value: str) -> tuple[str, list | None]:
    """A ``P regs:<node>`` field's value: (policy, [count, first, last] or None)."""
    invoke, _, rest = value.partition(" ")
    if not rest:
        return invoke, None
    count, first, last = rest.split(" ")
    return invoke, [int(count), int(first) or None, int(last) or None]


class Spread:
    """One shared registration's callees: the other nodes' (by summary) and this node's (with their times)."""

    __slots__ = ("uri", "match", "invoke", "nodes", "local", "turn", "owner")

    def __init__(self, owner: RemoteProcedures, match: str, uri: str, invoke: str) -> None:
        self.owner = owner
        self.match, self.uri, self.invoke = match, uri, invoke
        self.nodes: dict[str, list] = {}  # other node -> [count, first time, last time] (None: not yet known)
        self.local: dict[Any, int | None] = {}  # this node's callee -> its time (None until Redis gives it)
        self.turn = 0

    def pick(self, reg, caller, local_only: bool = False):
        """
        The callee for one call: a local session from ``reg.callees`` (``reg``:
        this node's registration, None when it has none), or the name of the
        node to forward the call to.
        """
        callees = reg.callees if reg is not None else ()
        if callees and (local_only or getattr(caller, "forwarded", False) or not self.owner.node.connected):
            return callees[0] if len(callees) == 1 else reg.pick()
        nodes = self.nodes
        invoke = self.invoke
        if invoke == "first" or invoke == "last":
            return self._by_time(callees, invoke == "first")
        if invoke == "roundrobin" or invoke == "random":
            here = len(callees)
            total = here + sum(summary[0] for summary in nodes.values())
            if invoke == "random":
                slot = random.randrange(total)
            else:
                slot = self.turn % total
                self.turn = slot + 1
            if slot < here:
                return callees[slot]
            slot -= here
            for name, summary in nodes.items():
                if slot < summary[0]:
                    return name
                slot -= summary[0]
        return callees[0] if callees else next(iter(nodes))  # single: one callee in the cluster

    def _by_time(self, callees, earliest: bool):
        local = self.local
        if earliest:
            best_node, best = None, _LATEST
            for name, summary in self.nodes.items():
                time = summary[1] or _LATEST
                if best_node is None or time < best:
                    best_node, best = name, time
            if callees and (best_node is None or (local.get(callees[0]) or _LATEST) <= best):
                return callees[0]
            return best_node
        best_node, best = None, 0
        for name, summary in self.nodes.items():
            time = summary[2] or _LATEST
            if best_node is None or time > best:
                best_node, best = name, time
        if callees and (best_node is None or (local.get(callees[-1]) or _LATEST) >= best):
            return callees[-1]
        return best_node


class RemoteProcedures:
    """
    The other nodes' registrations (one :class:`PatternIndex` of spreads per
    realm, for calls with no local registration) and this node's callees of
    shared registrations.  ``node`` is the :class:`~router.cluster.ClusterNode`.
    """

    def __init__(self, node: Any, prefer_local: bool = False) -> None:
        self.node = node
        self.prefer_local = prefer_local
        self._spreads: dict[Entry, Spread] = {}
        self._by_realm: dict[str, PatternIndex[Spread]] = {}

    # -- the other nodes' registrations --------------------------------------------------

    def _spread(self, entry: Entry, invoke: str) -> Spread:
        spread = self._spreads.get(entry)
        if spread is None:
            spread = self._spreads[entry] = Spread(self, entry[1], entry[2], invoke)
        return spread

    def add(self, node: str, entry: Entry, invoke: str, summary: list | None = None) -> None:
        """``node`` has callees of ``entry`` (``summary``: [count, first, last], None: one, times unknown)."""
        spread = self._spread(entry, invoke)
        spread.invoke = invoke
        if not spread.nodes:
            realm, match, uri = entry
            index = self._by_realm.get(realm)
            if index is None:
                index = self._by_realm[realm] = PatternIndex()
            index.add(uri, match, spread)
        if summary is not None or node not in spread.nodes:
            spread.nodes[node] = list(summary) if summary is not None else [1, None, None]
        self._link(entry, spread)

    def remove(self, node: str, entry: Entry) -> None:
        spread = self._spreads.get(entry)
        if spread is None or spread.nodes.pop(node, None) is None:
            return
        if not spread.nodes:
            realm, match, uri = entry
            self._by_realm[realm].remove(uri, match)
            if not spread.local:
                del self._spreads[entry]
        self._link(entry, spread)

    def forget(self, node: str) -> None:
        for entry in [entry for entry, spread in self._spreads.items() if node in spread.nodes]:
            self.remove(node, entry)

    def replace(self, found: dict[str, dict[Entry, str]]) -> None:
        """Know exactly ``found`` ({node: {entry: regs field value}}); this node's callees and turns stay."""
        for entry, spread in list(self._spreads.items()):
            for node in list(spread.nodes):
                if entry not in found.get(node, ()):
                    self.remove(node, entry)
        for node, entries in found.items():
            for entry, value in entries.items():
                self.add(node, entry, *parse_value(value))

    def best(self, realm: str, uri: str) -> set[str] | None:
        """The nodes holding the registration a call to ``uri`` routes to, by the spec's precedence."""
        spread = self._best(realm, uri)
        return set(spread.nodes) if spread is not None else None

    def entries_of(self, node: str) -> list[Entry]:
        """The registrations ``node`` has callees of."""
        return [entry for entry, spread in self._spreads.items() if node in spread.nodes]

    def held(self, entry: Entry) -> bool:
        """Whether another node has callees of ``entry`` (realm, match, uri): for the meta API's on_create/on_delete."""
        spread = self._spreads.get(entry)
        return spread is not None and bool(spread.nodes)

    def callees(self, realm: str, uri: str, match: str = "exact") -> dict[str, tuple]:
        """
        What this node knows of the other nodes' callees of a registration: {node:
        (count, first time, last time)}, times None where not known (for operators' scripts and tests).
        """
        spread = self._spreads.get((realm, match, uri))
        return {} if spread is None else {node: tuple(summary) for node, summary in spread.nodes.items()}

    def _best(self, realm: str, uri: str) -> Spread | None:
        index = self._by_realm.get(realm)
        if index is None:
            return None
        found = index.best(uri)
        return found[1] if found else None

    def node_for(self, realm: str, caller, uri: str) -> str | None:
        """The node to forward a call with no local registration to (None: no node has one)."""
        spread = self._best(realm, uri)
        return spread.pick(None, caller) if spread is not None else None

    def _link(self, entry: Entry, spread: Spread) -> None:
        """Let this node's registration of ``entry`` (if any) see the other nodes' callees."""
        realm = self.node.router.realms.get(entry[0])
        reg = realm.dealer.lookup(entry[2], entry[1]) if realm is not None else None
        if reg is not None:
            # an App's procedure (the realm's own session a callee) runs on every node: each serves its own
            shared = spread.nodes and not self.prefer_local and reg.invoke != "single"
            reg.remote = spread if shared and realm.internal not in reg.callees else None

    # -- this node's callees -----------------------------------------------------------

    def callee_added(self, realm: str, reg, callee) -> None:
        """``callee`` joined this node's shared registration ``reg``: ask Redis for its time, then tell the others."""
        entry = (realm, reg.match, reg.uri)
        spread = self._spread(entry, reg.invoke)
        spread.local[callee] = None
        self._link(entry, spread)
        self._stamp(entry, spread, reg, callee)

    def callee_removed(self, realm: str, reg, callee) -> None:
        """``callee`` left ``reg`` (its last callee: ``procedure_removed`` tells the others)."""
        entry = (realm, reg.match, reg.uri)
        spread = self._spreads.get(entry)
        if spread is None:
            return
        spread.local.pop(callee, None)
        if reg.callees:
            self._link(entry, spread)
            self._publish(entry, spread, reg)
        elif not spread.nodes:
            del self._spreads[entry]

    def _stamp(self, entry: Entry, spread: Spread, reg, callee) -> None:
        if reg.invoke not in ("first", "last"):
            if len(reg.callees) > 1:  # one callee: procedure_added said so
                self._publish(entry, spread, reg)
            return
        cmd = self.node._cmd
        if cmd is None or not cmd.connected:
            return  # stamped when Redis is back (write_local)

        def stamped(stamp) -> None:
            if callee in spread.local and spread.local[callee] is None:
                spread.local[callee] = int(stamp)
                self._publish(entry, spread, reg)

        cmd.command("EVAL", _STAMP, 1, f"{self.node.prefix}stamp").addCallbacks(stamped, lambda failure: None)

    def _publish(self, entry: Entry, spread: Spread, reg) -> None:
        """Write and announce this node's callees of ``entry``: policy, count, first and last time."""
        callees = reg.callees
        if not callees:
            return
        first, last = spread.local.get(callees[0]), spread.local.get(callees[-1])
        if reg.invoke in ("first", "last") and (first is None or last is None):
            return  # published again once Redis has stamped them
        node = self.node
        value = f"{reg.invoke} {len(callees)} {first or 0} {last or 0}"
        if node.cmd_send("HSET", node._regs_key(node.name), _SEP.join(entry), value):
            item = ("reg+", node.name, *entry, reg.invoke, [len(callees), first, last])
            node.cmd_send("PUBLISH", node._notices, msgpack.packb(item, use_bin_type=True))

    async def write_local(self) -> None:
        """After (re)joining: stamp the callees Redis has not stamped, and announce every shared registration."""
        for realm in self.node.router.realms.values():
            for reg in realm.dealer.registrations():
                if reg.invoke == "single":
                    continue
                entry = (realm.name, reg.match, reg.uri)
                spread = self._spread(entry, reg.invoke)
                for callee in reg.callees:
                    spread.local.setdefault(callee, None)
                    if spread.local[callee] is None and reg.invoke in ("first", "last"):
                        stamp = await self.node._cmd.command("EVAL", _STAMP, 1, f"{self.node.prefix}stamp")
                        if callee in spread.local:  # it may have left meanwhile
                            spread.local[callee] = int(stamp)
                self._link(entry, spread)
                self._publish(entry, spread, reg)
