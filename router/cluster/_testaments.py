"""
Testaments that outlive their node.

A session's testaments (``wamp.session.add_testament``) are published by its
own node when it leaves.  So that a node killed outright (SIGKILL, a crash,
the machine gone) does not take them with it, the node also keeps each
session's testaments in Redis: the hash ``P testaments:<node>``, one field per
session id, whose value is the session's realm and identity and its
testaments in publication order (detached scope first, then destroyed), each
with the disclosure decided when it was added.  The field goes when the
session flushes its last testament or leaves cleanly (its node publishes them
then, as on a single router).

When the other nodes notice the node is gone (its heartbeat expired), each
survivor runs one Lua script that reads the hash and deletes it: Redis runs
scripts one at a time, so exactly one survivor gets the testaments, and it
publishes each one as if the session had just left, to its own subscribers
and to every other node with a matching subscriber.  The survivor cannot ask
the realm's authorizer on behalf of a session that no longer exists anywhere:
the authorization given when the testament was added stands (it was
refused then if the role could not publish there), as does the disclosure of
the publisher (``disclose_me``, or the realm's ``disclose`` roles).

While Redis is away, a testament added or flushed is kept by the node as
always (``add_testament`` succeeds: the session's own clean leave still
publishes it), and the node writes all of its sessions' testaments again when
Redis is back (with the rest of its state).  A node killed during an outage
loses the testaments added since the outage began.

Also at (re)joining, a node publishes the testaments of nodes whose heartbeat
is gone but whose hash is still there: a node that died while no other node
was watching (or an earlier run of this node under the same name).
"""

from __future__ import annotations

from typing import Any

import msgpack
from twisted.internet import defer
from twisted.logger import Logger

from router.cluster._pubsub import RemotePublisher
from router.filters import compile_filters

__all__ = ["ClusterTestaments", "pack_testaments"]

_log = Logger(namespace="wampd.cluster")
_SCOPES = ("detached", "destroyed")  # the order a leaving session's testaments go out in

# KEYS[1] the dead node's testaments: read them and delete them, in one step
_TAKE = """
local found = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return found
"""


def pack_testaments(realm: str, session: Any, testaments: dict) -> bytes | None:
    """A session's testaments as Redis keeps them (None when it has none)."""
    items = []
    for scope in _SCOPES:
        for topic, args, kwargs, options in testaments.get(scope, ()):
            disclose = options.get("disclose_me") is True or session.discloses("publish", topic)
            items.append((topic, args, kwargs, options, disclose))
    if not items:
        return None
    info = session.info
    return msgpack.packb((realm, session.session_id, info.authid, info.authrole, items), use_bin_type=True)


class ClusterTestaments:
    """A node's share of the cluster's testaments (see the module docstring)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.local: dict[int, bytes] = {}  # this node's sessions' testaments, as packed for Redis
        self._rejoined = False
        self.published = 0  # testaments of dead nodes this node published

    def _key(self, node: str) -> str:
        return f"{self.node.prefix}testaments:{node}"

    # -- this node's sessions ------------------------------------------------------

    def changed(self, realm: str, session: Any, testaments: dict | None) -> defer.Deferred | None:
        """
        A session added or flushed testaments: ``testaments`` is all it has now
        (scope -> list).  Returns a Deferred that fires once Redis holds them
        (never fails: if Redis goes meanwhile, they are written at resync), or
        None when there is nothing to wait for.
        """
        sid = session.session_id
        packed = pack_testaments(realm, session, testaments) if testaments else None
        key = self._key(self.node.name)
        if packed is None:
            if self.local.pop(sid, None) is not None:
                self.node.cmd_send("HDEL", key, sid)
            return None
        self.local[sid] = packed
        cmd = self.node._cmd
        if cmd is None or not cmd.connected:
            return None  # Redis is away: written again at resync
        # the caller's RESULT waits for Redis to hold it, so a node killed right after cannot lose it
        return cmd.command("HSET", key, sid, packed).addErrback(lambda failure: None)

    def left(self, session_id: int) -> None:
        """The session left cleanly: its node publishes its testaments; Redis forgets them."""
        if self.local.pop(session_id, None) is not None:
            self.node.cmd_send("HDEL", self._key(self.node.name), session_id)

    async def write(self, cmd) -> None:
        """At (re)joining: publish orphans' testaments, then replace this node's hash with what it holds."""
        await self._sweep(cmd)
        self._rejoined = True
        key = self._key(self.node.name)
        await cmd.command("DEL", key)
        if self.local:
            fields: list = []
            for sid, packed in self.local.items():
                fields += [sid, packed]
            await cmd.command("HSET", key, *fields)

    async def _sweep(self, cmd) -> None:
        skip = len(self.node.prefix) + len("testaments:")
        cursor = b"0"
        orphans = []
        while True:
            cursor, keys = await cmd.command("SCAN", cursor, "MATCH", f"{self.node.prefix}testaments:*", "COUNT", 1000)
            for key in keys:
                name = key.decode()[skip:]
                if name == self.node.name:
                    if not self._rejoined:  # an earlier run under this name, killed: its sessions are gone
                        orphans.append(name)
                elif not await cmd.command("EXISTS", self.node._node_key(name)):
                    orphans.append(name)
            if cursor == b"0":
                break
        for name in orphans:
            self._published(name, await cmd.command("EVAL", _TAKE, 1, self._key(name)))

    # -- a dead node's ---------------------------------------------------------------

    def node_gone(self, dead: str) -> None:
        """``dead`` missed its heartbeat: take its testaments (if no other survivor did first) and publish them."""
        cmd = self.node._cmd
        if cmd is None:
            return
        d = cmd.command("EVAL", _TAKE, 1, self._key(dead))
        d.addCallback(lambda flat: self._published(dead, flat))
        d.addErrback(lambda failure: _log.failure("cluster: the testaments of node {node} could not be taken",
                                                  failure, node=dead))

    def _published(self, dead: str, flat: list) -> None:
        count = 0
        for i in range(1, len(flat), 2):
            try:
                count += self._publish(*msgpack.unpackb(flat[i], raw=False))
            except Exception:  # one session's unreadable or failing testaments never stop the others'
                _log.failure("cluster: a testament of node {node}'s session {session} could not be published",
                             node=dead, session=flat[i - 1])
        if flat:
            self.published += count
            _log.info("cluster: published {count} testament(s) of {sessions} session(s) of node {node}, which is gone",
                      count=count, sessions=len(flat) // 2, node=dead)
            self.node._changed()

    def _publish(self, realm_name: str, sid: int, authid, authrole, items: list) -> int:
        realm = self.node.router.realms.get(realm_name)
        if realm is None:
            return 0
        publisher = RemotePublisher(sid, authid, authrole)
        broker = realm.broker
        for topic, args, kwargs, options, disclose in items:
            info = publisher if disclose else None
            publication = broker.deliver(topic, args, kwargs, exclude_me=False, disclose=disclose,
                                         filters=compile_filters(options), info=info)
            self.node.forward_publication(realm_name, topic, publication, args, kwargs, options, info, False)
        return len(items)
