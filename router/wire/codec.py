"""
Bytes <-> WAMP messages, for the transports.

The routing core only sees :mod:`autobahn.wamp.message` objects; this module
turns payloads into them and back.

* JSON uses the stdlib's C codec (:class:`FastJson`; Autobahn's JSON decoder
  forces the pure Python scanner, about 6x slower).  WAMP's binary convention
  (a string starting with ``"\\0"`` carries base64 bytes) is handled after
  decoding, and only when the payload contains an escaped NUL at all.  JSON
  has no NaN or Infinity: refused on input, never sent.
* msgpack through one reused C packer (:class:`FastMsgPack`), CBOR through Autobahn's
  object serializer.
* A message is encoded once per serializer: Autobahn caches the bytes on the
  message object keyed by the object serializer, and every connection of a
  kind shares one object serializer, so an EVENT sent to many subscribers is
  encoded once per serializer.
* Each message's options/details dict is kept on the message
  (``msg._router_internal``) so the router can read options Autobahn does not
  parse (``disclose_me``, ``progress`` on CALL, ...).

What is refused while decoding, and how: :mod:`router.wire.checks`.
"""

from __future__ import annotations

import base64
import json
import re
from json.encoder import c_make_encoder, encode_basestring

import msgpack

from autobahn.wamp import message
from autobahn.wamp.exception import InvalidUriError, ProtocolError
from autobahn.wamp.serializer import CBORObjectSerializer

from router.errors import BadRequest, UriError, WireError
from router.options import BOOL_OPTIONS
from router.messages import DEFAULT_MAX_DEPTH, MESSAGE_CLASSES as _CLASSES, MESSAGE_NAMES, FastCall, FastYield
from router.wire.checks import (
    KWARGS_AT,
    MAX_ID,
    MAX_TIMEOUT_MS,
    OPENINGS,
    check_depth,
    check_payload_keys,
    no_json_constant,
    json_head,
    key_problem,
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


def _plain_options(code: int, options: dict) -> bool:
    """True when every option is a known boolean one with a boolean value (no further check needed)."""
    known = BOOL_OPTIONS.get(code)
    if known is None:
        return False
    for key, value in options.items():
        if type(value) is not bool or key not in known:
            return False
    return True


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
        if not _plain_options(code, options):
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


class FastJson:
    """Autobahn object-serializer interface over the stdlib C JSON codec."""

    NAME = "json"
    BINARY = False

    def __init__(self) -> None:
        # allow_nan=False: JSON has no NaN/Infinity, and JavaScript's JSON.parse refuses them
        self._encoder = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, default=_json_default, allow_nan=False
        ).encode
        if c_make_encoder is not None:
            # the same C encoder JSONEncoder.encode builds on every call, built once: no
            # circular-reference table (a message decoded from JSON has no cycles; one an
            # app builds with a cycle fails as too deep instead), the same output
            chunks = c_make_encoder(None, _json_default, encode_basestring, None, ":", ",", False, False, False)
            self._encoder = lambda obj: "".join(chunks(obj, 0))
        decoder = json.JSONDecoder(parse_constant=no_json_constant)
        self._decoder = decoder.decode
        self._scan = decoder.scan_once  # the scanner decode() runs, called without its two whitespace regexes

    def serialize(self, obj) -> bytes:
        return self._encoder(obj).encode("utf-8")

    def unserialize(self, payload: bytes) -> list:
        text = payload.decode("utf-8") if type(payload) is not str else payload
        try:
            obj, end = self._scan(text, 0)
        except StopIteration:
            end = -1  # not a value at offset 0 (leading whitespace, or not JSON): decode() decides
        if end != len(text):  # whitespace or more after it: decode() accepts or refuses as ever
            obj = self._decoder(text)
        if b"\\u0000" in payload:
            obj = _unbinary(obj)
        return [obj]


def _json_default(obj):
    if isinstance(obj, (bytes, bytearray)):
        return "\x00" + base64.b64encode(obj).decode("ascii")
    raise TypeError(f"{type(obj).__name__} cannot be sent as JSON")


def _unbinary(obj):
    if isinstance(obj, str):
        if obj[:1] == "\x00":
            return base64.b64decode(obj[1:])
        return obj
    if isinstance(obj, list):
        return [_unbinary(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _unbinary(v) for k, v in obj.items()}
    return obj


class FastMsgPack:
    """
    msgpack through one reused C packer, as an Autobahn object serializer: the
    same settings as Autobahn's (``use_bin_type``; decoded with ``raw=False``),
    so the same bytes, without a packer made per message.  The reactor is
    single-threaded, so one packer per codec is never used twice at once.
    """

    NAME = "msgpack"
    BINARY = True
    MSGPACK_MODULE = msgpack

    def __init__(self) -> None:
        self.serialize = msgpack.Packer(use_bin_type=True, autoreset=True).pack

    @staticmethod
    def unserialize(payload: bytes) -> list:
        return [msgpack.unpackb(payload, raw=False)]


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
                            check_depth(self._openings, payload, raw, limit)
                        if self._any_keys:
                            check_payload_keys(payload, raw, code)
                return fast
        if deep:
            check_depth(self._openings, payload, raw, limit)
        cls = _CLASSES.get(code) if type(code) is int else None
        if cls is None:
            raise WireError(f"unknown WAMP message type {code!r}")
        self._check_values(raw, code)
        if self._any_keys:
            check_payload_keys(payload, raw, code)
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
        if options and not _plain_options(code, options):
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
