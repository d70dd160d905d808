"""
What the other nodes do when one leaves the cluster: cleanly (its ``bye``
notice) or dead (its heartbeat expired).

Either way its subscriptions and registrations are forgotten, calls in flight
to its callees end in ERROR, and its sessions leave (``on_leave`` from every
survivor to its own subscribers).  A dead node also had no chance to say what
else ended with it, so the survivors do that too: its ``single`` claims are
released, one survivor publishes its sessions' testaments, and each survivor
publishes ``wamp.subscription.on_delete`` / ``wamp.registration.on_delete`` to
its own subscribers for every subscription and registration that no node holds
any more (so each subscriber hears of it once, as with ``on_leave``).  The
session argument of those is ``null``: the sessions that held them are gone
with their node, and the router does not know which one was the last.  A node
that stops cleanly ends its sessions first, so its own ``on_delete`` events
went out already.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

__all__ = ["node_left"]

_log = Logger(namespace="wampd.cluster")


def node_left(cluster: Any, node: str, why: str, died: bool) -> None:
    """Forget ``node`` (``died``: its heartbeat expired, else it said goodbye)."""
    orphans = _held_by(cluster, node) if died else ()
    cluster.tables.forget(node)
    cluster.calls.node_gone(node, why)
    if died:
        cluster.claims.release_node(node)
    cluster.sessions.gone(node)
    if died:
        cluster.testaments.node_gone(node)  # after on_leave, as on a clean leave
        for kind, entry in orphans:
            _deleted(cluster, kind, entry)


def _held_by(cluster: Any, node: str) -> list[tuple[str, tuple[str, str, str]]]:
    held = [("sub", entry) for entry in cluster.tables.topics_of(node)]
    held += [("reg", entry) for entry in cluster.calls.procedures.entries_of(node)]
    return held


def _deleted(cluster: Any, kind: str, entry: tuple[str, str, str]) -> None:
    realm_name, match, uri = entry
    realm = cluster.router.realms.get(realm_name)
    if realm is None or cluster.meta.held_elsewhere(kind, realm_name, match, uri):
        return
    here = realm.broker.lookup(uri, match) if kind == "sub" else realm.dealer.lookup(uri, match)
    if here is not None:
        return  # this node still has it: not deleted
    ident = realm.scope_ids.next((), match, uri, "" if kind == "sub" else "reg")  # the ID every node gave it
    topic = "wamp.subscription.on_delete" if kind == "sub" else "wamp.registration.on_delete"
    try:
        realm.broker.deliver(topic, [None, ident], exclude_me=False)
    except Exception:
        _log.failure("meta event {topic} could not be published", topic=topic)
