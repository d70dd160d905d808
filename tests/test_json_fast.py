"""router.wire.codec.FastJson: the reused C encoder and the direct scanner call agree with json.dumps and json.loads."""

from __future__ import annotations

import json
import math

import pytest

from router.wire.codec import FastJson, _json_default

SAMPLES = [
    [48, 1, {}, "com.example.echo", ["x" * 100]],
    [36, 2**53, 7, {"publisher": 5}, [1.5, -0.0, 1e300, None, True, False], {"k": [1, {"n": "é\u2028\"\\/"}]}],
    [50, 3, {}, [b"\x00\x01bytes"], {"nested": [[[]], {}, ""]}],
    [2, 12345, {"roles": {"broker": {"features": {"a": True}}}}],
]


@pytest.mark.parametrize("obj", SAMPLES)
def test_same_bytes_as_json_dumps(obj):
    """Each message encodes to exactly the bytes of json.dumps with the router's settings."""
    expected = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=_json_default, allow_nan=False)
    assert FastJson().serialize(obj) == expected.encode("utf-8")


@pytest.mark.parametrize(
    "obj, error",
    [([math.nan], ValueError), ([math.inf], ValueError), ([object()], TypeError), ([{1j: 1}], TypeError)],
)
def test_refuses_what_json_refuses(obj, error):
    """NaN, Infinity and values JSON has no form for raise, as before (the peer logs and skips the message)."""
    with pytest.raises(error):
        FastJson().serialize(obj)


def test_a_cycle_raises():
    """A payload that contains itself raises instead of looping."""
    loop: list = []
    loop.append(loop)
    with pytest.raises((ValueError, RecursionError)):
        FastJson().serialize([50, 1, {}, loop])


@pytest.mark.parametrize(
    "text",
    [b'[1,"a",{"b":[null,true,1.5]}]', b" [1,2]", b"[1,2] ", b"\t[1]\r\n", b"[1,2]x", b"[1] [2]", b"", b" ",
     b"[1,", b'"abc', b"nan", b"[-Infinity]", b'["\\ud800"]', b"{}", b"7"],
)  # fmt: skip
def test_decodes_and_refuses_as_json_loads(text):
    """Whitespace around a value is accepted, anything after it refused, exactly as json.loads with the router's settings."""
    reference = json.JSONDecoder(parse_constant=_refuse)
    try:
        expected = reference.decode(text.decode())
    except ValueError as exc:
        with pytest.raises(type(exc)):
            FastJson().unserialize(text)
    else:
        assert FastJson().unserialize(text) == [expected]


def _refuse(name):
    raise ValueError(f"{name} is not valid JSON")
