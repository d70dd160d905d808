"""
Listener plugins shipped with wampd, and how listener plugins are found.

A listener implements ``on_<event>(event)`` for the lifecycle events it
wants.  Plug one in by ``"package.module:Attribute"`` path, or by the name of
an entry point in the ``wampd.listeners`` group.  The finder itself lives in
:mod:`router.plugins` (it finds apps and auth plugins too); these names are
re-exported here.
"""

from router.plugins import (
    DEFAULT_LISTENER,
    ENTRY_POINT_GROUP,
    PluginError,
    build_listener,
    build_listeners,
    listener_priority,
    load_object,
)

__all__ = [
    "DEFAULT_LISTENER",
    "ENTRY_POINT_GROUP",
    "PluginError",
    "build_listener",
    "build_listeners",
    "listener_priority",
    "load_object",
]
