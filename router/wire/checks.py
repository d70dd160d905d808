"""
What the router refuses in a decoded message, and the cheap bounds that let
most messages skip the checks.  :mod:`router.wire.codec` calls these while
it decodes; a refusal is a :class:`~router.errors.BadRequest` (answered with
ERROR ``wamp.error.invalid_argument`` where there is a request to answer).

* Known options of client requests: type and range (:func:`option_problem`).
* kwargs keys must be strings (:func:`key_problem`).  These two are pure
  checks on values and live in the leaf :mod:`router.options` (the meta API
  applies them to testaments too); they are re-exported here.
* In CBOR, map keys anywhere in the payload must be strings or bytes
  (:func:`odd_payload_key`).
* Nesting depth (:func:`deeper_than`), walked only when the count of bytes
  that can open a container (:data:`OPENINGS`) passes the limit; JSON too deep
  for the decoder still has its head read (:func:`json_head`).

What the codec refuses, and how (decided once, at decode time, for every
connection alike):

* A payload that is not one well-formed WAMP message (not valid JSON/msgpack/
  CBOR, not a non-empty array, an unknown type, the wrong number of elements,
  a request ID that is not an integer in 1..2**53, options that are not a
  dict, args that are not a list, kwargs that are not a dict): the spec calls
  that a protocol violation, so :class:`WireError` and the session ABORTs with
  ``wamp.error.protocol_violation``.  There is no request one could answer.
* A well-formed request whose *values* are unacceptable (a known option of
  the wrong type or out of range, such as ``timeout`` that is not an integer
  from 0 to :data:`MAX_TIMEOUT_MS`, a boolean option that is not a boolean;
  kwargs with a key that is not a string; in CBOR, a payload map key that is
  neither a string nor bytes; nesting deeper than the codec's ``max_depth``): :class:`BadRequest`, which the session answers with ERROR
  ``wamp.error.invalid_argument`` naming the problem (a PUBLISH only when it
  asked for ``acknowledge``; a bad YIELD or callee ERROR ends the caller's
  call with that ERROR).  The same message that cannot be answered (HELLO,
  GOODBYE, ...) gets ABORT ``protocol_violation`` instead.
"""

from __future__ import annotations

import json
import re

from autobahn.wamp import message

from router.errors import BadRequest, UriError
from router.messages import DEFAULT_MAX_DEPTH
from router.options import MAX_ID, MAX_TIMEOUT_MS, key_problem, option_problem, short

try:
    from cbor2 import CBORTag as _CBORTag
except ImportError:  # pragma: no cover - cbor2 comes with autobahn's serializers

    class _CBORTag:  # type: ignore[no-redef]
        value = None

__all__ = [
    "refuse",
    "check_depth",
    "check_payload_keys",
    "BadRequest",
    "MAX_ID",
    "MAX_TIMEOUT_MS",
    "DEFAULT_MAX_DEPTH",
    "KWARGS_AT",
    "PAYLOAD_AT",
    "OPENINGS",
    "option_problem",
    "key_problem",
    "short",
    "odd_payload_key",
    "cbor_has_maps",
    "deeper_than",
    "json_head",
    "no_json_constant",
]

_SEQUENCES = (list, tuple, set, frozenset)
_CALL_CODE = message.Call.MESSAGE_TYPE
_YIELD_CODE = message.Yield.MESSAGE_TYPE
_PUBLISH_CODE = message.Publish.MESSAGE_TYPE
_ERROR_CODE = message.Error.MESSAGE_TYPE
#: Messages with a request ID at [1] (which must be 1..2**53) and where their
#: kwargs are; ERROR (from a callee) has its request at [2] and kwargs at [6].
KWARGS_AT = {
    _CALL_CODE: 5,
    _PUBLISH_CODE: 5,
    _YIELD_CODE: 4,
    message.Subscribe.MESSAGE_TYPE: None,
    message.Register.MESSAGE_TYPE: None,
    message.Unsubscribe.MESSAGE_TYPE: None,
    message.Unregister.MESSAGE_TYPE: None,
    message.Cancel.MESSAGE_TYPE: None,
}


# -- nesting depth -------------------------------------------------------------
#
# A message nested N deep is at least N bytes long (2N in JSON) and has at
# least N container openings in its bytes.  Shorter messages are not looked
# at; for longer ones the count of bytes that *can* open a container, an
# upper bound on the depth, is taken at C speed, and only when it exceeds the
# limit is the decoded message walked.  JSON: "[" and "{".  msgpack:
# fixarray/fixmap (0x80-0x9f) and array/map 16/32 (0xdc-0xdf).  CBOR: array,
# map and tag heads (0x80-0xdb).
# Bytes inside strings or numbers only make the bound looser, never wrong.


def _bytes_outside(*ranges: tuple[int, int]) -> bytes:
    inside = set()
    for low, high in ranges:
        inside.update(range(low, high + 1))
    return bytes(b for b in range(256) if b not in inside)


_MSGPACK_OTHER = _bytes_outside((0x80, 0x9F), (0xDC, 0xDF))
_CBOR_OTHER = _bytes_outside((0x80, 0xDB))


def _json_openings(payload) -> int:
    return payload.count(b"[") + payload.count(b"{")


def _msgpack_openings(payload) -> int:
    return len(payload.translate(None, _MSGPACK_OTHER))


def _cbor_openings(payload) -> int:
    return len(payload.translate(None, _CBOR_OTHER))


OPENINGS = {"json": _json_openings, "msgpack": _msgpack_openings, "cbor": _cbor_openings}

# -- map keys in the payload ----------------------------------------------------
#
# JSON keys are strings and the router's msgpack decoder takes only string or
# bytes keys (as autobahn's does, and so as msgpack subscribers do).  CBOR can
# carry any key (integers, arrays); passed on, such a payload kills msgpack
# subscribers.  So a CBOR payload's map keys must be strings or bytes.  Only a
# payload with a non-empty map head (0xa1-0xbf) can hold a key at all.

_CBOR_OTHER_THAN_MAPS = _bytes_outside((0xA1, 0xBF))


def cbor_has_maps(payload) -> bool:
    """Whether a CBOR payload can hold a non-empty map (a byte 0xa1-0xbf anywhere)."""
    return bool(payload.translate(None, _CBOR_OTHER_THAN_MAPS))
#: Where the payload (args, kwargs) starts in each client message that carries one.
PAYLOAD_AT = {_CALL_CODE: 4, _PUBLISH_CODE: 4, _YIELD_CODE: 3, _ERROR_CODE: 5}


def odd_payload_key(values):
    """The first map key in ``values`` (walked iteratively) that is neither a string nor bytes, else None."""
    stack = list(values)
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        node = pop()
        kind = type(node)
        if kind is dict:
            for key, value in node.items():
                if type(key) is not str and type(key) is not bytes:
                    return key
                push(value)
        elif kind in _SEQUENCES:
            extend(node)
        elif kind is _CBORTag:
            push(node.value)
    return None
def deeper_than(obj, limit: int) -> bool:
    """Whether arrays/maps (and CBOR tags) in ``obj`` nest deeper than ``limit``; the top level is 1."""
    stack = [(obj, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > limit:
            return True
        kind = type(node)
        if kind is dict:
            children = list(node.values())
            children.extend(k for k in node if type(k) is not str)
        elif kind in _SEQUENCES:
            children = node
        else:  # a CBOR tag wrapping a value
            children = (node.value,)
        depth += 1
        for child in children:
            t = type(child)
            if t is dict or t in _SEQUENCES or t is _CBORTag:
                push((child, depth))
    return False


_SPACE = re.compile(r"[ \t\n\r]*")


def json_head(payload) -> list | None:
    """
    The leading elements of a JSON message too deep to decode (type, request,
    options...: as many as decode on their own), so that its request can still
    be answered; None when not even the type and one more element decode.
    """
    try:
        text = payload.decode("utf-8") if type(payload) is not str else payload
    except UnicodeDecodeError:
        return None
    decode = json.JSONDecoder(parse_constant=no_json_constant).raw_decode
    at = _SPACE.match(text).end()
    if text[at : at + 1] != "[":
        return None
    head: list = []
    while len(head) < 4:
        at = _SPACE.match(text, at + 1).end()
        try:
            value, at = decode(text, at)
        except (ValueError, RecursionError):
            break
        head.append(value)
        at = _SPACE.match(text, at).end()
        if text[at : at + 1] != ",":
            break
    return head if len(head) >= 2 and type(head[0]) is int else None


def no_json_constant(name: str):
    """``parse_constant`` for JSON decoders: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


def refuse(session, exc: Exception, clock) -> None:
    """
    A payload the codec refused (:meth:`Codec.decode` raised): the session
    answers it as it would a message (it was heard all the same): ERROR
    ``invalid_uri``, ERROR ``invalid_argument``, or ABORT ``protocol_violation``.
    """
    session.last_seen = clock.seconds()
    kind = type(exc)
    if kind is UriError:
        session.bad_uri(exc)
    elif kind is BadRequest:
        session.bad_request(exc)
    else:
        session.protocol_violation(str(exc), None, exc)


def check_depth(openings, payload, raw: list, limit: int) -> None:
    """Refuse a message nesting deeper than ``limit`` (``openings``: the codec's C-speed byte count)."""
    if openings(payload) > limit and deeper_than(raw, limit):
        raise BadRequest(f"the message nests arrays/objects deeper than the limit of {limit}", raw)


def check_payload_keys(payload, raw: list, code: int) -> None:
    """A CBOR payload's map keys must be strings or bytes (router.wire.codec's docstring)."""
    at = PAYLOAD_AT.get(code)
    if at is None or len(raw) <= at or not cbor_has_maps(payload):
        return
    key = odd_payload_key(raw[at:])
    if key is not None:
        raise BadRequest(
            f"map keys in the payload must be strings (or bytes), got {short(key)} ({type(key).__name__})", raw
        )
