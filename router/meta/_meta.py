"""The meta API of one realm: Python queries, meta events and testaments (see :mod:`router.meta`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from router.events import SessionInfo
from router.filters import compile_filters
from router.meta._procedures import Procedures, registration_details, session_details, subscription_details

if TYPE_CHECKING:
    from router.interfaces import IRoutedSession as RouterSession

__all__ = ["Meta"]

_log = Logger(namespace="wampd.meta")


class _Departed:
    """A session that left, as the publisher of its testaments: only its identity is left."""

    __slots__ = ("info",)

    def __init__(self, info: SessionInfo) -> None:
        self.info = info


class Meta(Procedures):
    """The meta API: its Python queries, its meta events, testaments (procedures: :class:`Procedures`)."""

    def __init__(self, realm: Any) -> None:
        # realm: the router.realm.Realm whose meta API this is (sessions, broker, dealer, name)
        self.realm = realm
        self._testaments: dict[Any, dict] = {}  # session -> scope -> [(topic, args, kwargs, options)]
        self._init_procedures()

    # -- the Python API ---------------------------------------------------------

    def sessions(self, authroles=None) -> list[SessionInfo]:
        """Who is joined to this realm (optionally only these authroles)."""
        infos = [s.info for s in self.realm.sessions.values() if s.info is not None]
        if authroles is not None:
            wanted = set(authroles)
            infos = [i for i in infos if i.authrole in wanted]
        return infos

    def session(self, session_id: int) -> SessionInfo | None:
        found = self.realm.sessions.get(session_id)
        return found.info if found is not None else None

    def kill(self, session_id: int, reason: str = "wamp.close.normal", text: str | None = None) -> bool:
        """Close one session with GOODBYE ``reason``; False if no such session."""
        found = self.realm.sessions.get(session_id)
        if found is None:
            return False
        found.goodbye(reason, text)
        return True

    def kill_where(
        self, keep: Callable[[SessionInfo], bool], reason="wamp.close.normal", text=None, spare=None
    ) -> list[int]:
        """Close every session for which ``keep(info)`` is true, except ``spare``; returns their session ids."""
        victims = [
            s for s in self.realm.sessions.values() if s is not spare and s.info is not None and keep(s.info)
        ]
        for victim in victims:
            victim.goodbye(reason, text)
        return [victim.info.session_id for victim in victims]

    # -- meta events -------------------------------------------------------------

    def _publish(self, topic: str, *args, cluster_wide: bool = False) -> None:
        # a meta event never breaks what it reports (a subscription, a departure): a failure is logged
        try:
            broker = self.realm.broker
            publication = broker.deliver(topic, list(args), exclude_me=False)
            if cluster_wide and broker.cluster is not None:  # to subscribers on the cluster's other nodes too
                broker.cluster.forward_publication(self.realm.name, topic, publication, list(args), None, None, None, False)
        except Exception:
            _log.failure("meta event {topic} could not be published", topic=topic)

    def session_joined(self, session: RouterSession) -> None:
        details = session_details(session.info)
        self._publish("wamp.session.on_join", details, cluster_wide=True)
        cluster = self.realm.broker.cluster
        if cluster is not None:
            cluster.sessions.joined(self.realm.name, details)

    def session_left(self, info: SessionInfo) -> None:
        self._publish("wamp.session.on_leave", info.session_id, info.authid, info.authrole, cluster_wide=True)
        cluster = self.realm.broker.cluster
        if cluster is not None:
            cluster.sessions.left(info.session_id)

    def _only_here(self, kind: str, item) -> bool:
        """Whether no other cluster node has this subscription/registration: its creation or deletion is the cluster's."""
        cluster = self.realm.broker.cluster
        return cluster is None or not cluster.meta.held_elsewhere(kind, self.realm.name, item.match, item.uri)

    # subscriptions and registrations have the same ID on every node (router.uri.ScopeIds): their events cross nodes
    def subscription_created(self, session, sub) -> None:
        if self._only_here("sub", sub):
            self._publish("wamp.subscription.on_create", session.session_id, subscription_details(sub), cluster_wide=True)

    def subscribed(self, session, sub) -> None:
        self._publish("wamp.subscription.on_subscribe", session.session_id, sub.id, cluster_wide=True)

    def unsubscribed(self, session, sub) -> None:
        self._publish("wamp.subscription.on_unsubscribe", session.session_id, sub.id, cluster_wide=True)

    def subscription_deleted(self, session, sub) -> None:
        if self._only_here("sub", sub):
            self._publish("wamp.subscription.on_delete", session.session_id, sub.id, cluster_wide=True)

    def registration_created(self, session, reg) -> None:
        if self._only_here("reg", reg):
            self._publish("wamp.registration.on_create", session.session_id, registration_details(reg), cluster_wide=True)

    def registered(self, session, reg) -> None:
        self._publish("wamp.registration.on_register", session.session_id, reg.id, cluster_wide=True)

    def unregistered(self, session, reg) -> None:
        self._publish("wamp.registration.on_unregister", session.session_id, reg.id, cluster_wide=True)

    def registration_deleted(self, session, reg) -> None:
        if self._only_here("reg", reg):
            self._publish("wamp.registration.on_delete", session.session_id, reg.id, cluster_wide=True)

    def publish_testaments(self, session: RouterSession) -> None:
        """
        The session is going: publish what it left, detached scope first, then
        destroyed, each as a publish by that session.  Each topic is authorized
        again now, freshly (a dynamic authorizer is asked even if it has a
        cached answer: it may have changed its mind since the testament was
        added), and fails closed: a denial, an authorizer that raises or does
        not answer within the realm's ``authorizer_timeout`` means that
        testament is not published, logged once per departure.  When some
        answer is asynchronous, all of the session's testaments wait for all
        answers and go out in their order (after ``wamp.session.on_leave``).
        """
        testaments = self._testaments.pop(session, None)
        if not testaments:
            return
        if self.realm.broker.cluster is not None:  # published here: Redis forgets them
            self.realm.broker.cluster.testaments.left(session.session_id)
        info = session.info
        decided = []
        waiting = False
        for scope in ("detached", "destroyed"):
            for topic, args, kwargs, options in testaments.get(scope, ()):
                allowed = session.may("publish", topic, fresh=True)
                if isinstance(allowed, Deferred):
                    waiting = True
                    allowed.addErrback(lambda failure: False)  # never fails; if it did: denied
                disclose = options.get("disclose_me") is True or session.discloses("publish", topic)
                decided.append((allowed, topic, args, kwargs, options, disclose))
        if not waiting:
            self._deliver_testaments(info, decided)
            return
        answers = gatherResults(
            [item[0] if isinstance(item[0], Deferred) else succeed(item[0]) for item in decided]
        )
        answers.addCallback(
            lambda results: self._deliver_testaments(
                info, [(allowed, *item[1:]) for allowed, item in zip(results, decided)]
            )
        )
        answers.addErrback(lambda failure: _log.failure("testaments of session {session} were lost", failure, session=info.session_id))

    def _deliver_testaments(self, info: SessionInfo, decided: list) -> None:
        broker = self.realm.broker
        departed = _Departed(info)  # the session is gone; only its identity remains
        refused = []
        failed = None
        for allowed, topic, args, kwargs, options, disclose in decided:
            if allowed is not True:
                refused.append(topic)
                continue
            try:
                publication = broker.deliver(
                    topic,
                    args,
                    kwargs,
                    publisher=departed,
                    exclude_me=True,
                    disclose=disclose,
                    filters=compile_filters(options),
                )
                if broker.cluster is not None:  # subscribers on the cluster's other nodes get it too
                    broker.cluster.forward_publication(
                        self.realm.name, topic, publication, args, kwargs, options, info if disclose else None, False
                    )
            except Exception:  # the others still go out; logged once per departure, below
                if failed is None:
                    failed = (topic, Failure())
        if failed is not None:
            _log.failure(
                "a testament of session {session} on {topic} (realm {realm}) could not be published",
                failed[1],
                session=info.session_id,
                topic=failed[0],
                realm=self.realm.name,
            )
        if refused:
            _log.warn(
                "{count} testament(s) of session {session} (authid {authid}, role {authrole}) on realm "
                "{realm} not published: role may not publish on {topics}",
                count=len(refused),
                session=info.session_id,
                authid=info.authid,
                authrole=info.authrole,
                realm=self.realm.name,
                topics=", ".join(repr(t) for t in refused),
            )
