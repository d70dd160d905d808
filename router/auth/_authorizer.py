"""
Per-realm authorization: may this session's role do this action on this URI?

Rules, in order:

1. C{wamp.*} URIs (first component C{wamp}) are the router's: no client may
   C{register} or C{publish} them, whatever any rule says.
2. The session's role's permissions: the most specific permission matching
   the URI decides, whether it allows the action or not:

   - an C{exact} match, else
   - the longest matching C{prefix} (a plain string prefix), else
   - the most specific matching C{wildcard}: patterns have the URI's number
     of components, an empty component matches any one component; more
     non-empty components is more specific; on a tie, the pattern whose
     first differing component is concrete wins (C{a.b.} beats C{a..c});
     then the one listed first.

   For a C{wamp.*} URI only permissions that name C{wamp} explicitly (first
   component of their pattern literally C{wamp}) are considered, so a
   catch-all such as prefix C{""} never opens the meta API: calling wamp.*
   procedures and subscribing to wamp.* topics needs a rule that says so.
3. When the realm has no roles and no dynamic authorizer at all (the
   zero-config realm), role C{anonymous} may do every action on every
   non-C{wamp.*} URI.  One configured role ends that.
4. The dynamic authorizer, if any, decides what no permission matched.
5. Otherwise: denied.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["ACTIONS", "Authorizer", "DynamicAuthorizer", "uri_is_reserved"]

_log = Logger(namespace="wampd.auth")

ACTIONS = ("call", "register", "publish", "subscribe")
_DISCLOSING = ("call", "publish")

DynamicAuthorizer = Callable[[Any, str, str], Any]
"""C{authorizer(session, action, uri) -> bool}, sync, a Deferred, or C{async def}."""


class _Permission(Protocol):
    uri: str
    match: str
    call: bool
    register: bool
    publish: bool
    subscribe: bool
    disclose: bool | None


class _Role(Protocol):
    name: str
    permissions: tuple[_Permission, ...]
    disclose: bool


def uri_is_reserved(uri: str) -> bool:
    """Whether C{uri} is a C{wamp.*} URI (its first component is C{wamp})."""
    return uri == "wamp" or uri.startswith("wamp.")


def _names_wamp(permission: _Permission) -> bool:
    if permission.match == "prefix":
        return uri_is_reserved(permission.uri)
    return permission.uri.split(".", 1)[0] == "wamp"


class _PatternIndex:
    """The permissions of one role, indexed for the precedence rules."""

    __slots__ = ("exact", "prefixes", "prefix_lengths", "wildcards")

    def __init__(self, permissions: Iterable[_Permission]) -> None:
        self.exact: dict[str, _Permission] = {}
        self.prefixes: dict[int, dict[str, _Permission]] = {}
        wildcards: dict[int, list[tuple[tuple, tuple[str, ...], _Permission]]] = {}
        for index, permission in enumerate(permissions):
            uri = permission.uri
            if permission.match == "exact":
                self.exact.setdefault(uri, permission)
            elif permission.match == "prefix":
                self.prefixes.setdefault(len(uri), {}).setdefault(uri, permission)
            elif permission.match == "wildcard":
                parts = tuple(uri.split("."))
                key = (
                    -sum(1 for part in parts if part),
                    tuple(0 if part else 1 for part in parts),
                    index,
                )
                wildcards.setdefault(len(parts), []).append((key, parts, permission))
            else:
                raise ValueError(f"unknown match policy {permission.match!r}")
        self.prefix_lengths = sorted(self.prefixes, reverse=True)
        self.wildcards = {
            count: [(parts, permission) for _, parts, permission in sorted(entries, key=lambda e: e[0])]
            for count, entries in wildcards.items()
        }

    def lookup(self, uri: str) -> _Permission | None:
        permission = self.exact.get(uri)
        if permission is not None:
            return permission
        for length in self.prefix_lengths:
            if length <= len(uri):
                permission = self.prefixes[length].get(uri[:length])
                if permission is not None:
                    return permission
        if self.wildcards:
            components = uri.split(".")
            for parts, permission in self.wildcards.get(len(components), ()):
                if all(not part or part == component for part, component in zip(parts, components)):
                    return permission
        return None


class _RoleIndex:
    __slots__ = ("name", "disclose", "general", "reserved")

    def __init__(self, role: _Role) -> None:
        self.name = role.name
        self.disclose = bool(role.disclose)
        self.general = _PatternIndex(role.permissions)
        self.reserved = _PatternIndex(p for p in role.permissions if _names_wamp(p))

    def lookup(self, uri: str, reserved: bool) -> _Permission | None:
        return (self.reserved if reserved else self.general).lookup(uri)


class Authorizer:
    """
    Decides what sessions of one realm may do; see the module docstring for
    the rules.

    C{roles} are objects with C{name}, C{permissions} and C{disclose}
    (L{router.config.RoleConfig}); permissions have C{uri}, C{match},
    C{call}, C{register}, C{publish}, C{subscribe} and C{disclose}
    (L{router.config.PermissionConfig}).

    C{dynamic(session, action, uri)} may return a bool, a Deferred of one,
    or be C{async def}.  Only C{True} allows; C{False} denies; anything
    else, an exception or a failed Deferred denies and is logged (fail
    closed).  With C{cache_size} > 0, its answers (not its failures) are
    kept per (session ID, action, URI), least recently used first out;
    L{forget} drops a session's answers when it leaves.
    """

    def __init__(
        self,
        roles: Iterable[_Role] = (),
        dynamic: DynamicAuthorizer | None = None,
        *,
        open_anonymous: bool | None = None,
        cache_size: int = 0,
        dynamic_name: str | None = None,
    ) -> None:
        self._roles: dict[str, _RoleIndex] = {}
        for role in roles:
            if role.name in self._roles:
                raise ValueError(f"duplicate role {role.name!r}")
            self._roles[role.name] = _RoleIndex(role)
        self.dynamic = dynamic
        self.dynamic_name = dynamic_name or getattr(dynamic, "__qualname__", repr(dynamic))
        if open_anonymous is None:
            open_anonymous = not self._roles and dynamic is None
        self.open_anonymous = open_anonymous
        if cache_size < 0:
            raise ValueError("cache_size must be 0 or more")
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[int, str, str], bool] = OrderedDict()
        self._cached_by_session: dict[int, set[tuple[int, str, str]]] = {}

    def __repr__(self) -> str:
        return (
            f"<Authorizer roles={sorted(self._roles)} open_anonymous={self.open_anonymous} "
            f"dynamic={self.dynamic_name if self.dynamic else None}>"
        )

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self._roles)

    # -- the entry points -----------------------------------------------------

    def authorize(self, session: Any, action: str, uri: str) -> bool | Deferred:
        """
        Whether C{session} (a L{router.events.SessionInfo}, or anything with
        C{session_id} and C{authrole}) may do C{action} (C{call},
        C{register}, C{publish} or C{subscribe}) on C{uri}.  Returns a bool,
        or a Deferred firing with one (only with a dynamic authorizer; it
        never fails).
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        reserved = uri_is_reserved(uri)
        if reserved and action in ("register", "publish"):
            return False
        role = self._roles.get(session.authrole)
        if role is not None:
            permission = role.lookup(uri, reserved)
            if permission is not None:
                return bool(getattr(permission, action))
        if self.open_anonymous and session.authrole == "anonymous":
            return not reserved
        if self.dynamic is None:
            return False
        return self._ask(session, action, uri)

    def disclose(self, session: Any, action: str, uri: str | None = None) -> bool:
        """
        Whether to disclose C{session}'s identity for C{action} even though
        it did not ask with C{disclose_me}: to the callee for C{call}, to
        subscribers for C{publish} (always False for other actions).  With
        C{uri}, the matching permission's C{disclose} wins when it is set;
        otherwise the role's C{disclose}.  A client that asks with
        C{disclose_me} is disclosed anyway.
        """
        if action not in _DISCLOSING:
            return False
        role = self._roles.get(session.authrole)
        if role is None:
            return False
        if uri is not None:
            permission = role.lookup(uri, uri_is_reserved(uri))
            if permission is not None and permission.disclose is not None:
                return bool(permission.disclose)
        return role.disclose

    def forget(self, session_id: int) -> None:
        """Drop the cached answers for a session (call when it leaves)."""
        for key in self._cached_by_session.pop(session_id, ()):
            self._cache.pop(key, None)

    # -- the dynamic authorizer -----------------------------------------------

    def _ask(self, session: Any, action: str, uri: str) -> bool | Deferred:
        key = (session.session_id, action, uri)
        if self.cache_size:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached

        def failed(failure: Failure) -> bool:
            _log.failure(
                "dynamic authorizer {name} failed on {action} {uri} for session "
                "{session_id} (role {role}): denied",
                failure,
                name=self.dynamic_name,
                action=action,
                uri=uri,
                session_id=session.session_id,
                role=session.authrole,
            )
            return False

        def answer(result: object) -> bool:
            if result is True or result is False:
                self._remember(key, result)
                return result
            _log.error(
                "dynamic authorizer {name} returned {result!r} on {action} {uri}; "
                "expected True or False: denied",
                name=self.dynamic_name,
                result=result,
                action=action,
                uri=uri,
            )
            return False

        try:
            result = self.dynamic(session, action, uri)  # type: ignore[misc]
        except Exception:
            return failed(Failure())
        if inspect.isawaitable(result) and not isinstance(result, Deferred):
            result = Deferred.fromCoroutine(result)  # type: ignore[arg-type]
        if isinstance(result, Deferred):
            return result.addCallbacks(answer, failed)
        return answer(result)

    def _remember(self, key: tuple[int, str, str], allowed: bool) -> None:
        if not self.cache_size:
            return
        cache = self._cache
        cache[key] = allowed
        cache.move_to_end(key)
        self._cached_by_session.setdefault(key[0], set()).add(key)
        while len(cache) > self.cache_size:
            old, _ = cache.popitem(last=False)
            keys = self._cached_by_session.get(old[0])
            if keys is not None:
                keys.discard(old)
                if not keys:
                    del self._cached_by_session[old[0]]
