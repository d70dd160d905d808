"""
Pushing from any program through Redis (what Gos users did with ZMQ or AMQP
pushers): a JSON object appended to the list ``P push:<realm>`` is published
in that realm, once, by whichever node pops it first::

    redis-cli RPUSH wampd:push:realm1 '{"topic": "com.example.news", "args": ["hello"]}'

The object has ``topic`` (a URI outside ``wamp.*``), and optionally ``args``
(a list), ``kwargs`` (an object) and ``options`` (``exclude``,
``exclude_authid``, ``exclude_authrole``, ``eligible``, ``eligible_authid``,
``eligible_authrole``, ``retain``).  Each push is authorized as a PUBLISH by
a session of the configured ``push_role`` (the realm's roles or dynamic
authorizer decide; a realm where anonymous sessions need no checks admits
every push, as it admits every anonymous PUBLISH); a push that is refused, or that
is not such an object, is dropped and logged (at most one line a second, with
the number dropped).  Lists rather than Redis pub/sub: a list hands each item
to exactly one reader, so a push is published once whatever the number of
nodes.  One node at a time reads (a lease renewed every heartbeat, taken over
within the cluster timeout when its holder dies), so pushes are published in
the order they were pushed.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from router.cluster._resp import connect
from router.events import ConnectionInfo, SessionInfo
from router.uri import is_reserved, is_valid_uri

__all__ = ["PushReader", "push_problem"]

_log = Logger(namespace="wampd.cluster.push")
# KEYS[1] the lease; ARGV[1] this node, ARGV[2] ms: renew it if ours, take it if free
_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_OPTIONS = ("exclude", "exclude_authid", "exclude_authrole", "eligible", "eligible_authid", "eligible_authrole", "retain")


def push_problem(item: Any) -> str | None:
    """What is wrong with one decoded push, or None."""
    if not isinstance(item, dict):
        return f"a push must be a JSON object, got {type(item).__name__}"
    unknown = set(item) - {"topic", "args", "kwargs", "options"}
    if unknown:
        return f"unknown keys {sorted(unknown)} (topic, args, kwargs, options)"
    topic = item.get("topic")
    if not isinstance(topic, str) or not is_valid_uri(topic):
        return f"'topic' must be a valid URI, got {topic!r}"
    if is_reserved(topic):
        return f"'topic' {topic!r} is reserved for the router (wamp.*)"
    if not isinstance(item.get("args", []), list):
        return "'args' must be a list"
    if not isinstance(item.get("kwargs", {}), dict):
        return "'kwargs' must be an object"
    options = item.get("options", {})
    if not isinstance(options, dict) or set(options) - set(_OPTIONS):
        return f"'options' must be an object with only {', '.join(_OPTIONS)}"
    return None


class PushReader:
    """Pops pushes for every realm of ``node.router`` and publishes them as ``role``."""

    def __init__(self, node: Any, role: str) -> None:
        self.node, self.role = node, role
        self._conn = None
        self._running = False
        self._dropped = 0
        self._last_log = 0.0
        self.published = 0

    def start(self) -> None:
        self._running = True
        defer.ensureDeferred(self._loop())

    def stop(self) -> None:
        self._running = False
        if self._conn is not None:
            self._conn.close()

    async def _loop(self) -> None:
        node = self.node
        keys = [f"{node.prefix}push:{name}" for name in node.router.realms]
        lease = f"{node.prefix}push-reader"
        wait = node.heartbeat
        while self._running:
            try:
                if self._conn is None or not self._conn.connected:
                    self._conn = await connect(node.reactor, node.address)
                held = await self._conn.command("EVAL", _LEASE, 1, lease, node.name, int(node.timeout * 1000))
                if not held:  # another node reads: wait for its lease to lapse
                    await task.deferLater(node.reactor, wait, lambda: None)
                    continue
                popped = await self._conn.command("BLPOP", *keys, f"{wait:g}")
            except Exception:
                self._conn = None
                if self._running:  # Redis is away: the node logs the outage; try again shortly
                    await task.deferLater(node.reactor, 1.0, lambda: None)
                continue
            if popped is not None:
                key, raw = popped
                await self._publish(key.decode()[len(node.prefix) + len("push:"):], raw)

    async def _publish(self, realm_name: str, raw: bytes) -> None:
        realm = self.node.router.realms.get(realm_name)
        try:
            item = json.loads(raw)
        except ValueError as exc:
            return self._drop(realm_name, f"not JSON: {exc}")
        problem = push_problem(item)
        if problem is not None or realm is None:
            return self._drop(realm_name, problem or "no such realm")
        topic = item["topic"]
        authorizer = realm.authorizer
        open_realm = authorizer is None or getattr(authorizer, "open_anonymous", False)
        if not open_realm and not await self._allowed(realm, topic):
            return self._drop(realm_name, f"role {self.role!r} may not publish to {topic!r}")
        realm.api.publish(topic, *item.get("args", []), options=item.get("options") or None, **item.get("kwargs", {}))
        self.published += 1

    async def _allowed(self, realm, topic: str) -> bool:
        info = SessionInfo(0, realm.name, "redis-push", self.role, "redis", "redis",
                           ConnectionInfo(0, "redis", "redis", None, None, "redis", 0.0), 0.0)
        try:
            return (await defer.maybeDeferred(realm.authorizer.authorize, info, "publish", topic)) is True
        except Exception:
            return False  # fail closed

    def _drop(self, realm: str, why: str) -> None:
        self._dropped += 1
        now = self.node.reactor.seconds()
        if now - self._last_log >= 1.0:
            _log.warn("cluster: dropped {count} push(es) to realm {realm}; the last because {why}",
                      count=self._dropped, realm=realm, why=why)
            self._dropped = 0
            self._last_log = now
