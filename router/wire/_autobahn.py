"""
Every name wampd uses that Autobahn-Python does not promise to keep.

Autobahn is capped below its next yearly series (``setup.cfg``); before the
cap is lifted, each name here must still mean what wampd relies on.
``tests/test_autobahn_internals.py`` has one test per name, which fails when
the installed Autobahn changes it.

The WebSocket frame machine's attributes are read directly (``self.state``,
...) on the hot path, where a lookup through this module would cost; they
are listed here so that every use is accounted for.  The message-level names
the routing core needs live in the leaf :mod:`router.messages` (the core may
not import the wire) and are re-exported here.

WebSocket protocol (:class:`autobahn.websocket.protocol.WebSocketProtocol`),
used by :mod:`router.wire.websocket`:

* ``_connectionMade``: the framework-independent half of ``connectionMade``,
  which copies the factory's ``CONFIG_ATTRS`` onto the protocol and
  pretty-prints them for a debug line whether debug is on or not; wampd
  overrides it, copies them itself and gives Autobahn an empty tuple.
* ``CONFIG_ATTRS``: the factory attributes copied at each connection.
* ``_dataReceived``: the frame machine's entry for received bytes (what is
  not parsed on wampd's fast path goes there).
* :data:`FRAME_MACHINE`: ``state`` (compared with ``STATE_OPEN``), ``data``
  (bytes not yet parsed), ``current_frame`` (a frame being read),
  ``inside_message`` (a fragmented message being read), ``message_data``
  (the fragments read so far, a list of bytes).
* :data:`CLOSE_STATE`: ``failedByMe`` (the protocol failed the connection,
  e.g. a message over the size limit), ``closedByMe``, ``localCloseCode`` and
  ``localCloseReason`` (UTF-8 bytes) (the close wampd started, reported
  instead of the echo).
* ``_perMessageCompress``: the permessage-deflate state of a connection that
  negotiated it (None otherwise); :mod:`router.wire.wsmodes` compresses
  with its ``start_compress_message``/``compress_message_data``/``end_compress_message``.

The lean connection and the fast handshake (:mod:`router.wire._lean`,
:mod:`router.wire._handshake`) replace ``_connectionMade`` and take the
common ``processHandshake`` case; they set what Autobahn's would
(``_lean.FRESH``, checked against Autobahn's own ``_connectionMade`` by a
test), and call ``_onOpen``, ``consumeData``, ``failHandshake`` and the
factory's ``countConnections`` and ``_batched_timer`` as Autobahn does.

Messages and roles (:mod:`autobahn.wamp.message`, :mod:`autobahn.wamp.role`):

* ``Serializer.MESSAGE_TYPE_MAP``: WAMP type code -> message class
  (:data:`router.messages.MESSAGE_CLASSES`).
* ``Message._serialized``: the per-message cache behind ``Message.serialize``,
  keyed by the object serializer: one encoding per serializer.
* ``Message._router_internal``: a slot Autobahn keeps for routers; the wire
  stores a message's raw options/details dict there (broker, dealer and
  session read options Autobahn does not parse from it).
* Role features Autobahn does not define (``progressive_call_invocations``):
  set as attributes, which ``Welcome.marshal`` announces like any other
  (:func:`router.messages.add_feature`).
* ``Invocation.marshal()`` puts the details dict at index 3
  (:data:`router.messages.INVOCATION_DETAILS_AT`).
"""

from __future__ import annotations

from autobahn.twisted.websocket import WampWebSocketServerProtocol
from autobahn.websocket.protocol import WebSocketProtocol

from router.messages import INVOCATION_DETAILS_AT, MESSAGE_CLASSES, add_feature

__all__ = [
    "CONNECTION_MADE",
    "CONFIG_ATTRS",
    "DATA_RECEIVED",
    "STATE_OPEN",
    "FRAME_MACHINE",
    "CLOSE_STATE",
    "PER_MESSAGE_COMPRESS",
    "MESSAGE_TYPE_MAP",
    "SERIALIZED_CACHE",
    "ROUTER_INTERNAL",
    "UNDECLARED_FEATURES",
    "INVOCATION_DETAILS_AT",
    "add_feature",
]

#: The method wampd overrides to copy the factory's config attributes itself.
CONNECTION_MADE = "_connectionMade"
#: What Autobahn would copy from the factory at every connection (wampd copies these).
CONFIG_ATTRS: tuple = tuple(WampWebSocketServerProtocol.CONFIG_ATTRS)
#: The frame machine's entry for received bytes.
DATA_RECEIVED = "_dataReceived"
#: The value of ``state`` while the WebSocket is open.
STATE_OPEN = WebSocketProtocol.STATE_OPEN
#: Frame-machine attributes the fast path in ``WebSocketProtocol.dataReceived`` reads.
FRAME_MACHINE = ("state", "data", "current_frame", "inside_message", "message_data")
#: How a closing connection records who closed it and why.
CLOSE_STATE = ("failedByMe", "closedByMe", "localCloseCode", "localCloseReason")
#: A connection's permessage-deflate state (None when not negotiated).
PER_MESSAGE_COMPRESS = "_perMessageCompress"
#: WAMP type code -> Autobahn message class.
MESSAGE_TYPE_MAP = MESSAGE_CLASSES
#: The per-message encoding cache behind ``Message.serialize``.
SERIALIZED_CACHE = "_serialized"
#: The slot holding a message's raw options/details dict.
ROUTER_INTERNAL = "_router_internal"
#: Role features wampd announces or reads that Autobahn's feature classes do not define.
UNDECLARED_FEATURES = ("progressive_call_invocations",)
