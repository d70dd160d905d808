"""
A lean Redis client protocol for Twisted: RESP2 commands written in one
``write`` each, replies parsed by hiredis's C reader (the ``wampd[cluster]``
extra).

Why not txredisapi (Twisted-native) or redis-py (asyncio)?  redis-py's async
client needs the asyncio reactor; txredisapi works, but pays a Python-level
parser and a Deferred per command: on this 2-core machine it carried about
8,400 PUBLISH commands a second on one core, while this protocol (no Deferred
for a command whose reply only needs counting) carried 50,000 PUBLISH
commands and their deliveries to a subscriber in 0.27 s of client CPU.  The
cluster forwards every cross-node event and call through Redis, so the client's
cost per command is the cluster's cost per message.

One :class:`RedisProtocol` is either a command connection (replies come back
in order: each command's Deferred, or nothing for :meth:`~RedisProtocol.send`)
or, after :meth:`~RedisProtocol.subscribe`, a subscriber connection whose
pushed messages go to ``on_message(channel, payload)``.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

import hiredis
from twisted.internet import defer, protocol

from router.cluster._address import RedisAddress

__all__ = ["RedisError", "RedisProtocol", "encode_command", "connect"]


class RedisError(Exception):
    """An error reply from Redis, or a connection that is gone."""


def encode_command(*args) -> bytes:
    """One command in RESP: an array of bulk strings (str is UTF-8, int in decimal)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if type(arg) is str:
            arg = arg.encode("utf-8")
        elif type(arg) is int:
            arg = b"%d" % arg
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


class RedisProtocol(protocol.Protocol):
    """See the module docstring."""

    on_message: Callable[[bytes, bytes], None] | None = None
    on_lost: Callable[[object], None] | None = None

    def __init__(self) -> None:
        self._reader = hiredis.Reader(replyError=RedisError)
        self._waiting: deque = deque()
        self._subscriber = False
        self.connected = False

    def connectionMade(self) -> None:
        self.connected = True

    def dataReceived(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        waiting = self._waiting
        while True:
            reply = reader.gets()
            if reply is False:
                return
            if self._subscriber and type(reply) is list and reply and reply[0] == b"message":
                handler = self.on_message
                if handler is not None:
                    handler(reply[1], reply[2])
                continue
            if not waiting:
                continue  # a subscription confirmation nobody waits for
            d = waiting.popleft()
            if d is not None:
                if isinstance(reply, RedisError):
                    d.errback(reply)
                else:
                    d.callback(reply)

    def connectionLost(self, reason=None) -> None:
        self.connected = False
        waiting, self._waiting = self._waiting, deque()
        for d in waiting:
            if d is not None:
                d.errback(RedisError(f"the connection to Redis was lost: {reason.getErrorMessage() if reason else ''}"))
        if self.on_lost is not None:
            self.on_lost(reason)

    # -- commands -----------------------------------------------------------------

    def command(self, *args) -> defer.Deferred:
        """Send one command; the Deferred fires with its reply (or fails with :class:`RedisError`)."""
        if not self.connected:
            return defer.fail(RedisError("not connected to Redis"))
        d = defer.Deferred()
        self._waiting.append(d)
        self.transport.write(encode_command(*args))
        return d

    def send(self, *args) -> bool:
        """Send one command whose reply nobody needs; False when not connected."""
        if not self.connected:
            return False
        self._waiting.append(None)
        self.transport.write(encode_command(*args))
        return True

    def subscribe(self, *channels) -> defer.Deferred:
        """Become a subscriber connection for ``channels`` (fires when Redis confirms the first)."""
        self._subscriber = True
        return self.command("SUBSCRIBE", *channels)

    def close(self) -> None:
        """
        Drop the connection now, with whatever is still buffered: it is closed when nothing
        more needs to go out (a node's stop has had the replies to its DEL and ``bye``; the
        other callers give up on a connection).  A write left behind ``loseConnection``
        could meet the reactor's own shutdown, where Twisted 23.10 writes to a Unix client
        whose socket is already gone (an Unhandled Error at every other ``--workers`` stop).
        """
        self.connected = False  # a command now fails, a send is dropped
        if self.transport is not None:
            self.transport.abortConnection()


def connect(reactor, address: RedisAddress) -> defer.Deferred:
    """A connected :class:`RedisProtocol` (SELECTed to the address's database)."""

    async def run():
        factory = protocol.Factory.forProtocol(RedisProtocol)
        factory.noisy = False  # no "Starting factory" log line per connection
        proto = await address.endpoint(reactor).connect(factory)
        if address.password is not None:  # fails with Redis's own WRONGPASS/NOAUTH text, which names no secret
            auth = ("AUTH", address.username, address.password) if address.username else ("AUTH", address.password)
            try:
                await proto.command(*auth)
            except RedisError:
                proto.close()
                raise
        if address.db:
            await proto.command("SELECT", address.db)
        return proto

    return defer.ensureDeferred(run())
