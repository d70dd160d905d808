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

The wire raises :class:`WireError`, :class:`UriError` and :class:`BadRequest`
while it decodes a payload; the transport hands them to the session's error
paths, which answer them (ABORT ``protocol_violation``, ERROR ``invalid_uri``,
ERROR ``invalid_argument``).
"""

from __future__ import annotations

__all__ = ["ProtocolViolation", "Refusal", "WireError", "UriError", "BadRequest"]


class ProtocolViolation(Exception):
    """A peer broke the protocol; its connection is aborted."""


class Refusal(Exception):
    """Something was refused: ``uri`` is the WAMP error (or ABORT reason) URI, ``message`` says why."""

    def __init__(self, uri: str, message: str) -> None:
        super().__init__(message)
        self.uri = uri
        self.message = message


class WireError(Exception):
    """A payload that is not a well-formed WAMP message (protocol violation)."""

    def __init__(self, text: str, message_type: int | None = None) -> None:
        super().__init__(text)
        self.message_type = message_type  # the payload's WAMP type code, when it had a known one


class UriError(Exception):
    """A well-formed message whose URI is invalid (answered with ERROR invalid_uri)."""

    def __init__(self, text: str, message_type: int, request: object, options: object = None) -> None:
        super().__init__(text)
        self.message_type = message_type
        self.request = request
        self.options = options if type(options) is dict else {}


class BadRequest(Exception):
    """
    A well-formed request whose values the router refuses (answered with
    ERROR ``wamp.error.invalid_argument`` where there is a request to answer).
    ``raw`` is the decoded message (a list).
    """

    def __init__(self, text: str, raw: list) -> None:
        super().__init__(text)
        self.raw = raw
