"""
Per-realm authentication: which methods on which transports, with which
principals, and an optional dynamic authenticator.

The flow, for the session state machine::

    HELLO        -> start(hello)            -> Accept | Challenge | Deny  (or a Deferred of one)
    AUTHENTICATE -> verify(challenge, signature, extra) -> Accept | Deny  (or a Deferred of one)

Every credential failure, whether the authid is unknown, the secret or
signature is wrong, or the dynamic authenticator failed, is the same
C{Deny("authentication failed", "wamp.error.authentication_failed")}.  For
C{ticket}, C{wampcra} and C{cryptosign} an unknown principal still gets a
CHALLENGE (a decoy one) and is refused only after AUTHENTICATE, as a wrong
secret is, so the answers do not tell which authids or keys exist.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet.defer import Deferred

from router.auth._crypto import (
    CRYPTOSIGN_CHALLENGE_BYTES,
    same_secret,
    verify_cryptosign,
    wampcra_challenge,
    wampcra_signature,
)
from router.auth._anonymous import anonymous_authid, check_anonymous_authid
from router.auth._decoys import Decoys
from router.auth._dynamic import AUTH_FAILED, DynamicAnswers
from router.auth._scram import SCRAM_ALIASES, ScramMethod, ScramPending
from router.auth._tls import TlsMethod
from router.auth._types import (
    AUTHENTICATION_FAILED,
    NO_AUTH_METHOD,
    Accept,
    Challenge,
    Deny,
    HelloInfo,
    Principal,
)

__all__ = ["DynamicAuthenticator", "RealmAuthenticator", "AUTH_FAILED"]

DynamicAuthenticator = Callable[[HelloInfo, str, "str | None"], Any]
"""
C{authenticator(hello, method, signature)}, sync, returning a Deferred, or
C{async def}.  See L{RealmAuthenticator}.
"""

_METHODS = ("anonymous", "ticket", "wampcra", "cryptosign", "scram", "tls")  # scram, tls: _scram, _tls
_TRANSPORTS = ("websocket", "rawsocket", "longpoll")


@dataclass(eq=False)
class _Pending:
    """What a Challenge carries until AUTHENTICATE comes back (once)."""

    owner: RealmAuthenticator
    method: str
    hello: HelloInfo
    principal: Principal | None  # None: unknown principal, a decoy challenge
    data: Any = None  # wampcra: the challenge string; cryptosign: the raw challenge
    pubkey: str | None = None  # cryptosign: the key from HELLO
    used: bool = False  # a challenge answers one AUTHENTICATE only


class RealmAuthenticator(DynamicAnswers):
    """
    Per realm: which methods are allowed on which transports, with which
    principals.

    C{methods} maps each allowed method to the transports it is offered on.
    L{start} picks the first method in the client's C{authmethods} that the
    realm allows on the client's transport (the client's order wins, as in
    Crossbar); methods the router does not know are skipped.

    B{Methods}

      - C{anonymous}: welcomed at once with role C{anonymous_role}.  The
        authid is the one the client asked for when C{anonymous_keeps_authid}
        (the realm has no principals and no dynamic authenticator, so there
        is no identity to impersonate), else see L{router.auth._anonymous}.
      - C{ticket}: CHALLENGE C{ticket} with empty extra; the AUTHENTICATE
        signature is the ticket.
      - C{wampcra}: CHALLENGE C{wampcra} with extra C{{"challenge": <JSON
        string>}} as the spec describes, plus C{salt}, C{iterations} and
        C{keylen} when the principal's secret is salted (it then holds the
        derived key, see L{router.auth.derive_key}).  The signature is
        base64 HMAC-SHA256 of the challenge string.
      - C{cryptosign}: the client sends its Ed25519 public key (hex) in HELLO
        C{authextra.pubkey}; an authid in HELLO must then be that key's
        principal.  CHALLENGE C{cryptosign} with extra C{{"challenge": <32
        random bytes, hex>}}.  The signature is the hex of the 64-byte
        signature, optionally followed by the challenge (96 bytes, as
        Autobahn sends it).  TLS channel binding is not supported and
        C{authextra.channel_binding} is ignored: the router checks a
        signature of the plain challenge, so a client that asked for
        C{tls-unique} binding fails authentication.
      - C{scram} (also offered as C{wamp-scram}) and C{tls}: see L{router.auth._scram}, L{router.auth._tls}.

    B{Dynamic authenticator} (C{dynamic}): called as C{dynamic(hello,
    method, signature)}; may return its answer, a Deferred of it, or be
    C{async def}.  It is asked:

      - C{anonymous}, at HELLO, C{signature} None: return L{Accept} (e.g.
        from C{hello.cookies} or C{hello.headers}), L{Deny}, or None to let
        the realm's static anonymous rule apply.
      - C{ticket}, after AUTHENTICATE, C{signature} the ticket: return
        L{Accept} or L{Deny} (None denies).  Not asked when C{hello.authid}
        is a static principal with a ticket: that ticket is checked instead.
      - C{wampcra} and C{cryptosign}, at HELLO, C{signature} None, only when
        no static principal matches (by authid, or by public key): return a
        L{Principal} holding the secret or public keys (the router runs the
        challenge against it), L{Deny}, or None (unknown: refused after a
        decoy challenge).

    An L{Accept} whose C{authprovider} is left at C{"static"} is reported as
    C{"dynamic"}.  If the callable raises, fails, or returns anything else,
    the answer is the usual authentication failure, and the error is logged.
    """

    def __init__(
        self,
        realm: str,
        methods: Mapping[str, Iterable[str]],
        principals: Iterable[Principal] = (),
        dynamic: DynamicAuthenticator | None = None,
        *,
        anonymous_role: str = "anonymous",
        anonymous_keeps_authid: bool = False,
        anonymous_authid: str = "unique",
        dynamic_name: str | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.realm = realm
        self.methods: dict[str, frozenset[str]] = {}
        for method, transports in methods.items():
            if method not in _METHODS:
                raise ValueError(f"unknown authentication method {method!r}")
            transports = frozenset(transports)
            if not transports <= set(_TRANSPORTS):
                raise ValueError(f"unknown transports in {sorted(transports)}")
            self.methods[method] = transports
        self.dynamic = dynamic
        self.dynamic_name = dynamic_name or getattr(dynamic, "__qualname__", repr(dynamic))
        self.anonymous_role = anonymous_role
        self.anonymous_keeps_authid = anonymous_keeps_authid
        self.anonymous_authid = check_anonymous_authid(anonymous_authid)
        self._random = random_bytes
        self._clock = clock
        self._by_authid: dict[str, Principal] = {}
        self._by_pubkey: dict[str, Principal] = {}
        for principal in principals:
            if principal.authid in self._by_authid:
                raise ValueError(f"duplicate authid {principal.authid!r}")
            self._by_authid[principal.authid] = principal
            for key in principal.pubkeys:
                self._by_pubkey[key] = principal
        # Decoy challenges for unknown principals look like real ones: each unknown authid
        # imitates one wampcra principal, always the same one (see Decoys.model).
        self._decoys = Decoys(self._random, self._by_authid.values())
        self._starts = {
            "anonymous": self._start_anonymous,
            "ticket": self._start_ticket,
            "wampcra": self._start_wampcra,
            "cryptosign": self._start_cryptosign,
        }
        self._verifies = {
            "ticket": self._verify_ticket,
            "wampcra": self._verify_wampcra,
            "cryptosign": self._verify_cryptosign,
        }
        self._scram = ScramMethod(self, self._by_authid, self._decoys.key)
        tls = TlsMethod(self, self._by_authid.values()).start
        self._starts.update({"scram": self._scram.start, "wamp-scram": self._scram.start, "tls": tls})

    def __repr__(self) -> str:
        methods = ", ".join(f"{m}:{'+'.join(sorted(t))}" for m, t in self.methods.items())
        return f"<RealmAuthenticator {self.realm} {methods} principals={len(self._by_authid)}>"

    # -- the two entry points -------------------------------------------------

    def select_method(self, hello: HelloInfo) -> str | None:
        """The method L{start} would use, or None."""
        for method in hello.authmethods:
            transports = self.methods.get(SCRAM_ALIASES.get(method, method))
            if transports is not None and hello.transport in transports:
                return method
        return None

    def start(self, hello: HelloInfo) -> Accept | Challenge | Deny | Deferred:
        """
        Answer a HELLO: L{Accept} (send WELCOME), L{Challenge} (send
        CHALLENGE, keep it for L{verify}), L{Deny} (send ABORT), or a
        Deferred firing with one of those (it never fails).
        """
        method = self.select_method(hello)
        if method is None:
            offered = ", ".join(repr(m) for m in hello.authmethods)
            return Deny(
                f"none of the authentication methods {offered} is available on realm "
                f"{self.realm!r} over {hello.transport}",
                NO_AUTH_METHOD,
            )
        return self._starts[method](hello)

    def verify(
        self, challenge: Challenge, signature: object, extra: Mapping | None = None
    ) -> Accept | Deny | Deferred:
        """
        Answer an AUTHENTICATE to C{challenge} (one L{start} returned): L{Accept}, L{Deny},
        or a Deferred of one (never failing).  C{extra} (AUTHENTICATE extra) is for
        C{scram}.  A challenge answers one AUTHENTICATE: verifying it again is refused.
        """
        state = challenge.state
        if not isinstance(state, (_Pending, ScramPending)) or state.owner is not self or state.used:
            return AUTH_FAILED
        state.used = True
        if isinstance(state, ScramPending):
            return self._scram.verify(state, signature, extra)
        return self._verifies[state.method](state, signature)

    # -- anonymous ------------------------------------------------------------

    def _start_anonymous(self, hello: HelloInfo) -> Accept | Deny | Deferred:
        asked = hello.authid if self.anonymous_keeps_authid else None
        authid = anonymous_authid(asked, self.anonymous_authid, self._random)
        static = Accept(authid, self.anonymous_role, "anonymous", "static")
        if self.dynamic is None:
            return static

        def answer(result: object) -> Accept | Deny:
            if result is None:
                return static
            return self._accept_or_deny(result, "anonymous")

        return self._ask(hello, "anonymous", None, answer)

    # -- ticket ---------------------------------------------------------------

    def _start_ticket(self, hello: HelloInfo) -> Challenge:
        principal = self._by_authid.get(hello.authid) if hello.authid else None
        if principal is not None and not principal.ticket:
            principal = None
        return Challenge("ticket", {}, _Pending(self, "ticket", hello, principal))

    def _verify_ticket(self, state: _Pending, ticket: object) -> Accept | Deny | Deferred:
        principal = state.principal
        if principal is not None:
            if same_secret(ticket, principal.ticket or ""):
                return self._accept(principal, "ticket")
            return AUTH_FAILED
        if self.dynamic is not None and isinstance(ticket, str):
            return self._ask(
                state.hello,
                "ticket",
                ticket,
                lambda result: self._accept_or_deny(result, "ticket", none_denies=True),
            )
        same_secret(ticket, "\0decoy")  # the same work as a real comparison
        return AUTH_FAILED

    # -- wampcra --------------------------------------------------------------

    def _start_wampcra(self, hello: HelloInfo) -> Challenge | Deny | Deferred:
        authid = hello.authid
        if not authid:
            return Deny(
                "authentication failed: wampcra needs an authid in HELLO",
                AUTHENTICATION_FAILED,
            )
        principal = self._by_authid.get(authid)
        if principal is not None and principal.secret:
            return self._wampcra_challenge(hello, principal)
        if self.dynamic is None:
            return self._wampcra_challenge(hello, None)

        def answer(result: object) -> Challenge | Deny:
            if result is None:
                return self._wampcra_challenge(hello, None)
            if isinstance(result, Deny):
                return self._checked_deny(result)
            if isinstance(result, Principal) and result.secret and result.authid == authid:
                return self._wampcra_challenge(hello, self._dynamic_principal(result))
            self._bad_answer("wampcra", result, "a Principal with the client's authid and a secret")
            return AUTH_FAILED

        return self._ask(hello, "wampcra", None, answer)

    def _wampcra_challenge(self, hello: HelloInfo, principal: Principal | None) -> Challenge:
        authid = hello.authid or ""
        if principal is not None:
            role, provider = principal.role, principal.authprovider
            salt, iterations, keylen = principal.salt, principal.iterations, principal.keylen
        else:
            # A decoy that looks like a real principal's challenge.
            model = self._decoys.model(authid)
            if model is not None:
                role, provider = model.role, model.authprovider
            else:  # no static wampcra principal: as the dynamic authenticator's would be
                role, provider = "user", "dynamic" if self.dynamic is not None else "static"
            salt = self._decoys.salt(model, authid) if model is not None and model.salt else None
            iterations, keylen = (model.iterations, model.keylen) if model else (1000, 32)
        text = wampcra_challenge(
            authid,
            role,
            provider,
            hello.session_id,
            nonce=self._random(48),
            now=self._clock() if self._clock is not None else None,
        )
        extra: dict[str, Any] = {"challenge": text}
        if salt is not None:
            extra.update(salt=salt, iterations=iterations, keylen=keylen)
        return Challenge("wampcra", extra, _Pending(self, "wampcra", hello, principal, text))

    def _verify_wampcra(self, state: _Pending, signature: object) -> Accept | Deny:
        principal = state.principal
        key = principal.secret if principal is not None and principal.secret else None
        expected = wampcra_signature(key or base64.b64encode(self._decoys.key).decode(), state.data)
        if same_secret(signature, expected) and key is not None:
            return self._accept(principal, "wampcra")
        return AUTH_FAILED

    # -- cryptosign -----------------------------------------------------------

    def _start_cryptosign(self, hello: HelloInfo) -> Challenge | Deny | Deferred:
        pubkey = hello.authextra.get("pubkey")
        if not isinstance(pubkey, str) or len(pubkey) != 64:
            return Deny(
                "authentication failed: cryptosign needs the client's Ed25519 public "
                "key as 64 hex digits in HELLO authextra.pubkey",
                AUTHENTICATION_FAILED,
            )
        try:
            binascii.a2b_hex(pubkey)
        except binascii.Error:
            return Deny(
                "authentication failed: HELLO authextra.pubkey is not hex",
                AUTHENTICATION_FAILED,
            )
        pubkey = pubkey.lower()
        principal = self._by_pubkey.get(pubkey)
        if principal is not None or self.dynamic is None:
            return self._cryptosign_challenge(hello, principal, pubkey)

        def answer(result: object) -> Challenge | Deny:
            if result is None:
                return self._cryptosign_challenge(hello, None, pubkey)
            if isinstance(result, Deny):
                return self._checked_deny(result)
            if isinstance(result, Principal) and pubkey in result.pubkeys:
                return self._cryptosign_challenge(hello, self._dynamic_principal(result), pubkey)
            self._bad_answer("cryptosign", result, "a Principal whose pubkeys hold the client's key")
            return AUTH_FAILED

        return self._ask(hello, "cryptosign", None, answer)

    def _cryptosign_challenge(
        self, hello: HelloInfo, principal: Principal | None, pubkey: str
    ) -> Challenge:
        if principal is not None and hello.authid and hello.authid != principal.authid:
            principal = None  # the key is not that authid's: refuse after the challenge
        raw = self._random(CRYPTOSIGN_CHALLENGE_BYTES)
        return Challenge(
            "cryptosign",
            {"challenge": binascii.b2a_hex(raw).decode("ascii")},
            _Pending(self, "cryptosign", hello, principal, raw, pubkey),
        )

    def _verify_cryptosign(self, state: _Pending, signature: object) -> Accept | Deny:
        valid = verify_cryptosign(state.pubkey or "", state.data, signature)
        if valid and state.principal is not None:
            return self._accept(state.principal, "cryptosign")
        return AUTH_FAILED

    # -- helpers --------------------------------------------------------------

    @staticmethod
    def _accept(principal: Principal, method: str) -> Accept:
        return Accept(principal.authid, principal.role, method, principal.authprovider, principal.authextra)

    @staticmethod
    def _dynamic_principal(principal: Principal) -> Principal:
        if principal.authprovider == "static":
            return replace(principal, authprovider="dynamic")
        return principal
