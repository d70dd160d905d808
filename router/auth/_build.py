"""Building a realm's authenticator and authorizer from its configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from router.auth._authenticator import RealmAuthenticator
from router.auth._authorizer import Authorizer
from router.auth._types import Principal
from router.config import ConfigError

if TYPE_CHECKING:
    from router.config import RealmConfig

__all__ = ["AUTHENTICATOR_GROUP", "AUTHORIZER_GROUP", "build_realm_auth", "load_callable"]

AUTHENTICATOR_GROUP = "wampd.authenticators"
AUTHORIZER_GROUP = "wampd.authorizers"


def load_callable(spec: str, group: str, key: str) -> Any:
    """
    Load a dynamic authenticator or authorizer: C{"package.module:attr"} or
    an entry-point name in C{group}, as listeners are found.  A class is
    instantiated without arguments; the result must be callable.

    @raise ConfigError: against C{key}, saying why.
    """
    from listeners import PluginError, load_object

    try:
        obj = load_object(spec, group)
    except PluginError as exc:
        raise ConfigError(key, str(exc)) from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigError(
                key, f"plugin {spec!r}: creating it raised {type(exc).__name__}: {exc}"
            ) from exc
    if not callable(obj):
        raise ConfigError(key, f"plugin {spec!r}: is not callable ({type(obj).__name__})")
    return obj


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
