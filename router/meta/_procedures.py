"""The meta procedures' table and their implementations (a part of :class:`router.meta.Meta`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from autobahn.wamp import message
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from router.errors import Refusal
from router.events import SessionInfo
from router.meta._events import event_history_procedures
from router.meta._revocation import revocation_procedures
from router.meta._stats import stats_procedures
from router.options import key_problem, option_problem
from router.uri import is_reserved, is_valid_uri

if TYPE_CHECKING:
    from router.interfaces import IRoutedSession as RouterSession

__all__ = ["MetaError", "NOTHING", "Procedures", "session_details", "subscription_details", "registration_details"]

_log = Logger(namespace="wampd.meta")

_CALL = message.Call.MESSAGE_TYPE
_PUBLISH = message.Publish.MESSAGE_TYPE
_SCOPES = ("destroyed", "detached")


class MetaError(Refusal):
    """A meta procedure's ERROR: a WAMP error URI and a message (``text``, also ``message``)."""

    def __init__(self, uri: str, text: str) -> None:
        super().__init__(uri, text)
        self.text = text


def session_details(info: SessionInfo) -> dict:
    conn = info.connection
    return {
        "session": info.session_id,
        "authid": info.authid,
        "authrole": info.authrole,
        "authmethod": info.authmethod,
        "authprovider": info.authprovider,
        "transport": {"type": conn.transport, "peer": conn.peer, "serializer": conn.serializer},
    }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def subscription_details(sub: Any) -> dict:
    return {"id": sub.id, "created": _iso(sub.created), "uri": sub.uri, "match": sub.match}


def registration_details(reg: Any) -> dict:
    return {"id": reg.id, "created": _iso(reg.created), "uri": reg.uri, "match": reg.match, "invoke": reg.invoke}


def _publish_problem(args, kwargs, options) -> str | None:
    """Why a testament would be refused as a PUBLISH (the wire's rules: router.options), or None."""
    if args is not None and type(args) is not list:
        return "args must be a list"
    if kwargs is not None:
        if type(kwargs) is not dict:
            return "kwargs must be a dict"
        problem = key_problem(kwargs)
        if problem is not None:
            return problem
    if type(options) is not dict:
        return "publish_options must be a dict"
    return option_problem(_PUBLISH, options)


def _ids_by_policy(groups: dict[str, list]) -> dict[str, list[int]]:
    return {policy: [item.id for item in items] for policy, items in groups.items()}


class Procedures:
    """The ``wamp.session.*``, ``wamp.subscription.*`` and ``wamp.registration.*`` procedures."""

    def _init_procedures(self) -> None:
        self._procedures: dict[str, Callable[[RouterSession, list, dict], Any]] = {
            "wamp.session.count": self._count,
            "wamp.session.list": self._list,
            "wamp.session.get": self._get,
            "wamp.session.kill": self._kill,
            "wamp.session.kill_by_authid": self._kill_by_authid,
            "wamp.session.kill_by_authrole": self._kill_by_authrole,
            "wamp.session.kill_all": self._kill_all,
            "wamp.session.add_testament": self._add_testament,
            "wamp.session.flush_testaments": self._flush_testaments,
            "wamp.subscription.list": lambda c, a, k: _ids_by_policy(self.realm.broker.by_policy()),
            "wamp.subscription.lookup": self._sub_lookup,
            "wamp.subscription.match": self._sub_match,
            "wamp.subscription.get": lambda c, a, k: subscription_details(self._subscription(a)),
            "wamp.subscription.list_subscribers": lambda c, a, k: [
                s.session_id for s in self._subscription(a).subscribers
            ],
            "wamp.subscription.count_subscribers": lambda c, a, k: len(self._subscription(a).subscribers),
            "wamp.registration.list": lambda c, a, k: _ids_by_policy(self.realm.dealer.by_policy()),
            "wamp.registration.lookup": self._reg_lookup,
            "wamp.registration.match": self._reg_match,
            "wamp.registration.get": lambda c, a, k: registration_details(self._registration(a)),
            "wamp.registration.list_callees": lambda c, a, k: [s.session_id for s in self._registration(a).callees],
            "wamp.registration.count_callees": lambda c, a, k: len(self._registration(a).callees),
            **revocation_procedures(self.realm, MetaError, _NOTHING),
            **event_history_procedures(self.realm, MetaError),
            **stats_procedures(self.realm, MetaError),
        }

    @property
    def procedures(self) -> tuple[str, ...]:
        return tuple(self._procedures)

    # -- meta procedures -----------------------------------------------------------

    def run_here(self, name: str, caller, args: list, kwargs: dict):
        """Meta procedure ``name`` on this router's own sessions only (a cluster node's part of an answer)."""
        return self._procedures[name](caller, args, kwargs)

    def call(self, caller: RouterSession, msg: message.Call) -> None:
        handler = self._procedures.get(msg.procedure)
        cluster = self.realm.broker.cluster
        if cluster is not None:  # answers for every node (router.cluster._meta)
            handler = cluster.meta.procedure(self, msg.procedure, handler)
        request = msg.request
        if handler is None:
            caller.send_error(_CALL, request, "wamp.error.no_such_procedure", f"no meta procedure {msg.procedure!r}")
            return
        try:
            result = handler(caller, list(msg.args or ()), dict(msg.kwargs or {}))
        except MetaError as exc:
            caller.send_error(_CALL, request, exc.uri, exc.text)
            return
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            caller.send_error(
                _CALL, request, "wamp.error.invalid_argument", f"bad arguments for {msg.procedure}: {exc}"
            )
            return
        if isinstance(result, Deferred):  # waits for a dynamic authorizer (add_testament)
            session_id = caller.session_id

            def answer(outcome):
                if caller.session_id != session_id:
                    return None  # the caller left meanwhile: nobody to answer
                if isinstance(outcome, Failure):
                    if outcome.check(MetaError):
                        caller.send_error(_CALL, request, outcome.value.uri, outcome.value.text)
                    else:
                        _log.failure("meta procedure {name} failed", outcome, name=msg.procedure)
                        caller.send_error(_CALL, request, "wamp.error.runtime_error", f"{msg.procedure} failed")
                    return None
                caller.send(message.Result(request, args=None if outcome is _NOTHING else [outcome]))
                return None

            result.addBoth(answer)
            return
        caller.send(message.Result(request, args=None if result is _NOTHING else [result]))

    @staticmethod
    def _roles_filter(args: list):
        if not args or args[0] is None:
            return None
        roles = args[0]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ValueError("filter_authroles must be a list of strings")
        return roles

    def _remote(self, roles) -> list[dict]:
        """Sessions on the cluster's other nodes (none without a cluster)."""
        cluster = self.realm.broker.cluster
        return [] if cluster is None else cluster.sessions.in_realm(self.realm.name, roles)

    def _count(self, caller, args, kwargs):
        roles = self._roles_filter(args)
        return len(self.sessions(roles)) + len(self._remote(roles))

    def _list(self, caller, args, kwargs):
        roles = self._roles_filter(args)
        return [info.session_id for info in self.sessions(roles)] + [d["session"] for d in self._remote(roles)]

    def _get(self, caller, args, kwargs):
        info = self.session(args[0])
        if info is not None:
            return session_details(info)
        cluster = self.realm.broker.cluster
        details = cluster.sessions.get(self.realm.name, args[0]) if cluster is not None else None
        if details is None:
            raise MetaError("wamp.error.no_such_session", f"no session {args[0]} on realm {self.realm.name!r}")
        return details

    @staticmethod
    def _close_args(kwargs) -> tuple[str, str | None]:
        reason = kwargs.get("reason", "wamp.close.normal")
        if not is_valid_uri(reason):
            raise MetaError("wamp.error.invalid_uri", f"reason {reason!r} is not a valid URI")
        text = kwargs.get("message")
        if text is not None and not isinstance(text, str):
            raise ValueError("message must be a string")
        return reason, text

    def _kill(self, caller, args, kwargs):
        target = args[0]
        reason, text = self._close_args(kwargs)
        if target == caller.session_id or not self.kill(target, reason, text):
            raise MetaError("wamp.error.no_such_session", f"no other session {target} on realm {self.realm.name!r}")
        return _NOTHING

    def _kill_by_authid(self, caller, args, kwargs):
        """Returns the killed sessions' ids (the spec's ``sessions|list``; older drafts said a count)."""
        authid = args[0]
        reason, text = self._close_args(kwargs)
        return self.kill_where(lambda i: i.authid == authid, reason, text, spare=caller)

    def _kill_by_authrole(self, caller, args, kwargs):
        authrole = args[0]
        reason, text = self._close_args(kwargs)
        return len(self.kill_where(lambda i: i.authrole == authrole, reason, text, spare=caller))

    def _kill_all(self, caller, args, kwargs):
        reason, text = self._close_args(kwargs)
        return len(self.kill_where(lambda i: True, reason, text, spare=caller))

    def _add_testament(self, caller, args, kwargs):
        topic = args[0]
        if not is_valid_uri(topic):
            raise MetaError("wamp.error.invalid_uri", f"{topic!r} is not a valid topic URI")
        if is_reserved(topic):
            # as for PUBLISH: the wamp.* topics are the router's
            raise MetaError("wamp.error.not_authorized", "wamp.* topics are reserved for the router")
        t_args = args[1] if len(args) > 1 else None
        t_kwargs = args[2] if len(args) > 2 else None
        options = kwargs.get("publish_options") or {}
        problem = _publish_problem(t_args, t_kwargs, options)
        if problem is not None:
            raise MetaError("wamp.error.invalid_argument", f"the testament is not a valid PUBLISH: {problem}")
        scope = kwargs.get("scope", "destroyed")
        if scope not in _SCOPES:
            raise ValueError(f"scope must be one of {_SCOPES}")
        testament = (topic, t_args, t_kwargs, options)
        # a testament is a publish by this session: its role must be allowed to publish there
        allowed = caller.may("publish", topic)
        if isinstance(allowed, Deferred):
            session_id = caller.session_id
            return allowed.addCallback(
                lambda answer: self._testament_allowed(caller, session_id, answer, scope, testament)
            )
        return self._testament_allowed(caller, caller.session_id, allowed, scope, testament)

    def _testament_allowed(self, caller, session_id, allowed, scope: str, testament: tuple):
        topic = testament[0]
        if allowed is not True:
            role = caller.info.authrole if caller.info is not None else "?"
            raise MetaError(
                "wamp.error.not_authorized",
                f"role {role!r} may not publish {topic!r}, so it cannot leave a testament there",
            )
        if caller.session_id != session_id or caller.state != "joined":
            return _NOTHING  # left while the authorizer decided: nothing to keep
        testaments = self._testaments.get(caller)
        if testaments is None:
            testaments = self._testaments[caller] = {}
        testaments.setdefault(scope, []).append(testament)
        stored = self._testaments_changed(caller)
        return _NOTHING if stored is None else stored.addCallback(lambda _: _NOTHING)

    def _flush_testaments(self, caller, args, kwargs):
        scope = kwargs.get("scope", "destroyed")
        if scope not in _SCOPES:
            raise ValueError(f"scope must be one of {_SCOPES}")
        testaments = self._testaments.get(caller)
        if not testaments:
            return 0
        flushed = len(testaments.pop(scope, ()))
        self._testaments_changed(caller)
        return flushed

    def _testaments_changed(self, caller) -> Deferred | None:
        cluster = self.realm.broker.cluster
        if cluster is None:
            return None
        # kept in Redis too, to outlive this node (router.cluster._testaments): a Deferred until Redis holds them
        return cluster.testaments.changed(self.realm.name, caller, self._testaments.get(caller))

    def _subscription(self, args):
        sub = self.realm.broker.subscription(args[0])
        if sub is None:
            raise MetaError("wamp.error.no_such_subscription", f"no subscription {args[0]}")
        return sub

    def _registration(self, args):
        reg = self.realm.dealer.registration(args[0])
        if reg is None:
            raise MetaError("wamp.error.no_such_registration", f"no registration {args[0]}")
        return reg

    @staticmethod
    def _match_option(args) -> str:
        options = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
        match = options.get("match", "exact")
        if match not in ("exact", "prefix", "wildcard"):
            raise ValueError(f"unknown match policy {match!r}")
        return match

    def _sub_lookup(self, caller, args, kwargs):
        sub = self.realm.broker.lookup(args[0], self._match_option(args))
        return sub.id if sub is not None else None

    def _sub_match(self, caller, args, kwargs):
        found = self.realm.broker.matching(args[0])
        return [sub.id for sub in found] or None

    def _reg_lookup(self, caller, args, kwargs):
        reg = self.realm.dealer.lookup(args[0], self._match_option(args))
        return reg.id if reg is not None else None

    def _reg_match(self, caller, args, kwargs):
        reg = self.realm.dealer.best(args[0])
        return reg.id if reg is not None else None


_NOTHING = NOTHING = object()  # a meta procedure with no result: RESULT without args
