"""
Many router processes, on one machine or many, serving the same realms as one
router, coordinated through Redis (the ``wampd[cluster]`` extra).  See the
README's "Cluster" section and :mod:`router.cluster._node`.

This package's ``__init__`` imports no Redis client, so checking a config
needs no extra; :class:`~router.cluster._node.ClusterNode` lives in
``router.cluster._node`` (``hiredis`` needed).
"""

from router.cluster._address import RedisAddress, parse_redis_url

__all__ = ["RedisAddress", "parse_redis_url"]
