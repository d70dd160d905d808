"""
The wire: bytes <-> WAMP messages, and the transports that carry them.

The routing core never sees bytes or sockets.  A transport decodes each
payload with its factory's codec (one per serializer, shared by every
connection) and hands the session a message object; it is the session's
peer (:class:`router.interfaces.IPeer`), so it encodes what the session
sends, writes it, and applies backpressure.

* :mod:`router.wire.codec`: :class:`Codec` (stdlib C JSON, Autobahn's msgpack
  and CBOR) and the refusal policy for malformed or unacceptable messages;
* :mod:`router.wire.checks`: the input checks the codec runs while decoding;
* :mod:`router.wire.websocket`, :mod:`router.wire.rawsocket`: the protocols
  and their factories;
* :mod:`router.wire.ping`: :class:`PingSweeper`, one timer for all pings;
* :mod:`router.wire.outbound`: sending, backpressure, :class:`MemoryReleaser`;
* :mod:`router.wire._autobahn`: every private Autobahn name wampd relies on.
"""

from router.errors import BadRequest, UriError, WireError
from router.messages import DEFAULT_MAX_DEPTH, MESSAGE_NAMES, FastCall, FastYield
from router.wire.checks import MAX_TIMEOUT_MS
from router.wire.codec import RAWSOCKET_IDS, SERIALIZER_IDS, Codec, codec_for
from router.wire.outbound import MemoryReleaser, OutboundFull
from router.wire.ping import PingSweeper
from router.wire.rawsocket import RawSocketFactory, RawSocketProtocol
from router.wire.websocket import WebSocketFactory, WebSocketProtocol

__all__ = [
    "BadRequest",
    "Codec",
    "DEFAULT_MAX_DEPTH",
    "FastCall",
    "FastYield",
    "MAX_TIMEOUT_MS",
    "MESSAGE_NAMES",
    "MemoryReleaser",
    "OutboundFull",
    "PingSweeper",
    "RAWSOCKET_IDS",
    "RawSocketFactory",
    "RawSocketProtocol",
    "SERIALIZER_IDS",
    "UriError",
    "WebSocketFactory",
    "WebSocketProtocol",
    "WireError",
    "codec_for",
]
