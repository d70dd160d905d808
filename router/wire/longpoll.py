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

from twisted.web import http, resource, server

from router.errors import BadRequest, UriError, WireError
from router.events import Reject
from router.wire._address import describe
from router.wire._http import BoundedChannel, QuietRequest
from router.wire._longpoll_peer import Answer as _Answer
from router.wire._longpoll_peer import LongPollTransport
from router.wire.checks import refuse
from router.wire.codec import codecs

__all__ = ["LongPollResource", "LongPollTransport", "longpoll_site"]

_DECODE_ERRORS = (WireError, UriError, BadRequest)
_UNLIMITED = 2**63
_PROTOCOLS = {
    "wamp.2.json": ("json", False),
    "wamp.2.json.batched": ("json", True),
    "wamp.2.msgpack": ("msgpack", False),
    "wamp.2.msgpack.batched": ("msgpack", True),
}
_MAX_OPEN_BODY = 4096


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


def longpoll_site(lp: LongPollResource) -> server.Site:
    """A Site serving ``lp`` alone (the ``longpoll`` listener; the universal one routes to it by path)."""
    site = server.Site(lp)
    site.protocol = BoundedChannel
    site.requestFactory = QuietRequest
    site.max_body = lp.max_body
    site.noisy = False
    site.displayTracebacks = False
    site.log = _no_access_log
    return site


def _no_access_log(request) -> None:
    """No line per request: a long-poll client makes one every few seconds; lifecycle events say what matters."""
