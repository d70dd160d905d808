"""
The router: realms, the listener dispatcher, ID generators, the open
connections, and an orderly shutdown.  It knows nothing of sockets, twistd or
config files; transports attach connections to it with :meth:`Router.connect`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from autobahn.wamp import role
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger

from router.dispatcher import Dispatcher
from router.events import ConnectionInfo, Reject, ServerStopping
from router.policy import ConnectionPolicy
from router.realm import Realm
from router.session import RouterSession
from router.uri import Counter, GlobalIds, is_valid_realm
from router.wire import DEFAULT_MAX_DEPTH, Codec

__all__ = ["Router", "ROUTER_ROLES"]

_log = Logger(namespace="wampd.router")

from router import __version__ as VERSION

#: The roles and features announced in WELCOME: exactly what is implemented.
def _roles() -> dict:
    broker = role.RoleBrokerFeatures(
        publisher_exclusion=True,
        publisher_identification=True,
        subscriber_blackwhite_listing=True,
        pattern_based_subscription=True,
        event_retention=True,
        session_meta_api=True,
        subscription_meta_api=True,
    )
    dealer = role.RoleDealerFeatures(
        caller_identification=True,
        pattern_based_registration=True,
        shared_registration=True,
        call_timeout=True,
        call_canceling=True,
        progressive_call_results=True,
        session_meta_api=True,
        registration_meta_api=True,
        testament_meta_api=True,
    )
    # Autobahn's feature classes do not know this one; they marshal any attribute
    dealer.progressive_call_invocations = True
    return {"broker": broker, "dealer": dealer}


ROUTER_ROLES = _roles()


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
        max_nesting_depth: int = DEFAULT_MAX_DEPTH,
        max_retained_topics: int = 10000,
        retained_ttl: float = 0.0,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        self.policy = policy if policy is not None else ConnectionPolicy()
        self.hello_timeout = hello_timeout
        self.max_nesting_depth = max_nesting_depth
        self.max_retained_topics = max_retained_topics  # per realm; 0 unlimited
        self.retained_ttl = retained_ttl  # seconds; 0 none
        self._per_host: dict[str, int] = {}
        self._handshaking: dict[int, RouterSession] = {}  # connections not (or no longer) joined
        self._hello_sweep = None
        self.dispatcher = Dispatcher(listeners, listener_timeout, clock)
        self.global_ids = GlobalIds(seed)
        self.scope_ids = Counter()
        self.roles = ROUTER_ROLES
        self.agent = f"wampd-{VERSION}"
        self.realms: dict[str, Realm] = {}
        self._connection_ids = Counter()
        self._connections: dict[int, RouterSession] = {}
        self._codecs: dict[str, Codec] = {}
        self._idle: list[Deferred] = []
        self._periodics: list = []  # (PeriodicSpec, realm name)
        self._loops: list = []
        for name in realms:
            self.add_realm(name)

    # -- realms ---------------------------------------------------------------

    def add_realm(self, name) -> Realm:
        """Add a realm by name (open to anonymous) or from a RealmConfig (with its auth)."""
        config = None
        if not isinstance(name, str):
            config, name = name, name.name
        if not is_valid_realm(name):
            raise ValueError(f"invalid realm name {name!r}: it must be a WAMP URI not starting with 'wamp.'")
        if name in self.realms:
            raise ValueError(f"realm {name!r} exists already")
        realm = self.realms[name] = Realm(name, self, config)
        return realm

    def api(self, realm: str = "realm1"):
        """The :class:`~router.internal.RealmApi` of a realm: publish and call as the router."""
        try:
            return self.realms[realm].api
        except KeyError:
            raise KeyError(f"no realm {realm!r}; realms: {sorted(self.realms)}") from None

    def install_app(self, app) -> None:
        """Add an :class:`~router.app.App`'s topic handlers, procedures and periodic services."""
        from router.internal import TopicHooks

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
        return any(session_id in realm.sessions for realm in self.realms.values())

    # -- connections ------------------------------------------------------------

    def codec(self, name: str) -> Codec:
        """The codec shared by all connections using serializer ``name``."""
        codec = self._codecs.get(name)
        if codec is None:
            codec = self._codecs[name] = Codec(name, self.max_nesting_depth)
        return codec

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
    ) -> RouterSession:
        """A transport accepted a connection: build its session (not yet opened)."""
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
        )
        return RouterSession(self, peer, info, self.codec(serializer))

    def track(self, session: RouterSession) -> Reject | None:
        """Count a new connection in; returns why the policy refuses it, if it does."""
        conn = session.connection
        self._connections[conn.id] = session
        host = conn.host
        if host is not None:
            self._per_host[host] = self._per_host.get(host, 0) + 1
        self.awaiting_hello(session)
        if self.policy.is_open:
            return None
        return self.policy.refusal(conn, len(self._connections), self._per_host.get(host, 0))

    def untrack(self, session: RouterSession) -> None:
        conn = session.connection
        if self._connections.pop(conn.id, None) is not None and conn.host is not None:
            left = self._per_host.get(conn.host, 1) - 1
            if left:
                self._per_host[conn.host] = left
            else:
                self._per_host.pop(conn.host, None)
        self._handshaking.pop(conn.id, None)
        if not self._connections and self._idle:
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
        if not self._handshaking and self._hello_sweep is not None:
            self._hello_sweep.stop()
            self._hello_sweep = None

    @property
    def connections(self) -> tuple[RouterSession, ...]:
        return tuple(self._connections.values())

    def _all_closed(self) -> Deferred:
        if not self._connections:
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
        for session in self.connections:
            if session.state == "joined":
                session.goodbye(reason, "the router is shutting down")
            else:
                session.peer.close()
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
