"""
The HTTP push endpoint: web applications that are not WAMP clients publish
events and call procedures with one POST.

    POST /publish   {"realm": "realm1", "topic": "chat.room.1", "args": [...], "kwargs": {...},
                     "options": {"eligible_authid": [...], "retain": true, ...}}
      -> 200 {"publication": 123}
    POST /call      {"realm": "realm1", "procedure": "com.example.add", "args": [2, 3],
                     "kwargs": {}, "timeout_ms": 5000}
      -> 200 {"args": [5], "kwargs": {}}

Every request must carry ``Authorization: Bearer <secret>`` (the configured
shared secret, compared in constant time).  The secret and the size are
checked as soon as the headers are in, before any of the body is read: a
request without the secret gets 401, and one whose ``Content-Length`` is over
``max_body`` gets 413, at once, and the connection is closed.  A body without
a length (chunked) is counted as it arrives and cut off with 413 as soon as
it passes ``max_body``.  An unauthenticated client learns nothing else, not
even which paths exist.  ``realm`` may be left out when the
router has exactly one realm.  The body is JSON in UTF-8, whatever the
Content-Type says (so ``curl -d '{...}'`` works).

Publications are made by the router (``RealmApi.publish``): they skip topic
handlers, and every subscriber gets them.  ``options`` may hold ``exclude``
and ``eligible`` (lists of session ids), ``exclude_authid``,
``exclude_authrole``, ``eligible_authid``, ``eligible_authrole`` (lists of
strings) and ``retain`` (boolean).

Errors are JSON ``{"error": uri, "message": text}``, and nothing is published
or called:

=====  ==========================================================
400    body is not JSON, not an object, or a field has the wrong type
       (``wamp.error.invalid_argument``), invalid URI (``wamp.error.invalid_uri``)
401    missing or wrong secret, or a ``wamp.*`` topic (``wamp.error.not_authorized``)
404    unknown realm (``wamp.error.no_such_realm``), unknown path,
       no callee (``wamp.error.no_such_procedure``)
405    not POST
413    body over the size limit
=====  ==========================================================

A call that reached the dealer answers like this:

=====  ==========================================================
200    ``{"args": [...], "kwargs": {...}}``
404    ``wamp.error.no_such_procedure``
504    ``wamp.error.timeout`` (``timeout_ms`` ran out)
502    the callee answered with an error: ``{"error": uri, "message": ...,
       "args": [...], "kwargs": {...}}`` with the callee's URI, args and kwargs
=====  ==========================================================
"""

from __future__ import annotations

import hmac
import json

from autobahn.wamp.exception import ApplicationError
from twisted.web import http, resource, server

from router.app import Result
from router.uri import is_reserved, is_valid_uri
from router.wire.forwarded import ForwardedError, http_client

__all__ = ["PushResource", "push_site"]

# Errors the dealer itself gives a call, and what they mean over HTTP.  Any
# other error URI came from the callee: 502.
_CALL_STATUS = {
    "wamp.error.no_such_procedure": 404,
    "wamp.error.no_such_realm": 404,
    "wamp.error.invalid_uri": 400,
    "wamp.error.timeout": 504,
}

_ID_FILTERS = ("exclude", "eligible")
_NAME_FILTERS = ("exclude_authid", "exclude_authrole", "eligible_authid", "eligible_authrole")


class _Problem(Exception):
    def __init__(self, status: int, uri: str, text: str) -> None:
        super().__init__(text)
        self.status, self.uri, self.text = status, uri, text


def _bad(text: str) -> _Problem:
    return _Problem(400, "wamp.error.invalid_argument", text)


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


class PushResource(resource.Resource):
    isLeaf = True

    def __init__(self, router, secret: str, max_body: int = 65536, ops=None) -> None:
        super().__init__()
        if not secret:
            raise ValueError("the HTTP push endpoint needs a secret")
        self.router = router
        self.ops = ops  # router.ops.site.OpsResource: /metrics, /healthz, /readyz, /status* on this port
        self._secret = secret.encode()
        self.max_body = max_body

    def render(self, request):
        if self.ops is not None and self.ops.serves(request.path):
            return self.ops.render(request)  # its own access rules (none for health and metrics)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        try:
            if request.method != b"POST":
                request.setHeader(b"allow", b"POST")
                raise _Problem(405, "wamp.error.invalid_argument", "use POST")
            action = {b"/publish": self._publish, b"/call": self._call}.get(request.path)
            if action is None:
                raise _Problem(404, "wamp.error.invalid_argument", "unknown path; use /publish or /call")
            self._check_secret(request)
            body = self._body(request)
            realm = self._realm(body)
            return action(request, realm, body)
        except _Problem as problem:
            if problem.status == 401:
                request.setHeader(b"www-authenticate", b'Bearer realm="wampd"')
            return self._error(request, problem.status, problem.uri, problem.text)

    # -- pieces --------------------------------------------------------------

    def _check_secret(self, request) -> None:
        self.check_headers(request.requestHeaders, None)

    def check_headers(self, headers, length: int | None) -> None:
        """
        What can be refused from the headers alone: raises the problem (401
        for a missing or wrong secret, 413 for a Content-Length over the
        limit); ``length`` is None when the body has no announced length.
        """
        values = headers.getRawHeaders(b"authorization") or [b""]
        scheme, _, token = values[0].strip().partition(b" ")
        if len(values) != 1 or scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self._secret):
            raise _Problem(401, "wamp.error.not_authorized", "missing or wrong 'Authorization: Bearer <secret>'")
        if length is not None and length > self.max_body:
            raise self.too_large()

    def too_large(self) -> _Problem:
        return _Problem(413, "wamp.error.invalid_argument", f"body is larger than {self.max_body} bytes")

    def _body(self, request) -> dict:
        data = request.content.read(self.max_body + 1)
        if len(data) > self.max_body:
            raise self.too_large()
        try:
            body = json.loads(data, parse_constant=_no_constants)
        except ValueError as exc:  # also UnicodeDecodeError
            raise _bad(f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _bad("body must be a JSON object")
        for key, kind, name in (("args", list, "array"), ("kwargs", dict, "object"), ("options", dict, "object")):
            if body.get(key) is not None and not isinstance(body[key], kind):
                raise _bad(f"{key!r} must be a JSON {name}")
        return body

    def _realm(self, body: dict):
        realms = self.router.realms
        name = body.get("realm")
        if name is None:
            if len(realms) != 1:
                raise _bad("'realm' is required: this router has several")
            name = next(iter(realms))
        if not isinstance(name, str):
            raise _bad("'realm' must be a string")
        realm = realms.get(name)
        if realm is None:
            raise _Problem(404, "wamp.error.no_such_realm", f"no realm {name!r} on this router")
        return realm

    @staticmethod
    def _uri(body: dict, key: str) -> str:
        uri = body.get(key)
        if not isinstance(uri, str):
            raise _bad(f"{key!r} (a URI string) is required")
        if not is_valid_uri(uri):
            raise _Problem(400, "wamp.error.invalid_uri", f"{uri!r} is not a valid URI")
        if is_reserved(uri) and key == "topic":
            raise _Problem(401, "wamp.error.not_authorized", "wamp.* topics are reserved for the router")
        return uri

    @staticmethod
    def _options(body: dict) -> dict:
        """PUBLISH options, checked here: the broker ignores a filter of the wrong type (fail open)."""
        options = dict(body.get("options") or {})
        for name in _ID_FILTERS:
            value = options.get(name)
            if value is not None and not (
                isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            ):
                raise _bad(f"options.{name} must be a list of session ids (integers)")
        for name in _NAME_FILTERS:
            value = options.get(name)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise _bad(f"options.{name} must be a list of strings")
        if "retain" in options and not isinstance(options["retain"], bool):
            raise _bad("options.retain must be true or false")
        return {name: value for name, value in options.items() if value is not None}

    def _publish(self, request, realm, body) -> bytes:
        topic = self._uri(body, "topic")
        args = body.get("args") or []
        kwargs = body.get("kwargs") or {}
        options = self._options(body)
        clash = sorted({"topic", "options"} & kwargs.keys())
        if clash:
            # RealmApi.publish(topic, *args, options=..., **kwargs) has no room for them.
            raise _bad(f"kwargs may not use the names {clash} on this endpoint")
        try:
            publication = realm.api.publish(topic, *args, options=options, **kwargs)
        except (ValueError, TypeError) as exc:
            raise _bad(str(exc)) from None
        return json.dumps({"publication": publication}).encode()

    def _call(self, request, realm, body):
        procedure = self._uri(body, "procedure")
        timeout = body.get("timeout_ms")
        if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0):
            raise _bad("'timeout_ms' must be a positive integer")
        # Through the internal session rather than RealmApi.call(procedure, *args, **kwargs), so
        # that kwargs named "procedure" or "timeout_ms" reach the callee.
        d = realm.internal.call(procedure, body.get("args") or [], body.get("kwargs") or {}, timeout)
        gone = []
        request.notifyFinish().addErrback(gone.append)  # the web client went away

        def send(status: int, payload: dict) -> None:
            if gone:
                return
            try:
                data = json.dumps(payload, default=_bytes, allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                status = 500
                data = json.dumps({"error": "wamp.error.runtime_error", "message": f"the answer is not JSON: {exc}"}).encode()
            request.setResponseCode(status)
            request.write(data)
            request.finish()

        def answer(value):
            if isinstance(value, Result):
                send(200, {"args": list(value.args or []), "kwargs": dict(value.kwargs or {})})
            elif value is None:
                send(200, {"args": [], "kwargs": {}})
            else:
                send(200, {"args": [value], "kwargs": {}})

        def failed(failure):
            exc = failure.value
            if isinstance(exc, ApplicationError):
                args = list(exc.args)
                message = args[0] if args and isinstance(args[0], str) else exc.error
                send(
                    _CALL_STATUS.get(exc.error, 502),
                    {"error": exc.error, "message": message, "args": args, "kwargs": exc.kwargs or {}},
                )
            else:
                send(500, {"error": "wamp.error.runtime_error", "message": f"{type(exc).__name__}: {exc}"})

        d.addCallbacks(answer, failed)
        d.addErrback(_log_failure)  # a bug above: logged, never lost silently
        return server.NOT_DONE_YET

    @staticmethod
    def _error(request, status: int, uri: str, text: str) -> bytes:
        request.setResponseCode(status)
        return json.dumps({"error": uri, "message": text}).encode()


def _log_failure(failure):
    from twisted.logger import Logger

    Logger(namespace="wampd.http").failure("answering a push call failed", failure=failure)


def _bytes(value):
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_REASONS = {400: b"Bad Request", 401: b"Unauthorized", 413: b"Content Too Large"}


class _PushChannel(http.HTTPChannel):
    """
    An HTTP/1.1 channel that refuses a push request on its headers.

    twisted.web reads a request's whole body (into memory, or a temporary
    file past 100 KB) before the resource sees the request, so a check in
    ``render`` comes after the upload.  The channel is the one place that has
    the headers and the announced length before any body byte is read:
    ``allHeadersReceived`` is called right after the blank line ending the
    headers.  A refusal there writes the error response itself and closes
    the connection (as twisted.web does with its own 400), so it never asks
    the client to continue (``Expect: 100-continue``), and the request never
    reaches ``render``.  Closing the connection stops the reading; what was
    already read in the same packet is dropped here (``rawDataReceived``,
    ``allContentReceived``), never buffered.  A body with no announced
    length is counted as it arrives by :class:`_PushRequest`, which refuses
    in the same way as soon as it passes the limit.

    The checks in ``render`` stay: they are what a :class:`PushResource`
    mounted in another Site relies on.  The push Site speaks HTTP/1.1 only
    (no HTTP/2 over TLS ALPN), which is what push clients use.
    """

    refused = False

    def allHeadersReceived(self):
        resource = self.site.resource
        # the request line's path (twisted.web keeps it in _path until the request is built):
        # the ops paths sharing this port are not push requests (without it: checked as one)
        if resource.ops is not None and resource.ops.serves(getattr(self, "_path", None)):
            super().allHeadersReceived()
            return
        request = self.requests[-1]
        try:
            request.wampd_client = http_client(self.site.proxy_trust, self.transport, request.requestHeaders)
            resource.check_headers(request.requestHeaders, self.length)
        except ForwardedError as exc:  # from a trusted proxy: fail closed
            self.refuse(_Problem(400, "wamp.error.invalid_argument", str(exc)), getattr(self.transport.getPeer(), "host", None))
            return
        except _Problem as problem:
            self.refuse(problem, request.wampd_client)
            return
        super().allHeadersReceived()

    def rawDataReceived(self, data):
        if not self.refused:
            super().rawDataReceived(data)

    def allContentReceived(self):
        if not self.refused:
            super().allContentReceived()

    def refuse(self, problem: _Problem, client: str | None = None) -> None:
        """Answer ``problem`` now and close the connection, reading no more of the request."""
        from twisted.logger import Logger  # lazy: only for a refused request

        Logger(namespace="wampd.http").info(
            "push request from {client} refused: {status} {text}", client=client, status=problem.status, text=problem.text
        )
        self.refused = True
        body = json.dumps({"error": problem.uri, "message": problem.text}).encode()
        head = [
            b"HTTP/1.1 %d %s" % (problem.status, _REASONS.get(problem.status, b"Error")),
            b"Content-Type: application/json",
            b"Cache-Control: no-store",
            b"Content-Length: %d" % len(body),
            b"Connection: close",
        ]
        if problem.status == 401:
            head.append(b'WWW-Authenticate: Bearer realm="wampd"')
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.loseConnection()


class _PushRequest(server.Request):
    """A request whose body is counted as it arrives and cut off past ``max_body``."""

    _received = 0

    def setHeader(self, name, value):
        """Every header but ``Server``: twisted.web names itself and its version there, wampd names nothing."""
        if name.lower() != b"server":
            super().setHeader(name, value)

    def handleContentChunk(self, data):
        channel = self.channel
        if channel.refused:
            return
        self._received += len(data)
        resource = channel.site.resource
        if self._received > resource.max_body:
            channel.refuse(resource.too_large(), getattr(self, "wampd_client", None))
            return
        super().handleContentChunk(data)


def push_site(router, secret: str, max_body: int = 65536, proxy_trust=None, ops=None) -> server.Site:
    """
    The push endpoint's Site; ``proxy_trust`` (router.wire.proxy.ProxyTrust) names clients
    behind proxies; ``ops`` (router.ops) serves /metrics, /healthz, /readyz, /status here too.
    """
    site = server.Site(PushResource(router, secret, max_body, ops))
    site.proxy_trust = proxy_trust
    site.protocol = _PushChannel
    site.requestFactory = _PushRequest
    site.noisy = False
    site.displayTracebacks = False
    return site
