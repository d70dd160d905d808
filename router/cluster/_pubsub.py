"""
Publications across nodes: sent once to each node with a matching
subscriber (the node's remote tables say which), delivered there by the
realm's broker with the publication's id, filters and disclosed publisher.
"""

from __future__ import annotations

from typing import Any

import msgpack
from twisted.internet import defer

from router.filters import FILTERS, compile_filters

__all__ = ["RemotePublisher", "forward_publication", "deliver"]

_FILTER_KEYS = frozenset(FILTERS)


def _pack(*items) -> bytes:
    return msgpack.packb(items, use_bin_type=True)


class RemotePublisher:
    """A publisher on another node, as disclosed in its EVENTs."""

    __slots__ = ("session_id", "authid", "authrole")

    def __init__(self, session_id: int, authid: str | None, authrole: str | None) -> None:
        self.session_id, self.authid, self.authrole = session_id, authid, authrole


def forward_publication(
    node: Any, realm: str, topic: str, publication: int, args, kwargs, options, info, acknowledge: bool, ppt=None
) -> defer.Deferred | None:
    """
    Send a publication to every other node with a matching subscription.
    Returns a Deferred that fires once Redis has handed it to every such
    node when ``acknowledge`` is asked and there is at least one; else None.
    """
    targets = node.tables.targets(realm, topic)
    if not targets:
        return None
    cmd = node._cmd
    if cmd is None or not cmd.connected:
        return None  # an outage: local subscribers only (logged once when Redis went)
    filters = {k: v for k, v in options.items() if k in _FILTER_KEYS} if type(options) is dict else None
    publisher = [info.session_id, info.authid, info.authrole] if info is not None else None
    payload = _pack("pub", realm, topic, publication, args, kwargs, filters or None, publisher, ppt)
    prefix = node.prefix
    node.forwarded += len(targets)
    if not acknowledge:
        for target in targets:
            cmd.send("PUBLISH", f"{prefix}to:{target}", payload)
        return None
    sent = [cmd.command("PUBLISH", f"{prefix}to:{target}", payload) for target in targets]
    return defer.DeferredList(sent, consumeErrors=True)


def deliver(node: Any, realm_name, topic, publication, args, kwargs, filters, publisher, ppt=None) -> None:
    realm = node.router.realms.get(realm_name)
    if realm is None:
        return
    node.received += 1
    info = RemotePublisher(*publisher) if publisher is not None else None
    realm.broker.deliver(
        topic, args, kwargs, exclude_me=False, disclose=info is not None,
        filters=compile_filters(filters) if filters else None, publication=publication, info=info, ppt=ppt,
    )
