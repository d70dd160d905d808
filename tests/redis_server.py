"""
A real ``redis-server`` for the cluster tests, on a unix socket in a temporary
directory (nothing listens on TCP).  ``.ci/run`` installs Debian's
``redis-server`` package where it is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest


class RedisServer:
    """One redis-server process; :meth:`stop` and :meth:`start` again keep its socket path."""

    def __init__(self, directory, *extra: str) -> None:
        """``extra``: more redis-server options (e.g. ``--requirepass``, ``S``)."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not on PATH: install Debian's redis-server package (.ci/run does)")
        self.binary = binary
        self.path = os.path.join(str(directory), "redis.sock")
        self.url = f"unix:{self.path}"
        self.proc: subprocess.Popen | None = None
        self.extra = extra

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", self.path, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--loglevel", "warning", *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers():  # a process start: bounded, no reactor involved yet
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start (exit {self.proc.poll()})")
            time.sleep(0.01)

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(1)
                probe.connect(self.path)
                probe.sendall(b"PING\r\n")
                return probe.recv(64).startswith((b"+PONG", b"-NOAUTH"))  # up (a password or not)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None
        if os.path.exists(self.path):
            os.unlink(self.path)
