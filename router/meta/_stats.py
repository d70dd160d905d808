"""
``wamp.session.get_stats(session)``: per-session traffic counters, read
through the meta API.

Crossbar publishes such counters as the meta event ``wamp.session.on_stats``,
on a schedule configured per realm; wampd lets a caller ask instead (no timer,
no configuration, nothing published nobody reads), under the procedure name
``wamp.session.get_stats`` (the spec names none):

    {"session": id, "serializer": "json",
     "messages": {"received": n, "sent": n}, "bytes": {"received": n, "sent": n},
     "duration": seconds since it joined}

The counters belong to the connection (its peer, router.wire.outbound):
every WAMP message it carried and its serialized size (framing, pings and
the WebSocket handshake not included), counted as it is read or written, so
HELLO and WELCOME are in them.  They cost a few integer additions per message
and are always on.  A session that is not joined to the caller's realm is
``wamp.error.no_such_session``.  Authorized as every meta procedure.
"""

from __future__ import annotations

from typing import Any, Callable

from router.errors import Refusal

__all__ = ["stats_procedures", "session_stats"]


def session_stats(session: Any, now: float) -> dict:
    """The counters of one joined session (its peer's; a peer without them counts nothing)."""
    peer = session.peer
    info = session.info
    return {
        "session": session.session_id,
        "serializer": session.codec.name if session.codec is not None else None,
        "messages": {"received": getattr(peer, "messages_in", 0), "sent": getattr(peer, "messages_out", 0)},
        "bytes": {"received": getattr(peer, "bytes_in", 0), "sent": getattr(peer, "bytes_out", 0)},
        "duration": max(0.0, now - info.joined_at) if info is not None and info.joined_at else 0.0,
    }


def stats_procedures(realm: Any, error: Callable[[str, str], Refusal]) -> dict[str, Callable]:
    """The procedure for the meta API's table; ``error(uri, text)`` builds its ERROR."""

    def get_stats(caller, args: list, kwargs: dict):
        session = realm.sessions.get(args[0])
        if session is None:
            raise error("wamp.error.no_such_session", f"no session {args[0]} on realm {realm.name!r}")
        return session_stats(session, realm.router.clock.seconds())

    return {"wamp.session.get_stats": get_stats}
