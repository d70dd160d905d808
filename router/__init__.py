"""
wampd: a WAMP v2 router for Twisted whose lifecycle events reach listener plugins.

The public names are importable from here; each lives in a private-ish module
of its own and is loaded on first use, so ``twistd --help`` stays fast::

    from router import RouterService, RouterConfig, Reject
"""

import txaio

# Autobahn binds txaio's helpers at import time: pick Twisted before any
# autobahn.wamp module is imported.
txaio.use_twisted()

__version__ = "0.1.0"

_EXPORTS = {
    "Router": "router.core",
    "RouterService": "router.service",
    "RouterConfig": "router.config",
    "ListenConfig": "router.config",
    "RealmConfig": "router.config",
    "ListenerConfig": "router.config",
    "ConfigError": "router.config",
    "Reject": "router.events",
    "MemoryRouter": "router.testing",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'router' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
