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

from autobahn.wamp import message
from autobahn.wamp.exception import InvalidUriError, ProtocolError
from autobahn.wamp.serializer import Serializer

__all__ = [
    "WireError",
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


class WireError(Exception):
    """A payload that is not a well-formed WAMP message (protocol violation)."""


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
        cls = _CLASSES.get(code) if type(code) is int else None
        if cls is None:
            raise WireError(f"unknown WAMP message type {code!r}")
        try:
            msg = cls.parse(raw)
        except InvalidUriError as exc:
            request = raw[1] if len(raw) > 1 else None
            raise UriError(str(exc), code, request) from None
        except ProtocolError as exc:
            raise WireError(str(exc)) from None
        except Exception as exc:  # Autobahn's parsers raise assorted errors
            raise WireError(f"malformed {MESSAGE_NAMES[code]}: {exc}") from None
        at = _OPTIONS_AT.get(code)
        if at is not None:
            msg._router_internal = raw[at]
        return msg

