"""
``wamp.subscription.get_events(subscription, **query)``: the event history
of a history topic's subscription (router.broker._history has the rules and
the query keywords).

Authorization, as the spec asks: the call itself is authorized as every meta
procedure (a CALL on its URI, by the caller's role), and the caller must also
be allowed to subscribe to the subscription's topic (with its match policy);
either refusal is ``wamp.error.not_authorized``.  Events whose publication
named authids or authroles are returned only to callers those lists admit.
An unknown subscription is ``wamp.error.no_such_subscription``; one that
keeps no history (no ``[[realm.history]]`` entry) or a bad query keyword is
``wamp.error.invalid_argument``.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred

from router.errors import Refusal

__all__ = ["event_history_procedures"]


def event_history_procedures(realm: Any, error: Callable[[str, str], Refusal]) -> dict[str, Callable]:
    """The procedure for the meta API's table; ``error(uri, text)`` builds its ERROR."""

    def get_events(caller, args: list, kwargs: dict):
        sub = realm.broker.subscription(args[0])
        if sub is None:
            raise error("wamp.error.no_such_subscription", f"no subscription {args[0]}")
        history = realm.broker.history
        if history is None or not history.keeps(sub.id):
            raise error(
                "wamp.error.invalid_argument",
                f"subscription {sub.id} ({sub.uri!r}, {sub.match}) keeps no event history; see [[realm.history]]",
            )
        allowed = caller.may("subscribe", sub.uri, match=sub.match)
        if isinstance(allowed, Deferred):
            return allowed.addCallback(answer, caller, sub, kwargs)
        return answer(allowed, caller, sub, kwargs)

    def answer(allowed, caller, sub, kwargs):
        if allowed is not True:
            raise error(
                "wamp.error.not_authorized",
                f"role {caller.info.authrole!r} may not subscribe to {sub.uri!r}, so it may not read its history",
            )
        try:
            return realm.broker.history.events(sub.id, caller.info, kwargs)
        except ValueError as exc:
            raise error("wamp.error.invalid_argument", f"bad arguments for wamp.subscription.get_events: {exc}") from None

    return {"wamp.subscription.get_events": get_events}
