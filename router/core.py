"""
The router: realms, the listener dispatcher, ID generators, the open
connections, and an orderly shutdown.  It knows nothing of sockets, twistd or
config files; transports attach connections to it with :meth:`Router.connect`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger

from router import __version__ as VERSION
from router.auth import LoginLimiter
from router.dispatcher import Dispatcher
from router.events import ClientCertificate, ConnectionInfo, Reject, ServerStopping
from router.features import ROUTER_ROLES
from router.hooks import TopicHooks
from router.messages import DEFAULT_MAX_DEPTH
from router.policy import ConnectionPolicy
from router.realm import Realm
from router.session import RouterSession
from router.uri import Counter, GlobalIds, is_valid_realm

__all__ = ["Router", "ROUTER_ROLES"]

_log = Logger(namespace="wampd.router")



class Router:
    def __init__(
        self,
        realms: Iterable[str] = ("realm1",),
        listeners: Iterable[tuple[object, int | None]] = (),
        listener_timeout: float = 5.0,
        clock: Any = None,
        seed: int | None = None,
        policy: ConnectionPolicy | None = None,
        hello_timeout: float = 10.0,
        login_limiter: LoginLimiter | None = None,
        max_nesting_depth: int = DEFAULT_MAX_DEPTH,
        max_retained_topics: int = 10000,
        retained_ttl: float = 0.0,
        max_history_events: int = 10000,
        max_calls_in_flight: int = 1000,
        max_queued_messages: int = 1000,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        # failed authentications per address and authid (router.auth.LoginLimiter; on by default)
        self.login_limiter = login_limiter if login_limiter is not None else LoginLimiter(clock)
        self.policy = policy if policy is not None else ConnectionPolicy()
        self.hello_timeout = hello_timeout
        self._sockets: dict[Any, str | None] = {}  # every accepted connection open now -> its host
        self._per_host: dict[str, int] = {}  # accepted connections open now, per host
        self.max_nesting_depth = max_nesting_depth  # the transports' codecs take it (router.wire.codec.codecs)
        self.max_retained_topics = max_retained_topics  # per realm; 0 unlimited
        self.retained_ttl = retained_ttl  # seconds; 0 none
        self.max_history_events = max_history_events  # per realm, all its history topics together
        self.max_calls_in_flight = max_calls_in_flight  # per calling session; 0 unlimited
        self.max_queued_messages = max_queued_messages  # per session, behind a pending authorization; 0 unlimited
        self._handshaking: dict[int, RouterSession] = {}  # connections not (or no longer) joined
        self._unopened: dict[Any, float] = {}  # admitted, transport handshake not done -> accepted at
        self._hello_sweep = None
        self.dispatcher = Dispatcher(listeners, listener_timeout, clock)
        self.global_ids = GlobalIds(seed)
        self.cluster = None  # a router.cluster node once attached (attach_cluster)
        self.seeded = seed is not None  # realms seed their ID generators from it too (repeatable tests)
        self.roles = ROUTER_ROLES
        self.agent = f"wampd-{VERSION}"
        self.realms: dict[str, Realm] = {}
        self._connection_ids = Counter()
        self._connections: dict[int, RouterSession] = {}
        self._idle: list[Deferred] = []
        self._periodics: list = []  # (PeriodicSpec, realm name)
        self._loops: list = []
        for name in realms:
            self.add_realm(name)

    # -- realms ---------------------------------------------------------------

    def add_realm(self, name: str, authenticator=None, authorizer=None) -> Realm:
        """
        Add a realm, with its authenticator and authorizer (see
        :mod:`router.auth`); without them it is open to anonymous clients.
        """
        if not is_valid_realm(name):
            raise ValueError(f"invalid realm name {name!r}: it must be a WAMP URI not starting with 'wamp.'")
        if name in self.realms:
            raise ValueError(f"realm {name!r} exists already")
        realm = self.realms[name] = Realm(name, self, authenticator, authorizer)
        return realm

    def attach_cluster(self, node) -> None:
        """Route through ``node`` (a :class:`router.cluster.ClusterNode`) too, from now on, in every realm."""
        self.cluster = node
        for realm in self.realms.values():
            realm.broker.cluster = realm.dealer.cluster = node

    def api(self, realm: str = "realm1"):
        """The :class:`~router.internal.RealmApi` of a realm: publish and call as the router."""
        try:
            return self.realms[realm].api
        except KeyError:
            raise KeyError(f"no realm {realm!r}; realms: {sorted(self.realms)}") from None

    def install_app(self, app) -> None:
        """Add an :class:`~router.app.App`'s topic handlers, procedures and periodic services."""
        def targets(spec_realm):
            if spec_realm is None:
                return list(self.realms.values())
            if spec_realm not in self.realms:
                raise ValueError(f"app {app.name!r} names realm {spec_realm!r}, which this router does not have")
            return [self.realms[spec_realm]]

        import copy
        import dataclasses

        for realm in self.realms.values():
            # each realm gets its own handler object, so that handler.api is that realm's
            specs = [
                dataclasses.replace(t, handler=copy.copy(t.handler)) if len(self.realms) > 1 else t
                for t in app.topics
                if t.realm in (None, realm.name)
            ]
            if specs:
                if realm.topic_hooks is None:
                    realm.topic_hooks = TopicHooks(realm, specs, realm.api)
                else:
                    realm.topic_hooks = TopicHooks(realm, realm.topic_hooks._specs + specs, realm.api)
        for spec in app.procedures:
            for realm in targets(spec.realm):
                realm.internal.add_procedure(spec.route, spec.fn, spec.invoke)
        for spec in app.periodics:
            for realm in targets(spec.realm):
                self._periodics.append((spec, realm.name))

    def start_periodics(self) -> None:
        """Start the apps' periodic services (the service does this after server_launched)."""
        from twisted.internet.task import LoopingCall

        for spec, realm in self._periodics:
            api = self.realms[realm].api

            def tick(spec=spec, api=api):
                d = maybeDeferred(spec.fn, api)
                d.addErrback(lambda f: _log.failure("periodic service {name} failed", failure=f, name=spec.name))
                return d

            loop = LoopingCall(tick)
            loop.clock = self.clock
            loop.start(spec.interval_ms / 1000.0, now=False)
            self._loops.append(loop)

    def stop_periodics(self) -> None:
        if self._hello_sweep is not None:
            self._hello_sweep.stop()
            self._hello_sweep = None
        loops, self._loops = self._loops, []
        for loop in loops:
            if loop.running:
                loop.stop()
        for realm in self.realms.values():
            if realm.topic_hooks is not None:
                realm.topic_hooks.stop()

    def session_id_taken(self, session_id: int) -> bool:
        """Whether a live session has this ID, here or (in a cluster) on another node."""
        if any(session_id in realm.sessions for realm in self.realms.values()):
            return True
        return self.cluster is not None and self.cluster.sessions.taken(session_id)

    # -- connections ------------------------------------------------------------

    def connect(
        self,
        peer: Any,
        *,
        transport: str,
        peer_address: str,
        host: str | None,
        serializer: str,
        endpoint: str,
        origin: str | None = None,
        path: str | None = None,
        headers: dict | None = None,
        client_cert: ClientCertificate | None = None,
    ) -> RouterSession:
        """A transport finished its handshake: build the connection's session (not yet opened)."""
        self._unopened.pop(peer, None)
        info = ConnectionInfo(
            id=self._connection_ids.next(),
            transport=transport,
            peer=peer_address,
            host=host,
            serializer=serializer,
            endpoint=endpoint,
            opened_at=self.clock.seconds(),
            origin=origin,
            path=path,
            headers=headers or {},
            client_cert=client_cert,
        )
        return RouterSession(self, peer, info, peer.codec)  # the peer's shared codec (None before a handshake)

    # -- counting connections: from accept to close ------------------------------

    def admit(self, peer: Any, host: str | None) -> Reject | None:
        """
        A transport accepted a TCP or Unix connection (``connectionMade``):
        count it toward ``max_connections`` and ``max_connections_per_address``
        now, before any handshake, and say whether it is over a limit (the
        transport then closes it at once, see :meth:`refused_at_accept`).
        Every admitted peer is released (:meth:`release`) exactly once, when it closes.
        """
        self._sockets[peer] = host
        if self.hello_timeout > 0:
            # its WebSocket/RawSocket handshake must be done within the HELLO timeout too
            self._unopened[peer] = self.clock.seconds()
            self._start_hello_sweep()
        from_host = 0
        if host is not None:
            from_host = self._per_host[host] = self._per_host.get(host, 0) + 1
        policy = self.policy
        if not policy.has_limits:
            return None
        return policy.over_limit(host, len(self._sockets), from_host)

    def readdress(self, peer: Any, host: str | None) -> Reject | None:
        """A trusted proxy named an admitted connection's client (router.wire.proxy): count it under ``host``."""
        old = self._sockets.get(peer, host)
        if old == host:
            return None
        self._sockets[peer] = host
        if old is not None:
            self._per_host[old] -= 1
            if not self._per_host[old]:
                del self._per_host[old]
        from_host = self._per_host[host] = self._per_host.get(host, 0) + 1
        return self.policy.over_limit(host, len(self._sockets), from_host) if self.policy.has_limits else None

    def release(self, peer: Any) -> None:
        """An admitted connection closed (``connectionLost``)."""
        self._unopened.pop(peer, None)
        if peer not in self._sockets:
            return
        host = self._sockets.pop(peer)
        if host is not None:
            left = self._per_host.get(host, 1) - 1
            if left:
                self._per_host[host] = left
            else:
                self._per_host.pop(host, None)
        self._maybe_idle()

    def refused_at_accept(
        self, peer: Any, refusal: Reject, *, transport: str, peer_address: str, host: str | None, endpoint: str
    ) -> RouterSession:
        """
        The session of a connection refused by :meth:`admit`, for its events
        only: ``client_connected`` and ``client_rejected`` fire now (its
        ``serializer``, ``origin`` and ``path`` are None: nothing was read), and
        ``client_disconnected`` when the transport reports it closed
        (``session.lost``).
        """
        session = self.connect(
            peer, transport=transport, peer_address=peer_address, host=host, serializer=None, endpoint=endpoint
        )
        session.refused_at_accept(refusal)
        return session

    @property
    def open_connections(self) -> int:
        """Accepted connections open now, handshake done or not (what ``max_connections`` counts)."""
        return len(self._sockets)

    def track(self, session: RouterSession) -> Reject | None:
        """A connection's session opens; returns why the policy refuses it (address, origin), if it does."""
        conn = session.connection
        self._connections[conn.id] = session
        self.awaiting_hello(session)
        if self.policy.is_open:
            return None
        return self.policy.refusal(conn)

    def untrack(self, session: RouterSession) -> None:
        conn = session.connection
        self._connections.pop(conn.id, None)
        self._handshaking.pop(conn.id, None)
        self._maybe_idle()

    def _maybe_idle(self) -> None:
        if self._idle and not self._connections and not self._sockets:
            waiting, self._idle = self._idle, []
            for d in waiting:
                d.callback(None)

    # -- the HELLO timeout: one sweeping timer for all unjoined connections ------

    def awaiting_hello(self, session: RouterSession) -> None:
        """``session`` has no joined session (new, or after GOODBYE): it must join in time."""
        if self.hello_timeout <= 0:
            return
        session.handshake_since = self.clock.seconds()
        self._handshaking[session.connection.id] = session
        self._start_hello_sweep()

    def _start_hello_sweep(self) -> None:
        if self._hello_sweep is None:
            from twisted.internet.task import LoopingCall

            self._hello_sweep = LoopingCall(self._sweep_handshakes)
            self._hello_sweep.clock = self.clock
            self._hello_sweep.start(max(0.05, self.hello_timeout / 4), now=False)

    def joined(self, session: RouterSession) -> None:
        self._handshaking.pop(session.connection.id, None)

    def _sweep_handshakes(self) -> None:
        now = self.clock.seconds()
        limit = self.hello_timeout
        for session in [s for s in self._handshaking.values() if now - s.handshake_since >= limit]:
            self._handshaking.pop(session.connection.id, None)
            session.handshake_timed_out(limit)
        # connections whose WebSocket upgrade request or RawSocket handshake is not done: dropped
        for peer in [p for p, since in self._unopened.items() if now - since >= limit]:
            self._unopened.pop(peer, None)
            peer.abort()
        if not self._handshaking and not self._unopened and self._hello_sweep is not None:
            self._hello_sweep.stop()
            self._hello_sweep = None

    @property
    def connections(self) -> tuple[RouterSession, ...]:
        return tuple(self._connections.values())

    def _all_closed(self) -> Deferred:
        if not self._connections and not self._sockets:
            return succeed(None)
        d = Deferred()
        self._idle.append(d)
        return d

    # -- shutdown ---------------------------------------------------------------

    def shutdown(
        self,
        reason: str = "wamp.close.system_shutdown",
        timeout: float = 3.0,
        stop_accepting: Callable[[], Deferred] | None = None,
    ) -> Deferred:
        """
        Fire ``server_stopping``, call ``stop_accepting`` (the transports stop
        listening), send GOODBYE to every joined session, close every other
        connection, and wait (at most ``timeout`` seconds, then drop what is
        left) until all are gone and every listener is done.
        """
        self.stop_periodics()
        stopping = self.dispatcher.emit(ServerStopping(reason))
        d = stopping if stopping is not None else succeed(None)
        if stop_accepting is not None:
            d.addCallback(lambda _: stop_accepting())
        d.addCallback(lambda _: self._close_all(reason, timeout))
        d.addCallback(lambda _: self.dispatcher.drained())
        return d

    def _close_all(self, reason: str, timeout: float) -> Deferred:
        # calls in flight end first: their callers get ERROR canceled before our GOODBYE
        for realm in self.realms.values():
            realm.dealer.cancel_all("the router is shutting down")
        for session in self.connections:
            if session.state == "joined":
                session.goodbye(reason, "the router is shutting down")
            else:
                session.peer.close()
        for peer in list(self._sockets):
            if getattr(peer, "wampd_session", None) is None:  # still in its WebSocket/RawSocket handshake
                peer.close()
        done = self._all_closed()
        if done.called:
            return done
        timer = self.clock.callLater(timeout, self._drop_all)
        done.addBoth(lambda result: (timer.cancel() if timer.active() else None, result)[1])
        return done

    def _drop_all(self) -> None:
        for session in self.connections:
            _log.warn(
                "connection {conn} did not close in time at shutdown; dropping it",
                conn=session.connection.id,
            )
            session.peer.abort()
        for peer in list(self._sockets):
            if getattr(peer, "wampd_session", None) is None:
                peer.abort()
