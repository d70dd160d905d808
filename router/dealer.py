"""
Remote procedure calls for one realm.

* Caller identification: CALL ``disclose_me``, or REGISTER ``disclose_caller``
  from the callee, puts ``caller``, ``caller_authid`` and ``caller_authrole``
  in the INVOCATION details.
* Pattern-based registrations (exact, prefix, wildcard) routed by the spec's
  precedence (:meth:`router.matching.PatternIndex.best`); the concrete
  procedure goes to the callee in ``INVOCATION.Details.procedure``.
* Shared registrations: ``invoke`` = single, roundrobin, random, first, last.
  A REGISTER whose policy differs from the existing registration's (or any
  second REGISTER of a ``single`` one) gets ``wamp.error.procedure_already_exists``.
* Progressive call results (``receive_progress`` / YIELD ``progress``) and
  progressive call invocations (CALL ``progress``: every chunk with the same
  request id goes to the same callee as INVOCATIONs with one request id).
* Cancellation: CANCEL ``skip``, ``kill``, ``killnowait`` (default
  ``killnowait``); a callee that did not announce ``call_canceling`` is
  treated as ``skip``.
* Call timeouts in milliseconds (CALL ``timeout``): ``wamp.error.timeout`` to
  the caller and INTERRUPT to a callee that supports cancellation.  With
  progressive results the timeout runs from one result to the next.
* Every CALL ends in RESULT or ERROR, whatever happens to the callee (or
  inside the router: :meth:`Dealer.end_call`, :meth:`Dealer.end_invocation`); a
  caller that leaves gets its calls dropped (callees that support it get
  INTERRUPT) and late YIELDs are dropped quietly.
* ``wamp.*`` procedures are the router's own (the meta API): clients cannot
  register them.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from autobahn.wamp import message

from router.matching import MATCH_POLICIES, PatternIndex
from router.messages import INVOCATION_DETAILS_AT
from router.uri import is_valid_uri

if TYPE_CHECKING:
    from router.realm import Realm
    from router.session import RouterSession

__all__ = ["Dealer", "Registration", "PendingCall", "INVOKE_POLICIES"]

_CALL = message.Call.MESSAGE_TYPE
_REGISTER = message.Register.MESSAGE_TYPE
_UNREGISTER = message.Unregister.MESSAGE_TYPE

INVOKE_POLICIES = ("single", "roundrobin", "random", "first", "last")
_CANCEL_MODES = ("skip", "kill", "killnowait")


class _Invocation(message.Invocation):
    """Autobahn's INVOCATION plus ``details.progress`` (progressive call invocations)."""

    __slots__ = ("progress",)

    def __init__(self, *args, progress: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress

    def marshal(self):
        raw = super().marshal()
        if self.progress:
            raw[INVOCATION_DETAILS_AT]["progress"] = True
        return raw


class Registration:
    __slots__ = ("id", "uri", "match", "invoke", "callees", "created", "disclose_to", "_turn")

    def __init__(self, reg_id: int, uri: str, match: str, invoke: str, created: float) -> None:
        self.id = reg_id
        self.uri = uri
        self.match = match
        self.invoke = invoke
        self.created = created
        self.callees: list[RouterSession] = []
        self.disclose_to: set[RouterSession] = set()  # callees that registered with disclose_caller
        self._turn = 0

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


class PendingCall:
    __slots__ = (
        "caller",
        "call_request",
        "callee",
        "invocation_request",
        "registration",
        "receive_progress",
        "streaming",
        "disclose",
        "procedure",
        "timer",
        "timeout",
        "killing",
    )

    def __init__(self, caller, call_request, callee, invocation_request, registration, receive_progress):
        self.caller = caller
        self.call_request = call_request
        self.callee = callee
        self.invocation_request = invocation_request
        self.registration = registration
        self.receive_progress = receive_progress
        self.streaming = False  # the caller is still sending progressive CALL chunks
        self.disclose = False
        self.procedure = None
        self.timer = None
        self.timeout = 0.0  # seconds, when the call has a timeout
        self.killing = False  # CANCEL kill sent: waiting for the callee's answer


def _feature(session: RouterSession, role: str, name: str) -> bool:
    features = session.roles.get(role)
    return bool(getattr(features, name, False))


def _supports_canceling(session: RouterSession) -> bool:
    return _feature(session, "callee", "call_canceling")


class Dealer:
    def __init__(self, realm: Realm) -> None:
        self.realm = realm
        self._index: PatternIndex[Registration] = PatternIndex()
        self._by_id: dict[int, Registration] = {}

    # -- queries (also used by the meta API) ----------------------------------

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

    # -- registering ------------------------------------------------------------

    def register(self, session: RouterSession, msg: message.Register) -> None:
        procedure, match, invoke = msg.procedure, msg.match or "exact", msg.invoke or "single"
        request = msg.request

        def refuse(uri: str, text: str) -> None:
            session.send_error(_REGISTER, request, uri, text)

        if procedure.startswith("wamp."):
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
        if reg is not None:
            if reg.invoke == "single":
                return refuse("wamp.error.procedure_already_exists", f"procedure {procedure!r} is already registered")
            if reg.invoke != invoke:
                return refuse(
                    "wamp.error.procedure_already_exists",
                    f"procedure {procedure!r} is registered with invocation policy {reg.invoke!r}, not {invoke!r}",
                )
            if session in reg.callees:
                return refuse(
                    "wamp.error.procedure_already_exists", f"this session already registered {procedure!r}"
                )
        reg = self._attach(session, procedure, match, invoke, reg)
        options = msg._router_internal
        if type(options) is dict and options.get("disclose_caller") is True:
            reg.disclose_to.add(session)
        session.send(message.Registered(request, reg.id))
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
            reg = Registration(self.realm.scope_ids.next(self._by_id), procedure, match, invoke, router.clock.seconds())
            self._index.add(procedure, match, reg)
            self._by_id[reg.id] = reg
        reg.callees.append(session)
        session.registrations.add(reg.id)
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
        session.registrations.discard(reg.id)
        session.send(message.Unregistered(msg.request))
        self._drop(session, reg)

    # -- calling ------------------------------------------------------------------

    def call(self, caller: RouterSession, msg: message.Call) -> None:
        request = msg.request
        options = msg._router_internal if type(msg._router_internal) is dict else {}
        progress = options.get("progress") is True
        pending = caller.calls.get(request)
        if pending is not None:
            if pending.streaming:
                self._next_chunk(pending, msg, progress)
                return
            from router.session import ProtocolViolation

            raise ProtocolViolation(f"CALL request {request} is already in flight")
        if progress and not _feature(caller, "caller", "progressive_call_invocations"):
            from router.session import ProtocolViolation

            raise ProtocolViolation(
                "CALL with progress=true from a caller that did not announce progressive_call_invocations"
            )
        procedure = msg.procedure
        if procedure.startswith("wamp."):
            self.realm.meta.call(caller, msg)
            return
        found = self._index.best(procedure)
        if found is None:
            caller.send_error(
                _CALL, request, "wamp.error.no_such_procedure", f"no callee registered procedure {procedure!r}"
            )
            return
        policy, reg = found
        callee = reg.pick()
        if progress and not (
            _feature(callee, "callee", "progressive_call_invocations") and _supports_canceling(callee)
        ):
            caller.send_error(
                _CALL,
                request,
                "wamp.error.feature_not_supported",
                "the callee does not support progressive call invocations",
            )
            return
        # a callee that cannot be interrupted is treated as not supporting progressive results
        receive_progress = (
            msg.receive_progress is True
            and _feature(callee, "callee", "progressive_call_results")
            and _supports_canceling(callee)
        )
        pending = PendingCall(caller, request, callee, callee.request_ids.next(), reg, receive_progress)
        pending.disclose = (
            options.get("disclose_me") is True or callee in reg.disclose_to or caller.discloses("call", procedure)
        )
        pending.procedure = procedure if policy != "exact" else None
        pending.streaming = progress
        caller.calls[request] = pending
        callee.invocations[pending.invocation_request] = pending
        timeout = options.get("timeout")
        if type(timeout) is int and timeout > 0:
            pending.timeout = timeout / 1000.0
            pending.timer = self.realm.router.clock.callLater(pending.timeout, self._timed_out, pending)
        self._invoke(pending, msg, progress)

    def _invoke(self, pending: PendingCall, msg: message.Call, progress: bool) -> None:
        info = pending.caller.info if pending.disclose else None
        invocation = _Invocation(
            pending.invocation_request,
            pending.registration.id,
            args=msg.args,
            kwargs=msg.kwargs,
            payload=msg.payload,
            receive_progress=True if pending.receive_progress else None,
            caller=info.session_id if info else None,
            caller_authid=info.authid if info else None,
            caller_authrole=info.authrole if info else None,
            procedure=pending.procedure,
            enc_algo=msg.enc_algo,
            enc_key=msg.enc_key,
            enc_serializer=msg.enc_serializer,
            progress=progress,
        )
        if not pending.callee.send(invocation):
            self._finish(pending)
            pending.caller.send_error(
                _CALL,
                pending.call_request,
                pending.callee.send_failure,
                f"the call's arguments cannot be sent to the callee ({pending.callee.codec.name})",
            )

    def _next_chunk(self, pending: PendingCall, msg: message.Call, progress: bool) -> None:
        """A further CALL of a progressive call invocation: same callee, same INVOCATION id."""
        pending.streaming = progress
        self._invoke(pending, msg, progress)

    def yield_(self, callee: RouterSession, msg: message.Yield) -> None:
        pending = callee.invocations.get(msg.request)
        if pending is None:
            return  # late or unknown: the call already ended; drop quietly
        progress = msg.progress is True
        if progress and pending.timer is not None:
            # with progressive results the timeout runs from one result to the next
            pending.timer.reset(pending.timeout)
        if progress and not pending.receive_progress:
            return  # the caller did not ask for progress: drop the partial result
        result = message.Result(
            pending.call_request,
            args=msg.args,
            kwargs=msg.kwargs,
            payload=msg.payload,
            progress=True if progress else None,
            enc_algo=msg.enc_algo,
            enc_key=msg.enc_key,
            enc_serializer=msg.enc_serializer,
        )
        if not progress:
            self._finish(pending)
        if not pending.caller.send(result):
            if progress:
                self._finish(pending)
            pending.caller.send_error(
                _CALL,
                pending.call_request,
                pending.caller.send_failure,
                f"the callee's result cannot be sent to the caller ({pending.caller.codec.name})",
            )

    def callee_error(self, callee: RouterSession, msg: message.Error) -> None:
        pending = callee.invocations.get(msg.request)
        if pending is None:
            return
        self._finish(pending)
        error = message.Error(
            _CALL,
            pending.call_request,
            msg.error,
            args=msg.args,
            kwargs=msg.kwargs,
            payload=msg.payload,
            enc_algo=msg.enc_algo,
            enc_key=msg.enc_key,
            enc_serializer=msg.enc_serializer,
        )
        if not pending.caller.send(error):
            pending.caller.send_error(
                _CALL,
                pending.call_request,
                msg.error,
                f"the callee's error arguments cannot be sent to the caller ({pending.caller.codec.name})",
            )

    def cancel(self, caller: RouterSession, msg: message.Cancel) -> None:
        pending = caller.calls.get(msg.request)
        if pending is None or pending.killing:
            return  # already answered, or already being killed
        mode = msg.mode or "killnowait"
        if mode not in _CANCEL_MODES:
            from router.session import ProtocolViolation

            raise ProtocolViolation(f"unknown CANCEL mode {mode!r}")
        callee = pending.callee
        if not _supports_canceling(callee):
            mode = "skip"
        if mode == "kill":
            pending.killing = True
            callee.send(message.Interrupt(pending.invocation_request, mode="kill"))
            return  # the callee's ERROR (or RESULT) ends the call
        self._finish(pending)
        caller.send_error(_CALL, pending.call_request, "wamp.error.canceled", f"the call was canceled ({mode})")
        if mode == "killnowait":
            callee.send(message.Interrupt(pending.invocation_request, mode="killnowait"))

    def end_call(self, caller: RouterSession, request: int, uri: str, text: str) -> None:
        """
        End the caller's call ``request`` with ERROR ``uri``: a refused CALL (or
        a refused chunk of a progressive call invocation), or one the router
        failed to handle.  Its pending state and timer go; a callee already
        invoked that supports canceling gets INTERRUPT.
        """
        pending = caller.calls.get(request)
        if pending is not None:
            self._finish(pending)
            if _supports_canceling(pending.callee):
                pending.callee.send(message.Interrupt(pending.invocation_request, mode="killnowait"))
        caller.send_error(_CALL, request, uri, text)

    def end_invocation(self, callee: RouterSession, request: int, uri: str, text: str) -> None:
        """
        The callee's answer (YIELD or ERROR) to INVOCATION ``request`` was
        refused or could not be handled: the caller's call ends with ERROR
        ``uri``.  Nothing more for the callee (it considers the call answered).
        """
        pending = callee.invocations.get(request)
        if pending is None:
            return  # late or unknown: the call already ended
        self._finish(pending)
        pending.caller.send_error(_CALL, pending.call_request, uri, text)

    def _timed_out(self, pending: PendingCall) -> None:
        pending.timer = None
        self._finish(pending)
        pending.caller.send_error(
            _CALL, pending.call_request, "wamp.error.timeout", "the callee did not answer within the call's timeout"
        )
        if _supports_canceling(pending.callee):
            pending.callee.send(
                message.Interrupt(pending.invocation_request, mode="killnowait", reason="wamp.error.timeout")
            )

    @staticmethod
    def _finish(pending: PendingCall) -> None:
        pending.caller.calls.pop(pending.call_request, None)
        pending.callee.invocations.pop(pending.invocation_request, None)
        if pending.timer is not None:
            if pending.timer.active():
                pending.timer.cancel()
            pending.timer = None

    def cancel_all(self, text: str) -> None:
        """
        Shutdown: every call in flight in this realm ends now with ERROR
        ``wamp.error.canceled`` to its caller (and INTERRUPT to a callee that
        can hear it), so that callers get it before the router's GOODBYE.
        """
        realm = self.realm
        for callee in (realm.internal, *realm.sessions.values()):
            for pending in list(callee.invocations.values()):
                self._finish(pending)
                pending.caller.send_error(_CALL, pending.call_request, "wamp.error.canceled", text)
                if _supports_canceling(callee):
                    callee.send(message.Interrupt(pending.invocation_request, mode="killnowait"))

    # -- session cleanup ---------------------------------------------------------

    def remove_session(self, session: RouterSession) -> None:
        owned = list(session.registrations)
        session.registrations.clear()
        for reg_id in owned:
            reg = self._by_id.get(reg_id)
            if reg is not None:
                self._drop(session, reg)
        # calls this session was serving: their callers get an ERROR now
        for pending in list(session.invocations.values()):
            self._finish(pending)
            pending.caller.send_error(
                _CALL,
                pending.call_request,
                "wamp.error.canceled",
                f"the callee of {pending.registration.uri!r} left before answering",
            )
        # calls this session made: forget them, tell callees that can hear it
        for pending in list(session.calls.values()):
            self._finish(pending)
            if _supports_canceling(pending.callee):
                pending.callee.send(message.Interrupt(pending.invocation_request, mode="killnowait"))

    def _drop(self, session: RouterSession, reg: Registration) -> None:
        try:
            reg.callees.remove(session)
        except ValueError:
            return
        reg.disclose_to.discard(session)
        meta = self.realm.meta
        meta.unregistered(session, reg)
        if not reg.callees:
            del self._by_id[reg.id]
            self._index.remove(reg.uri, reg.match)
            meta.registration_deleted(session, reg)

