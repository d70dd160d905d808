"""The routed session a bridge holds in its realm (a webhook's subscriptions)."""

from __future__ import annotations

from autobahn.wamp import message, role
from zope.interface import implementer

from router.events import ConnectionInfo, SessionInfo
from router.interfaces import IPeer, IRoutedSession
from router.uri import Counter

__all__ = ["BridgeSession"]


class _ObjectCodec:
    """Messages reach a bridge as objects: nothing to encode."""

    name = "internal"
    binary = False

    @staticmethod
    def check(msg) -> None:
        return None


@implementer(IRoutedSession, IPeer)
class BridgeSession:
    """
    A subscriber session of the router's own (authid ``authid``, authrole
    ``router``): it shows in the subscription meta API like any subscriber,
    and every EVENT it is sent goes to ``on_event``.
    """

    send_failure = "wamp.error.invalid_argument"

    def __init__(self, realm, authid: str, on_event) -> None:
        self.realm = realm
        self.session_id = realm.new_session_id()
        now = realm.router.clock.seconds()
        connection = ConnectionInfo(
            id=0, transport="internal", peer="internal", host=None, serializer=None, endpoint="internal", opened_at=now
        )
        self.info = SessionInfo(self.session_id, realm.name, authid, "router", "internal", "wampd", connection, now)
        self.roles = {"subscriber": role.RoleSubscriberFeatures(pattern_based_subscription=True)}
        self.codec = _ObjectCodec()
        self.request_ids = Counter()
        self.state = "joined"
        self._on_event = on_event
        self._requests = Counter()

    def subscribe(self, topic: str, match: str) -> None:
        options = {} if match == "exact" else {"match": match}
        self.realm.broker.subscribe(self, message.Subscribe(self._requests.next(), topic, **options))

    def leave(self) -> None:
        self.state = "closed"
        self.realm.broker.remove_session(self)

    def send(self, msg) -> bool:
        if type(msg) is message.Event:
            self._on_event(msg)
        return True

    def send_paced(self, msgs) -> None:
        for msg in msgs:
            self.send(msg)

    def send_error(self, request_type: int, request: int, uri: str, text: str | None = None, **extra) -> bool:
        return True

    def discloses(self, action: str, uri: str) -> bool:
        return False

    def may(self, action: str, uri: str, *, fresh: bool = False) -> bool:
        return True

    def goodbye(self, reason: str, text: str | None = None) -> None:
        """The router's own bridge session is not killed by the meta API."""

    def close(self) -> None:
        """Nothing to close."""

    def abort(self, reason: str | None = None) -> None:
        """Nothing to drop."""
