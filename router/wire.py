"""
Bytes <-> WAMP messages, for the transports.

The routing core only sees :mod:`autobahn.wamp.message` objects; this module
turns payloads into them and back.

* JSON uses the stdlib's C codec (Autobahn's JSON decoder forces the pure
  Python scanner, about 6x slower).  WAMP's binary convention (a string
  starting with ``"\\0"`` carries base64 bytes) is handled after decoding, and
  only when the payload contains an escaped NUL at all.
* msgpack and CBOR use Autobahn's object serializers.
* A message is encoded once per serializer: Autobahn caches the bytes on the
  message object keyed by the object serializer, and every connection of a
  kind shares one object serializer, so an EVENT sent to many subscribers is
  encoded once per serializer.
* Each message's options/details dict is kept on the message
  (``msg._router_internal``) so the router can read options Autobahn does not
  parse (``disclose_me``, ``progress`` on CALL, ...).
"""

from __future__ import annotations

import base64
import json
import re

from autobahn.wamp import message
from autobahn.wamp.exception import InvalidUriError, ProtocolError
from autobahn.wamp.serializer import Serializer

__all__ = [
    "WireError",
    "FastCall",
    "FastYield",
    "UriError",
    "Codec",
    "MESSAGE_NAMES",
    "SERIALIZER_IDS",
    "RAWSOCKET_IDS",
]

#: Serializer names offered, in order of preference for WebSocket subprotocols.
SERIALIZER_IDS = ("json", "msgpack", "cbor")
#: RawSocket handshake serializer numbers.
RAWSOCKET_IDS = {1: "json", 2: "msgpack", 3: "cbor"}

_CLASSES = Serializer.MESSAGE_TYPE_MAP
_LOOSE_URI = re.compile(r"^([^\s.#]+\.)*([^\s.#]+)$")  # Autobahn's loose, non-empty check
MESSAGE_NAMES = {code: cls.__name__.upper() for code, cls in _CLASSES.items()}

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


class _Fast:
    """
    A CALL or YIELD read straight from its decoded list (the hot path of RPC),
    with the attributes the dealer uses.  Only plain messages take this path:
    anything unusual (payload transparency, odd shapes, bad values) goes to
    Autobahn's full parser, which also produces the precise errors.
    """

    __slots__ = ("request", "args", "kwargs", "_router_internal")
    payload = None
    enc_algo = None
    enc_key = None
    enc_serializer = None


class FastCall(_Fast):
    __slots__ = ("procedure",)
    MESSAGE_TYPE = message.Call.MESSAGE_TYPE

    @property
    def receive_progress(self):
        return self._router_internal.get("receive_progress")


class FastYield(_Fast):
    __slots__ = ()
    MESSAGE_TYPE = message.Yield.MESSAGE_TYPE

    @property
    def progress(self):
        return self._router_internal.get("progress")


_MAX_ID = 2**53
_TRANSPARENCY = ("enc_algo", "ppt_scheme", "ppt_serializer", "ppt_cipher", "ppt_keyid")
_CALL_CODE = message.Call.MESSAGE_TYPE
_YIELD_CODE = message.Yield.MESSAGE_TYPE


def _fast(raw: list, code: int):
    """A FastCall/FastYield for a plain, valid message; None to use the full parser."""
    size = len(raw)
    request = raw[1]
    options = raw[2]
    if type(request) is not int or not 0 < request <= _MAX_ID or type(options) is not dict:
        return None
    if options and any(key in options for key in _TRANSPARENCY):
        return None
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
    msg.request = request
    msg.args = args
    msg.kwargs = kwargs
    msg._router_internal = options
    return msg


class WireError(Exception):
    """A payload that is not a well-formed WAMP message (protocol violation)."""

    def __init__(self, text: str, message_type: int | None = None) -> None:
        super().__init__(text)
        self.message_type = message_type  # the payload's WAMP type code, when it had a known one


class UriError(Exception):
    """A well-formed message whose URI is invalid (answered with ERROR invalid_uri)."""

    def __init__(self, text: str, message_type: int, request: object) -> None:
        super().__init__(text)
        self.message_type = message_type
        self.request = request


class _FastJson:
    """Autobahn object-serializer interface over the stdlib C JSON codec."""

    NAME = "json"
    BINARY = False

    def __init__(self) -> None:
        self._encoder = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, default=_json_default
        ).encode

    def serialize(self, obj) -> bytes:
        return self._encoder(obj).encode("utf-8")

    def unserialize(self, payload: bytes) -> list:
        obj = json.loads(payload)
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


def _object_serializer(name: str):
    if name == "json":
        return _FastJson()
    if name == "msgpack":
        from autobahn.wamp.serializer import MsgPackObjectSerializer

        return MsgPackObjectSerializer()
    if name == "cbor":
        from autobahn.wamp.serializer import CBORObjectSerializer

        return CBORObjectSerializer()
    raise ValueError(f"unknown serializer {name!r}; known: {', '.join(SERIALIZER_IDS)}")


class Codec:
    """One serializer, shared by every connection that negotiated it."""

    __slots__ = ("name", "binary", "_obj")

    def __init__(self, name: str) -> None:
        self._obj = _object_serializer(name)
        self.name = name
        self.binary = self._obj.BINARY

    def encode(self, msg: message.Message) -> bytes:
        """Bytes for ``msg`` (cached on the message for this serializer)."""
        return msg.serialize(self._obj)

    def decode(self, payload: bytes) -> message.Message:
        """
        Parse one WAMP message.  Raises :class:`WireError` for anything
        malformed and :class:`UriError` for a bad URI in a message that has a
        request ID to answer.
        """
        try:
            items = self._obj.unserialize(payload)
        except Exception as exc:
            raise WireError(f"payload is not valid {self.name}: {exc}") from None
        if len(items) != 1:
            raise WireError(f"expected one WAMP message, got {len(items)}")
        raw = items[0]
        if type(raw) is not list or not raw:
            raise WireError("a WAMP message must be a non-empty array")
        code = raw[0]
        if (code == _CALL_CODE or code == _YIELD_CODE) and type(code) is int and len(raw) > 2:
            fast = _fast(raw, code)
            if fast is not None:
                return fast
        cls = _CLASSES.get(code) if type(code) is int else None
        if cls is None:
            raise WireError(f"unknown WAMP message type {code!r}")
        try:
            msg = cls.parse(raw)
        except InvalidUriError as exc:
            request = raw[1] if len(raw) > 1 else None
            raise UriError(str(exc), code, request) from None
        except ProtocolError as exc:
            raise WireError(str(exc), code) from None
        except Exception as exc:  # Autobahn's parsers raise assorted errors
            raise WireError(f"malformed {MESSAGE_NAMES[code]}: {exc}", code) from None
        at = _OPTIONS_AT.get(code)
        if at is not None:
            msg._router_internal = raw[at]
        return msg

