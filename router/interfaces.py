"""
The seams of the router, as zope.interface interfaces (implementations live
elsewhere; ``tests/test_interfaces.py`` checks each with ``verifyObject``).

* :class:`IListener`: a lifecycle listener (every ``on_<event>`` is optional).
* :class:`IAuthenticator`, :class:`IAuthorizer`: a realm's authentication and
  authorization, over plain values.
* :class:`ITopicHandler`: an App's server-side topic handler.
* :class:`IRoutedSession`: what the broker, the dealer and the meta API see of
  a joined session (a client's, or the router's own).
* :class:`IPeer`: what a session speaks to (one connection's far end, as
  message objects).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zope.interface import Attribute, Interface

if TYPE_CHECKING:  # annotations only: the seams import nothing at run time
    from twisted.internet.defer import Deferred

    from router.events import (
        ClientConnected,
        ClientDisconnected,
        ClientError,
        ClientRejected,
        ServerLaunched,
        ServerReloaded,
        ServerStopping,
        SessionInfo,
        SessionJoined,
        SessionJoining,
        SessionLeft,
    )

__all__ = ["IListener", "LISTENER_METHODS", "IAuthenticator", "IAuthorizer", "ITopicHandler", "IRoutedSession", "IPeer"]


class IListener(Interface):
    """
    Lifecycle listener.  Every method is optional: the dispatcher looks up
    exactly the names below (:data:`LISTENER_METHODS`) and calls those a
    listener has.  Each may return None, a Deferred or a coroutine.
    """

    def on_server_launched(event: ServerLaunched) -> object:
        """Every endpoint listens."""

    def on_client_connected(event: ClientConnected) -> object:
        """A transport opened, before HELLO; raise Reject to refuse it."""

    def on_client_rejected(event: ClientRejected) -> object:
        """A connection or a join was refused."""

    def on_session_joining(event: SessionJoining) -> object:
        """Before WELCOME; raise Reject to refuse the join."""

    def on_session_joined(event: SessionJoined) -> object:
        """WELCOME was sent."""

    def on_session_left(event: SessionLeft) -> object:
        """GOODBYE, or the transport was lost while joined."""

    def on_client_disconnected(event: ClientDisconnected) -> object:
        """The transport closed."""

    def on_client_error(event: ClientError) -> object:
        """A protocol violation or failure on one connection."""

    def on_server_stopping(event: ServerStopping) -> object:
        """Shutdown begins."""

    def on_server_reloaded(event: ServerReloaded) -> object:
        """A new configuration was applied (SIGHUP)."""


#: The optional handler names of :class:`IListener` (``on_`` + an event's ``name``).
LISTENER_METHODS: frozenset[str] = frozenset(name for name in IListener.names() if name.startswith("on_"))


class IAuthenticator(Interface):
    """A realm's authentication: HELLO (and AUTHENTICATE) in, Accept/Challenge/Deny (or a Deferred of one) out."""

    def start(hello: Any) -> Any:
        """Answer a HELLO (a HelloInfo): Accept, Challenge, Deny, or a Deferred firing with one (never failing)."""

    def verify(challenge: Any, signature: str, extra: dict | None = None) -> Any:
        """Answer an AUTHENTICATE to ``challenge`` (one start returned): Accept, Deny, or a Deferred of one."""


class IAuthorizer(Interface):
    """A realm's authorization of joined sessions' actions."""

    open_anonymous = Attribute("True when anonymous sessions of this realm need no checks at all")

    def authorize(session: SessionInfo, action: str, uri: str, match: str | None = None) -> bool | Deferred:
        """
        May ``session`` (a SessionInfo) ``action`` on ``uri`` (a ``match``
        pattern: every URI it can match): True, False, or a Deferred of one
        (never failing).  Keyword ``fresh=True`` asks past any cached answer.
        """

    def disclose(session: SessionInfo, action: str, uri: str | None = None) -> bool:
        """Whether the realm's roles disclose ``session``'s identity for ``action`` on ``uri``."""

    def forget(session_id: int) -> None:
        """The session left: drop what was cached for it."""


class ITopicHandler(Interface):
    """An App's topic handler (see :mod:`router.app`); every hook may return a Deferred or coroutine."""

    interval_ms = Attribute("milliseconds between on_timer calls per concrete topic, or None")
    api = Attribute("the realm's RealmApi, set when the handler is installed")

    def on_subscribe(session: Any, topic: str, params: dict) -> object:
        """A client subscribes (exact) to a matching topic; raise Refuse to refuse."""

    def on_unsubscribe(session: Any, topic: str, params: dict) -> object:
        """A client's exact subscription to a matching topic ended."""

    def on_publish(session: Any, topic: str, params: dict, args: list | None, kwargs: dict | None) -> object:
        """A client publishes; None lets it through, ``(args, kwargs)`` replaces it, Refuse refuses it."""

    def on_timer(topic: str, params: dict) -> object:
        """The topic's timer ticked."""


class IRoutedSession(Interface):
    """A joined session as routing sees it: identity, features, codec and an outbox of messages."""

    session_id = Attribute("the session's global-scope ID, or None once it left")
    info = Attribute("its router.events.SessionInfo, or None once it left")
    roles = Attribute("the roles and features it announced: role name -> Autobahn feature object")
    codec = Attribute("what encodes its messages: ``name``, ``binary`` and ``check(msg)`` (None or a problem)")
    state = Attribute('"joined" while it may route')
    send_failure = Attribute("the error URI explaining why the last send() returned False")
    request_ids = Attribute("its session-scope IDs for requests the router sends it (INVOCATION): ``next()``")

    def send(msg: Any) -> bool:
        """Send one message object; False when it cannot be sent (``send_failure`` says why)."""

    def send_paced(msgs: list) -> None:
        """Send a list of message objects as the peer reads them; what is sent after waits behind them."""

    def send_error(request_type: int, request: int, uri: str, text: str | None = None, **extra: Any) -> None:
        """Send ERROR for one of its requests."""

    def discloses(action: str, uri: str) -> bool:
        """Whether the realm's roles disclose its identity for ``action`` on ``uri``."""

    def may(action: str, uri: str) -> bool | Deferred:
        """Whether its role may ``action`` on ``uri``: True, False, or a Deferred of one (keywords ``fresh``, ``match``)."""

    def goodbye(reason: str, text: str | None = None) -> None:
        """Router-initiated close (GOODBYE)."""


class IPeer(Interface):
    """
    What a session speaks to: one connection's far end, as message objects.
    A WebSocket or RawSocket connection, the router's own session, a memory
    peer in tests.
    """

    codec = Attribute(
        "The serializer this peer's messages are encoded with, shared by every peer of its kind "
        "(``name``, ``binary``, ``encode(msg) -> bytes``, ``check(msg) -> Exception | None``); "
        "the broker groups subscribers by it to decide encodability once per serializer."
    )
    send_failure = Attribute(
        "The WAMP error URI saying why the last send() returned False "
        "(``wamp.error.invalid_argument``: cannot be encoded; ``wamp.error.payload_size_exceeded``: too big)."
    )

    def send(msg: Any) -> bool:
        "encode and write one message; False when it cannot be sent"

    def send_paced(msgs: list) -> None:
        """
        Write a list of message objects as the far end reads them, not in one
        burst (unencodable ones are logged and skipped); every message sent
        later is written after them.
        """

    def close() -> None:
        "Close the connection in order (WebSocket: the close handshake)."

    def abort(reason: str | None = None) -> None:
        "Drop the connection at once; ``reason`` (a text) is reported in ``client_disconnected``."
