"""
Payload passthru mode in the dealer (the rules: :mod:`router.passthru`).

Only CALL and YIELD messages the wire parsed in full reach these handlers
(the realm's table sends Autobahn's ``Call``/``Yield`` classes here; a
passthru message never takes the wire's fast path, whose ``FastCall`` and
``FastYield`` go straight to :meth:`Calls.call` and :meth:`Calls.yield_`), so
plain RPC pays nothing for the feature.
"""

from __future__ import annotations

from autobahn.wamp import message

from router import passthru
from router.errors import ProtocolViolation

__all__ = ["Passthru"]

_CALL = message.Call.MESSAGE_TYPE


def _options(msg) -> dict:
    options = msg._router_internal
    return options if type(options) is dict else {}


def _sender_checked(session, role: str, kind: str, options: dict, msg) -> tuple[dict | None, str | None]:
    """(ppt details or None, the payload problem or None); raises ProtocolViolation for an unannounced sender."""
    if "ppt_scheme" not in options:
        return None, None
    if not passthru.announced(session, role):
        raise ProtocolViolation(f"{kind} in payload passthru mode from a {role} that did not announce {passthru.FEATURE}")
    return passthru.details(options), passthru.payload_problem(msg.args, msg.kwargs)


class Passthru:
    """The dealer's handlers for fully parsed CALL and YIELD (a part of :class:`router.dealer.Dealer`)."""

    def call_parsed(self, caller, msg: message.Call) -> None:
        ppt, problem = _sender_checked(caller, "caller", "CALL", _options(msg), msg)
        if problem is not None:
            self.end_call(caller, msg.request, "wamp.error.invalid_argument", problem)
            return
        self.call(caller, msg, ppt)

    def yield_parsed(self, callee, msg: message.Yield) -> None:
        ppt, problem = _sender_checked(callee, "callee", "YIELD", _options(msg), msg)
        if problem is not None:
            self.end_invocation(callee, msg.request, "wamp.error.invalid_argument", f"the callee's answer: {problem}")
            return
        self.yield_(callee, msg, ppt)

    def callee_error_parsed(self, callee, msg: message.Error) -> None:
        """A callee's ERROR (every one is parsed in full)."""
        ppt, problem = _sender_checked(callee, "callee", "ERROR", _options(msg), msg)
        if problem is not None:
            self.end_invocation(callee, msg.request, "wamp.error.invalid_argument", f"the callee's error: {problem}")
            return
        self.callee_error(callee, msg, ppt)

    @staticmethod
    def refuse_passthru(pending, session, role: str) -> bool:
        """True (and the caller's call ended) when ``session`` cannot take a passthru message as ``role``."""
        if passthru.announced(session, role):
            return False
        pending.caller.send_error(
            _CALL, pending.call_request, passthru.FEATURE_NOT_SUPPORTED,
            f"the {role} does not support payload passthru mode ({passthru.FEATURE})",
        )
        return True
