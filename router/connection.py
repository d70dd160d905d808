"""
A connection's lifecycle events, as a part of
:class:`router.session.RouterSession`: ``client_connected`` (with the
router's connection policy and the listeners' veto), ``client_rejected``,
the HELLO timeout, and ``client_disconnected`` exactly once, however the
transport went.
"""

from __future__ import annotations

from twisted.internet.defer import fail

from router.events import ClientConnected, ClientDisconnected, ClientRejected, Reject
from router.states import AWAIT_HELLO, CLOSED, CLOSING, JOINED, TRANSPORT_LOST

__all__ = ["ConnectionLifecycle"]


class ConnectionLifecycle:
    """Connected -> (rejected) -> disconnected, around the session's joins."""

    __slots__ = ()

    # -- called by the transport and the router --------------------------------


    def opened(self):
        """
        The transport connected: fire ``client_connected``.  Returns None, or a
        Deferred, that fails with :class:`Reject` when a listener refused.
        A refusal has already fired ``client_rejected`` when this returns/fails.
        """
        refusal = self.router.track(self)
        d = self.router.dispatcher.emit(ClientConnected(self.connection), self.chain)
        if refusal is not None:
            # the router's policy refuses it: listeners were told it connected, their say does not matter
            if d is not None:
                d.addErrback(lambda failure: failure.trap(Reject))
            self.reject(refusal.reason, refusal.message)
            return fail(refusal)
        if d is None:
            return None
        return d.addErrback(self._connect_refused)

    def refused_at_accept(self, refusal: Reject) -> None:
        """Refused when accepted (a connection limit): ``client_connected``, then ``client_rejected``."""
        d = self.router.dispatcher.emit(ClientConnected(self.connection), self.chain)
        if d is not None:  # listeners are told it connected; their say does not matter
            d.addErrback(lambda failure: failure.trap(Reject))
        self.reject(refusal.reason, refusal.message)

    def _connect_refused(self, failure):
        failure.trap(Reject)
        reject = failure.value
        self.reject(reject.reason, reject.message)
        return failure

    def reject(self, reason: str, text: str, realm: str | None = None, authid: str | None = None) -> None:
        self.router.dispatcher.emit(
            ClientRejected(reason, text, self.connection, realm, authid), self.chain
        )

    def lost(self, orderly: bool, code: int | None = None, reason: str | None = None) -> None:
        """
        The transport is gone (any way at all). Exactly once per connection.

        ``orderly``: WebSocket, the close handshake completed; RawSocket, TCP
        closed without an error.  ``client_disconnected.was_clean`` says
        whether the WAMP session ended properly: with a session still joined
        it is clean only if the WebSocket close handshake completed (a
        RawSocket peer that drops TCP while joined is not clean); otherwise
        it is clean when the last session ended with a GOODBYE exchange (in
        either direction), or when the transport closed in order.
        """
        if self._lost:
            return
        self._lost = True
        if self.state in (JOINED, CLOSING):
            was_clean = orderly and self.connection.transport == "websocket"
            self._leave(self._closing_reason or TRANSPORT_LOST)
            if not was_clean and reason is None:
                reason = "the connection closed while a session was joined, without GOODBYE"
        else:
            was_clean = orderly or self._said_goodbye
        self.state = CLOSED
        now = self.router.clock.seconds()
        self.router.dispatcher.emit(
            ClientDisconnected(
                self.connection,
                was_clean,
                code,
                reason,
                self.last_info,
                now - self.connection.opened_at,
            ),
            self.chain,
        )
        # last: untracking may complete a shutdown that waits for every connection
        self.router.untrack(self)

    def handshake_timed_out(self, limit: float) -> None:
        """No joined session within the HELLO timeout: close the connection."""
        if self._lost or self.state is JOINED or self.state is CLOSING:
            return
        text = f"no session joined within {limit:g}s of connecting"
        if self.last_info is None:  # never joined: a refused connection; else just an idle one
            self.reject("protocol", text)
        self.state = AWAIT_HELLO
        self._pending = self._challenge = None
        self.session_id = None
        self.peer.close()
