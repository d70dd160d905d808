"""
A private ``redis-server`` for ``--workers N`` without ``--cluster``: on a
unix socket in a fresh temporary directory (mode 0700), no TCP port, no
persistence; stopped with the router.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from twisted.internet import defer, protocol, task

from router.cluster._address import RedisAddress
from router.cluster._resp import connect

__all__ = ["PrivateRedis", "RedisMissing"]


class RedisMissing(Exception):
    """No redis-server to start."""


class _Quiet(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.ended = defer.Deferred()
        self.output: list[bytes] = []

    def outReceived(self, data: bytes) -> None:
        self.output.append(data)

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        self.ended.callback(reason.value.exitCode)


class PrivateRedis:
    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.directory: str | None = None
        self.path: str | None = None
        self._process = None
        self._proto: _Quiet | None = None

    @property
    def url(self) -> str:
        return f"unix:{self.path}"

    async def start(self, timeout: float = 10.0) -> str:
        """Start it; returns its URL once it answers.  Raises RedisMissing or RuntimeError."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisMissing(
                "--workers needs redis-server on PATH (Debian/Ubuntu: apt install redis-server), "
                "or a shared one given with --cluster redis://HOST:PORT"
            )
        self.directory = tempfile.mkdtemp(prefix="wampd-redis-")
        self.path = os.path.join(self.directory, "redis.sock")
        args = [binary, "--port", "0", "--unixsocket", self.path, "--unixsocketperm", "700",
                "--save", "", "--appendonly", "no", "--dir", self.directory]
        self._proto = _Quiet()
        self._process = self.reactor.spawnProcess(self._proto, binary, args, env=dict(os.environ))
        waited = 0.0
        while True:
            if self._proto.ended.called:
                text = b"".join(self._proto.output).decode(errors="replace").strip()[-300:]
                raise RuntimeError(f"the private redis-server exited at once: {text}")
            try:
                conn = await connect(self.reactor, RedisAddress(path=self.path))
            except Exception:
                if waited >= timeout:
                    raise RuntimeError(f"the private redis-server did not answer on {self.path} in {timeout:g} s")
                await task.deferLater(self.reactor, 0.05, lambda: None)
                waited += 0.05
                continue
            conn.close()
            return self.url

    async def stop(self) -> None:
        if self._process is not None and not self._proto.ended.called:
            self._process.signalProcess("TERM")
            await self._proto.ended
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
