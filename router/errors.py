"""
Exceptions shared across layers (a leaf: imports nothing of the router).

The wire raises :class:`WireError`, :class:`UriError` and :class:`BadRequest`
while it decodes a payload; the transport hands them to the session's error
paths, which answer them (ABORT ``protocol_violation``, ERROR ``invalid_uri``,
ERROR ``invalid_argument``).
"""

from __future__ import annotations

__all__ = ["WireError", "UriError", "BadRequest"]


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
