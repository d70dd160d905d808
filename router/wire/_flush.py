"""
Writes gathered per reactor turn: one ``send`` per connection per turn, and
no ``epoll_ctl`` unless the kernel's buffer is full.

Twisted's TCP transport buffers what ``write`` gets and asks the reactor to
watch the socket for writability (``startWriting``: an ``epoll_ctl``); the
next turn's ``epoll_wait`` says it is writable, the reactor calls
``doWrite`` (one ``send`` of everything buffered), and once the buffer is
empty ``stopWriting`` takes the interest back (another ``epoll_ctl``).  A
routed call, CALL in and RESULT out, paid four ``epoll_ctl`` and two extra
``epoll_wait`` for two ``send``: twelve system calls where six do.

:func:`gather` moves one connection's TCP or Unix transport (under TLS, the
socket transport below it) to a subclass whose ``startWriting`` puts the
transport on this turn's list instead; the list is written right after the
turn's reads, and before the reactor next waits (see :class:`_Turn`).  There
the transport's own ``doWrite`` runs: the same one ``send`` of everything it
buffered, its producer resumed as before, ``loseConnection`` completed as
before, its failures handled as the reactor handles them.  Only what the
kernel did not take (a partial send, ``EAGAIN``) is left to the reactor
the usual way, by the real ``startWriting``, until it is all written.  So
everything else stays Twisted's: the buffer (all writes, from the router's
fast path, Autobahn's frames, close frames and TLS records, keep their
order), the producer API and the outbound limit built on it
(:mod:`router.wire.outbound`), half-closes, and ``abortConnection``, which
drops what is buffered, as it always has.
"""

from __future__ import annotations

import sys

from twisted.internet import tcp
from twisted.logger import Logger

__all__ = ["gather", "gathered"]

_log = Logger(namespace="wampd.transport")


#: Reactors whose loop is Twisted's own ``mainLoop``, which calls ``doIteration`` every turn.
_ITERATING = (
    ("twisted.internet.epollreactor", "EPollReactor"),
    ("twisted.internet.pollreactor", "PollReactor"),
    ("twisted.internet.selectreactor", "SelectReactor"),
)


class _Turn:
    """
    The transports with output in one reactor turn, and how they get written.

    On Twisted's own poll loops (:data:`_ITERATING`) the reactor's
    ``doIteration`` is wrapped, once: what was written since the last turn
    (by timed calls) is written before it may block, and what its reads
    wrote right after it.  A ``callLater(0)`` per turn would do the same on
    any reactor, but costs about 15,000 instructions (its ``DelayedCall``,
    the heap, the logging context): as much as the two system calls it
    saves, so other reactors (asyncio's runs its own loop) get that.
    """

    __slots__ = ("reactor", "dirty", "call", "disconnect", "iteration")

    def __init__(self, reactor) -> None:
        self.reactor = reactor
        self.dirty: list = []
        self.call = None
        self.disconnect = reactor._disconnectSelectable  # how the reactor ends a transport whose write failed
        self.iteration = None
        kind = type(reactor)
        if any(getattr(sys.modules.get(module), name, None) is kind for module, name in _ITERATING):
            self.iteration = reactor.doIteration
            reactor.doIteration = self.iterate

    def add(self, transport) -> None:
        self.dirty.append(transport)
        if self.iteration is None and self.call is None:
            self.call = self.reactor.callLater(0, self.flush)

    def iterate(self, timeout) -> None:
        """The reactor's ``doIteration``, with this turn's writes on either side."""
        if self.dirty:
            self.flush()
            if self.dirty:  # a producer resumed by a write wrote more: don't block with it waiting
                timeout = 0
        self.iteration(timeout)
        if self.dirty:
            self.flush()

    def flush(self) -> None:
        self.call = None
        dirty, self.dirty = self.dirty, []
        for transport in dirty:
            transport._gathering = False
            if transport.disconnected or transport._aborting:
                continue  # gone, or aborted: abortConnection drops what is buffered
            try:
                why = transport.doWrite()
            except BaseException:
                why = sys.exc_info()[1]
                _log.failure("writing to {transport}", transport=transport)
            if why:
                self.disconnect(transport, why, False)
            elif not transport._gathering and (transport._tempDataLen or transport.offset < len(transport.dataBuffer)):
                transport._poll_writes()  # the kernel's buffer is full: the reactor writes the rest when it drains


_turns: dict = {}  # reactor -> its _Turn (one reactor in a router; a plain dict is the cheapest lookup)


def _turn(reactor) -> _Turn:
    turn = _turns.get(reactor)
    if turn is None:
        turn = _turns[reactor] = _Turn(reactor)
    return turn


class _Gathering:
    """Mixed in before a socket transport's class: see the module docstring."""

    _gathering = False  # on this turn's list
    _polled = False  # the reactor watches it for writability (a write the kernel did not take at once)

    def startWriting(self) -> None:  # noqa: N802 (Twisted's name)
        if self._polled or self._gathering:
            return
        self._gathering = True
        _turn(self.reactor).add(self)

    def stopWriting(self) -> None:  # noqa: N802 (Twisted's name)
        if self._polled:
            self._polled = False
        super().stopWriting()  # no system call unless the reactor watches it

    def _poll_writes(self) -> None:
        self._polled = True
        super().startWriting()


_GATHERING: dict[type, type] = {}


def _socket_transports() -> tuple[type, ...]:
    kinds = [tcp.Server]
    try:
        from twisted.internet import unix  # lazy: absent on platforms without Unix sockets
    except ImportError:
        pass
    else:
        kinds.append(unix.Server)
    return tuple(kinds)


_KINDS = _socket_transports()


def gather(transport) -> bool:
    """
    Make ``transport`` (a connection's; under TLS, the socket transport below
    it is the one moved) write once per reactor turn.  False, changing
    nothing, for anything but Twisted's own TCP and Unix server transports
    on a reactor that ends transports the way Twisted's POSIX reactors do.
    """
    while getattr(transport, "transport", None) is not None:  # TLS wraps the socket transport
        transport = transport.transport
    if isinstance(transport, _Gathering):
        return True
    kind = type(transport)
    moved = _GATHERING.get(kind)
    if moved is None:
        if kind not in _KINDS or not hasattr(transport.reactor, "_disconnectSelectable"):
            return False
        moved = _GATHERING[kind] = type(f"Gathering{kind.__name__}", (_Gathering, kind), {"__module__": __name__})
    transport.__class__ = moved
    return True


def gathered(transport) -> bool:
    """Whether ``transport`` (or the socket transport under it) writes once per turn."""
    while getattr(transport, "transport", None) is not None:
        transport = transport.transport
    return isinstance(transport, _Gathering)
