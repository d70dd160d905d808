"""
msgpack through one reused C packer, as an Autobahn object serializer.

Autobahn's serializer calls ``msgpack.packb`` for every message, which makes
(and throws away) a packer each time, behind two Python calls.  This one keeps
a single ``msgpack.Packer`` with the same settings (``use_bin_type``: bytes as
bin, strings as str) and decodes as Autobahn does (``raw=False``), so the
bytes on the wire are the same.  The reactor is single-threaded, so one packer
per codec is never used twice at once.
"""

from __future__ import annotations

import msgpack

__all__ = ["FastMsgPack"]


class FastMsgPack:
    """Autobahn object-serializer interface over msgpack's C packer and unpacker."""

    NAME = "msgpack"
    BINARY = True
    MSGPACK_MODULE = msgpack

    def __init__(self) -> None:
        self.serialize = msgpack.Packer(use_bin_type=True, autoreset=True).pack

    @staticmethod
    def unserialize(payload: bytes) -> list:
        return [msgpack.unpackb(payload, raw=False)]
