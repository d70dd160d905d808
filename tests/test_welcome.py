"""router.welcome: WELCOMEs spliced from a template are byte for byte the ordinary encoding."""

from __future__ import annotations

import random

import pytest
from autobahn.wamp import message

from router.core import ROUTER_ROLES
from router import welcome as welcome_module
from router.welcome import FastWelcome
from router.wire import codec_for


def _pair(session: int, authextra=None, authid="anonymous"):
    kwargs = dict(
        session=session,
        roles=ROUTER_ROLES,
        realm="realm1",
        authid=authid,
        authrole="anonymous",
        authmethod="anonymous",
        authprovider="static",
        authextra=authextra,
        custom={"x_router_agent": "wampd-test"},
    )
    identity = ("realm1", "anonymous", "anonymous", "static", "wampd-test", id(ROUTER_ROLES))
    return FastWelcome(identity=identity, **kwargs), message.Welcome(**kwargs)


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
def test_spliced_bytes_equal_the_ordinary_encoding(serializer):
    """For IDs of every size a serializer writes differently, the spliced WELCOME equals Autobahn's encoding."""
    codec = codec_for(serializer)
    rng = random.Random(7)
    ids = [1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53] + [rng.randint(1, 2**53) for _ in range(200)]
    for session in ids:
        fast, plain = _pair(session)
        assert codec.encode(fast) == codec.encode(plain), session
    assert fast.identity is not None


def test_authextra_is_never_templated():
    """A WELCOME with authextra (which may differ per session) is encoded the ordinary way."""
    codec = codec_for("json")
    fast, plain = _pair(5, authextra={"token": "abc"})
    assert fast.identity is None
    assert codec.encode(fast) == codec.encode(plain)
    other, plain_other = _pair(6, authextra={"token": "xyz"})
    assert codec.encode(other) == codec.encode(plain_other)
    assert b"xyz" in codec.encode(other)


def test_identities_do_not_mix():
    """Two authids of the same realm get their own bytes."""
    codec = codec_for("msgpack")
    alice, alice_plain = _pair(9, authid="alice")
    bob, bob_plain = _pair(9, authid="bob")
    assert codec.encode(alice) == codec.encode(alice_plain)
    assert codec.encode(bob) == codec.encode(bob_plain)
    assert codec.encode(alice) != codec.encode(bob)


@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
def test_authids_are_spliced_into_one_template(serializer):
    """
    Sessions that differ only in authid (every anonymous session has its
    own) share one template, and each spliced WELCOME equals Autobahn's
    encoding, for authids of every length a serializer writes differently
    and for non-ASCII ones.
    """
    codec = codec_for(serializer)
    authids = [f"anonymous-{i:016d}" for i in range(50)] + ["a", "x" * 23, "x" * 24, "x" * 31, "x" * 32, "x" * 255,
               "x" * 256, "x" * 70000, "ünïcødé", "名前", 'quote"and\\slash', "null\u0000byte"]  # fmt: skip
    before = len(welcome_module._TEMPLATES)
    for n, authid in enumerate(authids):
        fast, plain = _pair(1000 + n, authid=authid)
        assert fast.identity is not None
        assert codec.encode(fast) == codec.encode(plain), authid
    assert len(welcome_module._TEMPLATES) - before <= 1


def test_an_empty_authid_is_not_templated():
    """A WELCOME whose authid is empty (Autobahn leaves it out of the details) is encoded the ordinary way."""
    codec = codec_for("json")
    fast, plain = _pair(5, authid="")
    assert fast.identity is None
    assert codec.encode(fast) == codec.encode(plain)
