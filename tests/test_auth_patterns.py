"""
Authorization of pattern-based subscriptions and registrations
(router.auth.Authorizer with ``match`` prefix or wildcard): a pattern is
allowed only when every URI it can match is.  No sockets.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from twisted.internet.defer import succeed

from router.auth import Authorizer
from router.config import PermissionConfig, RoleConfig


def perm(uri, match="exact", **actions):
    return PermissionConfig(uri, match, **actions)


ALL = dict(call=True, register=True, publish=True, subscribe=True)

USER = RoleConfig(
    "user",
    (
        perm("com.app.", "prefix", **ALL),
        perm("com.app.admin.", "prefix"),
        perm("com.app.admin.status", call=True),
        perm("com..danger", "wildcard"),
        perm("org..echo", "wildcard", call=True),
        perm("news.x", subscribe=True),
        perm("pub.", "prefix", subscribe=True),
        perm("pub.secret"),
        perm("w.a.", "wildcard", subscribe=True),
        perm("w..", "wildcard", subscribe=True),
        perm("w.a.b", subscribe=False),
    ),
)
MONITOR = RoleConfig("monitor", (perm("", "prefix", subscribe=True),))
SERVICE = RoleConfig("service", (perm("", "prefix", **ALL), perm("wamp.", "prefix", call=True, subscribe=True)))


def session(role, session_id=1):
    return SimpleNamespace(session_id=session_id, authrole=role)


@pytest.fixture
def authorizer():
    return Authorizer([USER, MONITOR, SERVICE])


@pytest.mark.parametrize(
    "action,pattern,match,allowed",
    [
        # a prefix pattern must not reach past a more specific denial
        ("subscribe", "com.app.", "prefix", False),  # com.app.admin. denies inside
        ("subscribe", "com.app.admin", "prefix", False),
        ("subscribe", "com.app.x", "prefix", True),
        ("register", "com.app.", "prefix", False),
        ("register", "com.app.api.", "prefix", True),
        ("subscribe", "pub.", "prefix", False),  # exact pub.secret denies inside
        ("subscribe", "pub.s", "prefix", False),
        ("subscribe", "pub.a", "prefix", True),
        # ...nor widen an exact permission
        ("subscribe", "news.x", "prefix", False),
        ("subscribe", "news.x", "exact", True),
        ("subscribe", "news.x", "wildcard", True),  # no empty component: one URI
        ("subscribe", "news.", "prefix", False),
        # wildcard patterns
        ("subscribe", "com.app..", "wildcard", False),  # com.app.admin.<x> is in its range
        ("subscribe", "com.app..x", "wildcard", False),
        ("subscribe", "com.app.api.", "wildcard", True),
        ("subscribe", "pub.", "wildcard", False),  # pub.secret is in its range
        ("subscribe", "pub..x", "wildcard", True),
        ("subscribe", "..danger", "wildcard", False),  # com..danger denies part of it
        ("subscribe", "org..echo", "wildcard", False),  # the wildcard permission allows call only
        ("subscribe", "w.a.", "wildcard", False),  # exact w.a.b denies one of them
        ("subscribe", "w.c.", "wildcard", True),  # w.. holds all of them, w.a. none
        ("subscribe", "w..x", "wildcard", True),  # w.a.x is decided by w.a., the others by w..: both allow
        ("subscribe", "w..b", "wildcard", False),  # ...but exact w.a.b is in this one's range
        # call and publish have no patterns: the match is ignored
        ("call", "com.app.echo", "prefix", True),
        ("publish", "com.app.admin.x", "wildcard", False),
    ],
)
def test_user_patterns(authorizer, action, pattern, match, allowed):
    assert authorizer.authorize(session("user"), action, pattern, match) is allowed


@pytest.mark.parametrize(
    "role,action,pattern,match,allowed",
    [
        # a catch-all prefix "" never opens wamp.*, not even through a pattern
        ("monitor", "subscribe", "com.", "prefix", True),
        ("monitor", "subscribe", "w", "prefix", False),
        ("monitor", "subscribe", "wamp", "prefix", False),
        ("monitor", "subscribe", "wamp.session.", "prefix", False),
        ("monitor", "subscribe", ".session.on_join", "wildcard", False),
        ("monitor", "subscribe", "..", "wildcard", False),
        ("monitor", "subscribe", "com..x", "wildcard", True),
        # a role that names wamp. may
        ("service", "subscribe", "w", "prefix", True),
        ("service", "subscribe", "wamp.session.", "prefix", True),
        ("service", "subscribe", ".session.on_join", "wildcard", True),
        # nobody registers a pattern that reaches wamp.*
        ("service", "register", "w", "prefix", False),
        ("service", "register", ".session.count", "wildcard", False),
        ("service", "register", "com.", "prefix", True),
        ("service", "register", "com..x", "wildcard", True),
    ],
)
def test_reserved_patterns(authorizer, role, action, pattern, match, allowed):
    assert authorizer.authorize(session(role), action, pattern, match) is allowed


def test_unknown_match_policy(authorizer):
    with pytest.raises(ValueError, match="match policy"):
        authorizer.authorize(session("user"), "subscribe", "com.app.x", "regex")


def test_open_realm_patterns():
    open_realm = Authorizer()
    anonymous = session("anonymous")
    assert open_realm.authorize(anonymous, "subscribe", "com.", "prefix") is True
    assert open_realm.authorize(anonymous, "subscribe", "..x", "wildcard") is False  # may match wamp.*
    assert open_realm.authorize(anonymous, "register", "com..x", "wildcard") is True


def test_dynamic_authorizer_and_patterns():
    asked = []

    def three(session, action, uri):
        asked.append((action, uri))
        return True

    def four(session, action, uri, match="exact"):
        asked.append((action, uri, match))
        return succeed(uri != "no.")

    partial = RoleConfig("user", (perm("a.", "prefix", subscribe=True),))
    # a 3-argument authorizer is never asked about a pattern: denied
    assert Authorizer([partial], three).authorize(session("user"), "subscribe", "..x", "wildcard") is False
    assert Authorizer([partial], three).authorize(session("user"), "subscribe", "b.x", "exact") is True
    assert asked == [("subscribe", "b.x")]
    asked.clear()
    # one that takes match is asked what the permissions do not decide, with the match
    flexible = Authorizer([partial], four, cache_size=10)
    results = []
    flexible.authorize(session("user"), "subscribe", "..x", "wildcard").addCallback(results.append)
    flexible.authorize(session("user"), "subscribe", "no.", "prefix").addCallback(results.append)
    assert flexible.authorize(session("user"), "subscribe", "a.", "prefix") is True  # the permissions decide
    assert flexible.authorize(session("user"), "subscribe", "..x", "wildcard") is True  # cached
    flexible.authorize(session("user"), "subscribe", "..x", "exact")  # not the same question
    assert results == [True, False]
    assert asked == [("subscribe", "..x", "wildcard"), ("subscribe", "no.", "prefix"), ("subscribe", "..x", "exact")]
