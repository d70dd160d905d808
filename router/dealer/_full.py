"""
The dealer's INVOCATION for the calls off the hot path: payload transparency
(``enc_algo``/``payload``), passthru (``ppt_*``) and progressive call
invocations on those, built on Autobahn's own class.
"""

from __future__ import annotations

from autobahn.wamp import message

from router.messages import INVOCATION_DETAILS_AT

__all__ = ["full_invocation"]


class _Invocation(message.Invocation):
    """Autobahn's INVOCATION plus ``details.progress`` (progressive call invocations) and ``ppt_*`` (passthru)."""

    __slots__ = ("progress", "ppt")

    def __init__(self, *args, progress: bool = False, ppt: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress
        self.ppt = ppt

    def marshal(self):
        raw = super().marshal()
        if self.progress:
            raw[INVOCATION_DETAILS_AT]["progress"] = True
        if self.ppt:
            raw[INVOCATION_DETAILS_AT].update(self.ppt)
        return raw


def full_invocation(pending, msg: message.Call, progress: bool, ppt: dict | None) -> message.Invocation:
    """The INVOCATION for a call with payload transparency or passthru (the dealer builds plain ones itself)."""
    info = pending.caller.info if pending.disclose else None
    return _Invocation(
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
