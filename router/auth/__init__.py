"""
Authentication and authorization building blocks, per realm.

    authenticator, authorizer = open_realm_auth("realm1", clock)   # or built by
    # the service from a RealmConfig: router.config.auth.build_realm_auth

    # HELLO
    answer = authenticator.start(HelloInfo.from_hello(hello, connection, session_id))
    # -> Accept (WELCOME), Challenge (CHALLENGE, then verify()), Deny (ABORT),
    #    or a Deferred of one of those
    # AUTHENTICATE
    answer = authenticator.verify(challenge, authenticate.signature, authenticate.extra)
    # -> Accept or Deny (or a Deferred of one)

    # CALL / REGISTER / PUBLISH / SUBSCRIBE
    allowed = authorizer.authorize(session_info, "subscribe", topic)   # bool or Deferred[bool]

See L{RealmAuthenticator} for the methods and the dynamic authenticator
protocol, and L{router.auth._authorizer} for the permission rules.
"""

from router.auth._authenticator import AUTH_FAILED, DynamicAuthenticator, RealmAuthenticator
from router.auth._authorizer import ACTIONS, Authorizer, DynamicAuthorizer, uri_is_reserved
from router.auth._build import open_realm_auth
from router.auth._crypto import derive_key, wampcra_signature
from router.auth._limiter import LoginLimiter
from router.auth._types import (
    AUTHENTICATION_FAILED,
    NO_AUTH_METHOD,
    NOT_AUTHORIZED,
    Accept,
    Challenge,
    Deny,
    HelloInfo,
    Principal,
    ScramCredential,
    parse_cookies,
)

__all__ = [
    "ACTIONS",
    "AUTHENTICATION_FAILED",
    "AUTH_FAILED",
    "Accept",
    "Authorizer",
    "Challenge",
    "Deny",
    "DynamicAuthenticator",
    "DynamicAuthorizer",
    "HelloInfo",
    "LoginLimiter",
    "NOT_AUTHORIZED",
    "NO_AUTH_METHOD",
    "Principal",
    "RealmAuthenticator",
    "ScramCredential",
    "derive_key",
    "open_realm_auth",
    "parse_cookies",
    "uri_is_reserved",
    "wampcra_signature",
]
