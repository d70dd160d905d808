"""
The message classes the routing core dispatches on, besides Autobahn's own.

A leaf: it imports only Autobahn.  The wire builds :class:`FastCall` and
:class:`FastYield` (plain CALL and YIELD messages read straight from their
decoded list, the RPC hot path); the session and the dealer see them as
CALL and YIELD.  :data:`MESSAGE_NAMES` names a WAMP type code for errors and
logs.
"""

from __future__ import annotations

from autobahn.wamp import message
from autobahn.wamp.serializer import Serializer

__all__ = [
    "FastCall",
    "FastYield",
    "MESSAGE_NAMES",
    "MESSAGE_CLASSES",
    "DEFAULT_MAX_DEPTH",
    "INVOCATION_DETAILS_AT",
    "add_feature",
]

#: WAMP type code -> Autobahn message class (Autobahn's own table; see router.wire._autobahn).
MESSAGE_CLASSES = Serializer.MESSAGE_TYPE_MAP
#: WAMP type code -> its name in capitals (``48`` -> ``"CALL"``).
MESSAGE_NAMES = {code: cls.__name__.upper() for code, cls in MESSAGE_CLASSES.items()}
#: Where ``Invocation.marshal()`` puts the details dict in the list it returns
#: (the dealer adds ``progress`` there; see router.wire._autobahn).
INVOCATION_DETAILS_AT = 3
#: Default for ``max_nesting_depth``: how deeply arrays and maps may nest in one message.
DEFAULT_MAX_DEPTH = 64


class _Fast:
    """
    A CALL or YIELD read straight from its decoded list (the hot path of RPC),
    with the attributes the dealer uses.  Only plain messages take this path:
    anything unusual (payload transparency, odd shapes, bad values) goes to
    Autobahn's full parser, which also produces the precise errors.
    """

    __slots__ = ("request", "args", "kwargs", "_router_internal")
    payload = None
    enc_algo = None
    enc_key = None
    enc_serializer = None


class FastCall(_Fast):
    __slots__ = ("procedure",)
    MESSAGE_TYPE = message.Call.MESSAGE_TYPE

    @property
    def receive_progress(self):
        return self._router_internal.get("receive_progress")


class FastYield(_Fast):
    __slots__ = ()
    MESSAGE_TYPE = message.Yield.MESSAGE_TYPE

    @property
    def progress(self):
        return self._router_internal.get("progress")


def add_feature(features, name: str, value: bool) -> None:
    """
    Set a role feature Autobahn's feature class does not define (such as
    ``progressive_call_invocations``): Autobahn marshals every public
    attribute of a features object into HELLO/WELCOME (see router.wire._autobahn).
    """
    setattr(features, name, value)
