"""
Payload passthru mode (the spec's ``payload_passthru_mode``): ``ppt_scheme``,
``ppt_serializer``, ``ppt_cipher`` and ``ppt_keyid`` on CALL, YIELD, PUBLISH
and a callee's ERROR, forwarded in INVOCATION, RESULT, EVENT and the caller's
ERROR details.  The payload (one item in ``args``; no ``kwargs``) is routed
as it came: the router never looks inside it, so it may be encrypted end to
end or be another protocol's message (MQTT).  A leaf: Autobahn's messages plus
the details they cannot carry.

A message is in passthru mode when its options hold ``ppt_scheme`` (the spec:
"A Router can recognize that Payload Passthru Mode is in use by checking the
existence ... of this attribute"); the wire checks that every ``ppt_*`` option
is a string and ``ppt_scheme`` a non-empty one (router.options).  Here:

* a sender that did not announce ``payload_passthru_mode`` for its role
  (caller, callee, publisher) sends a passthru message: a protocol violation
  (ABORT), as the spec says;
* a payload that is not exactly one item in ``args`` with no ``kwargs``:
  ERROR ``wamp.error.invalid_argument``;
* a callee that did not announce the feature: the caller gets ERROR
  ``wamp.error.feature_not_supported`` (the spec);
* a passthru YIELD or ERROR for a caller that did not announce it: the
  caller's call ends with ERROR ``wamp.error.feature_not_supported`` (the
  spec asks for an ERROR to the callee, which has no request to match it;
  every CALL must end, so the caller hears it instead);
* subscribers get the EVENT whatever they announced (the spec: the router
  cannot tell; the subscriber handles it).
"""

from __future__ import annotations

from autobahn.wamp import message

from router.errors import ProtocolViolation

__all__ = [
    "PPT_KEYS",
    "FEATURE",
    "FEATURE_NOT_SUPPORTED",
    "announced",
    "details",
    "payload_problem",
    "publish_checked",
    "PassthruResult",
    "PassthruEvent",
    "PassthruError",
    "with_details",
]

PPT_KEYS = ("ppt_scheme", "ppt_serializer", "ppt_cipher", "ppt_keyid")
FEATURE = "payload_passthru_mode"
FEATURE_NOT_SUPPORTED = "wamp.error.feature_not_supported"


def announced(session, role: str) -> bool:
    """Whether ``session`` announced ``payload_passthru_mode`` for ``role`` in HELLO."""
    return getattr(session.roles.get(role), FEATURE, None) is True


def details(options: dict) -> dict:
    """The ``ppt_*`` attributes of a passthru message's options, to forward as they came."""
    return {key: options[key] for key in PPT_KEYS if key in options}


def payload_problem(args, kwargs) -> str | None:
    """Why a passthru payload is refused (the spec: one item in Arguments, ArgumentsKw absent or empty), or None."""
    if type(args) is not list or len(args) != 1:
        return "in payload passthru mode the payload must be exactly one item in args"
    if kwargs:
        return "in payload passthru mode kwargs must be absent or empty"
    return None


def publish_checked(session, msg, options: dict) -> tuple[dict, str | None]:
    """A passthru PUBLISH: (its ppt details, the payload problem or None); ProtocolViolation for an unannounced publisher."""
    if not announced(session, "publisher"):
        raise ProtocolViolation(f"PUBLISH in payload passthru mode from a publisher that did not announce {FEATURE}")
    return details(options), payload_problem(msg.args, msg.kwargs)


class _WithDetails:
    """A message whose marshalled details get the passthru attributes (``ppt``)."""

    __slots__ = ()
    _DETAILS_AT = 0

    def marshal(self):
        raw = super().marshal()
        if self.ppt:
            raw[self._DETAILS_AT].update(self.ppt)
        return raw


class PassthruResult(_WithDetails, message.Result):
    __slots__ = ("ppt",)
    _DETAILS_AT = 2


class PassthruEvent(_WithDetails, message.Event):
    __slots__ = ("ppt",)
    _DETAILS_AT = 3


class PassthruError(_WithDetails, message.Error):
    __slots__ = ("ppt",)
    _DETAILS_AT = 3


def with_details(cls, ppt: dict, *args, **kwargs):
    """A ``cls`` message (one of the Passthru classes) carrying ``ppt`` in its details."""
    msg = cls(*args, **kwargs)
    msg.ppt = ppt
    return msg
