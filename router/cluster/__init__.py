"""
Many router processes, on one machine or many, serving the same realms as one
router, coordinated through Redis (the ``wampd[cluster]`` extra).  See the
README's "Cluster" section and :mod:`router.cluster._node`.
"""

from router.cluster._node import ClusterError, ClusterNode, default_node_name
from router.cluster._resp import RedisAddress, RedisError, parse_redis_url

__all__ = ["ClusterNode", "ClusterError", "RedisAddress", "RedisError", "parse_redis_url", "default_node_name"]
