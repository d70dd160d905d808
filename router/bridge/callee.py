"""
HTTP callees: a procedure answered by POSTing its arguments to a URL.

    POST <url>   {"procedure": "com.example.add", "args": [2, 3], "kwargs": {}}

The answer becomes the caller's RESULT or ERROR:

* 2xx with a JSON object whose keys are only ``args`` (an array) and/or
  ``kwargs`` (an object): RESULT with those; any other JSON value: RESULT
  with that value as its one argument (``null``: no arguments);
* a non-2xx answer whose body is ``{"error": "<uri>", "message": ...,
  "args": [...], "kwargs": {...}}`` (what wampd's own push endpoint
  answers): ERROR with that URI, its message first in the args;
* any other non-2xx: ERROR ``wampd.error.http_status`` naming the status;
* no answer within ``timeout``: ERROR ``wampd.error.http_timeout``;
* no connection: ERROR ``wampd.error.http_unreachable``;
* a 2xx body that is not JSON (or not UTF-8): ERROR ``wampd.error.http_bad_response``;
* a response body over ``max_response`` bytes: ERROR ``wampd.error.http_response_too_large``;
* arguments over ``max_body`` bytes as JSON: ERROR ``wamp.error.invalid_argument``, nothing sent.

The procedure is registered by the realm's own session, so it routes,
times out (CALL ``timeout``), is canceled (the POST is dropped) and shows
in the registration meta API like any router-side procedure.
"""

from __future__ import annotations

import json

from autobahn.wamp.exception import ApplicationError

from router.app import Result, Route
from router.bridge._client import HttpFailure, as_json, post
from router.uri import is_valid_uri

__all__ = ["install_callee"]

_KINDS = {
    "timeout": "wampd.error.http_timeout",
    "unreachable": "wampd.error.http_unreachable",
    "too_large": "wampd.error.http_response_too_large",
}


def install_callee(realm, config, agent, clock) -> int:
    """Register ``config.procedure`` in ``realm``; returns the registration id."""

    def call(info, *args, **kwargs):
        try:
            body = json.dumps(
                {"procedure": info.procedure, "args": list(args), "kwargs": kwargs}, default=as_json, allow_nan=False
            ).encode()
        except (TypeError, ValueError) as exc:
            raise ApplicationError("wamp.error.invalid_argument", f"the arguments are not JSON: {exc}") from None
        if len(body) > config.max_body:
            raise ApplicationError(
                "wamp.error.invalid_argument", f"the arguments are {len(body)} bytes as JSON, over {config.max_body}"
            )
        d = post(agent, clock, config.url, body, config.headers, config.timeout, config.max_response)
        return d.addCallbacks(_answer, _failed, errbackArgs=(config.url,))

    return realm.internal.add_procedure(Route(config.procedure), call)


def _answer(result):
    status, data = result
    try:
        value = json.loads(data) if data else None
    except ValueError as exc:  # UnicodeDecodeError too
        if 200 <= status < 300:
            raise ApplicationError("wampd.error.http_bad_response", f"the answer is not JSON: {exc}") from None
        value = None
    if not 200 <= status < 300:
        _raise_error(status, value)
    if isinstance(value, dict) and value and set(value) <= {"args", "kwargs"}:
        args, kwargs = value.get("args", []), value.get("kwargs", {})
        if isinstance(args, list) and isinstance(kwargs, dict):
            return Result(args, kwargs)
    return value


def _raise_error(status: int, value) -> None:
    if isinstance(value, dict) and isinstance(value.get("error"), str) and is_valid_uri(value["error"]):
        args = value.get("args") if isinstance(value.get("args"), list) else []
        kwargs = value.get("kwargs") if isinstance(value.get("kwargs"), dict) else {}
        message = value.get("message")
        if isinstance(message, str) and (not args or args[0] != message):
            args = [message, *args]
        raise ApplicationError(value["error"], *args, **kwargs)
    raise ApplicationError("wampd.error.http_status", f"the HTTP callee answered HTTP {status}")


def _failed(failure, url: str):
    failure.trap(HttpFailure)
    exc = failure.value
    raise ApplicationError(_KINDS[exc.kind], f"POST {url}: {exc.text}")
