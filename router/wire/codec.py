"""
Bytes <-> WAMP messages, for the transports.

The routing core only sees :mod:`autobahn.wamp.message` objects; this module
turns payloads into them and back.

* JSON uses the stdlib's C codec (Autobahn's JSON decoder forces the pure
  Python scanner, about 6x slower).  WAMP's binary convention (a string
  starting with ``"\\0"`` carries base64 bytes) is handled after decoding, and
  only when the payload contains an escaped NUL at all.
* msgpack through one reused C packer (``_msgpack.py``), CBOR through Autobahn's object serializer.
* A message is encoded once per serializer: Autobahn caches the bytes on the
  message object keyed by the object serializer, and every connection of a
  kind shares one object serializer, so an EVENT sent to many subscribers is
  encoded once per serializer.
* Each message's options/details dict is kept on the message
  (``msg._router_internal``) so the router can read options Autobahn does not
  parse (``disclose_me``, ``progress`` on CALL, ...).

What is refused here, and how (decided once, at decode time, for every
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
* JSON has no NaN or Infinity: they are refused on input and never sent.
"""

from __future__ import annotations

import re

from autobahn.wamp import message
from autobahn.wamp.exception import InvalidUriError, ProtocolError
from autobahn.wamp.serializer import CBORObjectSerializer

from router.errors import BadRequest, UriError, WireError
from router.messages import DEFAULT_MAX_DEPTH, MESSAGE_CLASSES as _CLASSES, MESSAGE_NAMES, FastCall, FastYield
from router.wire._json import FastJson
from router.wire._msgpack import FastMsgPack
from router.wire.checks import (
    KWARGS_AT,
    MAX_ID,
    MAX_TIMEOUT_MS,
    OPENINGS,
    PAYLOAD_AT,
    cbor_has_maps,
    deeper_than,
    json_head,
    key_problem,
    odd_payload_key,
    option_problem,
    short,
)

try:
    from cbor2 import CBORTag as _CBORTag
except ImportError:  # pragma: no cover - cbor2 comes with autobahn's serializers
    _CBORTag = None

__all__ = [
    "WireError",
    "BadRequest",
    "MAX_TIMEOUT_MS",
    "DEFAULT_MAX_DEPTH",
    "FastCall",
    "FastYield",
    "UriError",
    "Codec",
    "codec_for",
    "codecs",
    "refuse",
    "MESSAGE_NAMES",
    "SERIALIZER_IDS",
    "RAWSOCKET_IDS",
]

#: Serializer names offered, in order of preference for WebSocket subprotocols.
SERIALIZER_IDS = ("json", "msgpack", "cbor")
#: RawSocket handshake serializer numbers.
RAWSOCKET_IDS = {1: "json", 2: "msgpack", 3: "cbor"}

_LOOSE_URI = re.compile(r"^([^\s.#]+\.)*([^\s.#]+)$")  # Autobahn's loose, non-empty check

# Position of the options/details dict in each client-to-router message.
_OPTIONS_AT = {
    message.Hello.MESSAGE_TYPE: 2,
    message.Publish.MESSAGE_TYPE: 2,
    message.Subscribe.MESSAGE_TYPE: 2,
    message.Call.MESSAGE_TYPE: 2,
    message.Register.MESSAGE_TYPE: 2,
    message.Yield.MESSAGE_TYPE: 2,
    message.Cancel.MESSAGE_TYPE: 2,
    message.Error.MESSAGE_TYPE: 3,
}


_TRANSPARENCY = ("enc_algo", "ppt_scheme", "ppt_serializer", "ppt_cipher", "ppt_keyid")
_CALL_CODE = message.Call.MESSAGE_TYPE
_YIELD_CODE = message.Yield.MESSAGE_TYPE
_ERROR_CODE = message.Error.MESSAGE_TYPE


def _fast(raw: list, code: int, str_keys: bool):
    """
    A FastCall/FastYield for a plain, valid message; None to use the full
    parser; raises :class:`BadRequest` for an option or kwargs key it refuses.
    """
    size = len(raw)
    request = raw[1]
    options = raw[2]
    if type(request) is not int or not 0 < request <= MAX_ID or type(options) is not dict:
        return None
    if options:
        if any(key in options for key in _TRANSPARENCY):
            return None
        problem = option_problem(code, options)
        if problem is not None:
            raise BadRequest(problem, raw)
    if code == _CALL_CODE:
        if not 4 <= size <= 6:
            return None
        procedure = raw[3]
        if type(procedure) is not str or _LOOSE_URI.match(procedure) is None:
            return None
        msg = FastCall()
        msg.procedure = procedure
        at = 4
    else:
        if not 3 <= size <= 5:
            return None
        msg = FastYield()
        at = 3
    args = raw[at] if size > at else None
    kwargs = raw[at + 1] if size > at + 1 else None
    if (args is not None and type(args) is not list) or (kwargs is not None and type(kwargs) is not dict):
        return None
    if kwargs and not str_keys:
        problem = key_problem(kwargs)
        if problem is not None:
            raise BadRequest(problem, raw)
    msg.request = request
    msg.args = args
    msg.kwargs = kwargs
    msg._router_internal = options
    return msg


def _object_serializer(name: str):
    if name == "json":
        return FastJson()
    if name == "msgpack":
        return FastMsgPack()
    if name == "cbor":
        return CBORObjectSerializer()
    raise ValueError(f"unknown serializer {name!r}; known: {', '.join(SERIALIZER_IDS)}")


class Codec:
    """
    One serializer, shared by every connection that negotiated it.
    ``max_depth`` bounds how deeply arrays and maps may nest in one message
    (the message's own array is level 1); 0 disables the check.
    """

    __slots__ = ("name", "binary", "max_depth", "_obj", "_str_keys", "_any_keys", "_openings", "_deep_from")

    def __init__(self, name: str, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self._obj = _object_serializer(name)
        self.name = name
        self.binary = self._obj.BINARY
        self.max_depth = max_depth
        self._str_keys = name == "json"  # JSON objects only have string keys
        self._any_keys = name == "cbor"  # CBOR maps may have keys of any type
        self._openings = OPENINGS[name]
        # shorter payloads cannot nest past max_depth: each JSON level takes an
        # opening and a closing byte, each msgpack/CBOR level at least one byte
        self._deep_from = max_depth * (2 if name == "json" else 1)

    def encode(self, msg: message.Message) -> bytes:
        """Bytes for ``msg`` (cached on the message for this serializer)."""
        return msg.serialize(self._obj)

    def check(self, msg: message.Message) -> Exception | None:
        """Why ``msg`` cannot be encoded for this serializer, or None (its bytes are then cached)."""
        try:
            msg.serialize(self._obj)
        except Exception as exc:
            return exc
        return None

    def decode(self, payload: bytes) -> message.Message:
        """
        Parse one WAMP message.  Raises :class:`WireError` for anything
        malformed, :class:`UriError` for a bad URI in a message that has a
        request ID to answer, and :class:`BadRequest` for a well-formed
        request whose values are refused.
        """
        try:
            items = self._obj.unserialize(payload)
        except RecursionError:
            # deeper than the decoder can go: answer the request if its head can be read
            head = json_head(payload) if self.name == "json" else None
            limit = f"the limit of {self.max_depth}" if self.max_depth else "the decoder can go"
            text = f"the message nests arrays/objects deeper than {limit}"
            if head is None:
                raise WireError(text) from None
            raise BadRequest(text, head) from None
        except Exception as exc:
            raise WireError(f"payload is not valid {self.name}: {exc}") from None
        if len(items) != 1:
            raise WireError(f"expected one WAMP message, got {len(items)}")
        raw = items[0]
        if type(raw) is not list or not raw:
            raise WireError("a WAMP message must be a non-empty array")
        limit = self.max_depth
        deep = limit and len(payload) > self._deep_from  # long enough to nest past the limit
        code = raw[0]
        if (code == _CALL_CODE or code == _YIELD_CODE) and type(code) is int and len(raw) > 2:
            fast = _fast(raw, code, self._str_keys)
            if fast is not None:
                if deep or self._any_keys:
                    # the RPC hot path: args of scalars only, no kwargs, no options nest 3
                    # deep and hold no map keys: no byte count, no walk
                    plain = not fast.kwargs and not fast._router_internal
                    if plain and fast.args:
                        for value in fast.args:
                            kind = type(value)
                            if kind is list or kind is dict or kind is tuple or kind is _CBORTag:
                                plain = False
                                break
                    if not plain:
                        if deep:
                            self._check_depth(payload, raw, limit)
                        if self._any_keys:
                            self._check_payload_keys(payload, raw, code)
                return fast
        if deep:
            self._check_depth(payload, raw, limit)
        cls = _CLASSES.get(code) if type(code) is int else None
        if cls is None:
            raise WireError(f"unknown WAMP message type {code!r}")
        self._check_values(raw, code)
        if self._any_keys:
            self._check_payload_keys(payload, raw, code)
        try:
            msg = cls.parse(raw)
        except InvalidUriError as exc:
            request = raw[1] if len(raw) > 1 else None
            raise UriError(str(exc), code, request, raw[2] if len(raw) > 2 else None) from None
        except ProtocolError as exc:
            raise WireError(str(exc), code) from None
        except Exception as exc:  # Autobahn's parsers raise assorted errors
            raise WireError(f"malformed {MESSAGE_NAMES[code]}: {exc}", code) from None
        at = _OPTIONS_AT.get(code)
        if at is not None:
            msg._router_internal = raw[at]
        return msg

    def _check_depth(self, payload, raw: list, limit: int) -> None:
        if self._openings(payload) > limit and deeper_than(raw, limit):
            raise BadRequest(f"the message nests arrays/objects deeper than the limit of {limit}", raw)

    def _check_payload_keys(self, payload, raw: list, code: int) -> None:
        """A CBOR payload's map keys must be strings or bytes (see above)."""
        at = PAYLOAD_AT.get(code)
        if at is None or len(raw) <= at or not cbor_has_maps(payload):
            return
        key = odd_payload_key(raw[at:])
        if key is not None:
            raise BadRequest(
                f"map keys in the payload must be strings (or bytes), got {short(key)} ({type(key).__name__})", raw
            )

    def _check_values(self, raw: list, code: int) -> None:
        """Request ID range, known options and kwargs keys, before Autobahn's parser sees the rest."""
        if code == _ERROR_CODE:
            request_at, kwargs_at = 2, 6
        elif code in KWARGS_AT:
            request_at, kwargs_at = 1, KWARGS_AT[code]
        else:
            return
        size = len(raw)
        if size <= request_at:
            return  # Autobahn names the wrong length
        request = raw[request_at]
        if type(request) is int and not 0 < request <= MAX_ID:
            raise WireError(f"request ID {short(request)} in {MESSAGE_NAMES[code]} is not from 1 to 2**53")
        options = raw[request_at + 1] if size > request_at + 1 else None
        if type(request) is not int or type(options) is not dict:
            return  # malformed: Autobahn's parser says how
        if options:
            problem = option_problem(code, options)
            if problem is not None:
                raise BadRequest(problem, raw)
        if kwargs_at is not None and not self._str_keys and size > kwargs_at:
            kwargs = raw[kwargs_at]
            if type(kwargs) is dict and kwargs:
                problem = key_problem(kwargs)
                if problem is not None:
                    raise BadRequest(problem, raw)


_SHARED: dict[tuple[str, int], Codec] = {}


def codec_for(name: str, max_depth: int = DEFAULT_MAX_DEPTH) -> Codec:
    """
    The codec for serializer ``name`` with nesting bound ``max_depth``, one
    for the whole process: every factory's connections of a kind share it,
    so a message (whose bytes are cached per object serializer) is encoded
    once per serializer whatever the transport.
    """
    codec = _SHARED.get((name, max_depth))
    if codec is None:
        codec = _SHARED[(name, max_depth)] = Codec(name, max_depth)
    return codec


def codecs(router, max_depth: int | None = None) -> dict[str, Codec]:
    """A factory's codecs by serializer name (``max_depth`` None: the router's ``max_nesting_depth``)."""
    if max_depth is None:
        max_depth = getattr(router, "max_nesting_depth", DEFAULT_MAX_DEPTH)
    return {name: codec_for(name, max_depth) for name in SERIALIZER_IDS}


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
