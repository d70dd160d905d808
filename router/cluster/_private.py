"""
A private ``redis-server`` for ``--workers N`` without ``--cluster``: on a
unix socket in a fresh temporary directory (mode 0700), no TCP port, no
persistence; stopped with the router.

If it exits while the router runs (killed, out of memory), it is started
again on the same socket after 0.5 s (the delay doubles, up to 30 s, while it
keeps dying within 5 s of starting).  The workers ride the outage as nodes
ride any Redis outage: they keep routing their own clients, reconnect, and
write their state into the new, empty Redis.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from twisted.internet import defer, protocol, task
from twisted.logger import Logger

from router.cluster._address import RedisAddress
from router.cluster._resp import connect

__all__ = ["PrivateRedis", "RedisMissing"]

_log = Logger(namespace="wampd.workers")


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
        self._stopping = False
        self._started_at = 0.0
        self._delay = 0.5
        self._pending = None  # the restart's DelayedCall

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
        self._binary = binary
        self._spawn()
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
            self._proto.ended.addCallback(self._exited)
            return self.url

    @property
    def pid(self) -> int | None:
        return getattr(self._process, "pid", None)

    def _spawn(self) -> None:
        args = [self._binary, "--port", "0", "--unixsocket", self.path, "--unixsocketperm", "700",
                "--save", "", "--appendonly", "no", "--dir", self.directory]
        self._proto = _Quiet()
        self._started_at = self.reactor.seconds()
        self._process = self.reactor.spawnProcess(self._proto, self._binary, args, env=dict(os.environ))

    def _exited(self, code) -> None:
        if self._stopping:
            return
        lived = self.reactor.seconds() - self._started_at
        self._delay = min(self._delay * 2, 30.0) if lived < 5 else 0.5
        text = b"".join(self._proto.output).decode(errors="replace").strip()[-200:]
        _log.warn("wampd: the private redis-server exited ({how}); restarting it in {delay:g} s{tail}",
                  how=f"status {code}" if code is not None else "killed by a signal", delay=self._delay,
                  tail=f": {text}" if code and text else "")
        self._pending = self.reactor.callLater(self._delay, self._restart)

    def _restart(self) -> None:
        self._pending = None
        if self._stopping:
            return
        try:
            os.unlink(self.path)  # a killed server leaves its socket file behind
        except OSError:
            pass
        self._spawn()
        self._proto.ended.addCallback(self._exited)
        _log.info("wampd: private redis-server restarted (pid {pid}) on {url}", pid=self.pid, url=self.url)

    async def stop(self) -> None:
        self._stopping = True
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        if self._process is not None and not self._proto.ended.called:
            self._process.signalProcess("TERM")
            await self._proto.ended
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
