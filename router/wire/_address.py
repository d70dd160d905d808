"""How a connection's peer address is described in events and counted in limits."""

from __future__ import annotations

__all__ = ["describe", "peer_host"]


def peer_host(transport) -> str | None:
    try:
        return getattr(transport.getPeer(), "host", None)
    except Exception:
        return None


def describe(address) -> str:
    host = getattr(address, "host", None)
    if host is not None:
        kind = "tcp6" if ":" in host else "tcp4"
        return f"{kind}:{host}:{address.port}"
    name = getattr(address, "name", None)
    return f"unix:{name.decode() if isinstance(name, bytes) else name}"
