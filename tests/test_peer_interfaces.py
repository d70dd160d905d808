"""The peer seam: every IPeer implementation (``verifyObject``), and message objects both ways."""

from autobahn.wamp import message
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from router.core import Router
from router.interfaces import IPeer
from router.testing import MemoryPeer
from router.wire import PingSweeper, RawSocketFactory, WebSocketFactory, codec_for

ADDRESS = IPv4Address("TCP", "127.0.0.1", 27001)
HELLO = b'[1,"realm1",{"roles":{"subscriber":{}}}]'


def test_the_websocket_protocol_is_a_peer():
    """A WebSocket connection provides IPeer."""
    router = Router(clock=Clock())
    factory = WebSocketFactory(router, PingSweeper(router.clock, 0, 10))
    assert verifyObject(IPeer, factory.buildProtocol(ADDRESS))


def test_the_rawsocket_protocol_is_a_peer():
    """A RawSocket connection provides IPeer."""
    router = Router(clock=Clock())
    assert verifyObject(IPeer, RawSocketFactory(router).buildProtocol(ADDRESS))


def test_the_memory_peer_is_a_peer():
    """router.testing.MemoryPeer provides IPeer."""
    assert verifyObject(IPeer, MemoryPeer())


def test_the_internal_session_is_its_own_peer():
    """The realm's internal session provides IPeer (it is its own peer)."""
    router = Router(clock=Clock())
    assert verifyObject(IPeer, router.realms["realm1"].internal)


def test_a_session_speaks_message_objects_to_its_peer():
    """The seam: message objects in (``receive``), message objects out (``peer.send``)."""
    router = Router(clock=Clock())
    peer = MemoryPeer("json")
    session = router.connect(
        peer, transport="rawsocket", peer_address="memory", host=None, serializer="json", endpoint="memory"
    )
    assert session.codec is peer.codec is codec_for("json")
    assert session.opened() is None
    session.receive(peer.codec.decode(HELLO))
    [welcome] = peer.sent
    assert isinstance(welcome, message.Welcome) and welcome.realm == "realm1"


def test_a_welcome_over_what_the_peer_accepts_is_an_abort():
    """A WELCOME larger than the peer accepts becomes an ABORT payload_size_exceeded; the session does not join."""
    router = Router(clock=Clock())
    peer = MemoryPeer(max_send=256)
    session = router.connect(
        peer, transport="rawsocket", peer_address="memory", host=None, serializer="json", endpoint="memory"
    )
    session.opened()
    session.receive(peer.codec.decode(HELLO))
    [abort] = peer.sent
    assert type(abort) is message.Abort and abort.reason == "wamp.error.payload_size_exceeded"
    assert peer.closed


def test_an_unencodable_message_is_the_peers_to_report():
    """A message the peer's serializer cannot carry is refused by the peer (False, send_failure invalid_argument), nothing written."""
    peer = MemoryPeer("msgpack")
    assert peer.send(message.Event(1, 2, args=[2**70])) is False
    assert peer.send_failure == "wamp.error.invalid_argument" and peer.sent == []
