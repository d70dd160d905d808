"""
Publish & subscribe for one realm.

One subscription per topic, shared by all its subscribers (the spec's
"subscription" is router-scoped).  Indexes: topic -> subscription,
subscription id -> subscription, and each session's own set of subscription
ids, so a leaving session costs what it owns.  A publication builds one EVENT
message; the transports encode it once per serializer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autobahn.wamp import message

from router.uri import is_valid_uri

if TYPE_CHECKING:
    from router.realm import Realm
    from router.session import RouterSession

__all__ = ["Broker", "Subscription"]

_SUBSCRIBE = message.Subscribe.MESSAGE_TYPE
_UNSUBSCRIBE = message.Unsubscribe.MESSAGE_TYPE
_PUBLISH = message.Publish.MESSAGE_TYPE


class Subscription:
    __slots__ = ("id", "topic", "match", "subscribers", "created")

    def __init__(self, sub_id: int, topic: str, match: str, created: float) -> None:
        self.id = sub_id
        self.topic = topic
        self.match = match
        self.created = created
        self.subscribers: dict[RouterSession, None] = {}


class Broker:
    def __init__(self, realm: Realm) -> None:
        self.realm = realm
        self._by_topic: dict[str, Subscription] = {}
        self._by_id: dict[int, Subscription] = {}

    # -- queries --------------------------------------------------------------

    def subscription(self, sub_id: int) -> Subscription | None:
        return self._by_id.get(sub_id)

    def lookup(self, topic: str) -> Subscription | None:
        return self._by_topic.get(topic)

    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._by_id.values())

    # -- messages -------------------------------------------------------------

    def subscribe(self, session: RouterSession, msg: message.Subscribe) -> None:
        if msg.match != message.Subscribe.MATCH_EXACT:
            session.send_error(
                _SUBSCRIBE,
                msg.request,
                "wamp.error.invalid_argument",
                f"match policy {msg.match!r} is not supported; use 'exact'",
            )
            return
        topic = msg.topic
        if not is_valid_uri(topic):
            session.send_error(
                _SUBSCRIBE, msg.request, "wamp.error.invalid_uri", f"{topic!r} is not a valid topic URI"
            )
            return
        sub = self._by_topic.get(topic)
        if sub is None:
            router = self.realm.router
            sub = Subscription(router.scope_ids.next(), topic, msg.match, router.clock.seconds())
            self._by_topic[topic] = sub
            self._by_id[sub.id] = sub
        sub.subscribers[session] = None
        session.subscriptions.add(sub.id)
        session.send(message.Subscribed(msg.request, sub.id))

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
        self._drop(session, sub)
        session.subscriptions.discard(sub.id)
        session.send(message.Unsubscribed(msg.request))

    def publish(self, session: RouterSession, msg: message.Publish) -> None:
        options = msg._router_internal
        publication = self.realm.router.global_ids.next()
        sub = self._by_topic.get(msg.topic)
        if sub is not None:
            exclude_me = msg.exclude_me is not False
            info = session.info
            disclose = type(options) is dict and options.get("disclose_me") is True
            event = message.Event(
                sub.id,
                publication,
                args=msg.args,
                kwargs=msg.kwargs,
                payload=msg.payload,
                publisher=info.session_id if disclose else None,
                publisher_authid=info.authid if disclose else None,
                publisher_authrole=info.authrole if disclose else None,
                enc_algo=msg.enc_algo,
                enc_key=msg.enc_key,
                enc_serializer=msg.enc_serializer,
            )
            for receiver in sub.subscribers:
                if exclude_me and receiver is session:
                    continue
                receiver.send(event)
        if msg.acknowledge:
            session.send(message.Published(msg.request, publication))

    # -- session cleanup ---------------------------------------------------------

    def remove_session(self, session: RouterSession) -> None:
        by_id = self._by_id
        for sub_id in session.subscriptions:
            sub = by_id.get(sub_id)
            if sub is not None:
                self._drop(session, sub)
        session.subscriptions.clear()

    def _drop(self, session: RouterSession, sub: Subscription) -> None:
        sub.subscribers.pop(session, None)
        if not sub.subscribers:
            del self._by_id[sub.id]
            del self._by_topic[sub.topic]
