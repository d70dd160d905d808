"""
The reverse-proxy settings: which peers are trusted proxies, and which header of theirs names the client.

``trusted_proxies`` (CIDR networks) and ``forwarded_header`` are ``[router]``
keys; ``proxy_protocol`` is a ``[[listen]]`` key.  They are checked here so
that :mod:`router.config._values` only calls :func:`check_proxy_settings`.
"""

from __future__ import annotations

import ipaddress

from router.config._errors import ConfigError, _check_items, _check_str

__all__ = ["FORWARDED_HEADERS", "check_proxy_settings", "check_proxy_protocol_endpoint"]

#: The headers ``forwarded_header`` may name (the first is the default).
FORWARDED_HEADERS = ("x-forwarded-for", "forwarded")


def check_proxy_settings(config) -> tuple[str, ...]:
    """Check ``trusted_proxies`` (CIDRs, or ``unix``) and ``forwarded_header``; returns the proxies as a tuple."""
    proxies = _check_items("trusted_proxies", config.trusted_proxies, str, allow_empty=True)
    for index, cidr in enumerate(proxies):
        if cidr == "unix":  # peers on a unix socket: a proxy on the same host
            continue
        try:
            ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError as exc:
            raise ConfigError(f"trusted_proxies[{index}]", f"{cidr!r} is not an IP network ({exc})") from None
    header = _check_str("forwarded_header", config.forwarded_header)
    if header.lower() not in FORWARDED_HEADERS:
        raise ConfigError(
            "forwarded_header", f"must be one of {', '.join(map(repr, FORWARDED_HEADERS))}, got {header!r}"
        )
    for index, listen in enumerate(config.listen):
        if listen.proxy_protocol and not proxies:
            raise ConfigError(
                f"listen[{index}].proxy_protocol",
                "needs trusted_proxies: the networks whose PROXY headers are believed",
            )
    return proxies


def check_proxy_protocol_endpoint(listen) -> None:
    """``proxy_protocol`` works on plain TCP and unix endpoints: a TLS endpoint would read the header as TLS."""
    if listen.proxy_protocol is not False and listen.proxy_protocol is not True:
        raise ConfigError("proxy_protocol", f"must be a boolean, got {listen.proxy_protocol!r}")
    if listen.proxy_protocol and not listen.endpoint.split(":", 1)[0] in ("tcp", "tcp6", "unix"):
        raise ConfigError(
            "proxy_protocol",
            "works on tcp:, tcp6: and unix: endpoints only (the PROXY header comes before TLS; "
            "terminate TLS at the proxy)",
        )
