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
from router.dealer._full import full_invocation
from router.errors import ProtocolViolation
from router.states import PAYLOAD_SIZE_EXCEEDED
from router.uri import is_reserved

if TYPE_CHECKING:
    from router.interfaces import IRoutedSession as RouterSession

__all__ = ["Calls", "PendingCall"]

_CALL = message.Call.MESSAGE_TYPE
_CANCEL_MODES = ("skip", "kill", "killnowait")
#: ERROR for a CALL over ``max_calls_in_flight`` (the spec has no URI for it; outside ``wamp.*``).
TOO_MANY_CALLS = "wampd.error.too_many_calls"


class _Plain:
    """
    The dealer's outbound INVOCATION and RESULT on the hot path (no payload
    transparency, no passthru): one constructor call, marshalled without
    Autobahn's per-field properties, the same bytes as Autobahn's
    ``marshal()``.  Autobahn's classes for ``isinstance``; a one-entry
    serialization cache, as each goes to one peer.
    """

    __slots__ = ()

    def serialize(self, serializer) -> bytes:
        if self._ser is serializer:
            return self._bytes
        data = serializer.serialize(self.marshal())
        self._ser, self._bytes = serializer, data
        return data

    def __str__(self) -> str:
        return f"{type(self).__name__}({self.marshal()!r})"


def _detail(name: str) -> property:
    return property(lambda self: self.details.get(name))


class PlainInvocation(_Plain, message.Invocation):
    """
    INVOCATION ``[68, request, registration, details, args?, kwargs?]`` where
    ``details`` is the dict the dealer built (``receive_progress``, ``caller*``,
    ``procedure``, ``progress``, in Autobahn's order).
    """

    __slots__ = ("request", "registration", "args", "kwargs", "details", "_ser", "_bytes")
    payload = enc_algo = enc_key = enc_serializer = None
    timeout = transaction_hash = forward_for = None

    def __init__(self, request: int, registration: int, args, kwargs, details: dict) -> None:
        self.request = request
        self.registration = registration
        self.args = args
        self.kwargs = kwargs
        self.details = details
        self._ser = None

    caller, caller_authid, caller_authrole = _detail("caller"), _detail("caller_authid"), _detail("caller_authrole")
    procedure, receive_progress, progress = _detail("procedure"), _detail("receive_progress"), _detail("progress")

    def marshal(self) -> list:
        kwargs = self.kwargs
        if kwargs:
            args = self.args
            return [68, self.request, self.registration, self.details, args if args is not None else [], kwargs]
        if self.args:
            return [68, self.request, self.registration, self.details, self.args]
        return [68, self.request, self.registration, self.details]


class PlainResult(_Plain, message.Result):
    """RESULT ``[50, request, details, args?, kwargs?]``; ``details`` is ``{"progress": True}`` or empty."""

    __slots__ = ("request", "args", "kwargs", "progress", "_ser", "_bytes")
    payload = enc_algo = enc_key = enc_serializer = None
    callee = callee_authid = callee_authrole = forward_for = None

    def __init__(self, request: int, args, kwargs, progress) -> None:
        self.request = request
        self.args = args
        self.kwargs = kwargs
        self.progress = progress
        self._ser = None

    def marshal(self) -> list:
        details = {"progress": True} if self.progress else {}
        kwargs = self.kwargs
        if kwargs:
            args = self.args
            return [50, self.request, details, args if args is not None else [], kwargs]
        if self.args:
            return [50, self.request, details, self.args]
        return [50, self.request, details]


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
        "timing",
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
        self.timing = None  # (timer, started) while the router's metrics time calls (router.ops.meter)


def _feature(session: RouterSession, role: str, name: str) -> bool:
    features = session.roles.get(role)
    return bool(getattr(features, name, False))


def _supports_canceling(session: RouterSession) -> bool:
    return _feature(session, "callee", "call_canceling")


class Calls:
    """Routing calls between the realm's callers and callees."""
    latency = None  # the realm's call timer when metrics are on (router.ops.meter): start(), stop(started)

    def _party(self, session) -> _Party:
        party = self._parties.get(session)
        if party is None:
            party = self._parties[session] = _Party()
        return party

    # -- calling ------------------------------------------------------------------

    def call(self, caller: RouterSession, msg: message.Call, ppt: dict | None = None) -> None:
        # The hot path (an exact procedure, one callee) runs no code outside this
        # module and the session's: the index's exact dict and the ID counter are
        # read directly, options from the decoded dict (bench/module_path.py).
        request = msg.request
        options = msg._router_internal
        if type(options) is dict:
            wants_progress = options.get("receive_progress") is True
        else:
            options = {}
            wants_progress = msg.receive_progress is True
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
        index = self._index
        reg = index.exact.get(procedure)
        if reg is not None:
            policy = "exact"
        else:
            found = index.best(procedure) if index.patterned else None
            if found is None:
                self._no_callee(caller, msg, options)
                return
            policy, reg = found
        callees = reg.callees
        if reg.remote is None:
            callee = callees[0] if len(callees) == 1 else reg.pick()
        else:  # a shared registration with callees on other cluster nodes too
            callee = reg.remote.pick(reg, caller, progress or ppt is not None)
            if type(callee) is str:  # that node's callee: forward the call there
                self._no_callee(caller, msg, options, callee)
                return
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
        receive_progress = wants_progress and _feature(callee, "callee", "progressive_call_results")
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
        if self.latency is not None:
            pending.timing = self.latency.start()
        self._invoke(pending, msg, progress, ppt)

    def _invoke(self, pending: PendingCall, msg: message.Call, progress: bool, ppt: dict | None = None) -> None:
        if msg.payload is None and ppt is None:  # the plain case: no payload transparency, no passthru
            details = {"receive_progress": True} if pending.receive_progress else {}
            if pending.disclose:
                info = pending.caller.info
                details["caller"] = info.session_id
                if info.authid is not None:
                    details["caller_authid"] = info.authid
                if info.authrole is not None:
                    details["caller_authrole"] = info.authrole
            if pending.procedure is not None:
                details["procedure"] = pending.procedure
            if progress:
                details["progress"] = True
            invocation = PlainInvocation(
                pending.invocation_request, pending.registration.id, msg.args, msg.kwargs, details
            )
        else:
            invocation = full_invocation(pending, msg, progress, ppt)
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
        details = msg._router_internal
        progress = (details.get("progress") if type(details) is dict else msg.progress) is True
        if progress and pending.timer is not None:
            # with progressive results the timeout runs from one result to the next
            pending.timer.reset(pending.timeout)
        if progress and not pending.receive_progress:
            return  # the caller did not ask for progress: drop the partial result
        if ppt is not None and self.refuse_passthru(pending, pending.caller, "caller"):
            return self._finish(pending)
        if msg.payload is None and ppt is None:
            result = PlainResult(pending.call_request, msg.args, msg.kwargs, progress)
        else:
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

    @staticmethod
    def _finish(pending: PendingCall) -> None:
        timing = pending.timing
        if timing is not None:
            pending.timing = timing[0].stop(timing[1])  # None: observed once
        pending.caller_party.calls.pop(pending.call_request, None)
        pending.callee_party.invocations.pop(pending.invocation_request, None)
        if pending.timer is not None:
            if pending.timer.active():
                pending.timer.cancel()
            pending.timer = None
