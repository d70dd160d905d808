"""
Helpers for the authentication and authorization tests (tests/test_auth.py).

* :class:`AuthClient`: an autobahn-python session that joins with the
  authmethods, authid and authextra it is given and answers CHALLENGE with
  its ``answer`` callable (see :func:`ticket`, :func:`wampcra`,
  :func:`cryptosign`).
* :func:`open_session`: connect one over WebSocket (optionally with extra
  handshake headers, or TLS) or RawSocket.
* Dynamic authorizers plugged in by dotted path (``tests.auth_helpers:...``).
"""

from __future__ import annotations

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.auth import compute_wcs, derive_key
from autobahn.wamp.cryptosign import CryptosignKey
from autobahn.wamp.types import ComponentConfig
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint
from twisted.internet.task import deferLater

from tests.wamp_clients import SERIALIZERS, Client

TIMEOUT = 5.0


def bounded(d: Deferred, timeout: float = TIMEOUT) -> Deferred:
    return d.addTimeout(timeout, reactor)


# -- answering challenges ---------------------------------------------------------


def ticket(value: str):
    """Answer a ticket CHALLENGE with ``value``."""

    def answer(challenge):
        assert challenge.method == "ticket", challenge
        return value

    return answer


def wampcra(secret: str):
    """Answer a wampcra CHALLENGE with ``secret``; salted when the challenge says so."""

    def answer(challenge):
        assert challenge.method == "wampcra", challenge
        extra = challenge.extra
        key = secret
        if "salt" in extra:
            key = derive_key(secret, extra["salt"], extra.get("iterations", 1000), extra.get("keylen", 32))
        return compute_wcs(key, extra["challenge"])

    return answer


def cryptosign(key: CryptosignKey):
    """Answer a cryptosign CHALLENGE by signing it with ``key`` (Autobahn's own signing)."""

    def answer(challenge):
        assert challenge.method == "cryptosign", challenge
        return key.sign_challenge(challenge)

    return answer


def signing_key(seed: int) -> CryptosignKey:
    """A deterministic Ed25519 key (the 32-byte seed is ``seed`` repeated)."""
    return CryptosignKey.from_bytes(bytes([seed]) * 32)


def pubkey_hex(key: CryptosignKey) -> str:
    return key.public_key(binary=False)


# -- the client -------------------------------------------------------------------


class AuthClient(Client):
    """
    Joins with ``authmethods``/``authid``/``authextra`` and answers CHALLENGE
    with ``answer(challenge)``.  Every CHALLENGE is kept in ``challenges``;
    the ABORT (or GOODBYE) that ended the session is in ``close_details``.
    """

    def __init__(self, config=None, authmethods=None, authid=None, authextra=None, answer=None):
        super().__init__(config)
        self._join_authmethods = authmethods
        self._join_authid = authid
        self._join_authextra = authextra
        self.answer = answer
        self.challenges = []

    def onConnect(self):
        self.join(
            self.config.realm,
            authmethods=self._join_authmethods,
            authid=self._join_authid,
            authextra=self._join_authextra,
        )

    def onChallenge(self, challenge):
        self.challenges.append(challenge)
        if self.answer is None:
            raise RuntimeError(f"unexpected CHALLENGE {challenge.method}")
        return self.answer(challenge)

    @property
    def local_port(self) -> int:
        return self.wire.transport.getHost().port


async def open_session(
    address,
    transport: str = "websocket",
    serializer: str = "json",
    realm: str = "realm1",
    *,
    authmethods=None,
    authid=None,
    authextra=None,
    answer=None,
    headers=None,
    tls=None,
) -> AuthClient:
    """
    Connect an :class:`AuthClient`; returns it once the transport is up
    (await ``client.joined`` or ``client.left``).  ``address`` is the
    WebSocket URL or the RawSocket port; ``tls`` is a client TLS context
    factory (for a ``wss://`` URL).
    """
    session = AuthClient(
        ComponentConfig(realm), authmethods=authmethods, authid=authid, authextra=authextra, answer=answer
    )
    ser = SERIALIZERS[serializer]()
    if transport == "websocket":
        factory = WampWebSocketClientFactory(lambda: session, url=address, serializers=[ser], headers=headers)
        port = int(address.rsplit(":", 1)[1].split("/")[0])
    else:
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
        port = address
    factory.noisy = False
    if tls is not None:
        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port, tls)
    else:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    session.wire = await bounded(endpoint.connect(factory))
    return session


# -- dynamic authorizers, plugged in as "tests.auth_helpers:<name>" ----------------------

#: every (authrole, action, uri) the dynamic authorizers were asked, in order
ASKED: list[tuple[str, str, str]] = []

#: how long the async authorizer takes per URI (the first publish is the slowest)
DELAYS = {"slow.first": 0.15, "slow.second": 0.05, "slow.proc": 0.0}


async def authorize(session, action: str, uri: str, match: str = "exact"):
    """
    An ``async def`` authorizer for the "dyn" realm:

    - a URI containing ``boom`` makes it raise (the router must deny);
    - ``deny.*`` is refused;
    - ``slow.*`` answers after ``DELAYS[uri]`` seconds (order must hold);
    - everything else is allowed, patterns (``match`` prefix or wildcard) too.
    """
    ASKED.append((session.authrole, action, uri))
    if "boom" in uri:
        raise RuntimeError(f"authorizer exploded on {uri}")
    if uri.startswith("deny."):
        return False
    if uri in DELAYS:
        await deferLater(reactor, DELAYS[uri], lambda: None)
    return True


def authorize_sync(session, action: str, uri: str):
    """A plain function authorizer: raises on ``boom``, answers a call to ``weird.*`` with a non-bool."""
    ASKED.append((session.authrole, action, uri))
    if "boom" in uri:
        raise ValueError("sync authorizer exploded")
    if action == "call" and uri.startswith("weird."):
        return "yes"  # not True: denied
    return not uri.startswith("deny.")


class _UniqueAnonymous:
    """Equal to any authid a unique anonymous session gets (``anonymous-`` and 16 base32 characters)."""

    def __eq__(self, other) -> bool:
        import re

        return isinstance(other, str) and re.fullmatch(r"anonymous-[a-z2-7]{16}", other) is not None

    def __repr__(self) -> str:
        return "<anonymous-*>"


UNIQUE_ANONYMOUS = _UniqueAnonymous()
