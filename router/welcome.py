"""
WELCOME, encoded once per identity.

Every session of a realm with the same role and auth method gets the same
WELCOME but for its session ID and ``authid``: the router's roles and
features, the realm, ``authrole``, ``authmethod``, ``authprovider`` and the
agent.  Building and encoding that details dict was a tenth of what a join
cost.  :class:`FastWelcome` encodes it once per serializer and identity, as
a template with a stand-in ID and a stand-in authid, and splices each
session's ID and authid into it: JSON, msgpack and CBOR write an array as
its elements one after another and a map as its keys and values one after
another, each encoded as it would be alone, so the bytes are exactly those
of an ordinary encoding (the template is checked against one when it is
made, and not used otherwise).  The authid is a hole, not part of the
identity, because anonymous sessions each get an authid of their own
(``anonymous-`` and random characters): as part of the identity every
anonymous join missed the template and paid for making one.

Only a WELCOME with a non-empty string authid and without ``authextra``
(which may differ per session) is templated; at most :data:`MAX_TEMPLATES` templates are kept (the oldest go
first), so identities unique to every user cost only the one encoding they
cost before.
"""

from __future__ import annotations

from autobahn.wamp import message

__all__ = ["FastWelcome", "MAX_TEMPLATES"]

MAX_TEMPLATES = 512
# a stand-in session ID: as long as real ones (up to 2**53), and found once in the template
_STAND_IN = 7_654_321_098_765_432
_STAND_IN_AUTHID = "wampd.welcome.stand-in-authid.7654321"
_TEMPLATES: dict = {}  # (serializer, identity) -> (head, middle, tail), or None: not templatable


class FastWelcome(message.Welcome):
    """A WELCOME whose encoding is spliced from its identity's template (see the module docstring)."""

    __slots__ = ("identity",)

    def __init__(self, *args, identity: tuple | None = None, **kwargs) -> None:
        """``identity``: what, besides the session ID and authid, the encoding depends on; None: not templated."""
        super().__init__(*args, **kwargs)
        authid = self.authid
        self.identity = identity if self.authextra is None and type(authid) is str and authid else None

    def serialize(self, serializer) -> bytes:
        cache = self._serialized
        data = cache.get(serializer)
        if data is not None:
            return data
        identity = self.identity
        if identity is None:
            return super().serialize(serializer)
        key = (serializer, identity)
        parts = _TEMPLATES.get(key, False)
        if parts is False:
            parts = _template(serializer, self)
            if len(_TEMPLATES) >= MAX_TEMPLATES:
                del _TEMPLATES[next(iter(_TEMPLATES))]
            _TEMPLATES[key] = parts
        if parts is None:
            return super().serialize(serializer)
        encode = serializer.serialize
        data = cache[serializer] = parts[0] + encode(self.session) + parts[1] + encode(self.authid) + parts[2]
        return data


def _template(serializer, welcome: FastWelcome) -> tuple[bytes, bytes, bytes] | None:
    """
    (bytes before the ID, between the ID and the authid, after the authid),
    proven on ``welcome`` itself; None if the encoding does not split so.
    """
    try:
        raw = welcome.marshal()
        exact = serializer.serialize(raw)
        raw[1] = _STAND_IN
        raw[2]["authid"] = _STAND_IN_AUTHID
        full = serializer.serialize(raw)
        mark = serializer.serialize(_STAND_IN)
        authid_mark = serializer.serialize(_STAND_IN_AUTHID)
    except Exception:
        return None  # the ordinary path reports it
    if full.count(mark) != 1 or full.count(authid_mark) != 1:
        return None
    head, rest = full.split(mark)
    if authid_mark not in rest:  # the details come after the ID in a WELCOME; anything else is not ours
        return None
    middle, tail = rest.split(authid_mark)
    if head + serializer.serialize(welcome.session) + middle + serializer.serialize(welcome.authid) + tail != exact:
        return None
    return head, middle, tail
