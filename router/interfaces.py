"""
The interfaces between the router's parts (zope.interface), in one leaf module.

Implementations live elsewhere; each is checked with ``verifyObject`` in the
tests.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface

__all__ = ["IPeer"]


class IPeer(Interface):
    """
    What a session speaks to: one connection's far end, as message objects.
    A WebSocket or RawSocket connection, the router's own session, a memory
    peer in tests.
    """

    codec = Attribute(
        "The serializer this peer's messages are encoded with, shared by every peer of its kind "
        "(``name``, ``binary``, ``encode(msg) -> bytes``, ``check(msg) -> Exception | None``); "
        "the broker groups subscribers by it to decide encodability once per serializer."
    )
    send_failure = Attribute(
        "The WAMP error URI saying why the last send() returned False "
        "(``wamp.error.invalid_argument``: cannot be encoded; ``wamp.error.payload_size_exceeded``: too big)."
    )

    def send(msg):
        "encode and write one message; False when it cannot be sent"

    def close():
        "Close the connection in order (WebSocket: the close handshake)."

    def abort(reason=None):
        "Drop the connection at once; ``reason`` (a text) is reported in ``client_disconnected``."
