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

A pattern-based SUBSCRIBE or REGISTER (C{match} C{prefix} or C{wildcard})
is allowed only if rules 1 to 5 allow every URI the pattern can match (see
L{Authorizer.authorize}), so a pattern never reaches past a more specific
denial or beyond an exact permission, and never into C{wamp.*} where the
role names no C{wamp} permission.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.defer import TimeoutError as DeferTimeout
from twisted.logger import Logger
from twisted.python.failure import Failure

from router.auth._permissions import _Role, _RoleIndex, pattern_overlaps_reserved, uri_is_reserved

__all__ = ["ACTIONS", "Authorizer", "DynamicAuthorizer", "uri_is_reserved"]

_log = Logger(namespace="wampd.auth")

ACTIONS = ("call", "register", "publish", "subscribe")
_DISCLOSING = ("call", "publish")
_PATTERN_MATCHES = ("prefix", "wildcard")

DynamicAuthorizer = Callable[..., Any]
"""
C{authorizer(session, action, uri) -> bool}, sync, a Deferred, or C{async
def}.  One that also takes a C{match} keyword argument is asked about
pattern-based subscriptions and registrations too, as
C{authorizer(session, action, pattern, match="prefix" | "wildcard")}.
"""


def _takes_match(function: Callable) -> bool:
    """Whether C{function} accepts a C{match} keyword argument."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind is inspect.Parameter.VAR_KEYWORD
        or (p.name == "match" and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))
        for p in parameters
    )


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
    L{forget} drops a session's answers when it leaves.  An answer that has
    not come after C{timeout} seconds (on C{clock}, the router's; without a
    clock, no limit) is cancelled and denies (fail closed).
    """

    def __init__(
        self,
        roles: Iterable[_Role] = (),
        dynamic: DynamicAuthorizer | None = None,
        *,
        open_anonymous: bool | None = None,
        cache_size: int = 0,
        dynamic_name: str | None = None,
        timeout: float = 10.0,
        clock: Any = None,
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
        self.timeout = timeout
        self.clock = clock
        self._cache: OrderedDict[tuple[int, str, str, str | None], bool] = OrderedDict()
        self._cached_by_session: dict[int, set[tuple[int, str, str, str | None]]] = {}
        self._dynamic_takes_match = dynamic is not None and _takes_match(dynamic)

    def __repr__(self) -> str:
        return (
            f"<Authorizer roles={sorted(self._roles)} open_anonymous={self.open_anonymous} "
            f"dynamic={self.dynamic_name if self.dynamic else None}>"
        )

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self._roles)

    # -- the entry points -----------------------------------------------------

    def authorize(
        self, session: Any, action: str, uri: str, match: str | None = None, *, fresh: bool = False
    ) -> bool | Deferred:
        """
        Whether C{session} (a L{router.events.SessionInfo}, or anything with
        C{session_id} and C{authrole}) may do C{action} (C{call},
        C{register}, C{publish} or C{subscribe}) on C{uri}.  Returns a bool,
        or a Deferred firing with one (only with a dynamic authorizer; it
        never fails).

        C{match} is the SUBSCRIBE or REGISTER match policy (None or
        C{"exact"}: C{uri} is one URI).  For C{"prefix"} and C{"wildcard"},
        C{uri} is a pattern, and it is allowed only when every URI it can
        match is: a pattern never reaches further than the permissions do
        (a prefix subscription to C{com.app.} is refused when C{com.app.admin.}
        is, and one to C{news.x} is not allowed by an exact permission for
        C{news.x}).  A pattern that can match C{wamp.*} URIs is checked
        against the permissions naming C{wamp} for that part, and can never
        be registered.  A dynamic authorizer is asked about a pattern only if
        it takes a C{match} keyword argument; otherwise such a pattern is
        denied.

        With C{fresh}, the dynamic authorizer is asked even when its answer
        is cached, and the answer is not kept (a testament, checked again
        as its session leaves).
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        if match == "exact" or match is None or action in _DISCLOSING:
            match = None
        elif match not in _PATTERN_MATCHES:
            raise ValueError(f"unknown match policy {match!r}; expected exact, prefix or wildcard")
        if match is not None:
            return self._authorize_pattern(session, action, uri, match)
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
        return self._ask(session, action, uri, None, fresh)

    def _authorize_pattern(self, session: Any, action: str, pattern: str, match: str) -> bool | Deferred:
        reserved = pattern_overlaps_reserved(pattern, match)
        if reserved and action == "register":
            return False
        role = self._roles.get(session.authrole)
        if role is not None:
            verdict = role.pattern_verdict(action, pattern, match)
            if verdict is not None:
                return verdict
        if self.open_anonymous and session.authrole == "anonymous":
            return not reserved
        if self.dynamic is None:
            return False
        if not self._dynamic_takes_match:
            _log.warn(
                "dynamic authorizer {name} takes no 'match' argument, so it cannot be asked "
                "about the {match} pattern {uri!r} ({action}): denied",
                name=self.dynamic_name,
                match=match,
                uri=pattern,
                action=action,
            )
            return False
        return self._ask(session, action, pattern, match)

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

    def _ask(self, session: Any, action: str, uri: str, match: str | None, fresh: bool = False) -> bool | Deferred:
        key = (session.session_id, action, uri, match)
        if self.cache_size and not fresh:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached

        def failed(failure: Failure) -> bool:
            if failure.check(DeferTimeout):
                _log.error(
                    "dynamic authorizer {name} did not answer {action} {uri} for session "
                    "{session_id} (role {role}) within {timeout}s: denied",
                    name=self.dynamic_name,
                    action=action,
                    uri=uri,
                    session_id=session.session_id,
                    role=session.authrole,
                    timeout=self.timeout,
                )
                return False
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
                if not fresh:
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
            if match is None:
                result = self.dynamic(session, action, uri)  # type: ignore[misc]
            else:
                result = self.dynamic(session, action, uri, match=match)  # type: ignore[misc]
        except Exception:
            return failed(Failure())
        if inspect.isawaitable(result) and not isinstance(result, Deferred):
            result = Deferred.fromCoroutine(result)  # type: ignore[arg-type]
        if isinstance(result, Deferred):
            if self.clock is not None and self.timeout > 0 and not result.called:
                result.addTimeout(self.timeout, self.clock)
            return result.addCallbacks(answer, failed)
        return answer(result)

    def _remember(self, key: tuple[int, str, str, str | None], allowed: bool) -> None:
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
