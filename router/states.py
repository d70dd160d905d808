"""The states of a connection's session (:mod:`router.session`) and the close reasons it uses."""

from __future__ import annotations

__all__ = [
    "AWAIT_HELLO",
    "AUTHENTICATING",
    "CHALLENGED",
    "JOINING",
    "JOINED",
    "CLOSING",
    "CLOSED",
    "TRANSPORT_LOST",
    "PROTOCOL_VIOLATION",
    "RATE_LIMITED_TEXT",
    "SLOW_CONSUMER",
    "PAYLOAD_SIZE_EXCEEDED",
]

AWAIT_HELLO = "await_hello"
AUTHENTICATING = "authenticating"  # waiting for the realm's authenticator
CHALLENGED = "challenged"  # CHALLENGE sent, waiting for AUTHENTICATE
JOINING = "joining"
JOINED = "joined"
CLOSING = "closing"
CLOSED = "closed"

TRANSPORT_LOST = "wamp.close.transport_lost"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
RATE_LIMITED_TEXT = "authentication failed: too many failed attempts; try again later"
#: ``session_left`` reason when the router dropped a session that stopped reading
#: (the spec defines none; outside ``wamp.*`` on purpose).
SLOW_CONSUMER = "wampd.close.slow_consumer"
PAYLOAD_SIZE_EXCEEDED = "wamp.error.payload_size_exceeded"
