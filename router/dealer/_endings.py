"""
How calls end early (a part of :class:`router.dealer.Dealer`): CANCEL in its
three modes, timeouts, calls the router ends itself (a refused chunk, a
refused answer, a failure), shutdown, and the calls of a session that leaves.
The hot path (CALL -> INVOCATION -> YIELD -> RESULT) is in :mod:`router.dealer._calls`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autobahn.wamp import message

from router.dealer._calls import _CALL, _CANCEL_MODES, PendingCall, _Party, _supports_canceling
from router.errors import ProtocolViolation

if TYPE_CHECKING:
    from router.interfaces import IRoutedSession as RouterSession

__all__ = ["Endings"]


class Endings:
    """Mixed into the Dealer, before :class:`~router.dealer._calls.Calls` (``_parties``, ``_finish``)."""

    def cancel(self, caller: RouterSession, msg: message.Cancel) -> None:
        party = self._parties.get(caller)
        pending = party.calls.get(msg.request) if party is not None else None
        if pending is None or pending.killing:
            self._cancel_elsewhere(caller, msg)
            return  # already answered, already being killed, or (in a cluster) on another node
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
