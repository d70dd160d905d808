"""
The router's own exceptions, leaves everybody may import.

:class:`Refusal` is the one base of every "no, with a WAMP URI and a
message" the router raises between its parts: a listener's
:class:`router.events.Reject`, a topic hook's :class:`router.app.Refuse`,
a meta procedure's :class:`router.meta.MetaError`.  Each keeps its own
constructor (their argument orders are public); the base only promises
``uri`` and ``message``.

Kept apart on purpose: :class:`router.auth.Deny` is a value an
authenticator *returns*, not an exception; the wire's errors describe bytes
that could not be read, not a refusal.
"""

from __future__ import annotations

__all__ = ["ProtocolViolation", "Refusal"]


class ProtocolViolation(Exception):
    """A peer broke the protocol; its connection is aborted."""


class Refusal(Exception):
    """Something was refused: ``uri`` is the WAMP error (or ABORT reason) URI, ``message`` says why."""

    def __init__(self, uri: str, message: str) -> None:
        super().__init__(message)
        self.uri = uri
        self.message = message
