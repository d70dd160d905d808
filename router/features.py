"""The roles and features the router announces in WELCOME (re-exported as ``router.core.ROUTER_ROLES``)."""

from __future__ import annotations

from autobahn.wamp import role

from router.messages import add_feature

__all__ = ["ROUTER_ROLES"]


#: The roles and features announced in WELCOME: exactly what is implemented.
def _roles() -> dict:
    broker = role.RoleBrokerFeatures(
        publisher_exclusion=True,
        publisher_identification=True,
        subscriber_blackwhite_listing=True,
        pattern_based_subscription=True,
        event_retention=True,
        event_history=True,
        session_meta_api=True,
        subscription_meta_api=True,
        subscription_revocation=True,
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
        registration_revocation=True,
    )
    # Autobahn's feature classes do not know this one; they marshal any attribute
    add_feature(dealer, "progressive_call_invocations", True)
    add_feature(broker, "payload_passthru_mode", True)  # router.passthru
    add_feature(dealer, "payload_passthru_mode", True)
    return {"broker": broker, "dealer": dealer}


ROUTER_ROLES = _roles()
