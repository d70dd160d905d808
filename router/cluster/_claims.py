"""
Registrations that must agree across the cluster: a ``single`` registration is
unique cluster-wide, and every node's callees of one procedure share one
invocation policy.

Each (realm, match, URI) that has callees somewhere has a claim in Redis: a
hash ``P claim:<realm> <match> <uri>`` holding the policy (field ``_policy``)
and one field per node with callees; ``P claims:<node>`` lists a node's claims
so that the survivors of a dead node can release them.  Claiming and releasing
run as Lua scripts, so two nodes registering at once cannot both win.

A new registration needs Redis: while it is away, a REGISTER for a procedure
this node does not already serve is refused with ERROR ``wamp.error.unavailable``
(fail closed: admitting it could leave two ``single`` callees once Redis is back).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

__all__ = ["Claims", "CLAIMED", "ALREADY_EXISTS", "OTHER_POLICY"]

CLAIMED, ALREADY_EXISTS, OTHER_POLICY = "claimed", "exists", "policy"

# KEYS[1] claim hash, KEYS[2] the node's claim set; ARGV[1] node, ARGV[2] policy
_CLAIM = """
local policy = redis.call('HGET', KEYS[1], '_policy')
if policy then
  if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {'claimed', policy} end
  if policy ~= ARGV[2] then return {'policy', policy} end
  if policy == 'single' then return {'exists', policy} end
end
redis.call('HSET', KEYS[1], '_policy', ARGV[2], ARGV[1], '1')
redis.call('SADD', KEYS[2], KEYS[1])
return {'claimed', ARGV[2]}
"""

# KEYS[1] claim hash, KEYS[2] the node's claim set; ARGV[1] node
_RELEASE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], KEYS[1])
if redis.call('HLEN', KEYS[1]) <= 1 then redis.call('DEL', KEYS[1]) end
return 1
"""

# KEYS[1] the dead node's claim set; ARGV[1] the dead node
_RELEASE_ALL = """
for _, claim in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('HDEL', claim, ARGV[1])
  if redis.call('HLEN', claim) <= 1 then redis.call('DEL', claim) end
end
redis.call('DEL', KEYS[1])
return 1
"""


class Claims:
    def __init__(self, node: Any) -> None:
        self.node = node

    def _keys(self, realm: str, match: str, uri: str, owner: str | None = None) -> tuple[str, str]:
        prefix = self.node.prefix
        return f"{prefix}claim:{realm}\x1f{match}\x1f{uri}", f"{prefix}claims:{owner or self.node.name}"

    def claim(self, realm: str, match: str, uri: str, policy: str) -> defer.Deferred:
        """Fires with (outcome, the policy held); fails when Redis is away."""
        cmd = self.node._cmd
        if cmd is None or not cmd.connected:
            return defer.fail(ConnectionError("Redis is unreachable"))
        claim, mine = self._keys(realm, match, uri)
        d = cmd.command("EVAL", _CLAIM, 2, claim, mine, self.node.name, policy)
        return d.addCallback(lambda reply: (reply[0].decode(), reply[1].decode()))

    def release(self, realm: str, match: str, uri: str) -> None:
        cmd = self.node._cmd
        if cmd is not None:
            claim, mine = self._keys(realm, match, uri)
            cmd.send("EVAL", _RELEASE, 2, claim, mine, self.node.name)

    def release_node(self, dead: str) -> None:
        """Release every claim of a node that is gone (idempotent: any survivor may do it)."""
        cmd = self.node._cmd
        if cmd is not None:
            cmd.send("EVAL", _RELEASE_ALL, 1, f"{self.node.prefix}claims:{dead}", dead)

    async def reclaim(self, registrations: dict) -> None:
        """After (re)joining: claim again what this node serves ({(realm, match, uri): policy})."""
        for (realm, match, uri), policy in registrations.items():
            await self.claim(realm, match, uri, policy)

    def register(self, realm: str, match: str, uri: str, invoke: str, proceed, refuse) -> None:
        """A new registration on this node: ``proceed()`` once the cluster agrees, else ``refuse(uri, text)``."""

        def answered(result):
            outcome, policy = result
            if outcome == CLAIMED:
                proceed()
            elif outcome == ALREADY_EXISTS:
                refuse("wamp.error.procedure_already_exists", f"procedure {uri!r} is already registered on another node")
            else:
                refuse(
                    "wamp.error.procedure_exists_with_different_invocation_policy",
                    f"procedure {uri!r} is registered with invocation policy {policy!r} on another node, not {invoke!r}",
                )

        def unreachable(failure):
            refuse("wamp.error.unavailable", f"cannot register {uri!r} now: a new registration is checked across the "
                                             f"cluster, and Redis at {self.node.address} is unreachable")

        self.claim(realm, match, uri, invoke).addCallbacks(answered, unreachable)
