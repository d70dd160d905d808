"""
WAMP over HTTP long-poll, as the WAMP spec's advanced profile describes it
and Crossbar and autobahn-js speak it, for clients that cannot open a
WebSocket.  Under a base path (``/lp`` by default)::

    POST <base>/open                {"protocols": ["wamp.2.json", ...]}
         -> 200 {"transport": "<id>", "protocol": "wamp.2.json"}
    POST <base>/<id>/send           one WAMP message (batched: several)  -> 204
    POST <base>/<id>/receive        held until a message waits           -> 200 with it
                                    (request_timeout with nothing: 204)
    POST <base>/<id>/close          -> 204

Protocols: ``wamp.2.json``, ``wamp.2.msgpack`` and their ``.batched``
forms (JSON messages each followed by ``\\x1e``; msgpack ones each after a
4-byte big-endian length).  Unbatched, a receive answers one message;
batched, every message waiting.

Decisions where the spec and the clients differ: ``send`` and ``close``
answer 204, as Crossbar does, not the spec's 202 (autobahn-js takes only
200 and 204 as success and closes its transport on 202).  A receive with
nothing to deliver after ``request_timeout`` (10 s; autobahn-js gives up
after 12 s) is answered 204 and the client polls again.  The transport ID is
128 random bits: it is the only credential of send/receive/close.

Each transport is a connection like any other: counted by
``max_connections`` and ``max_connections_per_address`` from ``/open``
(one over is 503), vetted by the connection policy and the listeners (403),
its messages limited by ``max_message_size`` (a bigger send is 413, and the
session is aborted), its queue of messages waiting for a receive bounded by
``max_outbound_buffer`` bytes under the ``slow_consumer`` policy, and its
session bound by the HELLO timeout.  A transport that goes
``session_timeout`` seconds (30) without a receive request is dropped
(``client_disconnected`` says so).  Each transport holds one timer, reset
as it polls; connections on other transports pay nothing for this module.
"""

from __future__ import annotations

import json
import secrets

from autobahn.wamp import message as _message
from twisted.logger import Logger
from twisted.web import http, resource, server
from zope.interface import implementer

from router.errors import BadRequest, UriError, WireError
from router.events import Reject
from router.interfaces import IPeer
from router.wire._address import describe
from router.wire.codec import codecs, refuse
from router.wire.outbound import INVALID_ARGUMENT, OutboundFull

__all__ = ["LongPollResource", "LongPollTransport", "longpoll_site"]

_log = Logger(namespace="wampd.transport")
_DECODE_ERRORS = (WireError, UriError, BadRequest)
_EVENT = _message.Event
_UNLIMITED = 2**63
_PROTOCOLS = {
    "wamp.2.json": ("json", False),
    "wamp.2.json.batched": ("json", True),
    "wamp.2.msgpack": ("msgpack", False),
    "wamp.2.msgpack.batched": ("msgpack", True),
}
_MIME = {"json": b"application/json", "msgpack": b"application/x-msgpack"}
_MAX_OPEN_BODY = 4096


class _Answer(Exception):
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

    def __init__(self, owner: LongPollResource, tid: str, serializer: str, batched: bool, origin: bytes | None) -> None:
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
                raise _Answer(400, "a truncated msgpack batch")
            size = int.from_bytes(body[at : at + 4], "big")
            parts.append(body[at + 4 : at + 4 + size])
            at += 4 + size
            if at > len(body):
                raise _Answer(400, "a truncated msgpack batch")
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


class LongPollResource(resource.Resource):
    """The long-poll transport under ``base`` (a leaf: it routes its own paths)."""

    isLeaf = True

    def __init__(
        self,
        router,
        *,
        base: str = "/lp",
        endpoint: str = "",
        request_timeout: float = 10.0,
        session_timeout: float = 30.0,
        max_message_size: int = 1048576,
        max_outbound_buffer: int = 1048576,
        slow_consumer: str = "disconnect",
    ) -> None:
        super().__init__()
        self.router = router
        self.clock = router.clock
        self.base = base.rstrip("/").encode()
        self.endpoint = endpoint
        self.request_timeout = request_timeout
        self.session_timeout = session_timeout
        self.max_body = max(max_message_size, _MAX_OPEN_BODY)
        self.max_message_size = max_message_size
        self.max_outbound = max_outbound_buffer or _UNLIMITED
        self.drop_events = slow_consumer == "drop"
        self.codecs = codecs(router)
        self.transports: dict[str, LongPollTransport] = {}

    def render(self, request):
        path = request.path
        try:
            if not path.startswith(self.base + b"/"):
                raise _Answer(404, "no long-poll transport here")
            parts = path[len(self.base) + 1 :].split(b"/")
            if request.method == b"OPTIONS":
                return self._preflight(request)
            if request.method != b"POST":
                request.setHeader(b"allow", b"POST, OPTIONS")
                raise _Answer(405, "use POST")
            if parts == [b"open"]:
                return self._open(request)
            if len(parts) != 2 or parts[1] not in (b"send", b"receive", b"close"):
                raise _Answer(404, "use <base>/open, or <base>/<transport>/send, receive or close")
            transport = self.transports.get(parts[0].decode("ascii", "replace"))
            if transport is None:
                raise _Answer(404, "no such transport (it closed, or timed out)")
            return getattr(self, "_" + parts[1].decode())(request, transport)
        except _Answer as answer:
            self.headers(request, request.getHeader(b"origin"))
            request.setResponseCode(answer.status)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return answer.text.encode()

    # -- the operations -------------------------------------------------------------

    def _open(self, request):
        body = request.content.read(_MAX_OPEN_BODY + 1)
        if len(body) > _MAX_OPEN_BODY:
            raise _Answer(413, f"an open request is at most {_MAX_OPEN_BODY} bytes")
        try:
            offered = json.loads(body)["protocols"]
        except (ValueError, KeyError, TypeError):
            raise _Answer(400, 'the body must be JSON {"protocols": [...]}') from None
        if not isinstance(offered, list):
            raise _Answer(400, "'protocols' must be a list")
        chosen = next((p for p in offered if isinstance(p, str) and p in _PROTOCOLS), None)
        if chosen is None:
            raise _Answer(400, f"no protocol in common; this router speaks {', '.join(_PROTOCOLS)}")
        serializer, batched = _PROTOCOLS[chosen]
        origin = request.getHeader(b"origin")
        tid = secrets.token_urlsafe(16)
        transport = LongPollTransport(self, tid, serializer, batched, origin)
        router = self.router
        address = request.getClientAddress()
        host = getattr(address, "host", None)
        peer = describe(address)
        refusal = router.admit(transport, host)
        if refusal is not None:
            transport.wampd_session = router.refused_at_accept(
                transport, refusal, transport="longpoll", peer_address=peer, host=host, endpoint=self.endpoint
            )
            transport._end(True, None)
            raise _Answer(503, refusal.message)
        headers = {name.decode("latin-1").lower(): b", ".join(values).decode("latin-1")
                   for name, values in request.requestHeaders.getAllRawHeaders()}
        session = router.connect(
            transport, transport="longpoll", peer_address=peer, host=host, serializer=serializer,
            endpoint=self.endpoint, origin=origin.decode("latin-1") if origin else None,
            path=request.path.decode("latin-1"), headers=headers,
        )
        transport.wampd_session = session
        self.transports[tid] = transport
        transport._arm()
        answer = json.dumps({"transport": tid, "protocol": chosen}).encode()
        d = session.opened()
        if d is None:
            return self._opened(request, transport, answer)

        def refused(failure):
            failure.trap(Reject)
            transport._end(True, None)
            self._write(request, 403, failure.value.message.encode(), origin)

        d.addCallbacks(lambda _: self._opened(request, transport, answer, write=True), refused)
        return server.NOT_DONE_YET

    def _opened(self, request, transport, answer: bytes, write: bool = False):
        if transport.ended:  # refused by the policy, or gone while listeners decided
            return self._write(request, 403, b"connection refused", transport.origin) if write else b""
        self.headers(request, transport.origin)
        request.setHeader(b"content-type", b"application/json")
        if write:
            return self._write(request, 200, answer, transport.origin)
        return answer

    def _send(self, request, transport):
        body = request.content.read(self.max_body + 1)
        if len(body) > self.max_message_size:
            transport.wampd_session.abort(
                "wamp.error.protocol_violation",
                f"message of {len(body)} bytes exceeds the limit of {self.max_message_size} bytes",
            )
            raise _Answer(413, f"a message is at most {self.max_message_size} bytes")
        session = transport.wampd_session
        decode = transport.codec.decode
        for payload in transport.messages(body):
            if transport.ended:
                break
            try:
                msg = decode(payload)
            except _DECODE_ERRORS as exc:
                refuse(session, exc, self.clock)
            else:
                session.receive(msg)
        self.headers(request, transport.origin)
        request.setResponseCode(http.NO_CONTENT)
        return b""

    def _receive(self, request, transport):
        return transport.receive(request)

    def _close(self, request, transport):
        transport._closing = True
        transport._end(True, None)
        self.headers(request, transport.origin)
        request.setResponseCode(http.NO_CONTENT)
        return b""

    def _preflight(self, request):
        self.headers(request, request.getHeader(b"origin"))
        request.setHeader(b"access-control-allow-methods", b"POST, OPTIONS")
        request.setHeader(b"access-control-max-age", b"600")
        request.setResponseCode(http.NO_CONTENT)
        return b""

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def headers(request, origin: bytes | None) -> None:
        """No caching; CORS for the origin that opened the transport (the connection policy vetted it at open)."""
        request.setHeader(b"cache-control", b"no-store")
        if origin:
            request.setHeader(b"access-control-allow-origin", origin)
            request.setHeader(b"access-control-allow-credentials", b"true")
            request.setHeader(b"vary", b"Origin")
            asked = request.getHeader(b"access-control-request-headers")
            if asked:
                request.setHeader(b"access-control-allow-headers", asked)

    @staticmethod
    def _write(request, status: int, body: bytes, origin) -> None:
        if request.finished or request._disconnected:
            return
        request.setResponseCode(status)
        request.write(body)
        request.finish()


class _Request(server.Request):
    """No ``Server`` header (wampd names nothing), and a body cut off past the site's limit."""

    _received = 0

    def setHeader(self, name, value):
        if name.lower() != b"server":
            super().setHeader(name, value)

    def handleContentChunk(self, data):
        self._received += len(data)
        if self._received > self.channel.site.max_body:
            self.channel.refuse_too_large()
            return
        super().handleContentChunk(data)


class _Channel(http.HTTPChannel):
    """Refuses a body announced (or grown) past the site's ``max_body`` before reading it: 413, connection closed."""

    refused = False

    def allHeadersReceived(self):
        if self.length is not None and self.length > self.site.max_body:
            self.refuse_too_large()
            return
        super().allHeadersReceived()

    def rawDataReceived(self, data):
        if not self.refused:
            super().rawDataReceived(data)

    def allContentReceived(self):
        if not self.refused:
            super().allContentReceived()

    def refuse_too_large(self) -> None:
        self.refused = True
        body = f"a request body is at most {self.site.max_body} bytes".encode()
        self.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        self.loseConnection()


def longpoll_site(lp: LongPollResource) -> server.Site:
    """A Site serving ``lp`` alone (the ``longpoll`` listener; the universal one routes to it by path)."""
    site = server.Site(lp)
    site.protocol = _Channel
    site.requestFactory = _Request
    site.max_body = lp.max_body
    site.noisy = False
    site.displayTracebacks = False
    site.log = _no_access_log
    return site


def _no_access_log(request) -> None:
    """No line per request: a long-poll client makes one every few seconds; lifecycle events say what matters."""
