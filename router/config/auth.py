"""
A configured realm's authenticator and authorizer: the service's side of
L{router.auth}, which works on plain values and knows no config file.

Kept out of L{router.config}'s own imports (it loads L{router.auth} and the
plugin finder), so import it by name::

    from router.config.auth import build_realm_auth
"""

from __future__ import annotations

import base64
from typing import Any

from router.auth import Authorizer, Principal, RealmAuthenticator, ScramCredential
from router.config import RealmConfig
from router.plugins import AUTHENTICATOR_GROUP, AUTHORIZER_GROUP, load_callable

__all__ = ["build_realm_auth"]


def scram_credential(config) -> ScramCredential:
    """A principal's C{scram} table (a L{router.config.ScramConfig}) as the authenticator takes it."""
    return ScramCredential(
        config.kdf,
        config.salt,
        config.iterations,
        config.memory,
        base64.b64decode(config.stored_key),
        base64.b64decode(config.server_key),
    )


def build_realm_auth(realm: RealmConfig, clock: Any = None) -> tuple[RealmAuthenticator, Authorizer]:
    """
    The authenticator and the authorizer of one configured realm, with its
    dynamic plugins loaded.  C{clock} (the router's) times the dynamic
    authorizer's answers (C{authorizer_timeout}).

    @raise ConfigError: when a plugin cannot be loaded; its key is
        C{authenticator} or C{authorizer}, put it under the realm's path
        with C{error.under("realm[0]")}.
    """
    dynamic_authenticator = None
    if realm.authenticator is not None:
        dynamic_authenticator = load_callable(
            realm.authenticator, AUTHENTICATOR_GROUP, "authenticator"
        )
    dynamic_authorizer = None
    if realm.authorizer is not None:
        dynamic_authorizer = load_callable(realm.authorizer, AUTHORIZER_GROUP, "authorizer")

    anonymous_role = "anonymous"
    methods: dict[str, tuple[str, ...]] = {}
    for entry in realm.auth:
        methods[entry.method] = entry.transports
        if entry.method == "anonymous":
            anonymous_role = entry.anonymous_role
    principals = [
        Principal(
            authid=p.authid,
            role=p.role,
            ticket=p.ticket,
            secret=p.secret,
            salt=p.salt,
            iterations=p.iterations or 1000,
            keylen=p.keylen or 32,
            pubkeys=p.pubkeys,
            scram=scram_credential(p.scram) if p.scram is not None else None,
            tls_fingerprints=p.tls_fingerprints,
            tls_cn=p.tls_cn,
        )
        for p in realm.principals
    ]
    authenticator = RealmAuthenticator(
        realm.name,
        methods,
        principals,
        dynamic_authenticator,
        anonymous_role=anonymous_role,
        # Nobody can authenticate as anyone: anonymous clients may keep the
        # authid they ask for (the zero-config behaviour).
        anonymous_keeps_authid=not realm.principals and dynamic_authenticator is None,
        anonymous_authid=realm.anonymous_authid,
        dynamic_name=realm.authenticator,
    )
    authorizer = Authorizer(
        realm.roles,
        dynamic_authorizer,
        open_anonymous=realm.is_open,
        cache_size=realm.authorizer_cache,
        dynamic_name=realm.authorizer,
        timeout=realm.authorizer_timeout,
        clock=clock,
    )
    return authenticator, authorizer
