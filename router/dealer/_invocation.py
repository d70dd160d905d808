"""The INVOCATION the dealer sends: Autobahn's, plus the details Autobahn's class cannot carry."""

from __future__ import annotations

from autobahn.wamp import message

from router.messages import INVOCATION_DETAILS_AT

__all__ = ["_Invocation"]


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
