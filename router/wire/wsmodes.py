"""
WebSocket connections that are not plain: permessage-deflate (RFC 7692) and
the batched subprotocols (``wamp.2.json.batched``, ``wamp.2.msgpack.batched``,
``wamp.2.cbor.batched``).

A plain connection never comes here: :class:`router.wire.websocket.WebSocketProtocol`
calls :func:`install` from ``onOpen`` only when one of the two was
negotiated, and ``install`` moves that one connection to a subclass whose
``send`` (and, for a batched one, ``dataReceived`` and ``onMessage``) are the
functions below.  A subclass, not instance attributes: the paced writes of
:mod:`router.wire.outbound` call ``type(self).send`` and shadow ``send`` on
the instance for a while, and must get the mode's send too.  So the cost of
either mode is paid by its connections only.

**permessage-deflate.**  Offered only when the router's ``websocket_deflate``
is on.  Inflating is Autobahn's frame machine (compressed frames have RSV1
set, so wampd's fast path leaves them to it); it stops inflating at
``max_message_size`` and closes with 1009, so a small compressed message
cannot blow up into a big one (a decompression bomb).  Messages the router
sends of :data:`MIN_DEFLATE` bytes or more are compressed; smaller ones are
sent plain (RFC 7692 lets each message choose).  The router's compressor uses
a 2**12-byte window and zlib memory level 5 (about 32 KiB per connection
instead of zlib's default 256 KiB); the client is asked for a 2**12-byte
window as well when its offer lets the server choose (``client_max_window_bits``).

**Batched.**  Each WebSocket message holds one or more WAMP messages: JSON
ones each followed by a record separator, msgpack and CBOR ones each
preceded by its length (4 bytes, big-endian), as the spec describes.  The
spec's separator is 0x1e; Autobahn-Python writes 0x18 (its ``"\\30"`` is an
octal escape) and splits on 0x18 only.  Neither byte can occur in JSON text,
so the router reads either, and answers with the one the client's first
batch ended with (0x1e until it has seen one).  The router sends every
message as a batch of one.  ``max_message_size`` bounds the whole WebSocket
message; each WAMP message in it is checked as any other (nesting depth,
types); an empty batch, or a truncated or badly terminated one, is a
protocol violation (ABORT).
"""

from __future__ import annotations

import struct
from typing import Any

from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from autobahn.websocket.types import ConnectionDeny

from router.errors import BadRequest, UriError, WireError
from router.wire import _autobahn
from router.wire.checks import refuse

__all__ = ["MIN_DEFLATE", "SUBPROTOCOLS", "choose_subprotocol", "deflate_accept", "install"]

MIN_DEFLATE = 64
"""Messages the router sends shorter than this are not compressed."""
_WINDOW_BITS = 12
_MEM_LEVEL = 5
_HEADER16 = struct.Struct("!BBH")
_HEADER64 = struct.Struct("!BBQ")
_LENGTH = struct.Struct("!L")
_SEPARATORS = (b"\x1e", b"\x18")
_DECODE_ERRORS = (WireError, UriError, BadRequest)
_OPEN = _autobahn.STATE_OPEN


def deflate_accept(max_message_size: int):
    """Autobahn's ``perMessageCompressionAccept``: take the client's first permessage-deflate offer."""

    def accept(offers):
        for offer in offers:
            if isinstance(offer, PerMessageDeflateOffer):
                bits = _WINDOW_BITS
                if offer.request_max_window_bits:
                    bits = min(bits, offer.request_max_window_bits)
                return PerMessageDeflateOfferAccept(
                    offer,
                    # the client's window too, when its offer lets the server choose it
                    request_max_window_bits=_WINDOW_BITS if offer.accept_max_window_bits else 0,
                    window_bits=bits,
                    mem_level=_MEM_LEVEL,
                    max_message_size=max_message_size or None,
                )
        return None

    return accept


_MODED: dict[type, type] = {}


def install(protocol: Any) -> None:
    """Move one open connection to the subclass that speaks its modes."""
    protocol.separator = None
    protocol.compressor = getattr(protocol, _autobahn.PER_MESSAGE_COMPRESS)
    base = type(protocol)
    moded = _MODED.get(base)
    if moded is None:
        moded = _MODED[base] = _moded(base)
    protocol.__class__ = moded


def _moded(base: type) -> type:
    fast_received = base.dataReceived
    plain_message = base.onMessage

    def dataReceived(self, data):  # noqa: N802 (Twisted's name)
        if self.batched:
            self._dataReceived(data)  # _autobahn.DATA_RECEIVED: the fast path decodes single messages
        else:
            fast_received(self, data)

    def onMessage(self, payload, is_binary):  # noqa: N802 (Autobahn's name)
        if self.batched:
            _batch_received(self, payload, is_binary)
        else:
            plain_message(self, payload, is_binary)

    return type(f"{base.__name__}WithModes", (base,), {"send": _send, "dataReceived": dataReceived, "onMessage": onMessage})


def _split(protocol: Any, payload: bytes) -> list[bytes]:
    if not payload:
        raise WireError("an empty batch: a batched WebSocket message holds at least one WAMP message")
    if protocol.codec.binary:
        chunks, at, size = [], 0, len(payload)
        while at < size:
            if size - at < 4:
                raise WireError("a batch ends inside a length prefix")
            (length,) = _LENGTH.unpack_from(payload, at)
            at += 4
            if size - at < length:
                raise WireError(f"a batch announces a {length}-byte message but holds {size - at} bytes")
            chunks.append(payload[at : at + length])
            at += length
        return chunks
    last = payload[-1:]
    if last not in _SEPARATORS:
        raise WireError("a batched JSON message must end with a record separator (0x1e)")
    if protocol.separator is None:
        protocol.separator = last
    return payload[:-1].split(last)


def _batch_received(protocol: Any, payload: bytes, is_binary: object) -> None:
    session = protocol.wampd_session
    clock = protocol.factory.router.clock
    try:
        chunks = _split(protocol, payload)
    except WireError as exc:
        refuse(session, exc, clock)
        return
    decode = protocol.codec.decode
    for chunk in chunks:
        if protocol.state != _OPEN:
            return
        protocol.messages_in += 1  # per WAMP message, as on plain connections (wamp.session.get_stats)
        protocol.bytes_in += len(chunk)
        try:
            msg = decode(chunk)
        except _DECODE_ERRORS as exc:
            refuse(session, exc, clock)
        else:
            traffic = protocol.traffic
            if traffic is not None:  # router.ops.meter
                traffic.in_msgs[msg.MESSAGE_TYPE] += 1
                traffic.in_bytes[msg.MESSAGE_TYPE] += len(chunk)
            session.receive(msg)


def _send(protocol: Any, msg: Any) -> bool:
    """:meth:`WebSocketProtocol.send` for this connection's modes (batch framing, then compression)."""
    compressor = protocol.compressor
    codec = protocol.codec
    try:
        data = codec.encode(msg)
    except Exception as exc:
        return protocol._unencodable(msg, exc)
    if protocol.state != _OPEN:
        return protocol._drop_reason is not None
    first = 0x82 if codec.binary else 0x81
    encoded = len(data)  # the WAMP message's bytes, before batch framing and compression (the counters)
    if protocol.batched:
        data = _LENGTH.pack(len(data)) + data if codec.binary else data + (protocol.separator or b"\x1e")
    if compressor is not None and len(data) >= MIN_DEFLATE:
        compressor.start_compress_message()
        data = compressor.compress_message_data(data) + compressor.end_compress_message()
        first |= 0x40  # RSV1: this message is compressed
    size = len(data)
    if size < 126:
        header = bytes((first, size))
    elif size < 65536:
        header = _HEADER16.pack(first, 126, size)
    else:
        header = _HEADER64.pack(first, 127, size)
    held = protocol.held
    if held is not None:
        held += size + len(header)
        if held > protocol.max_outbound:
            return protocol._overflow(msg, size + len(header))
        protocol.held = held
    protocol.transport.write(header + data)
    protocol.messages_out += 1
    protocol.bytes_out += encoded
    traffic = protocol.traffic
    if traffic is not None:  # router.ops.meter
        traffic.out_msgs[msg.MESSAGE_TYPE] += 1
        traffic.out_bytes[msg.MESSAGE_TYPE] += encoded
    return True


#: The WebSocket subprotocols wampd speaks -> serializer (the batched ones too).
SUBPROTOCOLS = {"wamp.2.json": "json", "wamp.2.msgpack": "msgpack", "wamp.2.cbor": "cbor"}
SUBPROTOCOLS.update({f"{name}.batched": serializer for name, serializer in SUBPROTOCOLS.items()})


def choose_subprotocol(offered: list[str]) -> tuple[str, str]:
    """
    The first offered subprotocol wampd speaks, and its serializer; a client
    offering none gets JSON; one offering only others, HTTP 400 naming ours.
    """
    for name in offered:
        if name in SUBPROTOCOLS:
            return name, SUBPROTOCOLS[name]
    if offered:
        raise ConnectionDeny(
            ConnectionDeny.BAD_REQUEST,
            f"none of the offered subprotocols {offered} is supported; use one of {sorted(SUBPROTOCOLS)}",
        )
    return "wamp.2.json", "json"
