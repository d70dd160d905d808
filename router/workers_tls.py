"""
The listening sockets ``--workers`` shares: the parent opens them
(:func:`open_shared`), each worker adopts them (:func:`adopt`).

``tcp:``, ``tcp6:`` and ``unix:`` endpoints are shared as they are.  An
``ssl:`` endpoint is shared as its TCP socket: the parent listens on the
endpoint's own port, interface and backlog, and never speaks TLS (it never
accepts); its certificate options are read there all the same, so a missing
or unreadable key stops the start before any worker runs.  Each worker builds
the same ``ssl:`` endpoint from the same string (the certificate, key, chain,
DH parameters and TLS methods it names) and wraps every connection it accepts
on the adopted socket in TLS with that endpoint's context factory, as Twisted's
own ``listenSSL`` does (``TLSMemoryBIOFactory``), client certificates
included when the listen asks for them (:mod:`router.wire.tls`).  So a TLS
client gets the same certificate, and the same checks, whichever worker
accepts it.

Only public Twisted API: the endpoint is built from its string against a
stand-in reactor whose ``listenSSL`` opens a plain TCP port (in the parent) or
adopts the inherited socket (in a worker).
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString

from router.config import effective_endpoint
from router.wire.tls import listening_reactor

__all__ = ["SHARED_TYPES", "endpoint_type", "open_shared", "adopt"]

#: The endpoint types ``--workers`` can share.
SHARED_TYPES = frozenset({"tcp", "tcp6", "unix", "ssl"})


def endpoint_type(endpoint: str) -> str:
    """``ssl`` for ``ssl:8443:privateKey=...`` (a colon escaped with a backslash doesn't count)."""
    return re.split(r"(?<!\\):", endpoint.strip(), maxsplit=1)[0].strip().lower()


class _Stand:
    """The reactor, but ``listenSSL`` is this class's own."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)


class _OpenTCP(_Stand):
    """In the parent: an ``ssl:`` endpoint's socket, as plain TCP (it is never accepted on here)."""

    def listenSSL(self, port, factory, contextFactory, backlog=50, interface=""):  # noqa: N802, N803 (Twisted's names)
        return self._reactor.listenTCP(port, factory, backlog, interface)


class _AdoptTLS(_Stand):
    """In a worker: the inherited socket, each connection wrapped in TLS with the endpoint's context factory."""

    def __init__(self, reactor: Any, fd: int, family: int) -> None:
        super().__init__(reactor)
        self._fd, self._family = fd, family

    def listenSSL(self, port, factory, contextFactory, backlog=50, interface=""):  # noqa: N802, N803 (Twisted's names)
        from twisted.protocols.tls import TLSMemoryBIOFactory  # lazy: only ssl: endpoints under --workers

        return self._reactor.adoptStreamPort(self._fd, self._family, TLSMemoryBIOFactory(contextFactory, False, factory))


def open_shared(reactor: Any, endpoint: str, backlog: int | None, factory: Any) -> Deferred:
    """The parent's port for ``endpoint`` (an ``ssl:`` one as its TCP socket); Twisted's listen at once."""
    if endpoint_type(endpoint) == "ssl":
        reactor = _OpenTCP(reactor)
    return serverFromString(reactor, effective_endpoint(endpoint, backlog)).listen(factory)


def adopt(reactor: Any, endpoint: str, fd: int, family: int, factory: Any) -> Any:
    """A worker's port on the inherited socket ``fd`` for ``endpoint`` (with TLS for an ``ssl:`` one), or a Deferred of it."""
    if endpoint_type(endpoint) != "ssl":
        return reactor.adoptStreamPort(fd, family, factory)
    stand = listening_reactor(_AdoptTLS(reactor, fd, family), factory)  # client certificates, if asked for
    return serverFromString(stand, endpoint).listen(factory)
