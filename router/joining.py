"""
Joining: HELLO -> (CHALLENGE -> AUTHENTICATE) -> listeners -> WELCOME, as a
part of :class:`router.session.RouterSession` (the realm's authenticator
decides, the failed-login limiter counts, ``session_joining`` listeners may
refuse, and the WELCOME must fit in what the peer accepts).
"""

from __future__ import annotations

from autobahn.wamp import message
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from router.auth import AUTHENTICATION_FAILED, NO_AUTH_METHOD, Accept, Challenge, HelloInfo
from router.events import Reject, SessionInfo, SessionJoined, SessionJoining
from router.realm import MESSAGE_NAMES, Realm
from router.welcome import FastWelcome
from router.states import AUTHENTICATING, AWAIT_HELLO, CHALLENGED, JOINED, JOINING, PAYLOAD_SIZE_EXCEEDED, RATE_LIMITED_TEXT

__all__ = ["Joining"]


class Joining:
    """The HELLO-to-WELCOME half of a session's state machine."""

    __slots__ = ()


    def _on_hello(self, hello: message.Hello) -> None:
        realm = self.router.realms.get(hello.realm)
        if realm is None:
            text = f"no realm {hello.realm!r} on this router"
            self.reject("realm", text, hello.realm, hello.authid)
            self.abort("wamp.error.no_such_realm", text)
            return
        limiter = self.router.login_limiter
        if limiter.enabled:
            why = limiter.refusal(realm.name, hello.authid, self.connection.host)
            if why is not None:  # before any credential is looked at, known authid or not
                self._rate_limited(realm.name, hello.authid, why)
                return
        self.roles = _announced_roles(hello)
        self.state = AUTHENTICATING
        # allocated first: wampcra puts it in the challenge
        self.session_id = realm.new_session_id()
        self._pending = (realm, hello)
        hello_info = HelloInfo.from_hello(hello, self.connection, self.session_id)
        self._authenticated(realm.authenticator.start(hello_info))

    def _on_authenticate(self, msg: message.Authenticate) -> None:
        realm, hello = self._pending
        challenge, self._challenge = self._challenge, None
        limiter = self.router.login_limiter
        if limiter.enabled:
            # checked again: attempts started in parallel must not all get their secret checked
            why = limiter.refusal(realm.name, hello.authid, self.connection.host)
            if why is not None:
                self._pending = None
                self.session_id = None
                self.state = AWAIT_HELLO
                self._rate_limited(realm.name, hello.authid, why)
                return
        self.state = AUTHENTICATING
        self._authenticated(realm.authenticator.verify(challenge, msg.signature, msg.extra or {}))

    def _authenticated(self, outcome) -> None:
        """The authenticator's answer (Accept, Challenge, Deny, or a Deferred of one)."""
        if isinstance(outcome, Deferred):
            outcome.addCallback(self._authenticated)
            return
        if self.state is not AUTHENTICATING:  # transport lost or protocol violation meanwhile
            return
        realm, hello = self._pending
        if isinstance(outcome, Challenge):
            challenge = message.Challenge(outcome.method, dict(outcome.extra))
            if not self._fits(challenge, realm.name, hello.authid):
                return
            self._challenge = outcome
            self.state = CHALLENGED
            self.send(challenge)
            return
        if not isinstance(outcome, Accept):
            text = getattr(outcome, "message", "authentication failed")
            uri = getattr(outcome, "uri", "wamp.error.not_authorized")
            if uri != NO_AUTH_METHOD:  # a refused credential (not a method the realm lacks): counted
                self.router.login_limiter.failed(realm.name, hello.authid, self.connection.host)
            self._pending = None
            self.session_id = None
            self.state = AWAIT_HELLO
            self.reject("authentication", text, realm.name, hello.authid)
            self.abort(uri, text)
            return
        self._pending = None
        self.state = JOINING
        if outcome.authmethod != "anonymous":
            self.router.login_limiter.succeeded(realm.name, outcome.authid)
        now = self.router.clock.seconds()
        info = SessionInfo(
            session_id=self.session_id,
            realm=realm.name,
            authid=outcome.authid,
            authrole=outcome.authrole,
            authmethod=outcome.authmethod,
            authprovider=outcome.authprovider,
            connection=self.connection,
            joined_at=now,
        )
        self.info = info
        self._authextra = dict(outcome.authextra) if outcome.authextra else None
        details = hello._router_internal if isinstance(hello._router_internal, dict) else {}
        d = self.router.dispatcher.emit(SessionJoining(info, details), self.chain)
        if d is None:
            self._welcome(realm)
        else:
            d.addCallbacks(lambda _: self._welcome(realm), self._join_refused)

    def _rate_limited(self, realm: str, authid: str | None, why: str) -> None:
        """ABORT an attempt over the failed-login limit: the same answer whether the authid exists or not."""
        self.reject("rate_limited", why, realm, authid)
        self.abort(AUTHENTICATION_FAILED, RATE_LIMITED_TEXT)

    def _join_refused(self, failure) -> None:
        failure.trap(Reject)
        reject = failure.value
        info = self.info
        self.info = None
        self.session_id = None
        if self.state is not JOINING:  # transport lost meanwhile
            return
        self.state = AWAIT_HELLO
        self.reject(reject.reason, reject.message, info.realm, info.authid)
        self.abort(reject.uri, reject.message)

    def _welcome(self, realm: Realm) -> None:
        if self.state is not JOINING:  # transport lost while listeners ran
            self.info = None
            return
        if self.router.realms.get(realm.name) is not realm:  # removed by a reload while it was joining
            self._join_refused(Failure(Reject(f"realm {realm.name!r} was removed", "realm", "wamp.error.no_such_realm")))
            return
        info = self.info
        welcome = FastWelcome(  # encoded from a template per identity (router.welcome)
            session=self.session_id,
            roles=self.router.roles,
            realm=realm.name,
            authid=info.authid,
            authrole=info.authrole,
            authmethod=info.authmethod,
            authprovider=info.authprovider,
            authextra=self._authextra,
            custom={"x_router_agent": self.router.agent},
            identity=(realm.name, info.authrole, info.authmethod, info.authprovider,  # the authid is spliced in
                      self.router.agent, id(self.router.roles)),  # fmt: skip
        )
        if not self._fits(welcome, info.realm, info.authid):
            return
        self.state = JOINED
        self._said_goodbye = False
        self.realm = realm
        self.last_info = info
        self.router.joined(self)
        # a realm with no roles and no authorizer is open to anonymous sessions: no gate at all
        self.route, self._gate = realm.attach(self)
        self.send(welcome)
        realm.meta.session_joined(self)
        self.router.dispatcher.emit(SessionJoined(info), self.chain)

    def _fits(self, msg: message.Message, realm: str, authid: str | None) -> bool:
        """
        Whether a CHALLENGE or WELCOME fits in what the peer accepts (a
        RawSocket peer may announce as little as 512 bytes).  If not, the
        join is refused (``client_rejected``, reason ``limit``) with a short
        ABORT that fits, before the session counts as joined.
        """
        try:
            size = len(self.codec.encode(msg))  # cached on the message for the send that follows
        except Exception:
            return True  # send() reports it
        limit = self.peer.max_send
        if size <= limit:
            return True
        self.info = None
        self.session_id = None
        self._pending = self._challenge = None
        self.state = AWAIT_HELLO
        text = f"{MESSAGE_NAMES[msg.MESSAGE_TYPE]} is {size} bytes; this client accepts at most {limit}"
        self.reject("limit", text, realm, authid)
        self.abort(PAYLOAD_SIZE_EXCEEDED, text)
        return False


def _announced_roles(hello: message.Hello) -> dict:
    """
    The client's roles and features as HELLO announced them.  Autobahn's
    feature classes drop features they do not know (such as
    ``progressive_call_invocations``); those are copied back from the raw
    HELLO details, so the dealer sees every boolean feature the client sent.
    """
    roles = hello.roles or {}
    details = hello._router_internal if isinstance(hello._router_internal, dict) else {}
    for name, features in roles.items():
        raw = details.get("roles", {}).get(name, {}).get("features", {})
        for feature, value in raw.items():
            if type(value) is bool and not hasattr(features, feature):
                setattr(features, feature, value)
    return roles
