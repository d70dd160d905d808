"""
The default listener: one log line per lifecycle event.

On unless switched off (``--no-default-listener`` or ``default_listener =
false``).  Lines look like::

    server_launched: wampd listening on ws://127.0.0.1:8080/ws (websocket), realms: realm1
    client_connected: connection 3 opened from 127.0.0.1 (websocket, json)
    session_joined: session 4419185720950313 joined realm1 as anonymous (role anonymous) from 127.0.0.1
    session_left: session 4419185720950313 left realm1 (wamp.close.close_realm) after 1.2s (anonymous from 127.0.0.1)
    client_rejected: rejected 10.0.0.1: origin not allowed (reason: origin)
    client_disconnected: connection 3 from 127.0.0.1 closed cleanly after 1.3s (last session 4419185720950313 in realm1 as anonymous)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

if TYPE_CHECKING:
    from router.events import (
        ClientConnected,
        ClientDisconnected,
        ClientError,
        ClientRejected,
        ConnectionInfo,
        ServerLaunched,
        ServerReloaded,
        ServerStopping,
        SessionInfo,
        SessionJoined,
        SessionLeft,
    )

__all__ = ["LogListener"]


def _who(connection: ConnectionInfo) -> str:
    return connection.host or connection.peer


class LogListener:
    """
    Logs every lifecycle event on one line (namespace ``wampd.events``).

    Each line starts with the event's name and names, where the event has
    them, the session, realm, authid and client address; the same values go
    with the entry as the fields ``event``, ``session``, ``realm``,
    ``authid``, ``address`` and ``connection`` (the JSON log format's keys,
    see L{router.logs}).
    """

    name = "listeners.log"
    priority = -1000  # after the user's listeners, so it reports what they decided

    def __init__(self, logger: Logger | None = None) -> None:
        self.log = logger or Logger(namespace="wampd.events")

    def _emit(
        self,
        name: str,
        text: str,
        *,
        level: str = "info",
        connection: ConnectionInfo | None = None,
        session: SessionInfo | None = None,
        **values: Any,
    ) -> None:
        """One entry: C{text} after the event name, with the structured fields filled in."""
        if session is not None:
            values.update(session=session.session_id, realm=session.realm, authid=session.authid)
            connection = connection or session.connection
        if connection is not None:
            values.update(address=_who(connection), connection=connection.id)
        getattr(self.log, level)(f"{name}: {text}", event=name, **values)

    def on_server_launched(self, event: ServerLaunched) -> None:
        where = ", ".join(
            f"{endpoint.url or endpoint.description} ({endpoint.transport})" for endpoint in event.endpoints
        )
        self._emit(
            "server_launched", "wampd listening on {where}, realms: {realms}", where=where, realms=", ".join(event.realms)
        )

    def on_client_connected(self, event: ClientConnected) -> None:
        conn = event.connection
        self._emit(
            "client_connected",
            "connection {connection} opened from {address} ({transport}, {serializer})",
            connection=conn,
            transport=conn.transport,
            serializer=conn.serializer,
        )

    def on_client_rejected(self, event: ClientRejected) -> None:
        where = ""
        if event.realm is not None:
            where += " at {realm}"
        if event.authid is not None:
            where += " as {authid}"
        self._emit(
            "client_rejected",
            "rejected {address}: {message} (reason: {reason})" + where,
            connection=event.connection,
            message=event.message,
            reason=event.reason,
            realm=event.realm,
            authid=event.authid,
        )

    def on_session_joined(self, event: SessionJoined) -> None:
        self._emit(
            "session_joined",
            "session {session} joined {realm} as {authid} (role {authrole}) from {address}",
            session=event.session,
            authrole=event.session.authrole,
        )

    def on_session_left(self, event: SessionLeft) -> None:
        self._emit(
            "session_left",
            "session {session} left {realm} ({reason}) after {duration:.1f}s ({authid} from {address})",
            session=event.session,
            reason=event.reason,
            duration=event.duration,
        )

    def on_client_disconnected(self, event: ClientDisconnected) -> None:
        last = " (last session {session} in {realm} as {authid})" if event.session is not None else ""
        self._emit(
            "client_disconnected",
            "connection {connection} from {address} closed {how} after {duration:.1f}s" + last,
            connection=event.connection,
            session=event.session,
            how="cleanly" if event.was_clean else f"uncleanly ({event.reason or 'no reason'})",
            duration=event.duration,
        )

    def on_client_error(self, event: ClientError) -> None:
        self._emit(
            "client_error",
            "error on connection {connection} from {address}{kind}: {error}",
            level="warn",
            connection=event.connection,
            session=event.session,
            kind=f" ({event.message_type})" if event.message_type else "",
            error=event.exception,
        )

    def on_server_stopping(self, event: ServerStopping) -> None:
        self._emit("server_stopping", "wampd stopping ({reason})", reason=event.reason)

    def on_server_reloaded(self, event: ServerReloaded) -> None:
        self._emit(
            "server_reloaded",
            "wampd reloaded its configuration; changed: {changed}",
            changed=", ".join(event.changed) or "nothing",
        )
