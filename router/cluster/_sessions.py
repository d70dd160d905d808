"""
Sessions across nodes, for the meta API: every node keeps the other nodes'
joined sessions (``P sessions:<node>`` in Redis, and ``ses+``/``ses-``
notices), so ``wamp.session.count``, ``list`` and ``get`` answer for the
whole cluster, and when a node dies every survivor publishes
``wamp.session.on_leave`` for its sessions to its own subscribers (so each
subscriber in the cluster hears of each departure once).

Session IDs are unique cluster-wide.  A node draws a new one at random in
[1, 2**53] until it is neither one of its own live sessions' nor one it knows
on another node (this mirror); then the join's write to Redis, one Lua script
in place of the HSET and PUBLISH it replaces, claims it: the script refuses
when another node's ``P sessions:NAME`` hash holds it already, and the node
that lost (two nodes drew the same ID within the flight of a notice: odds
about 2**-53 per join and node) closes its session with GOODBYE
``wampd.close.session_id_taken`` and logs it; the client joins again with
another ID.  The client never waits for Redis: WELCOME goes out first.  After
an outage the nodes write their sessions again unchecked; a duplicate found
when they re-read each other's is closed on the node whose name sorts last.
"""

from __future__ import annotations

from hashlib import sha1
from typing import Any

import msgpack
from twisted.logger import Logger

from router.cluster._resp import RedisError

__all__ = ["ClusterSessions", "TAKEN"]

_log = Logger(namespace="wampd.cluster")

#: The GOODBYE reason of a session whose ID another node claimed at the same moment.
TAKEN = "wampd.close.session_id_taken"

# KEYS[1] this node's sessions hash, KEYS[2..] the other nodes'; ARGV: id, packed details, channel, notice
_JOIN = """
for i = 2, #KEYS do
  if redis.call('HEXISTS', KEYS[i], ARGV[1]) == 1 then return KEYS[i] end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return false
"""
_JOIN_SHA = sha1(_JOIN.encode()).hexdigest()


def _pack(*items) -> bytes:
    return msgpack.packb(items, use_bin_type=True)


class ClusterSessions:
    def __init__(self, node: Any) -> None:
        self.node = node
        self.local: dict[int, tuple[str, dict]] = {}  # this node's: session id -> (realm, details)
        self._remote: dict[str, dict[int, tuple[str, dict]]] = {}  # other node -> its sessions

    def _key(self, node: str) -> str:
        return f"{self.node.prefix}sessions:{node}"

    # -- this node's sessions --------------------------------------------------------

    def taken(self, sid: int) -> bool:
        """Whether another node has a session ``sid`` (as far as this node knows)."""
        return any(sid in sessions for sessions in self._remote.values())

    def joined(self, realm: str, details: dict) -> None:
        sid = details["session"]
        self.local[sid] = (realm, details)
        node = self.node
        cmd = node._cmd
        if cmd is None or not cmd.connected:
            return
        keys = [self._key(node.name)] + [self._key(other) for other in self._remote]
        args = (len(keys), *keys, sid, _pack(realm, details), node._notices, _pack("ses+", node.name, sid, realm, details))
        d = cmd.command("EVALSHA", _JOIN_SHA, *args)

        def again(failure):  # a Redis that has not seen the script yet (or restarted): once with its text
            if failure.check(RedisError) and "NOSCRIPT" in str(failure.value) and node._cmd is cmd:
                return cmd.command("EVAL", _JOIN, *args)
            return failure

        d.addErrback(again).addCallbacks(lambda owner: self._claimed(sid, owner), lambda failure: None)

    def _claimed(self, sid: int, owner) -> None:
        if owner is None:
            return
        other = owner.decode()[len(self._key("")):]
        self.lost(sid, other)

    def lost(self, sid: int, other: str) -> None:
        """Session ``sid`` of this node has the ID of one on node ``other``: close this one."""
        found = self.local.get(sid)
        if found is None:
            return
        realm = self.node.router.realms.get(found[0])
        session = realm.sessions.get(sid) if realm is not None else None
        _log.warn("cluster: session {sid} has the ID of a session on node {other}; closing it here (the client "
                  "joins again with another)", sid=sid, other=other)
        if session is not None:  # its leaving takes it out of this node's hash (never the other node's)
            session.goodbye(TAKEN, f"session ID {sid} is taken by a session on node {other}; join again")
        else:
            self.left(sid)

    def left(self, session_id: int) -> None:
        self.local.pop(session_id, None)
        cmd = self.node._cmd
        if cmd is not None and cmd.send("HDEL", self._key(self.node.name), session_id):
            cmd.send("PUBLISH", self.node._notices, _pack("ses-", self.node.name, session_id))

    async def write(self, cmd) -> None:
        key = self._key(self.node.name)
        await cmd.command("DEL", key)
        if self.local:
            fields: list = []
            for sid, (realm, details) in self.local.items():
                fields += [sid, _pack(realm, details)]
            await cmd.command("HSET", key, *fields)

    async def read(self, cmd, nodes) -> None:
        found: dict[str, dict[int, tuple[str, dict]]] = {}
        for name in nodes:
            flat = await cmd.command("HGETALL", self._key(name))
            found[name] = {}
            for i in range(0, len(flat), 2):
                realm, details = msgpack.unpackb(flat[i + 1], raw=False)
                found[name][int(flat[i])] = (realm, details)
        self._remote = found
        for name, sessions in found.items():  # written unchecked during an outage: the last name gives way
            if name < self.node.name:
                for sid in [sid for sid in sessions if sid in self.local]:
                    self.lost(sid, name)

    # -- the other nodes' ---------------------------------------------------------------

    def add(self, node: str, sid: int, realm: str, details: dict) -> None:
        self._remote.setdefault(node, {})[sid] = (realm, details)

    def remove(self, node: str, sid: int) -> None:
        self._remote.get(node, {}).pop(sid, None)

    def gone(self, node: str) -> None:
        """``node`` died: forget its sessions, and tell this node's subscribers they left."""
        for sid, (realm_name, details) in self._remote.pop(node, {}).items():
            realm = self.node.router.realms.get(realm_name)
            if realm is not None:
                realm.broker.deliver(
                    "wamp.session.on_leave", [sid, details.get("authid"), details.get("authrole")], exclude_me=False
                )
        self.node.cmd_send("DEL", self._key(node))

    def in_realm(self, realm: str, authroles=None) -> list[dict]:
        """The other nodes' sessions joined to ``realm`` (only these authroles, when given)."""
        wanted = set(authroles) if authroles is not None else None
        return [
            details
            for sessions in self._remote.values()
            for r, details in sessions.values()
            if r == realm and (wanted is None or details.get("authrole") in wanted)
        ]

    def node_of(self, realm: str, sid: int) -> str | None:
        """The other node with session ``sid`` joined to ``realm`` (None: none this node knows)."""
        for node, sessions in self._remote.items():
            found = sessions.get(sid)
            if found is not None and found[0] == realm:
                return node
        return None

    def get(self, realm: str, sid: int) -> dict | None:
        for sessions in self._remote.values():
            found = sessions.get(sid)
            if found is not None and found[0] == realm:
                return found[1]
        return None
