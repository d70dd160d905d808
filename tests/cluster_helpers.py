"""Cluster test fixtures: a real redis-server, and in-process router nodes joined through it."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from router.cluster import parse_redis_url
from router.cluster._node import ClusterNode
from tests.conftest import LiveRouter, make_service
from tests.redis_server import RedisServer
from tests.wamp_clients import Recorder


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


class Nodes:
    """Started routers, each a cluster node; stopped at the end of the test."""

    def __init__(self, redis) -> None:
        self.redis = redis
        self.started: list[tuple[LiveRouter, ClusterNode]] = []

    async def add(self, name: str, realms=None, config: dict | None = None, **options) -> tuple[LiveRouter, ClusterNode]:
        """
        Start a router (``realms``: RealmConfigs instead of the defaults; ``config``: other
        RouterConfig fields) and join it as node ``name`` (``options``: ClusterNode's).
        """
        overrides = dict(config or {}, **({"realms": realms} if realms is not None else {}))
        service = make_service(Recorder(), **overrides)
        await service.startService()
        live = LiveRouter(service, service.router.dispatcher)
        options.setdefault("heartbeat", 0.1)
        options.setdefault("timeout", 0.6)
        node = ClusterNode(service.router, parse_redis_url(self.redis.url), name=name, reactor=reactor, **options)
        self.started.append((live, node))
        await node.start()
        return live, node

    async def close(self) -> None:
        for live, node in reversed(self.started):
            await node.stop()
            await live.service.stopService()


@pytest_twisted.async_yield_fixture
async def nodes(redis):
    made = Nodes(redis)
    yield made
    await made.close()
