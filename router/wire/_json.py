"""
JSON through the stdlib's C codec, as an Autobahn object serializer.

Autobahn's own JSON decoder forces the pure-Python scanner (about 6x slower).
WAMP's binary convention (a string starting with ``"\\0"`` carries base64
bytes) is handled after decoding, and only when the payload contains an
escaped NUL at all.  JSON has no NaN or Infinity: refused on input, never sent.
"""

from __future__ import annotations

import base64
import json
from json.encoder import c_make_encoder, encode_basestring

from router.wire.checks import no_json_constant

__all__ = ["FastJson"]


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
