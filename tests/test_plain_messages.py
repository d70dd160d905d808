"""
The dealer's plain INVOCATION and RESULT (router.dealer._calls) are byte for
byte what Autobahn's own classes marshal for the same message, in every shape
the dealer builds, and are Autobahn's classes for isinstance.
"""

from __future__ import annotations

import pytest
from autobahn.wamp import message

from router.dealer._calls import PlainInvocation, PlainResult
from router.wire.codec import Codec

SHAPES = [(None, None), ([], None), (["x", 1], None), ([], {"k": "v"}), (["a"], {"k": [1, 2]}), (None, {"k": 1})]


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest.mark.parametrize("args,kwargs", SHAPES)
@pytest.mark.parametrize("disclose", [False, True])
@pytest.mark.parametrize("progress", [False, True])
def test_a_plain_invocation_encodes_as_autobahns(serializer, args, kwargs, disclose, progress):
    """Caller disclosure, receive_progress and procedure (pattern calls) land in the details as Autobahn puts them."""
    codec = Codec(serializer)
    who = dict(caller=7, caller_authid="alice", caller_authrole="user") if disclose else {}
    theirs = message.Invocation(5, 9, args=args or ([] if kwargs else None), kwargs=kwargs,
                                receive_progress=True if progress else None, procedure="com.x.y", **who)
    details = ({"receive_progress": True} if progress else {}) | who | {"procedure": "com.x.y"}
    ours = PlainInvocation(5, 9, args, kwargs, details)
    assert codec.encode(ours) == codec.encode(theirs)
    assert isinstance(ours, message.Invocation)
    assert (ours.caller, ours.procedure, ours.receive_progress, ours.payload) == (
        who.get("caller"), "com.x.y", True if progress else None, None)


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest.mark.parametrize("args,kwargs", SHAPES)
@pytest.mark.parametrize("progress", [False, True])
def test_a_plain_result_encodes_as_autobahns(serializer, args, kwargs, progress):
    """A RESULT, progressive or final, with every shape of arguments, is Autobahn's RESULT on the wire."""
    codec = Codec(serializer)
    theirs = message.Result(3, args=args or ([] if kwargs else None), kwargs=kwargs, progress=True if progress else None)
    ours = PlainResult(3, args, kwargs, progress)
    assert codec.encode(ours) == codec.encode(theirs)
    assert codec.encode(ours) is codec.encode(ours)  # cached for the one serializer it goes out with
    assert isinstance(ours, message.Result) and bool(ours.progress) is progress
