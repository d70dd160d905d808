"""
Remote procedure calls for one realm.

Every CALL ends in RESULT or ERROR, whatever happens to the callee: a callee
that leaves, an INVOCATION that cannot be encoded for the callee, a result
that cannot be encoded for the caller.  A caller that leaves mid-call gets
its pending calls dropped at once (the callee is sent INTERRUPT when it
announced ``call_canceling``) and late YIELDs are dropped quietly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autobahn.wamp import message

if TYPE_CHECKING:
    from router.realm import Realm
    from router.session import RouterSession

__all__ = ["Dealer", "Registration", "PendingCall"]

_CALL = message.Call.MESSAGE_TYPE
_REGISTER = message.Register.MESSAGE_TYPE
_UNREGISTER = message.Unregister.MESSAGE_TYPE
_INVOCATION = message.Invocation.MESSAGE_TYPE


class Registration:
    __slots__ = ("id", "procedure", "match", "invoke", "callees", "created")

    def __init__(self, reg_id: int, procedure: str, match: str, invoke: str, created: float) -> None:
        self.id = reg_id
        self.procedure = procedure
        self.match = match
        self.invoke = invoke
        self.created = created
        self.callees: list[RouterSession] = []


class PendingCall:
    __slots__ = ("caller", "call_request", "callee", "invocation_request", "registration", "receive_progress")

    def __init__(self, caller, call_request, callee, invocation_request, registration, receive_progress):
        self.caller = caller
        self.call_request = call_request
        self.callee = callee
        self.invocation_request = invocation_request
        self.registration = registration
        self.receive_progress = receive_progress


def _supports_canceling(session: RouterSession) -> bool:
    callee = session.roles.get("callee")
    return bool(getattr(callee, "call_canceling", False))


class Dealer:
    def __init__(self, realm: Realm) -> None:
        self.realm = realm
        self._by_procedure: dict[str, Registration] = {}
        self._by_id: dict[int, Registration] = {}

    # -- queries --------------------------------------------------------------

    def registration(self, reg_id: int) -> Registration | None:
        return self._by_id.get(reg_id)

    def lookup(self, procedure: str) -> Registration | None:
        return self._by_procedure.get(procedure)

    def registrations(self) -> tuple[Registration, ...]:
        return tuple(self._by_id.values())

    # -- registering ------------------------------------------------------------

    def register(self, session: RouterSession, msg: message.Register) -> None:
        if msg.match != message.Register.MATCH_EXACT:
            session.send_error(
                _REGISTER,
                msg.request,
                "wamp.error.invalid_argument",
                f"match policy {msg.match!r} is not supported; use 'exact'",
            )
            return
        if msg.invoke != message.Register.INVOKE_SINGLE:
            session.send_error(
                _REGISTER,
                msg.request,
                "wamp.error.invalid_argument",
                f"invocation policy {msg.invoke!r} is not supported; use 'single'",
            )
            return
        procedure = msg.procedure
        if procedure in self._by_procedure:
            session.send_error(
                _REGISTER,
                msg.request,
                "wamp.error.procedure_already_exists",
                f"procedure {procedure!r} is already registered",
            )
            return
        router = self.realm.router
        reg = Registration(router.scope_ids.next(), procedure, msg.match, msg.invoke, router.clock.seconds())
        reg.callees.append(session)
        self._by_procedure[procedure] = reg
        self._by_id[reg.id] = reg
        session.registrations.add(reg.id)
        session.send(message.Registered(msg.request, reg.id))

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
        self._drop(session, reg)
        session.registrations.discard(reg.id)
        session.send(message.Unregistered(msg.request))

    # -- calling ------------------------------------------------------------------

    def call(self, caller: RouterSession, msg: message.Call) -> None:
        request = msg.request
        if request in caller.calls:
            from router.session import ProtocolViolation

            raise ProtocolViolation(f"CALL request {request} is already in flight")
        reg = self._by_procedure.get(msg.procedure)
        if reg is None:
            caller.send_error(
                _CALL, request, "wamp.error.no_such_procedure", f"no callee registered procedure {msg.procedure!r}"
            )
            return
        callee = reg.callees[0]
        options = msg._router_internal
        disclose = type(options) is dict and options.get("disclose_me") is True
        info = caller.info
        receive_progress = msg.receive_progress is True
        inv_request = callee.request_ids.next()
        invocation = message.Invocation(
            inv_request,
            reg.id,
            args=msg.args,
            kwargs=msg.kwargs,
            payload=msg.payload,
            receive_progress=True if receive_progress else None,
            caller=info.session_id if disclose else None,
            caller_authid=info.authid if disclose else None,
            caller_authrole=info.authrole if disclose else None,
            enc_algo=msg.enc_algo,
            enc_key=msg.enc_key,
            enc_serializer=msg.enc_serializer,
        )
        pending = PendingCall(caller, request, callee, inv_request, reg, receive_progress)
        caller.calls[request] = pending
        callee.invocations[inv_request] = pending
        if not callee.send(invocation):
            self._finish(pending)
            caller.send_error(
                _CALL,
                request,
                "wamp.error.invalid_argument",
                f"the call's arguments cannot be encoded for the callee's serializer ({callee.codec.name})",
            )

    def yield_(self, callee: RouterSession, msg: message.Yield) -> None:
        pending = callee.invocations.get(msg.request)
        if pending is None:
            return  # late or unknown: the call already ended; drop quietly
        progress = msg.progress is True
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
                "wamp.error.invalid_argument",
                f"the callee's result cannot be encoded for the caller's serializer ({pending.caller.codec.name})",
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
                f"the callee's error arguments cannot be encoded for the caller's serializer ({pending.caller.codec.name})",
            )

    def cancel(self, caller: RouterSession, msg: message.Cancel) -> None:
        pending = caller.calls.get(msg.request)
        if pending is None:
            return  # already answered: nothing to cancel
        mode = msg.mode or message.Cancel.KILLNOWAIT
        self._finish(pending)
        if mode != message.Cancel.SKIP and _supports_canceling(pending.callee):
            pending.callee.send(message.Interrupt(pending.invocation_request, mode=mode))
        caller.send_error(_CALL, pending.call_request, "wamp.error.canceled", "the call was canceled by the caller")

    @staticmethod
    def _finish(pending: PendingCall) -> None:
        pending.caller.calls.pop(pending.call_request, None)
        pending.callee.invocations.pop(pending.invocation_request, None)

    # -- session cleanup ---------------------------------------------------------

    def remove_session(self, session: RouterSession) -> None:
        by_id = self._by_id
        for reg_id in session.registrations:
            reg = by_id.get(reg_id)
            if reg is not None:
                self._drop(session, reg)
        session.registrations.clear()
        # calls this session was serving: their callers get an ERROR now
        for pending in list(session.invocations.values()):
            self._finish(pending)
            pending.caller.send_error(
                _CALL,
                pending.call_request,
                "wamp.error.canceled",
                f"the callee of {pending.registration.procedure!r} left before answering",
            )
        # calls this session made: forget them, tell callees that can hear it
        for pending in list(session.calls.values()):
            self._finish(pending)
            if _supports_canceling(pending.callee):
                pending.callee.send(message.Interrupt(pending.invocation_request, mode=message.Cancel.KILLNOWAIT))

    def _drop(self, session: RouterSession, reg: Registration) -> None:
        try:
            reg.callees.remove(session)
        except ValueError:
            return
        if not reg.callees:
            del self._by_id[reg.id]
            del self._by_procedure[reg.procedure]
