"""
The dealer's call-state machine: CALL -> INVOCATION -> YIELD/ERROR -> RESULT/ERROR,
progressive results and invocations, cancellation and timeouts (a part of
:class:`router.dealer.Dealer`).  Each session's calls live in its
:class:`_Party`, so leaving costs what the session has in flight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autobahn.wamp import message

from router import passthru
from router.errors import ProtocolViolation
from router.dealer._invocation import _Invocation
from router.states import PAYLOAD_SIZE_EXCEEDED
from router.uri import is_reserved

if TYPE_CHECKING:
    from router.interfaces import IRoutedSession as RouterSession

__all__ = ["Calls", "PendingCall"]

_CALL = message.Call.MESSAGE_TYPE
_CANCEL_MODES = ("skip", "kill", "killnowait")
#: ERROR for a CALL over ``max_calls_in_flight`` (the spec has no URI for it; outside ``wamp.*``).
TOO_MANY_CALLS = "wampd.error.too_many_calls"


class _Party:
    """What one session has going on in the dealer: leaving costs what it owns, not a scan."""

    __slots__ = ("calls", "invocations", "registrations")

    def __init__(self) -> None:
        self.calls: dict[int, PendingCall] = {}  # as caller: CALL request id -> PendingCall
        self.invocations: dict[int, PendingCall] = {}  # as callee: INVOCATION request id -> PendingCall
        self.registrations: set[int] = set()


class PendingCall:
    __slots__ = (
        "caller",
        "caller_party",
        "callee_party",
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

    def __init__(
        self, caller, call_request, callee, invocation_request, registration, receive_progress,
        caller_party=None, callee_party=None,
    ):
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
        self.caller_party: _Party | None = caller_party  # the caller's calls, in the dealer
        self.callee_party: _Party | None = callee_party  # the callee's invocations, in the dealer


def _feature(session: RouterSession, role: str, name: str) -> bool:
    features = session.roles.get(role)
    return bool(getattr(features, name, False))


def _supports_canceling(session: RouterSession) -> bool:
    return _feature(session, "callee", "call_canceling")


class Calls:
    """Routing calls between the realm's callers and callees."""

    def pending(self, session) -> tuple[dict[int, PendingCall], dict[int, PendingCall]]:
        """``session``'s calls in flight as caller and as callee (copies): request id -> PendingCall."""
        party = self._parties.get(session)
        return ({}, {}) if party is None else (dict(party.calls), dict(party.invocations))

    def invocation(self, callee, request: int) -> PendingCall | None:
        """The call behind INVOCATION ``request`` to ``callee``, while it is in flight."""
        party = self._parties.get(callee)
        return None if party is None else party.invocations.get(request)

    def _party(self, session) -> _Party:
        party = self._parties.get(session)
        if party is None:
            party = self._parties[session] = _Party()
        return party

    # -- calling ------------------------------------------------------------------

    def call(self, caller: RouterSession, msg: message.Call, ppt: dict | None = None) -> None:
        request = msg.request
        options = msg._router_internal if type(msg._router_internal) is dict else {}
        progress = options.get("progress") is True
        parties = self._parties
        party = parties.get(caller)
        if party is None:
            party = parties[caller] = _Party()
        pending = party.calls.get(request)
        if pending is not None:
            if pending.streaming:
                self._next_chunk(pending, msg, progress, ppt)
                return
            raise ProtocolViolation(f"CALL request {request} is already in flight")
        limit = self._max_calls
        if limit and len(party.calls) >= limit:
            caller.send_error(
                _CALL, request, TOO_MANY_CALLS,
                f"this session has {limit} calls in flight, the most max_calls_in_flight allows; wait for one to end",
            )
            return
        if progress and not _feature(caller, "caller", "progressive_call_invocations"):
            raise ProtocolViolation(
                "CALL with progress=true from a caller that did not announce progressive_call_invocations"
            )
        procedure = msg.procedure
        if is_reserved(procedure):
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
        if ppt is not None and not passthru.announced(callee, "callee"):
            return caller.send_error(_CALL, request, passthru.FEATURE_NOT_SUPPORTED, "the callee does not take passthru")
        # forwarded to every callee announcing progressive_call_results, with or without
        # call_canceling (autobahn-js announces no call_canceling), as Crossbar and nexus do:
        # the router drops a late YIELD itself, so the callee needs no INTERRUPT for it
        receive_progress = msg.receive_progress is True and _feature(callee, "callee", "progressive_call_results")
        callee_party = parties[callee]  # it registered: it has a party
        pending = PendingCall(
            caller, request, callee, callee.request_ids.next(), reg, receive_progress, party, callee_party
        )
        pending.disclose = (
            options.get("disclose_me") is True or callee in reg.disclose_to or caller.discloses("call", procedure)
        )
        pending.procedure = procedure if policy != "exact" else None
        pending.streaming = progress
        party.calls[request] = pending
        callee_party.invocations[pending.invocation_request] = pending
        timeout = options.get("timeout")
        if type(timeout) is int and timeout > 0:
            pending.timeout = timeout / 1000.0
            pending.timer = self.realm.router.clock.callLater(pending.timeout, self._timed_out, pending)
        self._invoke(pending, msg, progress, ppt)

    def _invoke(self, pending: PendingCall, msg: message.Call, progress: bool, ppt: dict | None = None) -> None:
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
            ppt=ppt,
        )
        if not pending.callee.send(invocation):
            self._finish(pending)
            pending.caller.send_error(
                _CALL,
                pending.call_request,
                pending.callee.send_failure,
                f"the call's arguments cannot be sent to the callee ({pending.callee.codec.name})",
            )

    def _next_chunk(self, pending: PendingCall, msg: message.Call, progress: bool, ppt: dict | None) -> None:
        """A further CALL of a progressive call invocation: same callee, same INVOCATION id."""
        pending.streaming = progress
        self._invoke(pending, msg, progress, ppt)

    def yield_(self, callee: RouterSession, msg: message.Yield, ppt: dict | None = None) -> None:
        party = self._parties.get(callee)
        pending = party.invocations.get(msg.request) if party is not None else None
        if pending is None:
            return  # late or unknown: the call already ended; drop quietly
        progress = msg.progress is True
        if progress and pending.timer is not None:
            # with progressive results the timeout runs from one result to the next
            pending.timer.reset(pending.timeout)
        if progress and not pending.receive_progress:
            return  # the caller did not ask for progress: drop the partial result
        if ppt is not None and self.refuse_passthru(pending, pending.caller, "caller"):
            return self._finish(pending)
        result = (message.Result if ppt is None else passthru.PassthruResult)(
            pending.call_request,
            args=msg.args,
            kwargs=msg.kwargs,
            payload=msg.payload,
            progress=True if progress else None,
            enc_algo=msg.enc_algo,
            enc_key=msg.enc_key,
            enc_serializer=msg.enc_serializer,
        )
        if ppt is not None:
            result.ppt = ppt
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

    def callee_error(self, callee: RouterSession, msg: message.Error, ppt: dict | None = None) -> None:
        party = self._parties.get(callee)
        pending = party.invocations.get(msg.request) if party is not None else None
        if pending is None:
            return
        self._finish(pending)
        if ppt is not None and self.refuse_passthru(pending, pending.caller, "caller"):
            return
        error = (message.Error if ppt is None else passthru.PassthruError)(
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
        if ppt is not None:
            error.ppt = ppt
        caller = pending.caller
        if not caller.send(error):
            # too big for the caller: the README's payload_size_exceeded; else
            # (cannot be encoded) the callee's URI, its arguments replaced
            failure = caller.send_failure
            caller.send_error(
                _CALL,
                pending.call_request,
                failure if failure == PAYLOAD_SIZE_EXCEEDED else msg.error,
                f"the callee's error {msg.error} cannot be sent to the caller ({caller.codec.name})",
            )

    def cancel(self, caller: RouterSession, msg: message.Cancel) -> None:
        party = self._parties.get(caller)
        pending = party.calls.get(msg.request) if party is not None else None
        if pending is None or pending.killing:
            return  # already answered, or already being killed
        mode = msg.mode or "killnowait"
        if mode not in _CANCEL_MODES:
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
        party = self._parties.get(caller)
        pending = party.calls.get(request) if party is not None else None
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
        pending = self.invocation(callee, request)
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
        pending.caller_party.calls.pop(pending.call_request, None)
        pending.callee_party.invocations.pop(pending.invocation_request, None)
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
            party = self._parties.get(callee)
            if party is None:
                continue
            for pending in list(party.invocations.values()):
                self._finish(pending)
                pending.caller.send_error(_CALL, pending.call_request, "wamp.error.canceled", text)
                if _supports_canceling(callee):
                    callee.send(message.Interrupt(pending.invocation_request, mode="killnowait"))

    def _end_calls(self, party: _Party) -> None:
        """A session left: the calls it was serving and the calls it made end now."""
        # calls this session was serving: their callers get an ERROR now
        for pending in list(party.invocations.values()):
            self._finish(pending)
            pending.caller.send_error(
                _CALL,
                pending.call_request,
                "wamp.error.canceled",
                f"the callee of {pending.registration.uri!r} left before answering",
            )
        # calls this session made: forget them, tell callees that can hear it
        for pending in list(party.calls.values()):
            self._finish(pending)
            if _supports_canceling(pending.callee):
                pending.callee.send(message.Interrupt(pending.invocation_request, mode="killnowait"))
