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
shared secret, compared in constant time).  ``realm`` may be left out when the
router has exactly one realm.  Errors are JSON ``{"error": uri, "message": ...}``:

=====  ==========================================================
400    body is not JSON, not an object, or a field has the wrong type
       (``wamp.error.invalid_argument``), invalid URI (``wamp.error.invalid_uri``)
401    missing or wrong secret (``wamp.error.not_authorized``)
404    unknown realm (``wamp.error.no_such_realm``), unknown path,
       no callee (``wamp.error.no_such_procedure``)
405    not POST
413    body over the size limit
502    the callee answered with an error (its URI, args and kwargs)
504    the call timed out (``wamp.error.timeout``)
=====  ==========================================================
"""

from __future__ import annotations

import hmac
import json

from autobahn.wamp.exception import ApplicationError
from twisted.web import resource, server

from router.app import Result
from router.uri import is_valid_uri

__all__ = ["PushResource", "push_site"]

_STATUS = {
    "wamp.error.no_such_procedure": 404,
    "wamp.error.no_such_realm": 404,
    "wamp.error.invalid_uri": 400,
    "wamp.error.invalid_argument": 400,
    "wamp.error.not_authorized": 401,
    "wamp.error.timeout": 504,
}


class _Problem(Exception):
    def __init__(self, status: int, uri: str, text: str) -> None:
        super().__init__(text)
        self.status, self.uri, self.text = status, uri, text


class PushResource(resource.Resource):
    isLeaf = True

    def __init__(self, router, secret: str, max_body: int = 65536) -> None:
        super().__init__()
        if not secret:
            raise ValueError("the HTTP push endpoint needs a secret")
        self.router = router
        self._secret = secret.encode()
        self.max_body = max_body

    def render(self, request):
        request.setHeader(b"content-type", b"application/json")
        try:
            if request.method != b"POST":
                request.setHeader(b"allow", b"POST")
                raise _Problem(405, "wamp.error.invalid_argument", "use POST")
            action = {b"/publish": self._publish, b"/call": self._call}.get(request.path)
            if action is None:
                raise _Problem(404, "wamp.error.invalid_argument", "unknown path; use /publish or /call")
            self._check_secret(request)
            body = self._body(request)
            api = self._api(body)
            return action(request, api, body)
        except _Problem as problem:
            return self._error(request, problem.status, problem.uri, problem.text)

    # -- pieces --------------------------------------------------------------

    def _check_secret(self, request) -> None:
        given = request.getHeader(b"authorization") or ""
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._secret):
            raise _Problem(401, "wamp.error.not_authorized", "missing or wrong 'Authorization: Bearer <secret>'")

    def _body(self, request) -> dict:
        data = request.content.read(self.max_body + 1)
        if len(data) > self.max_body:
            raise _Problem(413, "wamp.error.invalid_argument", f"body is larger than {self.max_body} bytes")
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise _Problem(400, "wamp.error.invalid_argument", f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _Problem(400, "wamp.error.invalid_argument", "body must be a JSON object")
        for key, kind in (("args", list), ("kwargs", dict), ("options", dict)):
            if key in body and body[key] is not None and not isinstance(body[key], kind):
                raise _Problem(400, "wamp.error.invalid_argument", f"{key!r} must be a JSON {kind.__name__}")
        return body

    def _api(self, body: dict):
        realms = self.router.realms
        name = body.get("realm")
        if name is None:
            if len(realms) != 1:
                raise _Problem(400, "wamp.error.invalid_argument", "'realm' is required: this router has several")
            name = next(iter(realms))
        realm = realms.get(name) if isinstance(name, str) else None
        if realm is None:
            raise _Problem(404, "wamp.error.no_such_realm", f"no realm {name!r} on this router")
        return realm.api

    @staticmethod
    def _uri(body: dict, key: str) -> str:
        uri = body.get(key)
        if not isinstance(uri, str):
            raise _Problem(400, "wamp.error.invalid_argument", f"{key!r} (a URI string) is required")
        if not is_valid_uri(uri):
            raise _Problem(400, "wamp.error.invalid_uri", f"{uri!r} is not a valid URI")
        if uri.startswith("wamp.") and key == "topic":
            raise _Problem(401, "wamp.error.not_authorized", "wamp.* topics are reserved for the router")
        return uri

    def _publish(self, request, api, body) -> bytes:
        topic = self._uri(body, "topic")
        try:
            publication = api.publish(topic, *(body.get("args") or ()), options=body.get("options"), **(body.get("kwargs") or {}))
        except (ValueError, TypeError) as exc:
            raise _Problem(400, "wamp.error.invalid_argument", str(exc)) from None
        return json.dumps({"publication": publication}).encode()

    def _call(self, request, api, body):
        procedure = self._uri(body, "procedure")
        timeout = body.get("timeout_ms")
        if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0):
            raise _Problem(400, "wamp.error.invalid_argument", "'timeout_ms' must be a positive integer")
        d = api.call(procedure, *(body.get("args") or ()), timeout_ms=timeout, **(body.get("kwargs") or {}))
        finished = []
        request.notifyFinish().addBoth(finished.append)

        def answer(value):
            if finished:
                return  # the web client went away
            if isinstance(value, Result):
                payload = {"args": value.args or [], "kwargs": value.kwargs or {}}
            else:
                payload = {"args": [] if value is None else (value if isinstance(value, list) else [value]), "kwargs": {}}
            request.write(json.dumps(payload, default=_bytes).encode())
            request.finish()

        def failed(failure):
            if finished:
                return
            exc = failure.value
            if isinstance(exc, ApplicationError):
                status = _STATUS.get(exc.error, 502)
                payload = {"error": exc.error, "args": list(exc.args), "kwargs": exc.kwargs or {}}
            else:
                status, payload = 500, {"error": "wamp.error.runtime_error", "message": str(exc)}
            request.setResponseCode(status)
            request.write(json.dumps(payload, default=_bytes).encode())
            request.finish()

        d.addCallbacks(answer, failed)
        return server.NOT_DONE_YET

    @staticmethod
    def _error(request, status: int, uri: str, text: str) -> bytes:
        request.setResponseCode(status)
        return json.dumps({"error": uri, "message": text}).encode()


def _bytes(value):
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def push_site(router, secret: str, max_body: int = 65536) -> server.Site:
    site = server.Site(PushResource(router, secret, max_body))
    site.noisy = False
    site.displayTracebacks = False
    return site
