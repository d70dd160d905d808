"""The zero-config authenticator and authorizer pair of a realm."""

from __future__ import annotations

from typing import Any

from router.auth._authenticator import RealmAuthenticator
from router.auth._authorizer import Authorizer

__all__ = ["open_realm_auth"]


def open_realm_auth(realm: str, clock: Any = None) -> tuple[RealmAuthenticator, Authorizer]:
    """
    The authenticator and authorizer of an open realm (the zero-config
    one): anonymous on every transport, which keeps the authid it asks
    for, and role C{anonymous} may do every action on non-C{wamp.*} URIs.
    C{clock} is the router's.

    Configured realms are built by the service
    (L{router.config.auth.build_realm_auth}).
    """
    authenticator = RealmAuthenticator(
        realm,
        {"anonymous": ("websocket", "rawsocket", "longpoll")},
        (),
        None,
        anonymous_role="anonymous",
        anonymous_keeps_authid=True,
    )
    authorizer = Authorizer((), None, open_anonymous=True, clock=clock)
    return authenticator, authorizer
