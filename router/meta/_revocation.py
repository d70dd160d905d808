"""
Subscription and registration revocation (the advanced profile's
``subscription_revocation`` and ``registration_revocation``; Crossbar's meta
procedures):

* ``wamp.subscription.remove_subscriber(subscription, session, reason=None)``
* ``wamp.registration.remove_callee(registration, session, reason=None)``

``reason`` may also be given as a keyword.  The session loses that
subscription or registration at once, exactly as if it had sent UNSUBSCRIBE or
UNREGISTER: the meta events ``on_unsubscribe``/``on_unregister`` (and
``on_delete`` for the last one) fire, and a registration's calls already in
flight to it still end normally (its YIELD or ERROR is routed).  It is told
with ``UNSUBSCRIBED``/``UNREGISTERED`` with request 0 and details
``{"subscription"|"registration": id, "reason": reason}`` when it announced
the feature in HELLO (``roles.subscriber.features.subscription_revocation``,
``roles.callee.features.registration_revocation``); else, as the spec says,
nothing is sent to it.  The result is empty; an unknown subscription or
registration is ``wamp.error.no_such_subscription``/``no_such_registration``,
a session that is not in it ``wamp.error.no_such_session``.

The procedures are authorized as every meta procedure is (a CALL on their
URI, by the caller's role); on the zero-config open realm anyone may call them,
as anyone may call ``wamp.session.kill``.
"""

from __future__ import annotations

from typing import Any, Callable

from autobahn.wamp import message

from router.errors import Refusal

__all__ = ["revocation_procedures"]


def _reason(args: list, kwargs: dict) -> str | None:
    reason = kwargs.get("reason", args[2] if len(args) > 2 else None)
    if reason is not None and type(reason) is not str:
        raise ValueError("reason must be a string")
    return reason


def _announced(session, role: str, feature: str) -> bool:
    return getattr(session.roles.get(role), feature, None) is True


def revocation_procedures(realm: Any, error: Callable[[str, str], Refusal], nothing: object) -> dict[str, Callable]:
    """
    The two meta procedures of ``realm`` (its broker, dealer and sessions),
    for the meta API's table; ``error(uri, text)`` builds the meta API's
    ERROR, and ``nothing`` is its empty result.
    """

    def subscriber_of(args: list):
        sub = realm.broker.subscription(args[0])
        if sub is None:
            raise error("wamp.error.no_such_subscription", f"no subscription {args[0]}")
        session = realm.sessions.get(args[1])
        if session is None or session not in sub.subscribers:
            raise error("wamp.error.no_such_session", f"session {args[1]} is not subscribed to {args[0]}")
        return sub, session

    def remove_subscriber(caller, args: list, kwargs: dict):
        reason = _reason(args, kwargs)
        sub, session = subscriber_of(args)
        realm.broker.remove_subscriber(session, sub)
        if _announced(session, "subscriber", "subscription_revocation"):
            session.send(message.Unsubscribed(0, subscription=sub.id, reason=reason))
        return nothing

    def remove_callee(caller, args: list, kwargs: dict):
        reason = _reason(args, kwargs)
        reg = realm.dealer.registration(args[0])
        if reg is None:
            raise error("wamp.error.no_such_registration", f"no registration {args[0]}")
        session = realm.sessions.get(args[1])
        if session is None or session not in reg.callees:
            raise error("wamp.error.no_such_session", f"session {args[1]} is not a callee of {args[0]}")
        realm.dealer.remove_callee(session, reg)
        if _announced(session, "callee", "registration_revocation"):
            session.send(message.Unregistered(0, registration=reg.id, reason=reason))
        return nothing

    return {
        "wamp.subscription.remove_subscriber": remove_subscriber,
        "wamp.registration.remove_callee": remove_callee,
    }
