"""
One test per Autobahn name wampd relies on without Autobahn's promise
(:mod:`router.wire._autobahn`): each fails when the installed Autobahn
changes what wampd uses.
"""

import inspect
import zlib
import json
import os
import struct

import pytest
from autobahn.twisted import websocket as twisted_websocket
from autobahn.wamp import message, role
from autobahn.wamp.serializer import Serializer
from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from router.core import Router
from router.wire import PingSweeper, WebSocketFactory, _autobahn, codec_for

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:27000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n"
)


def frame(payload: bytes, fin: bool = True, opcode: int = 1) -> bytes:
    """A masked client frame."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    head = bytes((first, 0x80 | size)) if size < 126 else struct.pack("!BBH", first, 0x80 | 126, size)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.fixture
def proto():
    """An open WAMP WebSocket connection of wampd's, in memory."""
    router = Router(clock=Clock(), hello_timeout=0)
    factory = WebSocketFactory(router, PingSweeper(router.clock, 0, 10), max_message_size=1024)
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 27001))
    protocol.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 27001)))
    protocol.dataReceived(UPGRADE)
    assert b"101 Switching Protocols" in protocol.transport.value()
    protocol.transport.clear()
    return protocol


def test_connection_made_hands_over_to_the_private_hook():
    assert callable(getattr(AutobahnProtocol, _autobahn.CONNECTION_MADE))
    source = inspect.getsource(twisted_websocket.WebSocketServerProtocol.connectionMade)
    assert f"self.{_autobahn.CONNECTION_MADE}()" in source


def test_config_attrs_are_copied_from_the_factory(proto):
    assert "self.CONFIG_ATTRS" in inspect.getsource(AutobahnProtocol._connectionMade)
    assert _autobahn.CONFIG_ATTRS and all(type(name) is str for name in _autobahn.CONFIG_ATTRS)
    for name in _autobahn.CONFIG_ATTRS:  # wampd copied them all itself
        assert getattr(proto, name) == getattr(proto.factory, name), name


def test_data_received_goes_to_the_frame_machine():
    source = inspect.getsource(twisted_websocket.WebSocketAdapterProtocol.dataReceived)
    assert f"self.{_autobahn.DATA_RECEIVED}(data)" in source
    assert list(inspect.signature(getattr(AutobahnProtocol, _autobahn.DATA_RECEIVED)).parameters) == ["self", "data"]


def test_state_is_state_open_while_open(proto):
    assert _autobahn.STATE_OPEN == AutobahnProtocol.STATE_OPEN
    assert proto.state == _autobahn.STATE_OPEN
    proto.sendClose(1000)
    assert proto.state != _autobahn.STATE_OPEN


def test_data_holds_bytes_not_yet_parsed(proto):
    assert not proto.data
    proto.dataReceived(b"\x81")  # half a frame header: the frame machine keeps it
    assert proto.data == b"\x81"


def test_current_frame_is_a_frame_being_read(proto):
    assert proto.current_frame is None
    proto.dataReceived(frame(b"[1,2,3]")[:-2])  # header read, payload incomplete
    assert proto.current_frame is not None


def test_inside_message_while_fragments_come(proto):
    assert not proto.inside_message
    proto.dataReceived(frame(b"[6,", fin=False))
    assert proto.inside_message


def test_message_data_holds_the_fragments(proto):
    proto.dataReceived(frame(b"[6,", fin=False))
    assert b"".join(proto.message_data) == b"[6,"
    seen = []
    proto.onMessage = lambda payload, binary: seen.append(payload)
    proto.dataReceived(frame(b"{}]", opcode=0))
    assert seen == [b"[6,{}]"] and proto.message_data is None


def test_failed_by_me_after_a_message_over_the_limit(proto):
    assert not proto.failedByMe
    proto.dataReceived(frame(json.dumps([1, "x" * 2000]).encode()))
    assert proto.failedByMe


@pytest.mark.parametrize("name", _autobahn.CLOSE_STATE[1:])
def test_a_close_we_start_is_recorded(proto, name):
    proto.sendClose(1000, "bye")
    assert {"closedByMe": True, "localCloseCode": 1000, "localCloseReason": b"bye"}[name] == getattr(proto, name)


def test_per_message_compress_is_none_unless_negotiated_and_compresses(proto):
    """A plain connection's _perMessageCompress is None; a negotiated one compresses with the three calls wampd makes."""
    assert getattr(proto, _autobahn.PER_MESSAGE_COMPRESS) is None
    router = Router(clock=Clock(), hello_timeout=0)
    factory = WebSocketFactory(router, PingSweeper(router.clock, 0, 10), max_message_size=1024, deflate=True)
    deflating = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 27002))
    deflating.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 27002)))
    deflating.dataReceived(UPGRADE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"))
    assert b"Sec-WebSocket-Extensions: permessage-deflate" in deflating.transport.value()
    compressor = getattr(deflating, _autobahn.PER_MESSAGE_COMPRESS)
    compressor.start_compress_message()
    data = compressor.compress_message_data(b"a" * 1000) + compressor.end_compress_message()
    assert zlib.decompressobj(-15).decompress(data + b"\x00\x00\xff\xff") == b"a" * 1000


def test_message_type_map():
    assert _autobahn.MESSAGE_TYPE_MAP is Serializer.MESSAGE_TYPE_MAP
    assert _autobahn.MESSAGE_TYPE_MAP[message.Call.MESSAGE_TYPE] is message.Call
    assert all(cls.MESSAGE_TYPE == code for code, cls in _autobahn.MESSAGE_TYPE_MAP.items())


def test_serialized_caches_one_encoding_per_serializer():
    codec = codec_for("json")
    event = message.Event(1, 2, args=["x"])
    assert getattr(event, _autobahn.SERIALIZED_CACHE) == {}
    data = codec.encode(event)
    assert list(getattr(event, _autobahn.SERIALIZED_CACHE).values()) == [data]
    assert codec.encode(event) is data


def test_router_internal_is_a_slot_for_the_router():
    call = message.Call(1, "com.example.p")
    assert getattr(call, _autobahn.ROUTER_INTERNAL) is None
    setattr(call, _autobahn.ROUTER_INTERNAL, {"timeout": 5})
    assert call._router_internal == {"timeout": 5}
    assert _autobahn.ROUTER_INTERNAL in message.Message.__slots__


@pytest.mark.parametrize("name", _autobahn.UNDECLARED_FEATURES)
def test_undeclared_role_features_are_announced(name):
    features = role.RoleDealerFeatures()
    assert not hasattr(features, name)  # else Autobahn knows it now: no need for add_feature
    _autobahn.add_feature(features, name, True)
    raw = message.Welcome(1, {"dealer": features}).marshal()
    assert raw[2]["roles"]["dealer"]["features"] == {name: True}


def test_invocation_details_position():
    raw = message.Invocation(1, 2, args=[3]).marshal()
    assert raw[_autobahn.INVOCATION_DETAILS_AT] == {}
    assert raw[_autobahn.INVOCATION_DETAILS_AT + 1] == [3]


def test_the_rest_of_a_read_goes_to_the_frame_machine_after_a_state_change(proto):
    """
    The fast path stops at a message that changes the state (the peer's
    GOODBYE after ours, which closes): the rest of the same read, here the
    peer's Close frame, still reaches Autobahn's closing handshake, which
    ends the connection at once instead of after a timeout.
    """
    proto.dataReceived(frame(json.dumps([1, "realm1", {"roles": {"caller": {}}}]).encode()))
    assert b"[2," in proto.transport.value()  # WELCOME
    proto.wampd_session.goodbye("wamp.close.system_shutdown")
    proto.dataReceived(frame(json.dumps([6, {}, "wamp.close.goodbye_and_out"]).encode()) + frame(struct.pack("!H", 1000), opcode=8))
    assert proto.remoteCloseCode == 1000 and proto.wasClean
    assert proto.transport.disconnecting
