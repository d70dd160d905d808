"""
TLS client certificates on an C{ssl:} endpoint (a listen's C{client_ca}).

Twisted's C{ssl:} endpoint string has no option to ask clients for a
certificate, so the endpoint is built from its string as usual, against a
reactor whose C{listenSSL} wraps the endpoint's context factory: the OpenSSL
context then asks every client for a certificate, verifies it against the
CA file (the chain, the validity dates), and with C{client_cert =
"required"} fails the handshake of a client that has none.  Only public
Twisted and pyOpenSSL API is used.

A verified certificate is read once per connection, when its WebSocket
upgrade or RawSocket handshake arrives (the TLS handshake is done by then),
into L{router.events.ClientCertificate}: the C{tls} authentication method
and listeners see it in C{ConnectionInfo.client_cert}.  Connections on other
endpoints pay nothing, and a router without C{client_ca} never imports
pyOpenSSL for it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IOpenSSLContextFactory
from zope.interface import implementer

from router.events import ClientCertificate

__all__ = ["ClientCertContextFactory", "client_certificate", "listening_reactor"]

_SESSION_ID = b"wampd-client-certs"


@implementer(IOpenSSLContextFactory)
class ClientCertContextFactory:
    """An endpoint's context factory, with client certificates asked for and verified."""

    def __init__(self, inner: Any, cafile: str, required: bool) -> None:
        self._inner = inner
        self._cafile = cafile
        self._required = required
        self._context: Any = None

    def getContext(self) -> Any:  # noqa: N802 (Twisted's name)
        if self._context is None:
            from OpenSSL import SSL  # lazy: only endpoints with client_ca need pyOpenSSL

            context = self._inner.getContext()
            context.load_verify_locations(self._cafile)
            context.load_client_ca(self._cafile.encode())  # the CAs named to the client
            mode = SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE
            if self._required:
                mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
            context.set_verify(mode, _openssl_verdict)
            context.set_session_id(_SESSION_ID)  # resumed sessions keep the verified certificate
            self._context = context
        return self._context


def _openssl_verdict(connection, certificate, errno, depth, ok) -> bool:
    return bool(ok)  # OpenSSL's own chain verification decides


class _ClientCertReactor:
    """The reactor, but C{listenSSL} asks for client certificates."""

    def __init__(self, reactor: Any, cafile: str, required: bool) -> None:
        self._reactor = reactor
        self._cafile = cafile
        self._required = required

    def listenSSL(self, port, factory, contextFactory, backlog=50, interface=""):  # noqa: N802, N803
        wrapped = ClientCertContextFactory(contextFactory, self._cafile, self._required)
        return self._reactor.listenSSL(port, factory, wrapped, backlog, interface)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)


def listening_reactor(reactor: Any, factory: Any) -> Any:
    """The reactor to build C{factory}'s endpoint with: wrapped when it has a C{client_ca}."""
    cafile = getattr(factory, "client_ca", None)
    if cafile is None:
        return reactor
    return _ClientCertReactor(reactor, cafile, factory.client_cert == "required")


def client_certificate(transport: Any) -> ClientCertificate | None:
    """The verified certificate the client on C{transport} presented, or None."""
    get = getattr(transport, "getPeerCertificate", None)
    if get is None:
        return None
    try:
        x509 = get()
    except Exception:  # not a TLS transport after all, or the connection is gone
        return None
    if x509 is None:
        return None
    from cryptography.hazmat.primitives import hashes  # lazy: only endpoints with client_ca
    from cryptography.x509.oid import NameOID  # lazy: only endpoints with client_ca

    cert = x509.to_cryptography()
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = names[0].value if names else None
    return ClientCertificate(
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        cn=cn if isinstance(cn, str) else None,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
    )
