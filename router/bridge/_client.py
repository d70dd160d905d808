"""One bounded HTTP POST: a timeout on the whole exchange and a limit on the response body."""

from __future__ import annotations

import base64

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.protocol import Protocol
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

__all__ = ["HttpFailure", "as_json", "post"]


class HttpFailure(Exception):
    """A POST that got no usable answer: ``kind`` is ``timeout``, ``unreachable`` or ``too_large``."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind, self.text = kind, text


@implementer(IBodyProducer)
class _Bytes:
    """A request body already in memory, written at once."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self.data)
        return succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


class _Body(Protocol):
    """Collects a response body up to ``limit`` bytes; past it the connection is dropped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = Deferred(lambda _: self._stop())

    def _stop(self) -> None:
        if self.transport is not None:
            self.transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            self.chunks = []
            if not self.done.called:
                self.done.errback(HttpFailure("too_large", f"the response is over {self.limit} bytes"))
            self._stop()
            return
        self.chunks.append(data)

    def connectionLost(self, reason) -> None:
        if self.done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(HttpFailure("unreachable", f"the response was cut off: {reason.getErrorMessage()}"))


def post(agent, clock, url: str, body: bytes, headers, timeout: float, max_response: int) -> Deferred:
    """
    POST ``body`` (JSON) to ``url``; fires with ``(status, response body)``
    or fails with :class:`HttpFailure`.  Cancelling it drops the request.
    """
    sent = Headers({b"content-type": [b"application/json"], b"user-agent": [b"wampd"]})
    for name, value in headers.items():
        sent.setRawHeaders(name.encode("latin-1"), [value.encode("latin-1")])
    d = agent.request(b"POST", url.encode(), sent, _Bytes(body))

    def read(response):
        collector = _Body(max_response)
        response.deliverBody(collector)
        if isinstance(response.length, int) and response.length > max_response:
            collector.done.addErrback(lambda _: None)
            collector._stop()  # not read: the connection is dropped
            raise HttpFailure("too_large", f"the response is {response.length} bytes, over {max_response}")
        return collector.done.addCallback(lambda data: (response.code, data))

    d.addCallback(read)
    # not addTimeout: a cancelled request fails with ResponseNeverReceived, which it does not recognize
    expired = []

    def expire():
        expired.append(True)
        d.cancel()

    timer = clock.callLater(timeout, expire)

    def settled(result):
        if timer.active():
            timer.cancel()
        return result

    d.addBoth(settled)

    def failed(failure):
        if expired:
            raise HttpFailure("timeout", f"no answer within {timeout:g}s")
        if failure.check(HttpFailure):
            return failure
        if failure.check(CancelledError):
            return failure
        raise HttpFailure("unreachable", failure.getErrorMessage() or failure.type.__name__)

    return d.addErrback(failed)


def as_json(value):
    """``json.dumps``'s ``default``: binary payloads (msgpack, CBOR clients) as base64 text."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
