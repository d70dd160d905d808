"""Checking a Twisted server endpoint string without listening on it."""

from __future__ import annotations

import re

from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXServerEndpoint,
    serverFromString,
)
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor

from router.config._errors import ConfigError

__all__: list[str] = []


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TypeError):
        # "_parseTCP() got an unexpected keyword argument 'foo'" -> the part
        # that means something to the person who wrote the string.
        text = re.sub(r"^_?\w+\(\) ", "", text)
    return text


def _check_endpoint(key: str, description: str) -> None:
    """
    Parse C{description} with Twisted's server endpoint parser against a
    memory reactor (so nothing listens), and check the port or socket path
    the endpoint would use.
    """
    if not description.strip():
        raise ConfigError(key, "must not be empty")
    reactor = MemoryReactor()
    try:
        endpoint = serverFromString(reactor, description)
    except Exception as exc:
        reason = f"not a valid Twisted server endpoint {description!r}: {_error_text(exc)}"
        if isinstance(exc, ImportError) and exc.name == "OpenSSL":
            reason += " (TLS endpoints need pyOpenSSL: pip install 'twisted[tls]')"
        raise ConfigError(key, reason) from None
    known = (
        TCP4ServerEndpoint,
        TCP6ServerEndpoint,
        SSL4ServerEndpoint,
        UNIXServerEndpoint,
    )
    if not isinstance(endpoint, known):
        return
    # The memory reactor only records what would be listened on.
    failures: list[object] = []
    endpoint.listen(Factory()).addErrback(failures.append)
    if failures:
        return
    for port, *_ in (*reactor.tcpServers, *reactor.sslServers):
        if not 0 <= port <= 65535:
            raise ConfigError(
                key,
                f"port must be between 0 and 65535 in {description!r}, got {port}",
            )
    for address, *_ in reactor.unixServers:
        if not address:
            raise ConfigError(key, f"a unix endpoint needs a socket path: {description!r}")
