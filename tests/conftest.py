"""
Shared fixtures: a router on real loopback sockets in this process (for
autobahn-python clients), and a ``twistd -n wampd`` subprocess (for node).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from router.config import ListenConfig, RealmConfig, RouterConfig
from router.service import RouterService
from tests.wamp_clients import Recorder

ROOT = Path(__file__).resolve().parent.parent


class LiveRouter:
    """A started RouterService and where to reach it."""

    def __init__(self, service: RouterService, recorder: Recorder) -> None:
        self.service = service
        self.recorder = recorder
        by_kind = {e.transport: e for e in service.endpoints}
        self.ws_url = by_kind["websocket"].url
        self.rs_port = by_kind["rawsocket"].port
        self.realm = "realm1"

    def address(self, transport: str):
        return self.ws_url if transport == "websocket" else self.rs_port


@contextmanager
def logged(keep):
    """The router's log events for which ``keep(event)`` is true, collected while the block runs."""
    seen: list = []

    def observe(event):
        if keep(event):
            seen.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(observe)


def in_namespaces(*namespaces):
    """A ``logged`` filter: events logged in one of these namespaces."""
    return lambda event: event.get("log_namespace") in namespaces


def make_service(recorder=None, **overrides) -> RouterService:
    options = dict(
        listen=(
            ListenConfig("tcp:0:interface=127.0.0.1", "websocket"),
            ListenConfig("tcp:0:interface=127.0.0.1", "rawsocket"),
        ),
        realms=(RealmConfig("realm1"), RealmConfig("realm2")),
        default_listener=False,
        listener_timeout=2.0,
        shutdown_timeout=2.0,
    )
    listeners = overrides.pop("listener_objects", None)
    apps = overrides.pop("app_objects", ())  # App instances (RouterConfig.apps names plugins)
    service_reactor = overrides.pop("reactor", reactor)  # e.g. VirtualTime: the router's timers on a Clock
    options.update(overrides)
    pairs = [(None, recorder)] if recorder is not None else []
    return RouterService(RouterConfig(**options), listeners=pairs + list(listeners or ()), reactor=service_reactor, apps=apps)


class VirtualTime(Clock):
    """
    The real reactor for sockets, a :class:`Clock` for timers: a service
    given this runs its pings, timeouts and sweeps when the test advances
    the clock, not when wall-clock time passes.  It starts at the reactor's time.
    """

    def __init__(self, real=reactor) -> None:
        super().__init__()
        self._real = real
        self.advance(real.seconds())

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest_twisted.async_yield_fixture
async def live_router():
    recorder = Recorder()
    service = make_service(recorder)
    await service.startService()
    yield LiveRouter(service, recorder)
    await service.stopService()


# -- a real twistd subprocess --------------------------------------------------


class TwistdRouter:
    """``twistd -n wampd`` in a subprocess; its log is collected in ``lines``."""

    def __init__(self, args=(), cwd=None, env_extra=None) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.update(env_extra or {})
        self.cmd = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "wampd", *args]
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=cwd or ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._partial = ""

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match:
        """Read log lines until one matches ``pattern`` (blocking, bounded)."""
        regex = re.compile(pattern)
        for line in self.lines:
            m = regex.search(line)
            if m:
                return m
        deadline = time.monotonic() + timeout
        import selectors

        # Read the raw descriptor: a buffered readline() after select() can
        # pull several lines into Python's buffer at once, and select() never
        # reports them again (nor does communicate() in stop()).
        fd = self.proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while time.monotonic() < deadline:
                if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self._partial += chunk.decode(errors="replace")
                *done, self._partial = self._partial.split("\n")
                found = None
                for line in done:
                    self.lines.append(line)
                    found = found or regex.search(line)
                if found:
                    return found
        finally:
            sel.close()
        raise AssertionError(f"twistd never logged {pattern!r}; log so far:\n" + "\n".join(self.lines))

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rest, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate()
        self.lines.extend((self._partial + rest).splitlines())
        self._partial = ""
        return self.proc.returncode


@pytest.fixture
def twistd_router():
    started: list[TwistdRouter] = []

    def start(*args, **kwargs) -> TwistdRouter:
        router = TwistdRouter(args, **kwargs)
        started.append(router)
        return router

    yield start
    for router in started:
        if router.proc.poll() is None:
            router.stop(signal.SIGKILL)


class RunningRouter:
    def __init__(self, ws_url: str, realm: str, twistd: TwistdRouter) -> None:
        self.ws_url = ws_url
        self.realm = realm
        self.twistd = twistd


@pytest.fixture(scope="module")
def running_router():
    """A twistd router on a free port, shared by a module's (blocking) tests."""
    router = TwistdRouter(["--listen", "ws:tcp:0:interface=127.0.0.1"])
    try:
        m = router.wait_for(r"listening on (ws://\S+)")
        yield RunningRouter(m.group(1), "realm1", router)
    finally:
        code = router.stop()
        assert code == 0, "\n".join(router.lines)
