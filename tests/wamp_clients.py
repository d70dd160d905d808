"""
Real autobahn-python clients over loopback, and a recording listener.
"""

from __future__ import annotations

from functools import partial

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}
# the batched WebSocket subprotocols (wamp.2.json.batched, ...): Autobahn's serializers in batched mode
BATCHED = {f"{name}.batched": partial(cls, batched=True) for name, cls in SERIALIZERS.items()}
TRANSPORTS = ("websocket", "rawsocket")


class Recorder:
    """A listener that records every event it is given, in order."""

    name = "tests.recorder"

    def __init__(self) -> None:
        self.events = []
        self._waiters = []

    def _record(self, event):
        self.events.append(event)
        for waiter in list(self._waiters):
            predicate, d = waiter
            if predicate(event):
                self._waiters.remove(waiter)
                d.callback(event)

    def wait_for(self, predicate, timeout: float = 10.0) -> Deferred:
        """
        Fires with the first recorded event (past or future) matching
        ``predicate``; fails with TimeoutError after ``timeout`` seconds so a
        broken test fails instead of hanging.
        """
        for event in self.events:
            if predicate(event):
                d = Deferred()
                d.callback(event)
                return d
        d = Deferred()
        waiter = (predicate, d)
        self._waiters.append(waiter)

        def forget(result):
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            return result

        d.addTimeout(timeout, reactor)
        d.addErrback(forget)
        return d

    def wait_disconnected(self, connection_id: int) -> Deferred:
        return self.wait_for(
            lambda e: e.name == "client_disconnected" and e.connection.id == connection_id
        )

    def for_connection(self, connection_id: int):
        return [e for e in self.events if _connection_id(e) == connection_id]

    def names(self, connection_id: int):
        return [e.name for e in self.for_connection(connection_id)]

    on_server_launched = _record
    on_client_connected = _record
    on_client_rejected = _record
    on_session_joining = _record
    on_session_joined = _record
    on_session_left = _record
    on_client_disconnected = _record
    on_client_error = _record
    on_server_stopping = _record
    on_server_reloaded = _record


def _connection_id(event):
    conn = getattr(event, "connection", None)
    if conn is None:
        session = getattr(event, "session", None)
        conn = getattr(session, "connection", None)
    return getattr(conn, "id", None)


class Client(ApplicationSession):
    """An ApplicationSession whose join and disconnect are Deferreds."""

    def __init__(self, config=None):
        super().__init__(config)
        self.joined = Deferred()
        self.left = Deferred()
        self.disconnected = Deferred()
        self.close_details = None
        self.inbox = []  # every message received, in order
        self.raw_requests = set()

    def onMessage(self, msg):
        self.inbox.append(msg)
        if getattr(msg, "request", None) in self.raw_requests:
            return None  # an answer to send_raw: autobahn has no pending request for it
        return super().onMessage(msg)

    def send_raw(self, raw):
        """Send a message as a raw JSON array, bypassing the client's own checks (websocket+json)."""
        import json

        if len(raw) > 1 and isinstance(raw[1], int):
            self.raw_requests.add(raw[1])
        self.wire.sendMessage(json.dumps(raw).encode(), False)

    def errors(self):
        """ERRORs answering send_raw requests, in order."""
        from autobahn.wamp import message

        return [
            (m.request_type, m.request, m.error)
            for m in self.inbox
            if isinstance(m, message.Error) and m.request in self.raw_requests
        ]

    def onJoin(self, details):
        self.sid = details.session  # kept after leaving (autobahn resets its own)
        self.joined.callback(details)

    def onLeave(self, details):
        self.close_details = details
        if not self.joined.called:
            self.joined.errback(RuntimeError(f"aborted: {details.reason} {details.message}"))
        self.left.callback(details)
        super().onLeave(details)

    def onDisconnect(self):
        if not self.joined.called:
            self.joined.errback(RuntimeError("disconnected before joining"))
        if not self.left.called:
            self.left.callback(None)
        self.disconnected.callback(None)


async def connect(address, transport="websocket", serializer="json", realm="realm1", session_class=Client, **session_kwargs):
    """Connect a client; returns it once the transport is up (not yet joined)."""
    session = session_class(ComponentConfig(realm))
    ser = (SERIALIZERS.get(serializer) or BATCHED[serializer])()
    if transport == "websocket":
        factory = WampWebSocketClientFactory(lambda: session, url=address, serializers=[ser])
        port = int(address.rsplit(":", 1)[1].split("/")[0])
    else:
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
        port = address
    factory.noisy = False
    proto = await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    session.wire = proto
    return session


async def join(address, transport="websocket", serializer="json", realm="realm1", session_class=Client):
    session = await connect(address, transport, serializer, realm, session_class)
    await session.joined.addTimeout(10, reactor)  # a refused join fails the test instead of hanging it
    return session


async def leave(session):
    session.leave()
    await session.disconnected


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


async def open_websocket(url: str, origin: str | None = None):
    """
    Open a WAMP WebSocket (optionally with an Origin header); returns the
    client session and a Deferred firing with the close reason (bounded).
    """
    from autobahn.twisted.websocket import WampWebSocketClientProtocol

    session = Client(ComponentConfig("realm1"))
    closed = Deferred()

    class Proto(WampWebSocketClientProtocol):
        def onClose(self, wasClean, code, reason):
            super().onClose(wasClean, code, reason)
            if not closed.called:
                closed.callback(reason)

    factory = WampWebSocketClientFactory(lambda: session, url=url, origin=origin)
    factory.protocol = Proto
    factory.noisy = False
    await TCP4ClientEndpoint(reactor, "127.0.0.1", port_of(url)).connect(factory)
    return session, closed.addTimeout(10, reactor)


async def rawsocket_handshake(port: int, octet: int = 0xF1) -> bytes:
    """Send a RawSocket handshake (JSON, 2**24 by default); returns all bytes got until the router closed."""
    from twisted.internet.protocol import Factory, Protocol

    lost = Deferred()

    class Raw(Protocol):
        def connectionMade(self):
            self.data = b""
            self.transport.write(bytes([0x7F, octet, 0, 0]))

        def dataReceived(self, data):
            self.data += data

        def connectionLost(self, reason):
            lost.callback(self.data)

    await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(Factory.forProtocol(Raw))
    return await lost.addTimeout(10, reactor)


class Named(Client):
    """A client that asks for an authid in HELLO (anonymous sessions keep it)."""

    authid = None

    def onConnect(self):
        self.join(self.config.realm, authid=self.authid)


def named(authid: str):
    """A L{Named} client class asking for C{authid}."""
    return type(f"Named_{authid}", (Named,), {"authid": authid})


async def join_as(live_router, authid, transport="websocket", serializer="json", realm="realm1"):
    """A client joined to C{live_router} asking for C{authid}."""
    return await join(live_router.address(transport), transport, serializer, realm, session_class=named(authid))
