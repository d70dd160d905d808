"""router.wire.codec.FastMsgPack: the reused packer writes and reads what Autobahn's msgpack serializer does."""

from __future__ import annotations

import pytest
from autobahn.wamp.serializer import MsgPackObjectSerializer

from router.errors import WireError
from router.wire import codec_for
from router.wire.codec import FastMsgPack

SAMPLES = [
    [48, 1, {}, "com.example.echo", ["x" * 100]],
    [36, 2**53, 7, {"publisher": 5}, [1.5, -3, 0, 2**32, None, True, b"\x00bytes", "é"], {"k": [{"n": []}]}],
    [50, 3, {}, ["s" * 70000]],
]


@pytest.mark.parametrize("obj", SAMPLES)
def test_same_bytes_both_ways(obj):
    """Encoding gives Autobahn's bytes, and decoding them gives the message back, twice in a row (the packer resets)."""
    fast, autobahn = FastMsgPack(), MsgPackObjectSerializer()
    for _ in range(2):
        data = fast.serialize(obj)
        assert data == autobahn.serialize(obj)
        assert fast.unserialize(data) == autobahn.unserialize(data) == [obj]


@pytest.mark.parametrize("payload", [b"", b"\x93\x30", b"\xc1", b"\x91\x30\x30"])
def test_malformed_payloads_are_wire_errors(payload):
    """Truncated, reserved or trailing bytes are refused as malformed, as with Autobahn's serializer."""
    with pytest.raises(WireError):
        codec_for("msgpack").decode(payload)
