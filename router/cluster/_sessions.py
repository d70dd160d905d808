"""
Sessions across nodes, for the meta API: every node keeps the other nodes'
joined sessions (``P sessions:<node>`` in Redis, and ``ses+``/``ses-``
notices), so ``wamp.session.count``, ``list`` and ``get`` answer for the
whole cluster, and when a node dies every survivor publishes
``wamp.session.on_leave`` for its sessions to its own subscribers (so each
subscriber in the cluster hears of each departure once).
"""

from __future__ import annotations

from typing import Any

import msgpack

__all__ = ["ClusterSessions"]


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

    def joined(self, realm: str, details: dict) -> None:
        sid = details["session"]
        self.local[sid] = (realm, details)
        cmd = self.node._cmd
        if cmd is not None and cmd.send("HSET", self._key(self.node.name), sid, _pack(realm, details)):
            cmd.send("PUBLISH", self.node._notices, _pack("ses+", self.node.name, sid, realm, details))

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

    def get(self, realm: str, sid: int) -> dict | None:
        for sessions in self._remote.values():
            found = sessions.get(sid)
            if found is not None and found[0] == realm:
                return found[1]
        return None
