"""One long-poll transport: the session's peer (see :mod:`router.wire.longpoll`)."""

from __future__ import annotations

from autobahn.wamp import message as _message
from twisted.logger import Logger
from twisted.web import http, server
from zope.interface import implementer

from router.interfaces import IPeer
from router.wire.outbound import INVALID_ARGUMENT, OutboundFull

__all__ = ["Answer", "LongPollTransport"]

_log = Logger(namespace="wampd.transport")
_EVENT = _message.Event
_UNLIMITED = 2**63
_MIME = {"json": b"application/json", "msgpack": b"application/x-msgpack"}


class Answer(Exception):
    """An HTTP answer that ends a request: status and a plain-text reason."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


@implementer(IPeer)
class LongPollTransport:
    """One long-poll transport: the session's peer, a queue of encoded messages and at most one held receive."""

    send_failure = INVALID_ARGUMENT
    max_send = _UNLIMITED
    dropped_events = 0

    def __init__(self, owner, tid: str, serializer: str, batched: bool, origin: bytes | None) -> None:
        self.owner = owner
        self.id = tid
        self.codec = owner.codecs[serializer]
        self.serializer = serializer
        self.batched = batched
        self.origin = origin
        self.wampd_session = None
        self._queue: list[bytes] = []
        self._queued = 0
        self._request = None  # the held receive
        self._timer = None
        self._closing = False
        self.ended = False

    # -- the peer the session speaks to ------------------------------------------

    def send(self, msg) -> bool:
        try:
            data = self.codec.encode(msg)
        except Exception as exc:
            _log.error("cannot encode a message for long-poll transport {tid}: {error}", tid=self.id, error=exc)
            self.send_failure = INVALID_ARGUMENT
            return False
        if self.ended or self._closing:
            return True
        owner = self.owner
        size = len(data)
        if self._queued + size > owner.max_outbound:
            if owner.drop_events and type(msg) is _EVENT:
                self.dropped_events += 1
            else:
                self.wampd_session.slow_consumer(
                    OutboundFull(self._queued, size, owner.max_outbound, owner.drop_events)
                )
            return True
        self._queue.append(data)
        self._queued += size
        if self._request is not None:
            self._deliver()
        return True

    def send_paced(self, msgs) -> None:
        """The queue is the pacing: each message joins it (within the byte bound)."""
        for msg in msgs:
            self.send(msg)

    def close(self) -> None:
        """End in order: what is queued (a GOODBYE, an ABORT) is still handed to the next receive."""
        self._closing = True
        if not self._queue:
            self._end(True, None)

    def abort(self, reason: str | None = None) -> None:
        self._end(False, reason)

    # -- requests ----------------------------------------------------------------

    def receive(self, request):
        if self._request is not None:
            self._finish(self._request, http.NO_CONTENT)  # a newer poll replaces it
        self._request = request
        request.notifyFinish().addErrback(lambda _: self._gone(request))
        if self._queue:
            self._deliver()
        elif self._closing:
            self._end(True, None)
        else:
            self._arm()
        return server.NOT_DONE_YET

    def _gone(self, request) -> None:
        if self._request is request:
            self._request = None
            if not self.ended:
                self._arm()

    def _deliver(self) -> None:
        request, self._request = self._request, None
        if self.batched:
            batch, self._queue = self._queue, []
            if self.serializer == "json":
                body = b"".join(data + b"\x1e" for data in batch)
            else:
                body = b"".join(len(data).to_bytes(4, "big") + data for data in batch)
            self._queued = 0
        else:
            body = self._queue.pop(0)
            self._queued -= len(body)
        self.owner.headers(request, self.origin)
        request.setHeader(b"content-type", _MIME[self.serializer])
        request.write(body)
        request.finish()
        if self._closing and not self._queue:
            self._end(True, None)
        else:
            self._arm()

    def messages(self, body: bytes) -> list[bytes]:
        """The payloads of a send request's body."""
        if not self.batched:
            return [body]
        if self.serializer == "json":
            return [part for part in body.split(b"\x1e") if part]
        parts, at = [], 0
        while at < len(body):
            if len(body) - at < 4:
                raise Answer(400, "a truncated msgpack batch")
            size = int.from_bytes(body[at : at + 4], "big")
            parts.append(body[at + 4 : at + 4 + size])
            at += 4 + size
            if at > len(body):
                raise Answer(400, "a truncated msgpack batch")
        return parts

    # -- time ----------------------------------------------------------------------

    def _arm(self) -> None:
        """One timer: a held receive is answered empty at request_timeout; no receive for session_timeout drops it."""
        owner = self.owner
        delay = owner.request_timeout if self._request is not None else owner.session_timeout
        timer = self._timer
        if timer is not None and timer.active():
            timer.reset(delay)
        else:
            self._timer = owner.clock.callLater(delay, self._timed_out)

    def _timed_out(self) -> None:
        self._timer = None
        if self._request is not None:
            self._finish(self._request, http.NO_CONTENT)
            self._request = None
            self._arm()
        else:
            self.abort(f"long-poll client stopped polling: no receive request for {self.owner.session_timeout:g}s")

    def _finish(self, request, status: int) -> None:
        self.owner.headers(request, self.origin)
        request.setResponseCode(status)
        request.finish()

    def _end(self, orderly: bool, reason: str | None) -> None:
        if self.ended:
            return
        self.ended = True
        self._queue, self._queued = [], 0
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        request, self._request = self._request, None
        if request is not None:
            self.owner.headers(request, self.origin)
            request.setResponseCode(http.GONE)
            request.write(b"transport closed")
            request.finish()
        self.owner.transports.pop(self.id, None)
        try:
            if self.wampd_session is not None:
                self.wampd_session.lost(orderly, None, reason)
        finally:
            self.owner.router.release(self)
