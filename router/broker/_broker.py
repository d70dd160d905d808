"""The broker: subscriptions and publications of one realm (see :mod:`router.broker`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autobahn.wamp import message
from twisted.logger import Logger

from router import passthru
from router.broker._history import History
from router.broker._retention import Retention, _Retained
from router.filters import FILTERS, Receivers as _Receivers, compile_filters as _compile_filters
from router.matching import PatternIndex
from router.uri import is_reserved, is_valid_uri

if TYPE_CHECKING:
    from router.interfaces import IRoutedSession as RouterSession

__all__ = ["Broker", "Subscription", "refuse_publish"]

_log = Logger(namespace="wampd.broker")

_SUBSCRIBE = message.Subscribe.MESSAGE_TYPE
_UNSUBSCRIBE = message.Unsubscribe.MESSAGE_TYPE
_PUBLISH = message.Publish.MESSAGE_TYPE
_FILTER_KEYS = frozenset(FILTERS)


class Subscription:
    __slots__ = ("id", "uri", "match", "subscribers", "created")
    kept = False  # a history topic's subscription (router.broker._history) outlives its subscribers

    def __init__(self, sub_id: int, uri: str, match: str, created: float) -> None:
        self.id = sub_id
        self.uri = uri
        self.match = match
        self.created = created
        self.subscribers: dict[RouterSession, None] = {}


class _KeptSubscription(Subscription):
    __slots__ = ()
    kept = True


def _valid_pattern(uri: str, match: str) -> bool:
    if match == "exact":
        return is_valid_uri(uri)
    if match == "prefix":
        return bool(uri) and is_valid_uri(uri.rstrip(".") or "x")
    return bool(uri) and all(" " not in p and "#" not in p for p in uri.split("."))


def refuse_publish(session: RouterSession, msg: message.Publish, uri: str, text: str) -> None:
    """
    A refused publication is never delivered; the publisher hears about it
    only when it asked for ``acknowledge`` (clients track no other PUBLISH, and
    autobahn closes the session on an ERROR for an untracked request).
    """
    if msg.acknowledge:
        session.send_error(_PUBLISH, msg.request, uri, text)


class Broker(Retention):
    """Subscriptions, publications and event delivery (retention: :class:`Retention`)."""

    def __init__(self, realm: Any) -> None:
        # realm: the router.realm.Realm this broker serves (router, scope_ids, meta, topic_hooks, name)
        self.realm = realm
        self._index: PatternIndex[Subscription] = PatternIndex()
        self._by_id: dict[int, Subscription] = {}
        self._init_retention()
        self._owned: dict[Any, set[int]] = {}  # session -> its subscription ids: leaving costs what it owns
        # the router.cluster node this realm's publications also go to (None: one process)
        self.cluster = realm.router.cluster
        self.history: History | None = None  # event history, on realms with history topics

    def enable_history(self, entries, max_events: int) -> None:
        """Keep the latest events of these (topic, match, limit) topics (router.broker._history)."""
        self.history = History(self, entries, max_events, self.realm.router.clock)

    def keep_subscription(self, topic: str, match: str) -> Subscription:
        """A subscription that lives as long as the realm, with or without subscribers (event history)."""
        sub = _KeptSubscription(self.realm.scope_ids.next(self._by_id, match, topic), topic, match, self.realm.router.clock.seconds())
        self._index.add(topic, match, sub)
        self._by_id[sub.id] = sub
        return sub

    # -- queries (also used by the meta API) ----------------------------------

    def subscription(self, sub_id: int) -> Subscription | None:
        return self._by_id.get(sub_id)

    def lookup(self, topic: str, match: str = "exact") -> Subscription | None:
        return self._index.get(topic, match)

    def matching(self, topic: str) -> list[Subscription]:
        return [sub for _, sub in self._index.matches(topic)]

    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._by_id.values())

    def by_policy(self) -> dict[str, list[Subscription]]:
        return self._index.by_policy()

    def subscriptions_of(self, session) -> frozenset[int]:
        """The subscription ids ``session`` holds."""
        return frozenset(self._owned.get(session, ()))

    # -- messages -------------------------------------------------------------

    def subscribe(self, session: RouterSession, msg: message.Subscribe) -> None:
        topic, match = msg.topic, msg.match or "exact"
        if not _valid_pattern(topic, match):
            session.send_error(
                _SUBSCRIBE, msg.request, "wamp.error.invalid_uri", f"{topic!r} is not a valid {match} topic pattern"
            )
            return
        hooks = self.realm.topic_hooks
        if hooks is not None and match == "exact":
            hooks.subscribe(
                session,
                topic,
                lambda: self._subscribe(session, msg, topic, match),
                lambda uri, text: session.send_error(_SUBSCRIBE, msg.request, uri, text),
            )
            return
        self._subscribe(session, msg, topic, match)

    def _subscribe(self, session: RouterSession, msg: message.Subscribe, topic: str, match: str) -> None:
        if session.state != "joined":
            return  # left while a topic handler was deciding
        sub = self._index.get(topic, match)
        created = sub is None
        if created:
            router = self.realm.router
            sub = Subscription(self.realm.scope_ids.next(self._by_id, match, topic), topic, match, router.clock.seconds())
            self._index.add(topic, match, sub)
            self._by_id[sub.id] = sub
            if self.cluster is not None:
                self.cluster.topic_added(self.realm.name, match, topic)
        added = session not in sub.subscribers
        sub.subscribers[session] = None
        owned = self._owned.get(session)
        if owned is None:
            owned = self._owned[session] = set()
        owned.add(sub.id)
        session.send(message.Subscribed(msg.request, sub.id))
        meta = self.realm.meta
        if created:
            meta.subscription_created(session, sub)
            if match == "exact" and self.realm.topic_hooks is not None:
                self.realm.topic_hooks.topic_active(topic)
        if added:
            meta.subscribed(session, sub)
        if msg.get_retained:
            self._send_retained(session, sub)

    def unsubscribe(self, session: RouterSession, msg: message.Unsubscribe) -> None:
        sub = self._by_id.get(msg.subscription)
        if sub is None or session not in sub.subscribers:
            session.send_error(
                _UNSUBSCRIBE,
                msg.request,
                "wamp.error.no_such_subscription",
                f"session has no subscription {msg.subscription}",
            )
            return
        self._owned[session].discard(sub.id)
        session.send(message.Unsubscribed(msg.request))
        self._drop(session, sub)

    def publish(self, session: RouterSession, msg: message.Publish) -> None:
        topic = msg.topic
        if is_reserved(topic):
            refuse_publish(session, msg, "wamp.error.not_authorized", "wamp.* topics are reserved for the router")
            return
        hooks = self.realm.topic_hooks
        if hooks is not None:
            hooks.publish(
                session,
                topic,
                msg.args,
                msg.kwargs,
                lambda args, kwargs: self._publish(session, msg, args, kwargs),
                lambda uri, text: refuse_publish(session, msg, uri, text),
            )
            return
        self._publish(session, msg, msg.args, msg.kwargs)

    def _publish(self, session: RouterSession, msg: message.Publish, args, kwargs) -> None:
        if session.state != "joined":
            return  # left while a topic handler was deciding
        topic = msg.topic
        options = msg._router_internal
        ppt = None
        if type(options) is dict and "ppt_scheme" in options:  # payload passthru (router.passthru)
            ppt, problem = passthru.publish_checked(session, msg, options)
            if problem is not None:
                return refuse_publish(session, msg, "wamp.error.invalid_argument", problem)
        disclose = (type(options) is dict and options.get("disclose_me") is True) or session.discloses(
            "publish", topic
        )
        exclude_me = msg.exclude_me is not False
        # most publications name no black/whitelist: a C-level set test, not a call
        filters = None if type(options) is not dict or _FILTER_KEYS.isdisjoint(options) else _compile_filters(options)
        failures: dict = {}
        publication = self.deliver(
            topic,
            args,
            kwargs,
            publisher=session,
            exclude_me=exclude_me,
            disclose=disclose,
            filters=filters,
            extra={"payload": msg.payload, "enc_algo": msg.enc_algo, "enc_key": msg.enc_key,
                   "enc_serializer": msg.enc_serializer} if msg.payload else None,
            failures=failures,
            ppt=ppt,
        )
        if failures:
            if msg.acknowledge:
                names = ", ".join(sorted(failures))
                session.send_error(
                    _PUBLISH,
                    msg.request,
                    "wamp.error.invalid_argument",
                    f"the publication cannot be encoded as {names} ({next(iter(failures.values()))}); "
                    f"subscribers using {names} did not get it",
                )
            return
        if self.history is not None:
            self.history.record(topic, publication, args, kwargs, session.info if disclose else None, filters, ppt)
        cluster = self.cluster
        if msg.retain and ppt is None:  # a passthru payload is not retained (README)
            kept = _Retained(
                publication, args, kwargs, filters,
                session.info if disclose else None, session.session_id if exclude_me else None,
            )
            self._retain(topic, kept)
            if cluster is not None:
                cluster.retained(self.realm.name, topic, kept)
        if cluster is not None:
            handed = cluster.forward_publication(
                self.realm.name, topic, publication, args, kwargs, options,
                session.info if disclose else None, msg.acknowledge, ppt,
            )
            if handed is not None:  # acknowledged once every node with a subscriber has it
                handed.addCallback(lambda _: session.send(message.Published(msg.request, publication)))
                return
        if msg.acknowledge:
            session.send(message.Published(msg.request, publication))

    def publish_from(self, publisher, topic: str, args, kwargs, filters=None, retain: bool = False) -> int:
        """A publication by the router itself (no topic handlers, the publisher not excluded)."""
        publication = self.deliver(topic, args, kwargs, publisher=publisher, exclude_me=False, filters=filters)
        if self.cluster is not None:  # the router's own publications (Apps, RealmApi, pushes) cross nodes too
            options = {name: list(getattr(filters, name)) for name in FILTERS if getattr(filters, name) is not None} if filters else None
            self.cluster.forward_publication(self.realm.name, topic, publication, args, kwargs, options, None, False)
        if self.history is not None:
            self.history.record(topic, publication, args, kwargs, None, filters, None)
        if retain:
            kept = _Retained(publication, args, kwargs, filters, None)
            self._retain(topic, kept)
            if self.cluster is not None:
                self.cluster.retained(self.realm.name, topic, kept)
        return publication

    def deliver(
        self,
        topic: str,
        args=None,
        kwargs=None,
        *,
        publisher: RouterSession | None = None,
        exclude_me: bool = True,
        disclose: bool = False,
        filters: _Receivers | None = None,
        extra: dict | None = None,
        failures: dict | None = None,
        publication: int | None = None,
        info=None,
        ppt: dict | None = None,
    ) -> int:
        """
        Send one publication to every matching subscription; returns its
        publication id.  Serializers that cannot encode it are logged once and
        put in ``failures`` (serializer name -> error), when given.  A
        publication from another cluster node comes with its ``publication``
        id and its publisher's ``info`` (disclosed when ``disclose``).
        """
        if publication is None:
            publication = self.realm.router.global_ids.next()
        if publisher is not None:
            info = publisher.info if disclose else None
        skip = publisher if exclude_me else None
        failed = None
        index = self._index
        if index.patterned:
            found = index.matches(topic)
        else:  # only exact subscriptions exist: one dict look-up, no call into the index
            sub = index.exact.get(topic)
            found = () if sub is None else (("exact", sub),)
        for policy, sub in found:
            event = (message.Event if ppt is None else passthru.PassthruEvent)(
                sub.id,
                publication,
                args=args,
                kwargs=kwargs,
                publisher=info.session_id if info else None,
                publisher_authid=info.authid if info else None,
                publisher_authrole=info.authrole if info else None,
                topic=topic if policy != "exact" else None,
                **(extra or {}),
            )
            if ppt is not None:
                event.ppt = ppt
            checked: dict = {}  # codec -> encodable (the bytes are cached on the event)
            last = ok = None  # subscribers mostly share a codec: look it up only when it changes
            for receiver in sub.subscribers:
                if receiver is skip or (filters is not None and not filters.allows(receiver.info)):
                    continue
                codec = receiver.codec
                if codec is not last:
                    last = codec
                    ok = checked.get(codec)
                    if ok is None:
                        problem = codec.check(event)
                        ok = checked[codec] = problem is None
                        if not ok:
                            if failed is None:
                                failed = {}
                            failed.setdefault(codec.name, problem)
                if ok:
                    receiver.send(event)
        if failed is not None:
            _log.error(
                "publication {publication} on {topic} cannot be encoded as {serializers} ({error}); "
                "subscribers using them do not get it",
                publication=publication,
                topic=topic,
                serializers=", ".join(sorted(failed)),
                error=next(iter(failed.values())),
            )
            if failures is not None:
                failures.update(failed)
        return publication

    def remove_subscriber(self, session: RouterSession, sub: Subscription) -> None:
        """Revocation (router.meta._revocation): ``session`` leaves ``sub`` as if it had unsubscribed."""
        owned = self._owned.get(session)
        if owned is not None:
            owned.discard(sub.id)
        self._drop(session, sub)

    # -- session cleanup ---------------------------------------------------------

    def remove_session(self, session: RouterSession) -> None:
        owned = self._owned.pop(session, None)
        if not owned:
            return
        by_id = self._by_id
        for sub_id in owned:
            sub = by_id.get(sub_id)
            if sub is not None:
                self._drop(session, sub)

    def _drop(self, session: RouterSession, sub: Subscription) -> None:
        if session not in sub.subscribers:
            return
        del sub.subscribers[session]
        meta = self.realm.meta
        meta.unsubscribed(session, sub)
        hooks = self.realm.topic_hooks
        if hooks is not None and sub.match == "exact":
            hooks.unsubscribed(session.info, sub.uri)
        if not sub.subscribers and not sub.kept:
            del self._by_id[sub.id]
            self._index.remove(sub.uri, sub.match)
            if self.cluster is not None:
                self.cluster.topic_removed(self.realm.name, sub.match, sub.uri)
            meta.subscription_deleted(session, sub)
            if hooks is not None and sub.match == "exact":
                hooks.topic_idle(sub.uri)
