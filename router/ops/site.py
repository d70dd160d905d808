"""The HTTP side of operations: one resource for /metrics, /healthz, /readyz and /status*, and its Site."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.web import resource, server

from router.ops.health import Health

__all__ = ["OpsResource", "ops_site"]

_log = Logger(namespace="wampd.ops")


class OpsResource(resource.Resource):
    """
    Answers the operations paths; ``serves(path)`` says which (the push
    endpoint hands those over when they share its port).  ``metrics`` and
    ``status`` are None where they are not served on this listener.
    """

    isLeaf = True

    def __init__(self, health: Health, metrics: Any = None, status: Any = None) -> None:
        super().__init__()
        self.health, self.metrics, self.status = health, metrics, status

    def serves(self, path: bytes | None) -> bool:
        if path is None:
            return False
        path = path.partition(b"?")[0]
        if path in (b"/healthz", b"/readyz"):
            return True
        if path == b"/metrics":
            return self.metrics is not None
        return self.status is not None and (path == b"/status" or path.startswith(b"/status/"))

    def render(self, request):
        path = request.path
        if path.startswith(b"/status") and self.status is not None:
            return self.status.render(request)
        request.setHeader(b"cache-control", b"no-store")
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return _text(request, 405, b"use GET\n")
        if path == b"/healthz":
            return _text(request, 200, b"ok\n")
        if path == b"/readyz":
            return self._ready(request)
        if path == b"/metrics" and self.metrics is not None:
            from router.ops.metrics import CONTENT_TYPE  # lazy: prometheus_client is an optional extra

            request.setHeader(b"content-type", CONTENT_TYPE)
            return self.metrics.render()
        return _text(request, 404, b"not found\n")

    def _ready(self, request):
        gone = []
        request.notifyFinish().addErrback(gone.append)

        def answer(result):
            ready, lines = result
            if gone:
                return
            request.setResponseCode(200 if ready else 503)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            request.write(("ready\n" if ready else "not ready\n").encode() + "".join(f"{line}\n" for line in lines).encode())
            request.finish()

        def failed(failure):
            _log.failure("the readiness check failed; answering 503", failure=failure)
            answer((False, ["the readiness check failed"]))

        maybeDeferred(self.health.ready).addCallback(answer).addErrback(failed)
        return server.NOT_DONE_YET


def _text(request, status: int, body: bytes) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return body


class _Request(server.Request):
    def setHeader(self, name, value):
        """Every header but ``Server``: wampd does not name itself or its version to anyone who asks."""
        if name.lower() != b"server":
            super().setHeader(name, value)


def ops_site(ops: OpsResource) -> server.Site:
    """A Site of its own for the operations paths (their own endpoint)."""
    site = server.Site(ops)
    site.requestFactory = _Request
    site.noisy = False
    site.displayTracebacks = False
    return site
