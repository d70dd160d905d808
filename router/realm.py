"""
A realm: its joined sessions, its broker and its dealer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.auth import open_realm_auth
from router.broker import Broker
from router.dealer import Dealer
from router.meta import Meta
from router.uri import ScopeIds

if TYPE_CHECKING:
    from router.core import Router
    from router.session import RouterSession

__all__ = ["Realm"]


class Realm:
    def __init__(self, name: str, router: Router, authenticator=None, authorizer=None) -> None:
        # built by whoever configures the realm (router.config.auth); the open anonymous pair by default
        if authenticator is None or authorizer is None:
            open_authenticator, open_authorizer = open_realm_auth(name, router.clock)
            authenticator = authenticator if authenticator is not None else open_authenticator
            authorizer = authorizer if authorizer is not None else open_authorizer
        self.authenticator, self.authorizer = authenticator, authorizer
        self.name = name
        self.router = router
        self.sessions: dict[int, RouterSession] = {}
        # router-scope IDs (subscriptions, registrations), drawn per realm (router.uri.ScopeIds)
        self.scope_ids = ScopeIds(router.global_ids.next() if router.seeded else None)
        self.broker = Broker(self)
        self.dealer = Dealer(self)
        self.meta = Meta(self)
        self.topic_hooks = None  # router.internal.TopicHooks once an App adds topic handlers
        from router.internal import InternalSession

        self.internal = InternalSession(self)
        self.api = self.internal.api  # publish/call as the router: router.internal.RealmApi

    def __repr__(self) -> str:
        return f"<Realm {self.name} sessions={len(self.sessions)}>"

    def new_session_id(self) -> int:
        """A random global-scope ID not used by a live session of this router."""
        router = self.router
        while True:
            candidate = router.global_ids.next()
            if not router.session_id_taken(candidate):
                return candidate

    def attach(self, session: RouterSession) -> None:
        self.sessions[session.session_id] = session

    def detach(self, session: RouterSession) -> None:
        """
        Everything the session owned goes, at once; then its testaments are
        published and ``wamp.session.on_leave`` (which it no longer receives).
        """
        self.sessions.pop(session.session_id, None)
        self.broker.remove_session(session)
        self.dealer.remove_session(session)
        self.meta.publish_testaments(session)
        self.meta.session_left(session.info)
