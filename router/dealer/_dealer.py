"""The dealer: registrations of one realm (see :mod:`router.dealer`)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from autobahn.wamp import message

from router.dealer._calls import Calls, PendingCall, _Party
from router.dealer._endings import Endings
from router.dealer._ppt import Passthru
from router.matching import MATCH_POLICIES, PatternIndex
from router.uri import is_reserved, is_valid_uri

if TYPE_CHECKING:
    from router.interfaces import IRoutedSession as RouterSession

__all__ = ["Dealer", "Registration", "INVOKE_POLICIES"]

_CALL = message.Call.MESSAGE_TYPE
_REGISTER = message.Register.MESSAGE_TYPE
_UNREGISTER = message.Unregister.MESSAGE_TYPE

INVOKE_POLICIES = ("single", "roundrobin", "random", "first", "last")
#: A shared REGISTER whose ``invoke`` differs from the registration's (Autobahn's URI; Crossbar's answer).
PROCEDURE_EXISTS_WITH_DIFFERENT_POLICY = "wamp.error.procedure_exists_with_different_invocation_policy"


class Registration:
    __slots__ = ("id", "uri", "match", "invoke", "callees", "created", "disclose_to", "_turn", "remote")

    def __init__(self, reg_id: int, uri: str, match: str, invoke: str, created: float) -> None:
        self.id = reg_id
        self.uri = uri
        self.match = match
        self.invoke = invoke
        self.created = created
        self.callees: list[RouterSession] = []
        self.disclose_to: set[RouterSession] = set()  # callees that registered with disclose_caller
        self._turn = 0
        # in a cluster, the callees of this shared registration on other nodes (router.cluster._policies.Spread)
        self.remote = None

    def pick(self) -> RouterSession:
        callees = self.callees
        policy = self.invoke
        if policy == "roundrobin":
            turn = self._turn % len(callees)
            self._turn = turn + 1
            return callees[turn]
        if policy == "random":
            return random.choice(callees)
        if policy == "last":
            return callees[-1]
        return callees[0]


def _clash(reg: Registration | None, session, procedure: str, invoke: str) -> tuple[str, str] | None:
    """Why ``session`` may not register ``procedure`` with ``invoke`` beside ``reg`` (the ERROR's URI and text)."""
    if reg is None:
        return None
    if reg.invoke != invoke:
        return (
            PROCEDURE_EXISTS_WITH_DIFFERENT_POLICY,
            f"procedure {procedure!r} is registered with invocation policy {reg.invoke!r}, not {invoke!r}",
        )
    if invoke == "single":
        return "wamp.error.procedure_already_exists", f"procedure {procedure!r} is already registered"
    if session in reg.callees:
        return "wamp.error.procedure_already_exists", f"this session already registered {procedure!r}"
    return None


class Dealer(Passthru, Endings, Calls):
    """Registrations (routing calls: :class:`Calls`, ending them early: :class:`Endings`; payload passthru: :class:`Passthru`)."""

    def __init__(self, realm: Any) -> None:
        # realm: the router.realm.Realm this dealer serves (router, scope_ids, meta, internal, sessions)
        self.realm = realm
        self._index: PatternIndex[Registration] = PatternIndex()
        self._by_id: dict[int, Registration] = {}
        self._parties: dict[Any, _Party] = {}  # session -> its calls, invocations and registrations
        self._max_calls = realm.router.max_calls_in_flight  # per caller; 0 unlimited
        # the router.cluster node that serves calls no local callee can (None: one process)
        self.cluster = realm.router.cluster

    # -- queries (also used by the meta API) ----------------------------------

    def pending(self, session) -> tuple[dict[int, PendingCall], dict[int, PendingCall]]:
        """``session``'s calls in flight as caller and as callee (copies): request id -> PendingCall."""
        party = self._parties.get(session)
        return ({}, {}) if party is None else (dict(party.calls), dict(party.invocations))

    def invocation(self, callee, request: int) -> PendingCall | None:
        """The call behind INVOCATION ``request`` to ``callee``, while it is in flight."""
        party = self._parties.get(callee)
        return None if party is None else party.invocations.get(request)


    def registration(self, reg_id: int) -> Registration | None:
        return self._by_id.get(reg_id)

    def lookup(self, procedure: str, match: str = "exact") -> Registration | None:
        return self._index.get(procedure, match)

    def best(self, procedure: str) -> Registration | None:
        found = self._index.best(procedure)
        return found[1] if found else None

    def registrations(self) -> tuple[Registration, ...]:
        return tuple(self._by_id.values())

    def by_policy(self) -> dict[str, list[Registration]]:
        return self._index.by_policy()

    # -- what another cluster node may serve ----------------------------------------

    def _no_callee(self, caller: RouterSession, msg: message.Call, options: dict, node: str | None = None) -> None:
        """No local registration matches (or the policy picked ``node``'s callee): another cluster node's may; else no_such_procedure."""
        procedure = msg.procedure
        cluster = self.cluster
        if cluster is not None:
            disclose = options.get("disclose_me") is True or caller.discloses("call", procedure)
            if cluster.calls.forward_call(self.realm.name, caller, msg, options, disclose, node):
                return
        caller.send_error(_CALL, msg.request, "wamp.error.no_such_procedure", f"no callee registered procedure {procedure!r}")

    def _cancel_elsewhere(self, caller: RouterSession, msg: message.Cancel) -> None:
        if self.cluster is not None:
            self.cluster.calls.cancel(caller, msg.request, msg.mode or "killnowait")

    # -- registering ------------------------------------------------------------

    def register(self, session: RouterSession, msg: message.Register) -> None:
        procedure, match, invoke = msg.procedure, msg.match or "exact", msg.invoke or "single"
        request = msg.request

        def refuse(uri: str, text: str) -> None:
            session.send_error(_REGISTER, request, uri, text)

        if is_reserved(procedure):
            return refuse("wamp.error.not_authorized", "wamp.* procedures are reserved for the router")
        if match not in MATCH_POLICIES:
            return refuse("wamp.error.invalid_argument", f"unknown match policy {match!r}")
        if invoke not in INVOKE_POLICIES:
            return refuse(
                "wamp.error.invalid_argument",
                f"unknown invocation policy {invoke!r}; use one of {', '.join(INVOKE_POLICIES)}",
            )
        if match == "exact" and not is_valid_uri(procedure):
            return refuse("wamp.error.invalid_uri", f"{procedure!r} is not a valid procedure URI")
        reg = self._index.get(procedure, match)
        clash = _clash(reg, session, procedure, invoke)
        if clash is not None:
            return refuse(*clash)
        if reg is None and self.cluster is not None:
            # a new registration on this node: first agree with the cluster (single, policy)
            self.cluster.claim_registration(
                self.realm.name, match, procedure, invoke,
                lambda: self._register_claimed(session, msg, procedure, match, invoke), refuse,
            )
            return
        self._registered(session, msg, procedure, match, invoke, reg)

    def _register_claimed(self, session, msg: message.Register, procedure: str, match: str, invoke: str) -> None:
        reg = self._index.get(procedure, match)
        if session.state != "joined":
            if reg is None:  # nobody here serves it after all: give the claim back
                self.cluster.procedure_removed(self.realm.name, match, procedure)
            return
        clash = _clash(reg, session, procedure, invoke)  # the index may have changed while Redis answered
        if clash is not None:
            session.send_error(_REGISTER, msg.request, *clash)
            return
        self._registered(session, msg, procedure, match, invoke, reg)

    def _registered(self, session, msg: message.Register, procedure: str, match: str, invoke: str, reg) -> None:
        reg = self._attach(session, procedure, match, invoke, reg)
        options = msg._router_internal
        if type(options) is dict and options.get("disclose_caller") is True:
            reg.disclose_to.add(session)
        session.send(message.Registered(msg.request, reg.id))
        self._announce(session, reg)

    def register_local(self, callee, procedure: str, match: str, invoke: str = "single") -> Registration:
        """Register a router-side callee (the realm's InternalSession); raises ValueError on a clash."""
        reg = self._index.get(procedure, match)
        if reg is not None and (reg.invoke == "single" or reg.invoke != invoke):
            raise ValueError(f"procedure {procedure!r} ({match}) is already registered with policy {reg.invoke!r}")
        reg = self._attach(callee, procedure, match, invoke, reg)
        self._announce(callee, reg)
        return reg

    def _attach(self, session, procedure: str, match: str, invoke: str, reg: Registration | None) -> Registration:
        if reg is None:
            router = self.realm.router
            reg = Registration(self.realm.scope_ids.next(self._by_id, match, procedure, "reg"), procedure, match, invoke, router.clock.seconds())
            self._index.add(procedure, match, reg)
            self._by_id[reg.id] = reg
            if self.cluster is not None:
                self.cluster.procedure_added(self.realm.name, match, procedure, invoke)
        reg.callees.append(session)
        self._party(session).registrations.add(reg.id)
        if self.cluster is not None and invoke != "single":  # the other nodes count it (policies across nodes)
            self.cluster.calls.procedures.callee_added(self.realm.name, reg, session)
        return reg

    def _announce(self, session, reg: Registration) -> None:
        meta = self.realm.meta
        if len(reg.callees) == 1:
            meta.registration_created(session, reg)
        meta.registered(session, reg)

    def unregister(self, session: RouterSession, msg: message.Unregister) -> None:
        reg = self._by_id.get(msg.registration)
        if reg is None or session not in reg.callees:
            session.send_error(
                _UNREGISTER,
                msg.request,
                "wamp.error.no_such_registration",
                f"session has no registration {msg.registration}",
            )
            return
        self._parties[session].registrations.discard(reg.id)
        session.send(message.Unregistered(msg.request))
        self._drop(session, reg)

    def remove_callee(self, session: RouterSession, reg: Registration) -> None:
        """Revocation (router.meta._revocation): ``session`` leaves ``reg`` as if it had unregistered."""
        party = self._parties.get(session)
        if party is not None:
            party.registrations.discard(reg.id)
        self._drop(session, reg)

    # -- session cleanup ---------------------------------------------------------

    def remove_session(self, session: RouterSession) -> None:
        if self.cluster is not None:
            self.cluster.calls.caller_left(session)
        party = self._parties.pop(session, None)
        if party is None:
            return
        for reg_id in party.registrations:
            reg = self._by_id.get(reg_id)
            if reg is not None:
                self._drop(session, reg)
        self._end_calls(party)

    def _drop(self, session: RouterSession, reg: Registration) -> None:
        try:
            reg.callees.remove(session)
        except ValueError:
            return
        if self.cluster is not None and reg.invoke != "single":
            self.cluster.calls.procedures.callee_removed(self.realm.name, reg, session)
        reg.disclose_to.discard(session)
        meta = self.realm.meta
        meta.unregistered(session, reg)
        if not reg.callees:
            del self._by_id[reg.id]
            self._index.remove(reg.uri, reg.match)
            if self.cluster is not None:
                self.cluster.procedure_removed(self.realm.name, reg.match, reg.uri)
            meta.registration_deleted(session, reg)
