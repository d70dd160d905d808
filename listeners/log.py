"""
The default listener: one log line per lifecycle event.

On unless switched off (``--no-default-listener`` or ``default_listener =
false``).  Lines look like::

    wampd listening on ws://127.0.0.1:8080/ws (websocket), realms: realm1
    connection 3 opened from 127.0.0.1 (websocket, json)
    session 4419185720950313 joined realm1 as anonymous (role anonymous)
    session 4419185720950313 left realm1 (wamp.close.close_realm) after 1.2s
    rejected 10.0.0.1: origin not allowed
    connection 3 closed cleanly after 1.3s
"""

from __future__ import annotations

from twisted.logger import Logger

__all__ = ["LogListener"]


def _who(connection) -> str:
    return connection.host or connection.peer


class LogListener:
    """Logs every lifecycle event on one line (namespace ``wampd.events``)."""

    name = "listeners.log"
    priority = -1000  # after the user's listeners, so it reports what they decided

    def __init__(self, logger: Logger | None = None) -> None:
        self.log = logger or Logger(namespace="wampd.events")

    def on_server_launched(self, event) -> None:
        where = ", ".join(
            f"{endpoint.url or endpoint.description} ({endpoint.transport})" for endpoint in event.endpoints
        )
        self.log.info(
            "wampd listening on {where}, realms: {realms}",
            where=where,
            realms=", ".join(event.realms),
        )

    def on_client_connected(self, event) -> None:
        conn = event.connection
        self.log.info(
            "connection {id} opened from {who} ({transport}, {serializer})",
            id=conn.id,
            who=_who(conn),
            transport=conn.transport,
            serializer=conn.serializer,
        )

    def on_client_rejected(self, event) -> None:
        self.log.info(
            "rejected {who}: {message} (reason: {reason})",
            who=_who(event.connection),
            message=event.message,
            reason=event.reason,
        )

    def on_session_joined(self, event) -> None:
        s = event.session
        self.log.info(
            "session {id} joined {realm} as {authid} (role {authrole})",
            id=s.session_id,
            realm=s.realm,
            authid=s.authid,
            authrole=s.authrole,
        )

    def on_session_left(self, event) -> None:
        s = event.session
        self.log.info(
            "session {id} left {realm} ({reason}) after {duration:.1f}s",
            id=s.session_id,
            realm=s.realm,
            reason=event.reason,
            duration=event.duration,
        )

    def on_client_disconnected(self, event) -> None:
        self.log.info(
            "connection {id} closed {how} after {duration:.1f}s",
            id=event.connection.id,
            how="cleanly" if event.was_clean else f"uncleanly ({event.reason or 'no reason'})",
            duration=event.duration,
        )

    def on_client_error(self, event) -> None:
        self.log.warn(
            "error on connection {id}{kind}: {error}",
            id=event.connection.id,
            kind=f" ({event.message_type})" if event.message_type else "",
            error=event.exception,
        )

    def on_server_stopping(self, event) -> None:
        self.log.info("wampd stopping ({reason})", reason=event.reason)

    def on_server_reloaded(self, event) -> None:
        self.log.info(
            "wampd reloaded its configuration; changed: {changed}",
            changed=", ".join(event.changed) or "nothing",
        )
