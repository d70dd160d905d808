"""
Choices made so that popular clients work unchanged (issue 13, "Interop"),
with real autobahn-python clients over loopback: unique anonymous authids
(Crossbar's behaviour) and the CALL ``timeout`` unit (milliseconds, as the
spec says; autobahn-python documents seconds).

Progressive results for callees without ``call_canceling`` and the invocation
policy URI are pinned in ``tests/test_advanced_rpc.py`` and
``tests/test_interop_js_advanced.py``.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, PublishOptions
from twisted.internet.defer import Deferred

from router.config import RealmConfig
from tests.auth_helpers import UNIQUE_ANONYMOUS
from tests.config_helpers import config_error, realm_from_toml
from tests.raw_client import Calls, fence
from tests.test_lifecycle import Started
from tests.wamp_clients import join, join_as, leave


@pytest_twisted.ensureDeferred
async def test_anonymous_sessions_get_their_own_authid(live_router):
    """
    Anonymous sessions that ask for no authid each get their own
    (``anonymous-`` and 16 random base32 characters), so ``exclude_authid``
    of one anonymous session excludes that session only.  One that asks for
    an authid on an open realm still keeps it.
    """
    a = await join(live_router.ws_url)
    b = await join(live_router.rs_port, "rawsocket", "msgpack")
    named_one = await join_as(live_router, "carol")
    ids = [(await c.call("wamp.session.get", c.sid))["authid"] for c in (a, b, named_one)]
    assert ids[:2] == [UNIQUE_ANONYMOUS, UNIQUE_ANONYMOUS] and ids[0] != ids[1]
    assert ids[2] == "carol"
    got_a, got_b = Calls(), Calls()
    await a.subscribe(got_a, "com.example.who")
    await b.subscribe(got_b, "com.example.who")
    await named_one.publish("com.example.who", 1, options=PublishOptions(exclude_authid=[ids[0]], acknowledge=True))
    await fence(a, b)
    assert (len(got_a.calls), len(got_b.calls)) == (0, 1)
    for client in (a, b, named_one):
        await leave(client)


@pytest_twisted.ensureDeferred
async def test_shared_anonymous_authid_is_a_setting():
    """
    ``anonymous_authid = "shared"`` gives every anonymous session the authid
    ``anonymous`` (wampd's old behaviour): ``exclude_authid`` of it excludes
    them all.
    """
    async with Started(realms=(RealmConfig("realm1", anonymous_authid="shared"),)) as r:
        a, b = await join(r.ws_url), await join(r.ws_url)
        assert [(await c.call("wamp.session.get", c.sid))["authid"] for c in (a, b)] == ["anonymous", "anonymous"]
        got = Calls()
        await b.subscribe(got, "com.example.who")
        await a.publish("com.example.who", 1, options=PublishOptions(exclude_authid=["anonymous"], acknowledge=True))
        await a.publish("com.example.who", 2, options=PublishOptions(acknowledge=True))
        await fence(b)
        assert [c[0] for c in got.calls] == [(2,)]
        await leave(a)
        await leave(b)


def test_anonymous_authid_config():
    """The realm key reads from TOML; a bad value names the key and what it may be."""
    assert realm_from_toml('[[realm]]\nname = "r"\nanonymous_authid = "shared"\n').anonymous_authid == "shared"
    assert realm_from_toml('[[realm]]\nname = "r"\n').anonymous_authid == "unique"
    error = config_error('[[realm]]\nname = "r"\nanonymous_authid = "random"\n')
    assert "anonymous_authid" in str(error) and "unique, shared" in str(error)


@pytest_twisted.ensureDeferred
async def test_call_timeout_is_in_milliseconds(live_router):
    """
    ``CallOptions(timeout=...)`` is sent as given and read in milliseconds, as
    the spec says: autobahn-python's ``timeout=2`` (documented as seconds)
    times out after 2 ms with ``wamp.error.timeout``; ``timeout=2000`` is two
    seconds and lets a quick callee answer (the README's fix).
    """
    callee = await join(live_router.ws_url)
    caller = await join(live_router.ws_url)
    held = []

    def slow():
        d = Deferred()
        held.append(d)
        return d

    await callee.register(slow, "com.example.slow")
    await callee.register(lambda: "quick", "com.example.quick")
    with pytest.raises(ApplicationError) as info:
        await caller.call("com.example.slow", options=CallOptions(timeout=2))
    assert info.value.error == "wamp.error.timeout"
    assert await caller.call("com.example.quick", options=CallOptions(timeout=2000)) == "quick"
    for d in held:
        d.callback(None)
    await leave(callee)
    await leave(caller)
