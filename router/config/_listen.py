"""A command-line listen spec (``--listen``): a Twisted endpoint string, optionally prefixed with its transport."""

from __future__ import annotations

from types import MappingProxyType

from router.config._errors import ConfigError, _check_str
from router.config._values import ListenConfig

__all__ = ["parse_listen"]

# Prefixes that ``parse_listen`` accepts before an endpoint string.
_CLI_TRANSPORT_PREFIXES = MappingProxyType(
    {"ws": "websocket", "websocket": "websocket", "rawsocket": "rawsocket", "longpoll": "longpoll", "universal": "universal"}
)


def parse_listen(spec: str, key: str = "listen") -> ListenConfig:
    """
    Read a command-line listen spec: a Twisted server endpoint string,
    optionally prefixed with the transport.

        - C{"tcp:8080"} or C{"ws:tcp:8080"} or C{"websocket:unix:/tmp/s"}:
          WebSocket (on path C{/ws})
        - C{"rawsocket:tcp:9000"}: RawSocket

    Errors are reported against C{key}.
    """
    _check_str(key, spec)
    prefix, colon, rest = spec.partition(":")
    transport = "websocket"
    endpoint = spec
    if colon and prefix in _CLI_TRANSPORT_PREFIXES:
        transport = _CLI_TRANSPORT_PREFIXES[prefix]
        endpoint = rest
        if not endpoint:
            raise ConfigError(key, f"no endpoint after {prefix + ':'!r} in {spec!r}")
    try:
        return ListenConfig(endpoint, transport)
    except ConfigError as exc:
        raise exc.with_key(key) from None
