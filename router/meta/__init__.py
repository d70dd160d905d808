"""
The WAMP meta API of one realm, served by the router itself.

Meta events (published by the router to the realm):
``wamp.session.on_join`` (details), ``wamp.session.on_leave`` (session, authid,
authrole; never delivered to the leaving session), ``wamp.subscription.on_create``
/ ``on_subscribe`` / ``on_unsubscribe`` / ``on_delete`` and
``wamp.registration.on_create`` / ``on_register`` / ``on_unregister`` /
``on_delete``.

Meta procedures: ``wamp.session.count``, ``list``, ``get``, ``kill``,
``kill_by_authid``, ``kill_by_authrole``, ``kill_all``, ``add_testament``,
``flush_testaments``; ``wamp.subscription.list``, ``lookup``, ``match``, ``get``,
``list_subscribers``, ``count_subscribers``; ``wamp.registration.list``,
``lookup``, ``match``, ``get``, ``list_callees``, ``count_callees``.

Python code (listeners, embedding applications) uses the same queries
directly: ``router.realms["realm1"].meta.sessions()``, ``.kill(...)``, ...
"""

from router.meta._meta import Meta
from router.meta._procedures import MetaError, session_details

__all__ = ["Meta", "MetaError", "session_details"]
