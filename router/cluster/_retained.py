"""
Retained events across nodes: a retained publication on one node is sent to
every node (``ret`` on the notices channel), which keeps it as its own broker
would, so a subscriber asking for retained events gets them on any node.
Redis keeps the latest one per topic too (``P retained:<realm>``, trimmed to
the router's ``max_retained_topics``, least recently retained first), so a
node that joins later, or comes back, starts with them.
"""

from __future__ import annotations

from typing import Any

import msgpack

from router.broker._retention import _Retained
from router.cluster._pubsub import RemotePublisher
from router.filters import FILTERS, compile_filters

__all__ = ["share", "receive", "load"]

# KEYS[1] hash topic -> event, KEYS[2] zset topic -> time; ARGV: topic, event, time, most topics (0: any)
_STORE = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local most = tonumber(ARGV[4])
if most > 0 then
  local over = redis.call('ZCARD', KEYS[2]) - most
  if over > 0 then
    for _, old in ipairs(redis.call('ZPOPMIN', KEYS[2], over)) do redis.call('HDEL', KEYS[1], old) end
  end
end
return 1
"""


def _filter_options(filters) -> dict | None:
    if filters is None:
        return None
    return {name: list(getattr(filters, name)) for name in FILTERS if getattr(filters, name) is not None} or None


def share(node: Any, realm: str, topic: str, kept: _Retained) -> None:
    """This node retained ``kept`` on ``topic``: tell every node, and keep it in Redis."""
    publisher = kept.publisher
    event = msgpack.packb(
        (realm, topic, kept.publication, kept.args, kept.kwargs, _filter_options(kept.filters),
         [publisher.session_id, publisher.authid, publisher.authrole] if publisher is not None else None,
         kept.excluded),
        use_bin_type=True,
    )
    most = node.router.max_retained_topics
    if node.cmd_send("EVAL", _STORE, 2, f"{node.prefix}retained:{realm}", f"{node.prefix}retained-order:{realm}",
                     topic, event, int(node.reactor.seconds() * 1000), most):
        node.cmd_send("PUBLISH", node._notices, msgpack.packb(("ret", node.name, event), use_bin_type=True))


def receive(node: Any, event: bytes) -> None:
    """Another node's retained event: kept here as if published here."""
    realm_name, topic, publication, args, kwargs, filters, publisher, excluded = msgpack.unpackb(event, raw=False)
    realm = node.router.realms.get(realm_name)
    if realm is not None:
        kept = _Retained(publication, args, kwargs, compile_filters(filters) if filters else None,
                         RemotePublisher(*publisher) if publisher is not None else None, excluded)
        realm.broker._retain(topic, kept)


async def load(node: Any) -> None:
    """At join: the retained events Redis holds for this node's realms."""
    for realm in node.router.realms:
        flat = await node._cmd.command("HGETALL", f"{node.prefix}retained:{realm}")
        for i in range(1, len(flat), 2):
            receive(node, flat[i])
