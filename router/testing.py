"""
Test your listeners and WAMP code against a real router without sockets.

:class:`MemoryRouter` runs the real router and connects real Autobahn
``ApplicationSession`` objects to it over in-memory transports
(:mod:`twisted.test.iosim`, speaking WAMP-over-RawSocket).  Nothing moves
until you call :meth:`MemoryRouter.flush`, so tests are deterministic::

    from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
    from router.testing import MemoryRouter

    def test_my_listener():
        seen = MyListener()
        memory = MemoryRouter(listeners=[seen])
        client = memory.join()                     # a joined ApplicationSession
        with pytest.raises(ApplicationError):      # wamp.error.no_such_procedure
            memory.result(client.call("com.example.nothing"))
        memory.disconnect(client)
        assert [e.name for e in seen.events] == [...]

The clock is a :class:`twisted.internet.task.Clock` (``memory.clock``):
advance it to fire listener timeouts.

:class:`MemoryPeer` is the smallest :class:`~router.interfaces.IPeer`: it
keeps the message objects a session sends it, for tests of code that speaks
to peers without any transport at all.
"""

from __future__ import annotations

from typing import Any, Iterable

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.exception import TransportLost
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.test import iosim
from zope.interface import implementer

from router.auth import LoginLimiter
from router.config import RealmConfig
from router.config.auth import build_realm_auth
from router.core import Router
from router.interfaces import IListener, IPeer
from router.wire import PingSweeper, RawSocketFactory, WebSocketFactory, codec_for

__all__ = ["MemoryRouter", "MemoryPeer", "RecordingListener"]

_SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}


@implementer(IListener)
class RecordingListener:
    """A listener that keeps every lifecycle event it gets, in order, in ``events``."""

    def __init__(self) -> None:
        self.events: list = []

    def _record(self, event: Any) -> None:
        self.events.append(event)

    on_server_launched = on_client_connected = on_client_rejected = _record
    on_session_joining = on_session_joined = on_session_left = _record
    on_client_disconnected = on_client_error = on_server_stopping = _record
    on_server_reloaded = _record


class MemoryRouter:
    """A real router whose clients are connected in memory."""

    def __init__(
        self,
        realms: Iterable[str | RealmConfig] = ("realm1",),
        listeners: Iterable[object] = (),
        clock: Clock | None = None,
        listener_timeout: float = 5.0,
        max_message_size: int = 1048576,
        apps: Iterable[object] = (),
        login_limits: dict | None = None,
        seed: int | None = None,
        ping_interval: float = 0.0,
        ping_timeout: float = 10.0,
        transport: str = "rawsocket",
        **router_options: Any,
    ) -> None:
        """
        ``router_options`` go to :class:`~router.core.Router` (``max_retained_topics``,
        ``retained_ttl``, ...).  ``transport`` is what clients speak in memory:
        ``"rawsocket"`` or ``"websocket"`` (the HTTP upgrade and frames included).
        """
        if transport not in ("rawsocket", "websocket"):
            raise ValueError(f"unknown transport {transport!r}; use 'rawsocket' or 'websocket'")
        self.transport = transport
        self.clock = clock if clock is not None else Clock()
        self.router = Router(
            realms=(),
            listeners=[(listener, None) for listener in listeners],
            listener_timeout=listener_timeout,
            clock=self.clock,
            # the failed-login limit on self.clock: login_limits=dict(per_authid=3, window=60.0, ...)
            login_limiter=LoginLimiter(self.clock, **(login_limits or {})),
            seed=seed,  # a seed makes every ID the router draws repeatable
            **router_options,
        )
        for realm in realms:
            # a name (an open realm) or a RealmConfig, with its auth built as the service does
            if isinstance(realm, str):
                self.router.add_realm(realm)
            else:
                added = self.router.add_realm(realm.name, *build_realm_auth(realm, self.clock))
                if realm.history:  # event history, as the service sets it up
                    added.broker.enable_history(
                        [(h.topic, h.match, h.limit) for h in realm.history], self.router.max_history_events
                    )
        for app in apps:
            self.router.install_app(app)
        # pings are off unless asked for (RawSocket peers are pinged only once they ping)
        self.sweeper = PingSweeper(self.clock, ping_interval, ping_timeout)
        self.sweeper.start()
        self._factory: RawSocketFactory | WebSocketFactory
        if transport == "websocket":
            self._factory = WebSocketFactory(
                self.router, self.sweeper, url="ws://127.0.0.1:8080/ws", endpoint="memory",
                max_message_size=max_message_size,
            )
        else:
            self._factory = RawSocketFactory(
                self.router, endpoint="memory", max_message_size=max_message_size, sweeper=self.sweeper
            )
        self._pumps: dict[int, iosim.IOPump] = {}
        self._next_port = 40000

    def connect(self, session: ApplicationSession, serializer: str = "json") -> iosim.IOPump:
        """Connect ``session`` (not yet flushed: call :meth:`flush` to let it join)."""
        try:
            make = _SERIALIZERS[serializer]
        except KeyError:
            raise ValueError(f"unknown serializer {serializer!r}; use one of {sorted(_SERIALIZERS)}") from None
        client_factory: WampRawSocketClientFactory | WampWebSocketClientFactory
        if self.transport == "websocket":
            client_factory = WampWebSocketClientFactory(
                lambda: session, url="ws://127.0.0.1:8080/ws", serializers=[make()]
            )
        else:
            client_factory = WampRawSocketClientFactory(lambda: session, serializer=make())
        self._next_port += 1
        peer = IPv4Address("TCP", "127.0.0.1", self._next_port)
        host = IPv4Address("TCP", "127.0.0.1", 8080)
        server = self._factory.buildProtocol(peer)
        client = client_factory.buildProtocol(host)
        server_io = iosim.FakeTransport(server, isServer=True, hostAddress=host, peerAddress=peer)
        client_io = iosim.FakeTransport(client, isServer=False, hostAddress=peer, peerAddress=host)
        pump = iosim.connect(server, server_io, client, client_io, greet=False)
        self._pumps[id(session)] = pump
        self.flush()
        return pump

    def join(
        self,
        session_class: type[ApplicationSession] = ApplicationSession,
        realm: str = "realm1",
        serializer: str = "json",
        extra: Any = None,
    ) -> ApplicationSession:
        """Create a session of ``session_class``, connect it and let it join ``realm``."""
        session = session_class(ComponentConfig(realm, extra))
        self.connect(session, serializer)
        return session

    def flush(self) -> None:
        """Move bytes both ways until every connection is quiet."""
        moved = True
        while moved:
            moved = False
            for key, pump in list(self._pumps.items()):
                try:
                    if pump.pump(advanceClock=False):
                        moved = True
                except TransportLost:
                    # older Autobahn RawSocket clients (the floor in .ci/floors.txt;
                    # fixed by autobahn-python #1850) raise when the router refuses
                    # their handshake; the bytes were delivered, the client is closed
                    moved = True
                if pump.clientIO.disconnected and pump.serverIO.disconnected:
                    del self._pumps[key]

    def result(self, d: Deferred) -> Any:
        """
        Flush, then return what Deferred ``d`` fired with, or raise its
        failure (e.g. an ``ApplicationError`` from a call).  Raises
        ``RuntimeError`` when it still has not fired.
        """
        self.flush()
        out: list = []
        d.addBoth(out.append)
        if not out:
            raise RuntimeError(f"{d!r} has not fired after a flush")
        outcome = out[0]
        if isinstance(outcome, Failure):
            outcome.raiseException()
        return outcome

    def disconnect(self, session: ApplicationSession, clean: bool = True) -> None:
        """Drop a client's connection: cleanly (TCP FIN) or as a lost connection."""
        pump = self._pumps.get(id(session))
        if pump is None:
            return
        if not clean:
            pump.serverIO.disconnectReason = ConnectionLost("connection lost (in memory)")
        pump.clientIO.loseConnection()
        self.flush()

    def shutdown(self) -> Deferred:
        """Shut the router down as the service would; returns its Deferred (flushes first)."""
        self.sweeper.stop()
        d = self.router.shutdown()
        self.flush()
        return d


@implementer(IPeer)
class MemoryPeer:
    """
    A peer that keeps what it is sent (``sent``: message objects, in order).
    Each message is encoded with ``serializer``'s shared codec first, as a
    transport would, so a message it could not carry is refused the same way
    (``send`` returns False, ``send_failure`` says why).  ``max_send``: the
    largest message it accepts, in bytes (the session checks WELCOME and
    CHALLENGE against it, as for a RawSocket peer).
    """

    def __init__(self, serializer: str = "json", max_send: int = 2**63) -> None:
        self.codec = codec_for(serializer)
        self.max_send = max_send
        self.send_failure = "wamp.error.invalid_argument"
        self.sent: list = []
        self.closed = False
        self.abort_reason: str | None = None

    def send(self, msg: Any) -> bool:
        try:
            size = len(self.codec.encode(msg))
        except Exception:
            self.send_failure = "wamp.error.invalid_argument"
            return False
        if size > self.max_send:
            self.send_failure = "wamp.error.payload_size_exceeded"
            return False
        if self.closed:
            return False
        self.sent.append(msg)
        return True

    def send_paced(self, msgs: Iterable[Any]) -> None:
        """A memory peer never stops reading: each is sent at once."""
        for msg in msgs:
            self.send(msg)

    def close(self) -> None:
        self.closed = True

    def abort(self, reason: str | None = None) -> None:
        self.closed = True
        self.abort_reason = reason
