"""
``--workers N``: N router processes on one machine sharing the listening
ports, joined as a cluster.

The parent process opens every listening socket itself (so a port of 0, a
unix socket and the listen backlog work as with one process) and never
accepts on them; each worker is a ``twistd -n wampd`` child that inherits the
sockets and adopts them (``reactor.adoptStreamPort``), so the kernel hands
each new connection to whichever worker accepts first.  Why not
SO_REUSEPORT: a worker that dies takes the connections waiting in its own
accept queue with it, and it covers TCP only; a shared socket loses nothing
when a worker is restarted.

The HTTP push endpoint (``[http]``, ``--http``) is shared the same way, after
the listen endpoints.  An ``ssl:`` endpoint is shared as its TCP socket, and
each worker speaks TLS on it with the endpoint's own certificate options
(:mod:`router.workers_tls`).

Without ``--cluster`` the parent starts a private ``redis-server`` on a unix
socket (:mod:`router.cluster._private`) for the workers to meet in.  A worker
that exits is restarted (after 0.5 s, up to 30 s when it keeps dying at
once); the other workers drop its sessions within the cluster timeout.
SIGTERM or SIGINT stop every worker gracefully (each sends its clients GOODBYE
and fires its lifecycle events), then Redis; the exit status is 0.  SIGHUP is
passed to every worker, which reloads its configuration.  If this process is
killed outright (SIGKILL), each worker notices within a second that its
parent is gone and stops, and one of them shuts the private Redis down
(:func:`router.clustering.watch_parent`).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from router.cluster._private import PrivateRedis
from router.workers_tls import open_shared

__all__ = ["WorkerPool", "worker_argv"]

_log = Logger(namespace="wampd.workers")
_TWISTD = "from twisted.scripts.twistd import run; run()"


def worker_argv(argv: list[str], fds: str, cluster_url: str | None) -> list[str]:
    """A worker's wampd options: the parent's, without ``--workers``, with the inherited sockets (and Redis)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    out += ["--worker-fds", fds]
    if cluster_url is not None:
        out += ["--cluster", cluster_url]
    return out


class _Worker(protocol.ProcessProtocol):
    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool, self.index = pool, index
        self.ended = defer.Deferred()
        self.started = pool.reactor.seconds()

    def processEnded(self, reason) -> None:
        self.ended.callback(None)
        self.pool._ended(self, reason.value.exitCode, reason.value.signal)


class _NoAccept(protocol.Factory):
    """The parent never accepts: its ports stop reading at once."""

    noisy = False


class WorkerPool(Service):
    def __init__(self, config: Any, argv: list[str], count: int, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor  # lazy: the reactor is passed in; the global one is only the default
        self.config, self.argv, self.count, self.reactor = config, list(argv), count, reactor
        self.ports: list = []
        self.workers: dict[int, tuple[Any, _Worker]] = {}
        self.redis: PrivateRedis | None = None
        self._stopping = False
        self._restart_delay = {index: 0.5 for index in range(count)}

    # -- starting -------------------------------------------------------------------

    def startService(self):
        super().startService()
        http = self.config.http  # the HTTP push endpoint is shared too, after the listen endpoints
        shared = [(f"{listen.transport}:{listen.endpoint}", listen.endpoint, listen.backlog) for listen in self.config.listen]
        shared += [(f"http:{http.endpoint}", http.endpoint, None)] if http is not None else []
        for shown, endpoint, backlog in shared:
            got: list = []
            try:
                # Twisted's tcp:, ssl: and unix: endpoints listen at once: the Deferred has fired
                open_shared(self.reactor, endpoint, backlog, _NoAccept()).addBoth(got.append)
                if not got:
                    raise RuntimeError("the endpoint did not listen at once")
                if isinstance(got[0], Failure):
                    got[0].raiseException()
                port = got[0]
            except Exception as exc:
                _log.critical("wampd did not start: could not listen on {endpoint}: {error}", endpoint=shown, error=exc)
                for opened in self.ports:
                    opened.stopListening()
                raise SystemExit(1) from None
            if hasattr(port, "stopReading"):
                port.stopReading()  # the workers accept, never the parent
            self.ports.append(port)
        # now, and again once the reactor runs (twistd installs its own then, which would
        # re-raise the signal at exit: a graceful stop must exit with status 0)
        self._install_signal_handlers()
        self.reactor.callWhenRunning(self._install_signal_handlers)
        defer.ensureDeferred(self._start()).addErrback(self._failed)

    def _install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda n, f: self.reactor.callFromThread(self._signalled, signal.Signals(n).name))
        signal.signal(signal.SIGHUP, lambda n, f: self.reactor.callFromThread(self._reload))

    def _reload(self) -> None:
        """SIGHUP: every worker reloads its configuration (each logs what it applied or refused)."""
        _log.info("received SIGHUP: asking {count} workers to reload their configuration", count=self.count)
        for process, worker in self.workers.values():
            if not worker.ended.called:
                process.signalProcess("HUP")

    async def _start(self) -> None:
        url = None
        if self.config.cluster is None:
            self.redis = PrivateRedis(self.reactor)
            url = await self.redis.start()
            _log.info("wampd: private redis-server started (pid {pid}) on {url}", pid=self.redis.pid, url=url)
        self._fds = ",".join(
            f"{port.fileno()}:{'unix' if port.getHost().type == 'UNIX' else 'inet6' if ':' in (port.getHost().host or '') else 'inet'}"
            for port in self.ports
        )
        self._url = url
        for index in range(self.count):
            self._spawn(index)
        transports = [listen.transport for listen in self.config.listen] + ["http push"]
        for transport, port in zip(transports, self.ports):
            address = port.getHost()
            where = f"{getattr(address, 'host', address)}:{getattr(address, 'port', '')}"
            _log.info("wampd: {count} workers serving {transport} on {where}", count=self.count,
                      transport=transport, where=where)

    def _failed(self, failure) -> None:
        _log.critical("wampd did not start: {error}", error=failure.getErrorMessage())
        self.reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
        self.reactor.stop()

    def _spawn(self, index: int) -> None:
        argv = [sys.executable, "-c", _TWISTD, "-n", "--pidfile=", "wampd",
                *worker_argv(self.argv, self._fds, self._url)]
        child_fds = {0: 0, 1: 1, 2: 2}
        for port in self.ports:
            child_fds[port.fileno()] = port.fileno()
        worker = _Worker(self, index)
        env = dict(os.environ, WAMPD_PARENT_PID=str(os.getpid()))  # router.clustering.watch_parent
        if self.redis is not None:  # a worker that outlives this process shuts the private Redis down
            env["WAMPD_PRIVATE_REDIS"] = "1"
        process = self.reactor.spawnProcess(worker, sys.executable, argv, env=env, childFDs=child_fds)
        self.workers[index] = (process, worker)
        _log.info("wampd: worker {index} started (pid {pid})", index=index, pid=process.pid)

    def _ended(self, worker: _Worker, code, sig) -> None:
        if self._stopping:
            return
        lived = self.reactor.seconds() - worker.started
        delay = self._restart_delay[worker.index] = (
            min(self._restart_delay[worker.index] * 2, 30.0) if lived < 5 else 0.5
        )
        _log.warn("wampd: worker {index} exited ({how}); restarting it in {delay:g} s", index=worker.index,
                  how=f"signal {sig}" if sig else f"status {code}", delay=delay)
        self.reactor.callLater(delay, self._respawn, worker.index)

    def _respawn(self, index: int) -> None:
        if not self._stopping:
            self._spawn(index)

    # -- stopping -------------------------------------------------------------------

    def _signalled(self, name: str) -> None:
        _log.info("received {signal}: stopping {count} workers gracefully", signal=name, count=self.count)
        if self.reactor.running:
            self.reactor.stop()

    def stopService(self):
        super().stopService()
        self._stopping = True
        return defer.ensureDeferred(self._stop())

    async def _stop(self) -> None:
        waits = []
        for process, worker in self.workers.values():
            if not worker.ended.called:
                try:
                    process.signalProcess("TERM")
                except Exception:
                    continue
                waits.append(worker.ended)
        if waits:
            grace = self.config.shutdown_timeout + 10.0
            timer = self.reactor.callLater(grace, self._kill_stragglers)
            await defer.DeferredList(waits)
            if timer.active():
                timer.cancel()
        for port in self.ports:
            port.stopListening()
        if self.redis is not None:
            await self.redis.stop()

    def _kill_stragglers(self) -> None:
        for process, worker in self.workers.values():
            if not worker.ended.called:
                _log.warn("wampd: worker {index} did not stop in time; killing it", index=worker.index)
                process.signalProcess("KILL")
