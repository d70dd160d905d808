"""
One router process as a node of a cluster coordinated through Redis.

What lives in Redis (``P`` is the key prefix, ``wampd:`` by default):

* ``P node:<id>``: the node's heartbeat, set every ``heartbeat`` seconds with
  an expiry of ``timeout`` seconds.  A node whose key has expired is gone.
* ``P subs:<id>``: a hash of the node's subscriptions, one field per
  (realm, match, topic) that has at least one local subscriber.
* channel ``P notices``: nodes announce themselves (``hello``), their leaving
  (``bye``) and each subscription that appears or disappears (``sub+``/``sub-``).
* channel ``P to:<id>``: traffic forwarded to one node (publications).

Every node keeps the other nodes' subscriptions in memory (one
:class:`~router.matching.PatternIndex` per realm whose items are the sets of
nodes), so a publication is sent to another node only when that node has a
matching subscriber, once per node whatever its number of subscribers.  Each
node writes to Redis over one connection, so the publications of one
publisher reach every node, and so every subscriber, in the order they were
published.

When Redis is away, the node keeps routing locally, logs the outage once, and
reconnects with a growing delay; when Redis is back it writes its state again
and reads everyone else's (a full resynchronization, no restart).  Every
``resync_every`` heartbeats it also re-reads the other nodes' tables, so a
notice lost in a race costs at most that long.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import msgpack
from twisted.internet import defer, task
from twisted.logger import Logger

from router.cluster._address import RedisAddress
from router.cluster._claims import Claims
from router.cluster._departure import node_left
from router.cluster._meta import ClusterMeta
from router.cluster._pubsub import deliver, forward_publication
from router.cluster._push import PushReader
from router.cluster._resp import RedisError, connect
from router.cluster._retained import load as load_retained, receive as receive_retained, share
from router.cluster._rpc import ClusterCalls
from router.cluster._sessions import ClusterSessions
from router.cluster._state import SEP as _SEP, read_state, write_state
from router.cluster._tables import RemoteTables
from router.cluster._testaments import ClusterTestaments
from router.cluster._watch import Watchable

__all__ = ["ClusterNode", "ClusterError", "default_node_name"]

_log = Logger(namespace="wampd.cluster")


class ClusterError(Exception):
    """The node cannot join the cluster (Redis unreachable, its name taken, ...)."""


def default_node_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _pack(*items) -> bytes:
    return msgpack.packb(items, use_bin_type=True)


class ClusterNode(Watchable):
    """See the module docstring.  ``router`` is the :class:`~router.core.Router` this node serves."""

    def __init__(
        self,
        router: Any,
        address: RedisAddress,
        *,
        name: str | None = None,
        prefix: str = "wampd:",
        heartbeat: float = 1.0,
        timeout: float = 3.0,
        resync_every: int = 30,
        push_role: str = "",
        prefer_local: bool = False,
        reactor: Any = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor  # lazy: the reactor is passed in, never imported at module level
        self.router, self.address, self.name, self.prefix = router, address, name or default_node_name(), prefix
        self.heartbeat, self.timeout, self.resync_every, self.reactor = heartbeat, timeout, resync_every, reactor
        self._cmd = None  # command connection
        self._sub = None  # subscriber connection
        self._beat: task.LoopingCall | None = None
        self._beats = 0
        self._local: set[tuple[str, str, str]] = set()  # (realm, match, topic) with a local subscriber
        self.tables = RemoteTables()  # the other nodes and their subscriptions
        self.calls = ClusterCalls(self, prefer_local)  # their registrations, calls across nodes, policies
        self.sessions = ClusterSessions(self)  # the other nodes' sessions, for the meta API
        self.claims = Claims(self)  # single registrations unique, one policy per procedure, cluster-wide
        self.meta = ClusterMeta(self)  # meta procedures that ask the other nodes (kill*, subscription/registration)
        self.testaments = ClusterTestaments(self)  # kept in Redis, published by a survivor if this node dies
        self.push = PushReader(self, push_role) if push_role else None  # publishes what programs push
        self._local_regs: dict[tuple[str, str, str], str] = {}  # (realm, match, uri) -> invocation policy
        self._stopping = False
        self._outage = False
        self._retry_delay = 0.5
        self.forwarded = 0  # publications sent to other nodes (each counts once per node)
        self.received = 0  # publications received from other nodes
        self._watchers = []
        self._channel = f"{prefix}to:{self.name}".encode()
        self._notices = f"{prefix}notices".encode()

    # -- watching ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while this node is connected to Redis (False during an outage)."""
        return self._cmd is not None and self._cmd.connected and not self._outage

    # -- keys -------------------------------------------------------------------

    def _node_key(self, node: str) -> str:
        return f"{self.prefix}node:{node}"

    def _subs_key(self, node: str) -> str:
        return f"{self.prefix}subs:{node}"

    def _regs_key(self, node: str) -> str:
        return f"{self.prefix}regs:{node}"

    @property
    def nodes(self) -> list[str]:
        """The other live nodes this node knows of."""
        return self.tables.nodes

    def topics_of(self, node: str) -> frozenset[tuple[str, str, str]]:
        """The (realm, match, topic) subscriptions this node knows ``node`` has."""
        return self.tables.topics_of(node)

    # -- starting and stopping ------------------------------------------------------

    async def start(self) -> None:
        """Join the cluster: raises :class:`ClusterError` saying why it can't."""
        try:
            await self._connect()
            claimed = await self._cmd.command(
                "SET", self._node_key(self.name), "1", "NX", "PX", int(self.timeout * 1000)
            )
        except (RedisError, OSError, defer.CancelledError) as exc:
            self._drop_connections()
            raise ClusterError(f"cannot reach Redis at {self.address}: {exc}") from None
        except Exception as exc:  # connection refused and friends come as Twisted errors
            self._drop_connections()
            raise ClusterError(f"cannot reach Redis at {self.address}: {exc}") from None
        if claimed is None:
            self._drop_connections()
            raise ClusterError(
                f"another live node is named {self.name!r} in {self.address} (prefix {self.prefix!r}); "
                "give each node its own name"
            )
        self.router.attach_cluster(self)
        await load_retained(self)
        for realm in self.router.realms.values():  # what exists already (router procedures, apps)
            for sub in realm.broker.subscriptions():
                self._local.add((realm.name, sub.match, sub.uri))
            for reg in realm.dealer.registrations():
                self._local_regs[(realm.name, reg.match, reg.uri)] = reg.invoke
        await self._publish_state()
        self._beat = task.LoopingCall(self._heartbeat)
        self._beat.clock = self.reactor
        self._beat.start(self.heartbeat, now=False)
        if self.push is not None:
            self.push.start()
        _log.info("cluster: node {node} joined through {address}; {count} other node(s)", node=self.name,
                  address=str(self.address), count=len(self.tables.nodes))

    async def stop(self) -> None:
        """Leave the cluster: the other nodes forget this one at once."""
        self._stopping = True
        if self._beat is not None and self._beat.running:
            self._beat.stop()
        if self.push is not None:
            self.push.stop()
        cmd = self._cmd
        if cmd is not None and cmd.connected:
            try:
                self.claims.release_node(self.name)
                await cmd.command("DEL", self._node_key(self.name), self._subs_key(self.name), self._regs_key(self.name),
                                  self.sessions._key(self.name), self.testaments._key(self.name))
                await cmd.command("PUBLISH", self._notices, _pack("bye", self.name))
            except RedisError:
                pass
        self._drop_connections()

    async def _connect(self) -> None:
        self._cmd = await connect(self.reactor, self.address)
        self._sub = await connect(self.reactor, self.address)
        self._sub.on_message = self._message
        await self._sub.subscribe(self._channel)
        await self._sub.subscribe(self._notices)
        self._cmd.on_lost = self._sub.on_lost = self._lost

    def _drop_connections(self) -> None:
        for conn in (self._cmd, self._sub):
            if conn is not None:
                conn.on_lost = None
                conn.close()
        self._cmd = self._sub = None

    async def _publish_state(self) -> None:
        await write_state(self)
        await self._read_nodes()

    async def _read_nodes(self) -> None:
        """Replace the other nodes' tables with what Redis holds now."""
        subscriptions, procedures = await read_state(self)
        self.tables.replace(subscriptions)
        self.calls.replace(procedures)
        await self.sessions.read(self._cmd, subscriptions)
        self._changed()

    # -- the heartbeat, outages and node deaths ---------------------------------------

    def _heartbeat(self) -> None:
        cmd = self._cmd
        if cmd is None or not cmd.connected:
            return
        cmd.send("SET", self._node_key(self.name), "1", "PX", int(self.timeout * 1000))
        self._beats += 1
        others = self.tables.nodes
        if self._beats % self.resync_every == 0:
            defer.ensureDeferred(self._read_nodes()).addErrback(lambda f: None)
            return
        if others:
            d = cmd.command("MGET", *[self._node_key(node) for node in others])
            d.addCallback(self._check_alive, others)
            d.addErrback(lambda failure: None)  # the connection went: _lost says so

    def _check_alive(self, values: list, nodes: list[str]) -> None:
        for node, value in zip(nodes, values):
            if value is None and self.tables.knows(node):
                _log.warn("cluster: node {node} missed its heartbeat for {timeout} s; it is gone", node=node,
                          timeout=self.timeout)
                node_left(self, node, f"no heartbeat for {self.timeout:g} s", died=True)
                self._changed()
                self._cmd.send("DEL", self._subs_key(node), self._regs_key(node))

    def _lost(self, reason) -> None:
        if self._stopping or self._outage:
            return
        self._outage = True
        _log.error("cluster: lost Redis at {address} ({reason}); routing locally until it returns",
                   address=str(self.address), reason=reason.getErrorMessage() if reason is not None else "?")
        self._drop_connections()
        self.calls.outage(f"Redis at {self.address} is unreachable")
        self._changed()
        self.reactor.callLater(self._retry_delay, self._reconnect)

    def _reconnect(self) -> None:
        if self._stopping:
            return

        async def attempt():
            await self._connect()
            await self._cmd.command("SET", self._node_key(self.name), "1", "PX", int(self.timeout * 1000))
            await self._publish_state()

        def back(_):
            self._outage = False
            self._retry_delay = 0.5
            self._changed()
            _log.info("cluster: Redis at {address} is back; resynchronized with {count} other node(s)",
                      address=str(self.address), count=len(self.tables.nodes))

        def again(failure):
            self._drop_connections()
            self._retry_delay = min(self._retry_delay * 2, 5.0)
            self.reactor.callLater(self._retry_delay, self._reconnect)

        defer.ensureDeferred(attempt()).addCallbacks(back, again)

    # -- what the broker tells this node --------------------------------------------------

    def topic_added(self, realm: str, match: str, topic: str) -> None:
        """A first local subscriber to (realm, match, topic)."""
        entry = (realm, match, topic)
        self._local.add(entry)
        cmd = self._cmd
        if cmd is not None and cmd.send("HSET", self._subs_key(self.name), _SEP.join(entry), "1"):
            cmd.send("PUBLISH", self._notices, _pack("sub+", self.name, realm, match, topic))

    def topic_removed(self, realm: str, match: str, topic: str) -> None:
        """The last local subscriber to (realm, match, topic) is gone."""
        entry = (realm, match, topic)
        self._local.discard(entry)
        cmd = self._cmd
        if cmd is not None and cmd.send("HDEL", self._subs_key(self.name), _SEP.join(entry)):
            cmd.send("PUBLISH", self._notices, _pack("sub-", self.name, realm, match, topic))

    def procedure_added(self, realm: str, match: str, uri: str, invoke: str) -> None:
        """A first local callee for (realm, match, uri)."""
        entry = (realm, match, uri)
        self._local_regs[entry] = invoke
        cmd = self._cmd
        if cmd is not None and cmd.send("HSET", self._regs_key(self.name), _SEP.join(entry), invoke):
            cmd.send("PUBLISH", self._notices, _pack("reg+", self.name, realm, match, uri, invoke))

    def claim_registration(self, realm: str, match: str, uri: str, invoke: str, proceed, refuse) -> None:
        """A new registration on this node: ``proceed()`` once the cluster agrees, else ``refuse(uri, text)``."""
        self.claims.register(realm, match, uri, invoke, proceed, refuse)

    def procedure_removed(self, realm: str, match: str, uri: str) -> None:
        """The last local callee for (realm, match, uri) is gone."""
        entry = (realm, match, uri)
        self._local_regs.pop(entry, None)
        self.claims.release(realm, match, uri)
        cmd = self._cmd
        if cmd is not None and cmd.send("HDEL", self._regs_key(self.name), _SEP.join(entry)):
            cmd.send("PUBLISH", self._notices, _pack("reg-", self.name, realm, match, uri))

    def cmd_send(self, *args) -> bool:
        """One command whose reply nobody needs; False when Redis is away."""
        cmd = self._cmd
        return cmd is not None and cmd.send(*args)

    def retained(self, realm: str, topic: str, kept) -> None:
        """A retained event on this node: every node keeps it (router.cluster._retained)."""
        share(self, realm, topic, kept)

    def send_to(self, node: str, *items) -> bool:
        """One message to another node's channel; False when Redis is away."""
        cmd = self._cmd
        return cmd is not None and cmd.send("PUBLISH", f"{self.prefix}to:{node}", _pack(*items))

    def forward_publication(self, realm, topic, publication, args, kwargs, options, info, acknowledge, ppt=None):
        """See :func:`router.cluster._pubsub.forward_publication`."""
        return forward_publication(self, realm, topic, publication, args, kwargs, options, info, acknowledge, ppt)

    # -- what other nodes send ------------------------------------------------------------

    def _message(self, channel: bytes, payload: bytes) -> None:
        try:
            item = msgpack.unpackb(payload, raw=False)
            kind = item[0]
        except Exception as exc:
            _log.error("cluster: unreadable message on {channel}: {error}", channel=channel, error=exc)
            return
        try:
            self._handle(kind, item)
        except Exception:  # one bad message never takes the subscriber connection (and the cluster) down
            _log.failure("cluster: a {kind!r} message on {channel} could not be handled", kind=kind, channel=channel)

    def _handle(self, kind, item: list) -> None:
        if kind == "pub":
            deliver(self, *item[1:])
            return
        if kind == "call":
            self.calls.serve(*item[1:])
            return
        if kind == "result":
            self.calls.answered(*item[1:])
            return
        if kind == "cancel":
            self.calls.remote_cancel(*item[1:])
            return
        if kind == "ask" or kind == "told":
            self.meta.received(kind, item)
            return
        if item[1] == self.name:
            return
        if kind == "sub+":
            self.tables.add(item[1], (item[2], item[3], item[4]))
        elif kind == "sub-":
            self.tables.remove(item[1], (item[2], item[3], item[4]))
        elif kind == "ret":
            receive_retained(self, item[2])
        elif kind == "ses+":
            self.sessions.add(item[1], item[2], item[3], item[4])
        elif kind == "ses-":
            self.sessions.remove(item[1], item[2])
        elif kind == "reg+":
            self.calls.add_procedure(item[1], (item[2], item[3], item[4]), item[5], item[6] if len(item) > 6 else None)
        elif kind == "reg-":
            self.calls.remove_procedure(item[1], (item[2], item[3], item[4]))
        elif kind == "hello":
            self.tables.meet(item[1])
        elif kind == "bye":
            node_left(self, item[1], "it stopped", died=False)
        self._changed()
