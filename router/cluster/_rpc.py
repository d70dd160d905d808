"""
Calls across cluster nodes.

A CALL that finds no local registration, on a node that knows another node
with a matching one, or whose shared registration's policy picks a callee on
another node (:mod:`router.cluster._policies`), is forwarded to that node (``call``).  There the call is
routed by that node's own dealer on behalf of a :class:`RemoteCaller`, a
stand-in for the caller that turns the dealer's RESULT and ERROR back into
``result`` messages to the caller's node.  A CANCEL goes the same way
(``cancel``); a caller that leaves cancels its remote calls (``killnowait``).

Failures are never silence: a call to a node that dies, or whose answer can no
longer come because Redis went away, ends at once with ERROR
``wamp.error.unavailable`` naming the cause; a call made while Redis is away
gets that ERROR instead of waiting.
"""

from __future__ import annotations

import itertools
from typing import Any

from autobahn.wamp import message
from autobahn.wamp.role import RoleCallerFeatures

from router.cluster._policies import RemoteProcedures
from router.cluster._tables import Entry
from router.dealer._calls import TOO_MANY_CALLS, PlainResult
from router.errors import ProtocolViolation
from router.messages import FastCall

__all__ = ["ClusterCalls", "OutgoingCalls", "RemoteCaller", "UNAVAILABLE"]

#: The spec's URI for "the callee is unable to handle the call".
UNAVAILABLE = "wamp.error.unavailable"
_CALL = message.Call.MESSAGE_TYPE
_CALLER_FEATURES = RoleCallerFeatures(
    caller_identification=True, progressive_call_results=True, call_canceling=True, call_timeout=True
)


class _NoCodec:
    """A remote caller's answers are packed by the cluster, not by a WAMP serializer."""

    name = "cluster"
    binary = True

    @staticmethod
    def check(msg) -> None:
        return None


class _Info:
    __slots__ = ("session_id", "authid", "authrole")

    def __init__(self, session_id, authid, authrole) -> None:
        self.session_id, self.authid, self.authrole = session_id, authid, authrole


class RemoteCaller:
    """
    A caller on another node, as this node's dealer sees it (the
    :class:`~router.interfaces.IRoutedSession` attributes the dealer uses).
    Its RESULTs and ERRORs go back to its node as ``result`` messages.
    """

    state = "joined"
    forwarded = True  # served by a callee of this node (router.cluster._policies)
    codec = _NoCodec()
    send_failure = None
    roles = {"caller": _CALLER_FEATURES}

    def __init__(self, node, origin: str, session_id: int, authid, authrole) -> None:
        self._node = node
        self.origin = origin
        self.session_id = session_id
        self.info = _Info(session_id, authid, authrole)
        self._disclosed: set[int] = set()  # requests whose caller asked to be disclosed

    def discloses(self, action: str, uri: str) -> bool:
        return False  # decided on the caller's node, sent as the call's disclose_me

    def may(self, action: str, uri: str, fresh: bool = False) -> bool:
        return True  # authorized on the caller's node, with the caller's own role

    def send(self, msg) -> bool:
        calls = self._node
        if isinstance(msg, message.Result):
            calls.answer(self.origin, msg.request, "result", bool(msg.progress), msg.args, msg.kwargs, None)
            if not msg.progress:
                calls.final_answer(self)
        elif type(msg) is message.Error:
            calls.answer(self.origin, msg.request, "error", False, msg.args, msg.kwargs, msg.error)
            calls.final_answer(self)
        return True

    def send_error(self, request_type, request, uri, text=None, **extra) -> None:
        self._node.answer(self.origin, request, "error", False, [text] if text else None, None, uri)
        self._node.final_answer(self)

    def send_paced(self, msgs) -> None:
        for msg in msgs:
            self.send(msg)

    def goodbye(self, reason, text=None) -> None:
        pass


class OutgoingCalls:
    """The calls this node's callers have in flight on other nodes."""

    def __init__(self) -> None:
        self._keys = itertools.count(1)
        self._calls: dict[int, tuple[Any, int, str]] = {}  # key -> (caller, its request id, node)
        self._by_caller: dict[Any, dict[int, int]] = {}  # caller -> its request id -> key

    def add(self, caller, request: int, node: str) -> int:
        key = next(self._keys)
        self._calls[key] = (caller, request, node)
        self._by_caller.setdefault(caller, {})[request] = key
        return key

    def get(self, key: int):
        return self._calls.get(key)

    def key_of(self, caller, request: int) -> int | None:
        return self._by_caller.get(caller, {}).get(request)

    def end(self, key: int):
        found = self._calls.pop(key, None)
        if found is not None:
            caller, request, _ = found
            mine = self._by_caller.get(caller)
            if mine is not None:
                mine.pop(request, None)
                if not mine:
                    del self._by_caller[caller]
        return found

    def count_of(self, caller) -> int:
        return len(self._by_caller.get(caller, ()))

    def of_caller(self, caller) -> list[int]:
        return list(self._by_caller.get(caller, {}).values())

    def to_node(self, node: str | None) -> list[int]:
        """Keys of the calls in flight to ``node`` (None: to any node)."""
        return [key for key, (_, _, target) in self._calls.items() if node is None or target == node]

    def __len__(self) -> int:
        return len(self._calls)


def fail(caller, request: int, text: str) -> None:
    """End a forwarded call with ERROR unavailable (its caller may have left meanwhile)."""
    if caller.state == "joined":
        caller.send_error(_CALL, request, UNAVAILABLE, text)


class ClusterCalls:
    """
    The RPC half of a :class:`~router.cluster._node.ClusterNode`: the other
    nodes' registrations, calls forwarded out, and calls served for others.
    """

    def __init__(self, node, prefer_local: bool = False) -> None:
        self.node = node
        self.procedures = RemoteProcedures(node, prefer_local)  # other nodes' registrations, policies across nodes
        self.outgoing = OutgoingCalls()
        self._served: dict[tuple[str, int], list] = {}  # (origin, caller sid) -> [RemoteCaller, realm, calls]
        self.forwarded = 0  # calls sent to other nodes

    # -- tables ---------------------------------------------------------------------

    def add_procedure(self, node: str, entry: Entry, invoke: str, summary: list | None = None) -> None:
        self.procedures.add(node, entry, invoke, summary)

    def remove_procedure(self, node: str, entry: Entry) -> None:
        self.procedures.remove(node, entry)

    def replace(self, found: dict[str, dict[Entry, str]]) -> None:
        """Know exactly ``found``: {node: {entry: its ``P regs:<node>`` value}} (see :func:`router.cluster._policies.parse_value`)."""
        self.procedures.replace(found)

    def node_gone(self, node: str, why: str) -> None:
        """``node`` is gone: calls in flight to it end with ERROR; calls it made here end too."""
        self.procedures.forget(node)
        for key in self.outgoing.to_node(node):
            caller, request, _ = self.outgoing.end(key)
            fail(caller, request, f"node {node} serving the call is gone ({why})")
        for origin_sid in [k for k in self._served if k[0] == node]:
            self._drop_served(origin_sid)

    def outage(self, why: str) -> None:
        """Redis went away: no answer can arrive, none can be sent."""
        for key in self.outgoing.to_node(None):
            caller, request, node = self.outgoing.end(key)
            fail(caller, request, f"the answer from node {node} cannot arrive: {why}")
        for origin_sid in list(self._served):
            self._drop_served(origin_sid)

    # -- this node's callers ------------------------------------------------------------

    def forward_call(self, realm: str, caller, msg, options: dict, disclose: bool, target: str | None = None) -> bool:
        """
        Send a CALL to ``target``, or (None) one that found no local registration
        to the node the invocation policy picks among all nodes' callees; False
        when no node has one (the caller then gets no_such_procedure).
        """
        if type(caller) is RemoteCaller:
            return False  # already forwarded once: never bounce between nodes
        if target is None:
            target = self.procedures.node_for(realm, caller, msg.procedure)
            if target is None:
                return False
        node = self.node
        if not node.connected:
            fail(caller, msg.request, f"procedure {msg.procedure!r} is on node {target}, and Redis at "
                                      f"{node.address} is unreachable")
            return True
        outgoing = self.outgoing
        if outgoing.key_of(caller, msg.request) is not None:
            raise ProtocolViolation(f"CALL request {msg.request} is already in flight")
        limit = node.router.max_calls_in_flight  # the same bound as for local calls (0: none)
        if limit and outgoing.count_of(caller) >= limit:
            caller.send_error(
                _CALL, msg.request, TOO_MANY_CALLS,
                f"this session has {limit} calls in flight on other nodes, the most max_calls_in_flight allows",
            )
            return True
        key = outgoing.add(caller, msg.request, target)
        info = caller.info
        opts = {"caller": [info.session_id, info.authid, info.authrole], "disclose": disclose}
        for name in ("timeout", "receive_progress"):
            if name in options:
                opts[name] = options[name]
        self.forwarded += 1
        node.send_to(target, "call", node.name, key, realm, msg.procedure, msg.args, msg.kwargs, opts)
        return True

    def cancel(self, caller, request: int, mode: str) -> bool:
        key = self.outgoing.key_of(caller, request)
        if key is None:
            return False
        _, _, target = self.outgoing.get(key)
        self.node.send_to(target, "cancel", self.node.name, caller.session_id, key, mode)
        return True

    def caller_left(self, caller) -> None:
        for key in self.outgoing.of_caller(caller):
            _, _, target = self.outgoing.end(key)
            self.node.send_to(target, "cancel", self.node.name, caller.session_id, key, "killnowait")

    def answered(self, key: int, kind: str, progress: bool, args, kwargs, uri) -> None:
        found = self.outgoing.get(key)
        if found is None:
            return  # the caller left or canceled meanwhile
        caller, request, _ = found
        if not progress:
            self.outgoing.end(key)
        if caller.state != "joined":
            return
        if kind == "result":
            caller.send(PlainResult(request, args, kwargs, progress))
        else:
            caller.send(message.Error(_CALL, request, uri, args=args, kwargs=kwargs))

    # -- calls served for other nodes' callers ---------------------------------------------

    def serve(self, origin: str, key: int, realm_name: str, procedure: str, args, kwargs, opts: dict) -> None:
        node = self.node
        realm = node.router.realms.get(realm_name)
        if realm is None:
            node.answer(origin, key, "error", False, None, None, "wamp.error.no_such_realm")
            return
        sid, authid, authrole = opts["caller"]
        served = self._served.get((origin, sid))
        if served is None:
            served = self._served[(origin, sid)] = [RemoteCaller(self, origin, sid, authid, authrole), realm, 0]
        served[2] += 1
        call = FastCall()  # what the wire makes of a plain CALL: the dealer's cheapest input
        call.request, call.procedure, call.args, call.kwargs = key, procedure, args, kwargs
        call._router_internal = {
            name: opts[name] for name in ("timeout", "receive_progress") if name in opts
        }
        if opts.get("disclose"):
            call._router_internal["disclose_me"] = True
        realm.dealer.call(served[0], call)

    def answer(self, origin: str, key: int, kind: str, progress: bool, args, kwargs, uri) -> None:
        """A RemoteCaller's answer: back to its node; a final one closes the call here."""
        self.node.send_to(origin, "result", key, kind, progress, args, kwargs, uri)

    def remote_cancel(self, origin: str, sid: int, key: int, mode: str) -> None:
        served = self._served.get((origin, sid))
        if served is not None:
            served[1].dealer.cancel(served[0], message.Cancel(key, mode=mode))

    def final_answer(self, caller: RemoteCaller) -> None:
        served = self._served.get((caller.origin, caller.session_id))
        if served is not None:
            served[2] -= 1
            if served[2] <= 0:
                self._drop_served((caller.origin, caller.session_id))

    def _drop_served(self, origin_sid) -> None:
        caller, realm, _ = self._served.pop(origin_sid)
        realm.dealer.remove_session(caller)
