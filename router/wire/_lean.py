"""
A WebSocket connection that holds only what differs from the defaults.

Autobahn's protocol sets about ninety attributes on every connection: the
factory's thirty options, two Deferreds, an event table, a send queue, a
UTF-8 validator, traffic counters and some forty flags that keep their
first value for the connection's whole life.  Ten thousand idle sessions
paid about 3 KiB each for that dict alone.  :class:`Lean` keeps the same
names readable with the same values, but from the class:

* the factory's options (``CONFIG_ATTRS``) and wampd's own per-factory
  settings live on a subclass made per factory (:func:`protocol_for`);
* every flag Autobahn starts a connection with (:data:`FRESH`) is a class
  attribute; an instance only gets one when Autobahn assigns it;
* the send queue is an empty tuple until a chopped or synchronous send (which
  wampd never makes) needs a real one; the UTF-8 validator and the two
  Deferreds (``is_open``, ``is_closed``) are made on first use; traffic
  counters go to one object shared by all connections (wampd reads none);
* what only the opening handshake needs is dropped once the connection is
  open (:meth:`Lean._settle`), and the instance dict is rebuilt compact.

``tests/test_autobahn_internals.py`` runs Autobahn's own ``_connectionMade``
and checks that every attribute it sets is covered here, so a new Autobahn
cannot add state that wampd's connections silently lack.
"""

from __future__ import annotations

from collections import deque
from types import FunctionType

import txaio
from autobahn.websocket.protocol import TrafficStats
from autobahn.websocket.protocol import WebSocketProtocol as _Protocol
from autobahn.websocket.utf8validator import Utf8Validator

__all__ = ["FRESH", "HANDSHAKE_ONLY", "Lean", "protocol_for"]

#: What Autobahn's ``_connectionMade`` sets on a new server connection, and the
#: value it sets (wampd's connections read these from the class instead).
FRESH = {
    "_perMessageCompress": None,
    "trackedTimings": None,
    "state": _Protocol.STATE_CONNECTING,
    "send_state": _Protocol.SEND_STATE_GROUND,
    "data": b"",
    "triggered": False,
    "wasMaxFramePayloadSizeExceeded": False,
    "wasMaxMessagePayloadSizeExceeded": False,
    "closedByMe": False,
    "failedByMe": False,
    "droppedByMe": False,
    "wasClean": False,
    "wasNotCleanReason": None,
    "wasServerConnectionDropTimeout": False,
    "wasOpenHandshakeTimeout": False,
    "wasCloseHandshakeTimeout": False,
    "wasServingFlashSocketPolicyFile": False,
    "localCloseCode": None,
    "localCloseReason": None,
    "remoteCloseCode": None,
    "remoteCloseReason": None,
    "openHandshakeTimeoutCall": None,
    "closeHandshakeTimeoutCall": None,
    "autoPingTimeoutCall": None,
    "autoPingPending": None,
    "autoPingPendingCall": None,
    "autoPingPendingSeq": 0,
    "autoPingPendingSent": None,
    # set when the handshake completes
    "inside_message": False,
    "current_frame": None,
    "websocket_extensions_in_use": (),
    "websocket_protocol_in_use": None,
    "websocket_version": 13,  # the frame machine reads it after the handshake; wampd speaks 13 only
}

#: Read only while the opening handshake lasts (refusals, onConnect): dropped once open.
HANDSHAKE_ONLY = frozenset({
    "http_request_data", "http_status_line", "http_headers", "http_request_uri", "http_request_path",
    "http_request_params", "http_request_host", "http_response_data",
    "websocket_protocols", "websocket_origin", "websocket_extensions", "_wskey",
})  # fmt: skip

_SHARED_STATS = TrafficStats()


class _OnFirstUse:
    """A class attribute whose value is made per instance on first read, then kept in the instance dict."""

    def __init__(self, make) -> None:
        self.make = make

    def __set_name__(self, owner, name) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.make()
        return value


class Lean:
    """Mixed in before Autobahn's protocol: see the module docstring."""

    send_queue = ()  # Autobahn's queue for chopped or synchronous sends (see sendData)
    trafficStats = _SHARED_STATS  # written by Autobahn's frame machine, read by nobody
    utf8validator = _OnFirstUse(Utf8Validator)  # only Autobahn's frame path validates
    is_open = _OnFirstUse(txaio.create_future)
    is_closed = _OnFirstUse(txaio.create_future)
    _lean_options = False  # True on the per-factory subclass: the options are class attributes

    def __init__(self) -> None:
        # Autobahn's makes two Deferreds, an event table and TransportDetails
        # (connectionMade makes the real one) for every connection
        pass

    def _connectionMade(self) -> None:
        """Autobahn's ``_connectionMade``, setting only what differs from the class (:data:`FRESH`)."""
        factory = self.factory
        if not self._lean_options:  # a protocol made outside its factory's buildProtocol
            for name in self._AUTOBAHN_CONFIG_ATTRS:
                setattr(self, name, getattr(factory, name))
        if self.trackTimings:
            self.setTrackTimings(True)
        if self.openHandshakeTimeout > 0:
            self.openHandshakeTimeoutCall = factory._batched_timer.call_later(
                self.openHandshakeTimeout, self.onOpenHandshakeTimeout
            )
        factory.countConnections += 1

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        if (sync or chopsize) and type(self.send_queue) is tuple:
            self.send_queue = deque()  # the first chopped or synchronous send: a real queue from now on
        super().sendData(data, sync, chopsize)

    def _settle(self) -> None:
        """The handshake is done: keep only what differs from the class, in a compact dict."""
        cls = type(self)
        kept = {}
        for name, value in self.__dict__.items():
            if name in HANDSHAKE_ONLY:
                continue
            if name in FRESH:
                default = FRESH[name]
                if value is default or (type(value) is type(default) and value == default):
                    continue
            elif name == "send_queue" and not value:
                continue
            elif name == "trafficStats" or (getattr(cls, name, kept) is value):
                continue
            kept[name] = value
        self.__dict__ = kept


for _name, _value in FRESH.items():
    setattr(Lean, _name, _value)
del _name, _value


def protocol_for(factory, base: type) -> type:
    """
    A subclass of ``base`` for ``factory``'s connections, carrying the
    factory's Autobahn options as class attributes (made again
    whenever the options change: :meth:`WebSocketFactory.setProtocolOptions`).
    """
    attrs = {}
    for name in base._AUTOBAHN_CONFIG_ATTRS:
        value = getattr(factory, name)
        # a function kept on a class would be bound to the connection when read
        attrs[name] = staticmethod(value) if isinstance(value, FunctionType) else value
    attrs["_lean_options"] = True
    attrs["__module__"] = base.__module__
    attrs["__qualname__"] = base.__qualname__
    return type(base.__name__, (base,), attrs)
