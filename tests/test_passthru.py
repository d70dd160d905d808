"""
Payload passthru mode (router/passthru.py, router/dealer/_ppt.py) with raw
peers over real loopback sockets and real serializers: the ``ppt_*``
attributes reach the receiver, the payload arrives as it was sent, and the
spec's refusals.  autobahn-python has no passthru mode (it speaks the older
``enc_algo`` payload transparency), so the peers are :class:`RawPeer`.
"""

from __future__ import annotations

import base64
import os

import pytest
import pytest_twisted

from tests.raw_client import (
    ABORT,
    CALL,
    ERROR,
    EVENT,
    INVOCATION,
    PUBLISH,
    PUBLISHED,
    RESULT,
    SUBSCRIBE,
    SUBSCRIBED,
    YIELD,
    connect_raw,
)

PPT = {"ppt_scheme": "wamp.eth", "ppt_serializer": "cbor", "ppt_cipher": "xsalsa20poly1305", "ppt_keyid": "0xAb12"}
FEATURE = {"features": {"payload_passthru_mode": True}}
PPT_ROLES = {"caller": FEATURE, "callee": FEATURE, "publisher": FEATURE, "subscriber": FEATURE}
PLAIN_ROLES = {"caller": {}, "callee": {}, "publisher": {}, "subscriber": {}}
SECRET = os.urandom(48) + b"\x00\xff"  # opaque bytes, a NUL and 0xff included


async def peer(live_router, roles, transport="websocket", serializer="msgpack"):
    p = await connect_raw(live_router.address(transport), transport, serializer)
    welcome = await p.hello(roles)
    assert welcome[0] == 2, welcome
    return p


def carried(serializer, data: bytes):
    """``data`` as a serializer carries binary: bytes, or for JSON the spec's "\\0" + base64 string."""
    return "\x00" + base64.b64encode(data).decode() if serializer == "json" else data


@pytest.mark.parametrize("caller_ser,callee_ser", [("msgpack", "cbor"), ("json", "msgpack"), ("cbor", "json")])
@pytest_twisted.ensureDeferred
async def test_call_in_passthru_mode(live_router, caller_ser, callee_ser):
    """
    CALL, INVOCATION, YIELD, RESULT and a callee's ERROR: the four ``ppt_*``
    attributes go through in the details exactly as sent, and the one payload
    item arrives byte for byte, across serializers (JSON carries it as the
    spec's binary string).
    """
    caller = await peer(live_router, PPT_ROLES, "rawsocket", caller_ser)
    callee = await peer(live_router, PPT_ROLES, "websocket", callee_ser)
    reg = await callee.register(1, "com.example.secret")
    caller.send([CALL, 1, dict(PPT), "com.example.secret", [carried(caller_ser, SECRET)]])
    inv = await callee.wait_nth(INVOCATION, 1)
    assert inv[2:] == [reg, PPT, [carried(callee_ser, SECRET)]]
    callee.send([YIELD, inv[1], {**PPT, "ppt_keyid": "0xCd34"}, [carried(callee_ser, SECRET[::-1])]])
    result = await caller.wait_for(lambda m: m[0] == RESULT)
    assert result == [RESULT, 1, {**PPT, "ppt_keyid": "0xCd34"}, [carried(caller_ser, SECRET[::-1])]]

    caller.send([CALL, 2, dict(PPT), "com.example.secret", [carried(caller_ser, b"x")]])
    inv = await callee.wait_nth(INVOCATION, 2)
    callee.send([ERROR, INVOCATION, inv[1], dict(PPT), "com.example.error.denied", [carried(callee_ser, SECRET)]])
    error = await caller.wait_for(lambda m: m[0] == ERROR and m[2] == 2)
    assert error == [ERROR, CALL, 2, PPT, "com.example.error.denied", [carried(caller_ser, SECRET)]]
    await caller.goodbye()
    await callee.goodbye()


@pytest_twisted.ensureDeferred
async def test_publish_in_passthru_mode(live_router):
    """
    PUBLISH -> EVENT: the ``ppt_*`` attributes in the EVENT details, the
    payload as sent, to subscribers of every serializer, including one that
    did not announce the feature (the spec: the broker cannot know; the
    subscriber deals with it).  A passthru publication is not retained.
    """
    subscribers = [
        await peer(live_router, PPT_ROLES, "websocket", "json"),
        await peer(live_router, PPT_ROLES, "rawsocket", "cbor"),
        await peer(live_router, PLAIN_ROLES, "websocket", "msgpack"),
    ]
    for s in subscribers:
        await s.request([SUBSCRIBE, 1, {}, "com.example.sealed"], (SUBSCRIBED,))
    publisher = await peer(live_router, PPT_ROLES, "rawsocket", "msgpack")
    publisher.send([PUBLISH, 1, {**PPT, "acknowledge": True, "retain": True}, "com.example.sealed", [SECRET]])
    published = await publisher.wait_for(lambda m: m[0] in (PUBLISHED, ERROR))
    assert published[0] == PUBLISHED
    for s in subscribers:
        event = await s.wait_nth(EVENT, 1)
        assert event[3:] == [PPT, [carried(s.serializer, SECRET)]]
    late = await peer(live_router, PPT_ROLES, "websocket", "json")
    await late.request([SUBSCRIBE, 1, {"get_retained": True}, "com.example.sealed"], (SUBSCRIBED,))
    await late.fence()
    assert late.of_type(EVENT) == []
    for p in (*subscribers, publisher, late):
        await p.goodbye()


@pytest.mark.parametrize("role,message", [
    ("caller", [CALL, 5, dict(PPT), "com.example.secret", ["x"]]),
    ("publisher", [PUBLISH, 5, dict(PPT), "com.example.sealed", ["x"]]),
])
@pytest_twisted.ensureDeferred
async def test_unannounced_sender_is_a_protocol_violation(live_router, role, message):
    """A caller or publisher that did not announce payload_passthru_mode and sends a passthru message gets ABORT protocol_violation (the spec)."""
    callee = await peer(live_router, PPT_ROLES)
    await callee.register(1, "com.example.secret")
    roles = {**PPT_ROLES, role: {}}
    sender = await peer(live_router, roles)
    sender.send(message)
    abort = await sender.wait_for(lambda m: m[0] == ABORT)
    assert abort[2] == "wamp.error.protocol_violation" and "payload_passthru_mode" in abort[1]["message"]
    await callee.goodbye()


@pytest_twisted.ensureDeferred
async def test_unannounced_callee_yield_is_a_protocol_violation(live_router):
    """A callee that did not announce the feature and YIELDs in passthru mode is aborted; its caller gets an ERROR (every CALL ends)."""
    callee = await peer(live_router, {**PPT_ROLES, "callee": {}})
    await callee.register(1, "com.example.plain")
    caller = await peer(live_router, PPT_ROLES)
    caller.send([CALL, 1, {}, "com.example.plain", [1]])
    inv = await callee.wait_nth(INVOCATION, 1)
    callee.send([YIELD, inv[1], dict(PPT), ["x"]])
    abort = await callee.wait_for(lambda m: m[0] == ABORT)
    assert abort[2] == "wamp.error.protocol_violation"
    error = await caller.wait_for(lambda m: m[0] == ERROR)
    assert error[2] == 1 and error[4] == "wamp.error.canceled"
    await caller.goodbye()


@pytest_twisted.ensureDeferred
async def test_passthru_needs_every_party(live_router):
    """
    A callee that did not announce the feature: the caller gets ERROR
    ``wamp.error.feature_not_supported`` and the callee nothing.  A passthru
    YIELD for a caller that did not announce it ends that call with the same
    ERROR (the spec's ERROR to the callee has no request to answer).
    """
    plain_callee = await peer(live_router, {**PPT_ROLES, "callee": {}})
    await plain_callee.register(1, "com.example.plain")
    ppt_callee = await peer(live_router, PPT_ROLES)
    await ppt_callee.register(1, "com.example.secret")
    caller = await peer(live_router, PPT_ROLES)
    caller.send([CALL, 1, dict(PPT), "com.example.plain", ["x"]])
    error = await caller.wait_for(lambda m: m[0] == ERROR and m[2] == 1)
    assert error[4] == "wamp.error.feature_not_supported"
    assert plain_callee.of_type(INVOCATION) == []

    plain_caller = await peer(live_router, {**PPT_ROLES, "caller": {}})
    plain_caller.send([CALL, 1, {}, "com.example.secret", [1]])
    inv = await ppt_callee.wait_nth(INVOCATION, 1)
    ppt_callee.send([YIELD, inv[1], dict(PPT), ["sealed"]])
    error = await plain_caller.wait_for(lambda m: m[0] in (ERROR, RESULT))
    assert (error[0], error[4]) == (ERROR, "wamp.error.feature_not_supported")
    for p in (plain_callee, ppt_callee, caller, plain_caller):
        await p.goodbye()


@pytest.mark.parametrize("options,args,kwargs,text", [
    ({**PPT, "ppt_scheme": ""}, ["x"], None, "'ppt_scheme'"),
    ({**PPT, "ppt_cipher": 5}, ["x"], None, "'ppt_cipher'"),
    (dict(PPT), ["x", "y"], None, "exactly one item"),
    (dict(PPT), [], None, "exactly one item"),
    (dict(PPT), ["x"], {"k": 1}, "kwargs"),
])
@pytest_twisted.ensureDeferred
async def test_bad_passthru_requests_are_refused(live_router, options, args, kwargs, text):
    """Bad ``ppt_*`` values and payloads other than one item without kwargs get ERROR invalid_argument naming the problem; the session stays."""
    callee = await peer(live_router, PPT_ROLES)
    await callee.register(1, "com.example.secret")
    caller = await peer(live_router, PPT_ROLES)
    raw = [CALL, 7, options, "com.example.secret", args] + ([kwargs] if kwargs is not None else [])
    caller.send(raw)
    error = await caller.wait_for(lambda m: m[0] == ERROR and m[2] == 7)
    assert error[4] == "wamp.error.invalid_argument" and text in error[5][0]
    publish = [PUBLISH, 8, {**options, "acknowledge": True}, "com.example.sealed", args] + ([kwargs] if kwargs is not None else [])
    caller.send(publish)
    error = await caller.wait_for(lambda m: m[0] == ERROR and m[2] == 8)
    assert error[4] == "wamp.error.invalid_argument" and text in error[5][0]
    assert callee.of_type(INVOCATION) == []
    await caller.fence()
    await caller.goodbye()
    await callee.goodbye()
