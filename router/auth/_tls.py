"""
The C{tls} method: the client certificate the TLS handshake verified is the
credential.

Only a listen endpoint with C{client_ca} asks for client certificates, and
it takes only those that chain to that CA file (see
L{router.wire.tls}), so any certificate that reaches this module was
verified.  It maps to a principal:

  1. by its SHA-256 fingerprint (a principal's C{tls_fingerprints}): exactly
     that certificate, whatever its subject says;
  2. else by its subject common name (a principal's C{tls_cn}): any
     certificate the CA issued with that CN, so renewed certificates keep
     working.

A HELLO C{authid}, if given, must be the principal's.  There is no
CHALLENGE: the answer comes at HELLO.  A connection without a certificate,
or one no principal (and no dynamic authenticator) claims, is refused as any
wrong credential is.  The dynamic authenticator is asked (method C{"tls"},
signature None) only when no static principal matches; it sees the
certificate in C{hello.client_cert} and returns L{Accept} or L{Deny}.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from router.auth._dynamic import AUTH_FAILED
from router.auth._types import AUTHENTICATION_FAILED, Accept, Deny, HelloInfo, Principal

__all__ = ["TlsMethod", "normalise_fingerprint"]


def normalise_fingerprint(text: str) -> str:
    """C{"AB:CD:..."} (as C{openssl x509 -fingerprint -sha256} prints it) or plain hex, lower-case hex."""
    return text.replace(":", "").strip().lower()


class TlsMethod:
    """The C{tls} method of one realm (its L{RealmAuthenticator} is C{owner})."""

    def __init__(self, owner: Any, principals: Iterable[Principal]) -> None:
        self._owner = owner
        self._by_fingerprint: dict[str, Principal] = {}
        self._by_cn: dict[str, Principal] = {}
        for principal in principals:
            for fingerprint in principal.tls_fingerprints:
                self._by_fingerprint[normalise_fingerprint(fingerprint)] = principal
            if principal.tls_cn is not None:
                self._by_cn[principal.tls_cn] = principal

    def start(self, hello: HelloInfo) -> Accept | Deny | Any:
        cert = hello.client_cert
        if cert is None:
            return Deny(
                "authentication failed: tls needs a client certificate (on an endpoint with client_ca)",
                AUTHENTICATION_FAILED,
            )
        principal = self._by_fingerprint.get(cert.fingerprint)
        if principal is None and cert.cn is not None:
            principal = self._by_cn.get(cert.cn)
        owner = self._owner
        if principal is not None:
            if hello.authid and hello.authid != principal.authid:
                return AUTH_FAILED
            return Accept(principal.authid, principal.role, "tls", principal.authprovider, principal.authextra)
        if owner.dynamic is None:
            return AUTH_FAILED
        return owner._ask(hello, "tls", None, lambda result: owner._accept_or_deny(result, "tls", none_denies=True))
