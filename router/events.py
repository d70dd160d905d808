"""
Lifecycle events: frozen values handed to listener plugins.

A listener implements ``on_<name>(event)`` for the events it cares about, where
``<name>`` is the event class's ``name`` (``on_client_connected``,
``on_session_joined``, ...).  Two events can be vetoed by raising :class:`Reject`
from the handler: ``client_connected`` (the client gets HTTP 403, or a closed
RawSocket) and ``session_joining`` (the client gets ABORT instead of WELCOME).
Either refusal fires ``client_rejected``.  A veto handler that raises anything
else, or times out, refuses too (fail closed; see :mod:`router.dispatcher`).

Per connection the order is always::

    client_connected -> (session_joining -> session_joined -> session_left)* -> client_disconnected
    client_connected -> client_rejected -> client_disconnected

and every connection that produced ``client_connected`` produces exactly one
``client_disconnected``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from router.errors import Refusal

__all__ = [
    "Reject",
    "ClientCertificate",
    "ConnectionInfo",
    "SessionInfo",
    "EndpointInfo",
    "Event",
    "ServerLaunched",
    "ClientConnected",
    "ClientRejected",
    "SessionJoining",
    "SessionJoined",
    "SessionLeft",
    "ClientDisconnected",
    "ClientError",
    "ServerStopping",
    "ServerReloaded",
    "EVENT_TYPES",
    "REJECT_REASONS",
]

#: The reasons a ``client_rejected`` event can carry.
REJECT_REASONS = frozenset(
    {
        "origin",
        "address",
        "realm",
        "authentication",
        "authorization",
        "limit",
        "protocol",
        "listener",
        "rate_limited",
    }
)


class Reject(Refusal):
    """
    Raised by a listener's ``on_client_connected`` or ``on_session_joining``
    to refuse a connection or a join.

    ``uri`` is the ABORT reason sent to a client refused at join time; it
    defaults to ``wamp.error.not_authorized``.
    """

    def __init__(
        self,
        message: str = "rejected by listener",
        reason: str = "listener",
        uri: str = "wamp.error.not_authorized",
    ) -> None:
        if reason not in REJECT_REASONS:
            raise ValueError(
                f"unknown rejection reason {reason!r}; use one of {sorted(REJECT_REASONS)}"
            )
        super().__init__(uri, message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One transport connection, as known when it opened."""

    id: int
    transport: str  # "websocket", "rawsocket" or "longpoll" ("internal" for the router's own sessions)
    peer: str  # Autobahn's peer string, e.g. "tcp4:127.0.0.1:50312"
    host: str | None  # the peer's address, when it has one (not for unix sockets)
    serializer: str | None  # "json", "msgpack", "cbor"
    endpoint: str  # the listening endpoint description it came through
    opened_at: float  # reactor time
    origin: str | None = None  # WebSocket Origin header
    path: str | None = None  # WebSocket request path
    headers: Mapping[str, str] = field(default_factory=dict)  # WebSocket request headers (lower-case names)
    client_cert: ClientCertificate | None = None  # verified TLS client certificate (endpoints with client_ca)


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """The certificate a client presented on a TLS endpoint that asks for one (``client_ca``)."""

    fingerprint: str  # SHA-256 of the DER certificate, lower-case hex without colons
    cn: str | None  # the subject's common name, if it has one
    subject: str  # RFC 4514, e.g. "CN=device-7,O=Example"
    issuer: str


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One joined WAMP session."""

    session_id: int
    realm: str
    authid: str
    authrole: str
    authmethod: str
    authprovider: str
    connection: ConnectionInfo
    joined_at: float


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """One listening endpoint."""

    description: str  # the endpoint string it was configured with
    transport: str  # "websocket", "rawsocket", "longpoll", "universal" or "http" (the push endpoint)
    host: str | None
    port: int | None
    url: str | None  # ws://host:port/path for TCP WebSocket and universal endpoints, http://host:port/lp for long-poll


class Event:
    """Base of all lifecycle events; ``name`` selects the ``on_<name>`` handler."""

    name: ClassVar[str] = ""
    vetoable: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class ServerLaunched(Event):
    name: ClassVar[str] = "server_launched"
    endpoints: tuple[EndpointInfo, ...]
    realms: tuple[str, ...]
    reactor: Any = field(repr=False, compare=False)
    router: Any = field(default=None, repr=False, compare=False)
    """The running :class:`router.core.Router`: keep it to publish, call
    (``router.api("realm1")``) or ask the meta API (``router.realms[name].meta``)."""


@dataclass(frozen=True, slots=True)
class ClientConnected(Event):
    name: ClassVar[str] = "client_connected"
    vetoable: ClassVar[bool] = True
    connection: ConnectionInfo


@dataclass(frozen=True, slots=True)
class ClientRejected(Event):
    name: ClassVar[str] = "client_rejected"
    reason: str  # one of REJECT_REASONS
    message: str
    connection: ConnectionInfo
    realm: str | None = None
    authid: str | None = None


@dataclass(frozen=True, slots=True)
class SessionJoining(Event):
    """HELLO accepted by the router, WELCOME not yet sent: a listener may still refuse."""

    name: ClassVar[str] = "session_joining"
    vetoable: ClassVar[bool] = True
    session: SessionInfo
    hello_details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SessionJoined(Event):
    name: ClassVar[str] = "session_joined"
    session: SessionInfo


@dataclass(frozen=True, slots=True)
class SessionLeft(Event):
    name: ClassVar[str] = "session_left"
    session: SessionInfo
    reason: str  # a WAMP URI: the GOODBYE reason, or wamp.close.transport_lost
    duration: float  # seconds joined


@dataclass(frozen=True, slots=True)
class ClientDisconnected(Event):
    name: ClassVar[str] = "client_disconnected"
    connection: ConnectionInfo
    was_clean: bool
    code: int | None  # WebSocket close code, if any
    reason: str | None
    session: SessionInfo | None  # the last session the connection carried
    duration: float  # seconds connected


@dataclass(frozen=True, slots=True)
class ClientError(Event):
    name: ClassVar[str] = "client_error"
    connection: ConnectionInfo
    session: SessionInfo | None
    exception: BaseException
    message_type: str | None  # e.g. "SUBSCRIBE", when a message caused it


@dataclass(frozen=True, slots=True)
class ServerStopping(Event):
    name: ClassVar[str] = "server_stopping"
    reason: str


@dataclass(frozen=True, slots=True)
class ServerReloaded(Event):
    """A new configuration was applied (SIGHUP, or ``RouterService.reload``); see :mod:`router.reload`."""

    name: ClassVar[str] = "server_reloaded"
    changed: tuple[str, ...]  # the key paths that changed, e.g. "router.max_connections", "realm[realm1].roles"
    realms_added: tuple[str, ...] = ()
    realms_removed: tuple[str, ...] = ()
    not_applied: tuple[str, ...] = ()  # changed key paths that need a restart (endpoints, listeners, apps, http)


EVENT_TYPES: tuple[type[Event], ...] = (
    ServerLaunched,
    ClientConnected,
    ClientRejected,
    SessionJoining,
    SessionJoined,
    SessionLeft,
    ClientDisconnected,
    ClientError,
    ServerStopping,
    ServerReloaded,
)
