"""
WELCOME, encoded once per identity.

Every anonymous session of a realm gets the same WELCOME but for its session
ID: the router's roles and features, the realm, ``authid``, ``authrole``,
``authmethod``, ``authprovider`` and the agent.  Building and encoding that
details dict was a tenth of what a join cost.  :class:`FastWelcome` encodes
it once per serializer and identity, as a template with a stand-in ID, and
splices each session's ID into it: a WAMP message is an array, and JSON,
msgpack and CBOR all write an array as its elements one after another, so
the bytes are exactly those of an ordinary encoding (the template is checked
against one when it is made, and not used otherwise).

Only a WELCOME without ``authextra`` (which may differ per session) is
templated; at most :data:`MAX_TEMPLATES` templates are kept (the oldest go
first), so authids unique to every user cost only the one encoding they
cost before.
"""

from __future__ import annotations

from autobahn.wamp import message

__all__ = ["FastWelcome", "MAX_TEMPLATES"]

MAX_TEMPLATES = 512
# a stand-in session ID: as long as real ones (up to 2**53), and found once in the template
_STAND_IN = 7_654_321_098_765_432
_TEMPLATES: dict = {}  # (serializer, identity) -> (head, tail), or None: not templatable


class FastWelcome(message.Welcome):
    """A WELCOME whose encoding is spliced from its identity's template (see the module docstring)."""

    __slots__ = ("identity",)

    def __init__(self, *args, identity: tuple | None = None, **kwargs) -> None:
        """``identity``: what, besides the session ID, the encoding depends on; None: not templated."""
        super().__init__(*args, **kwargs)
        self.identity = identity if self.authextra is None else None

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
        data = cache[serializer] = parts[0] + serializer.serialize(self.session) + parts[1]
        return data


def _template(serializer, welcome: FastWelcome) -> tuple[bytes, bytes] | None:
    """(bytes before the ID, bytes after it), proven on ``welcome`` itself; None if the encoding does not split so."""
    try:
        raw = welcome.marshal()
        exact = serializer.serialize(raw)
        raw[1] = _STAND_IN
        full = serializer.serialize(raw)
        mark = serializer.serialize(_STAND_IN)
    except Exception:
        return None  # the ordinary path reports it
    if full.count(mark) != 1:
        return None
    head, tail = full.split(mark)
    if head + serializer.serialize(welcome.session) + tail != exact:
        return None
    return head, tail
