"""
A dynamic authenticator that lets in the users already logged in to your web
application, by its session cookie.

A browser sends the page's cookies with the WebSocket handshake, so the
client needs no credentials of its own: it joins with
``authmethods=["anonymous"]`` (autobahn-js's default) and the router asks this
authenticator, which

- reads the session cookie (``sid``, or ``WAMPD_SESSION_COOKIE``) from the
  handshake's ``Cookie`` header;
- looks it up in the web application's session store: here a SQLite table
  ``sessions(sid TEXT PRIMARY KEY, user TEXT, role TEXT, expires REAL)``
  (``expires`` in Unix seconds) in the file ``WAMPD_SESSION_DB``, read-only
  and in a thread, so the router never waits on the disk.  Change
  :meth:`CookieAuthenticator.lookup` to ask your own store (Redis, your
  framework's session table, an HTTP call);
- checks the ``Origin`` header.  Browsers send cookies on cross-site
  WebSocket connections too, so without this check any page the user visits
  could connect as the user (cross-site WebSocket hijacking).  The allowed
  origins are ``WAMPD_COOKIE_ORIGINS`` (comma-separated, e.g.
  ``https://app.example.com``); when that is not set, only the origin of the
  router's own host (``Host`` header) is allowed.  Clients that are not
  browsers send no ``Origin`` and are not affected.

The session's authid is the session's ``user``, its role the session's
``role``; WELCOME's ``authmethod`` is ``cookie``.  An unknown or expired
session or a foreign origin gets the router's usual "authentication failed".
So does a client without the cookie (a RawSocket connection never has one),
unless ``WAMPD_COOKIE_GUESTS=1``: a client without a valid session (no
cookie, an unknown or an expired one) then joins as the realm's anonymous
role (``auth = [{ method = "anonymous", role = "guest" }]``).  Standard library
only.  Plug it into a realm::

    [[realm]]
    name = "realm1"
    auth = [{ method = "anonymous", transports = ["websocket"] }]
    authenticator = "examples.auth.cookie_authenticator:CookieAuthenticator"
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from urllib.parse import quote, urlsplit

from twisted.internet import threads
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from router.auth import AUTHENTICATION_FAILED, Accept, Deny, HelloInfo

__all__ = ["CookieAuthenticator"]

DB_ENV = "WAMPD_SESSION_DB"

_log = Logger(namespace="examples.auth.cookie")
_FAILED = Deny("authentication failed", AUTHENTICATION_FAILED)


class CookieAuthenticator:
    """
    The dynamic authenticator: C{authenticator(hello, method, signature)}.
    wampd creates it without arguments, so by default it reads its settings
    from the environment (C{WAMPD_SESSION_DB}, C{WAMPD_SESSION_COOKIE},
    C{WAMPD_COOKIE_ORIGINS}, C{WAMPD_COOKIE_GUESTS}); the router refuses to start when the session
    database is not set or does not exist.
    """

    query = "SELECT user, role, expires FROM sessions WHERE sid = ?"

    def __init__(
        self,
        database: str | os.PathLike[str] | None = None,
        *,
        cookie: str | None = None,
        origins: list[str] | None = None,
        guests: bool | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if database is None:
            database = os.environ.get(DB_ENV)
        if not database:
            raise RuntimeError(f"the session database is not set: set the environment variable {DB_ENV}")
        path = Path(database)
        if not path.is_file():
            raise RuntimeError(f"the session database {str(path)!r} does not exist")
        self.database = path.resolve()
        self.cookie = cookie or os.environ.get("WAMPD_SESSION_COOKIE") or "sid"
        if origins is None:
            origins = [o.strip() for o in os.environ.get("WAMPD_COOKIE_ORIGINS", "").split(",") if o.strip()]
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)
        if guests is None:
            guests = os.environ.get("WAMPD_COOKIE_GUESTS", "") in ("1", "true", "yes")
        self.guests = guests
        self.clock = clock

    def __repr__(self) -> str:
        return f"<CookieAuthenticator {str(self.database)!r} cookie={self.cookie!r}>"

    def __call__(self, hello: HelloInfo, method: str, signature: str | None) -> Accept | Deny | Deferred | None:
        if method != "anonymous":
            return None  # ticket, wampcra, cryptosign: not ours
        why = self._origin_refused(hello)
        if why is not None:
            return self._refuse(hello, why)
        sid = hello.cookies.get(self.cookie)
        if not sid:
            rawsocket = " (RawSocket has no cookies)" if hello.transport == "rawsocket" else ""
            return self._refuse(hello, f"no {self.cookie} cookie{rawsocket}", guest=True)
        d = threads.deferToThread(self.lookup, sid)
        d.addCallback(self._decide, hello)
        return d

    # -- the pieces you may want to change ------------------------------------------------

    def lookup(self, sid: str) -> tuple[str, str, float] | None:
        """
        The C{(user, role, expires)} of session C{sid}, or None.  Runs in a
        thread: it may block.
        """
        uri = f"file:{quote(str(self.database))}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=2.0)) as db:
            row = db.execute(self.query, (sid,)).fetchone()
        return tuple(row) if row is not None else None  # type: ignore[return-value]

    def _origin_refused(self, hello: HelloInfo) -> str | None:
        origin = hello.headers.get("origin")
        if origin is None:
            return None  # not a browser: it chose which cookies to send
        origin = origin.rstrip("/").lower()
        if self.origins:
            allowed = origin in self.origins
        else:
            parts = urlsplit(origin)
            allowed = parts.scheme in ("http", "https") and parts.netloc == hello.headers.get("host", "").lower()
        return None if allowed else f"origin {origin!r} is not allowed"

    # -- the answers --------------------------------------------------------------------

    def _decide(self, row, hello: HelloInfo) -> Accept | Deny | None:
        if row is None:
            return self._refuse(hello, "unknown session", guest=True)
        user, role, expires = row
        if not isinstance(user, str) or not user.strip() or not isinstance(role, str) or not role.strip():
            return self._refuse(hello, "session has no user or role")
        if not isinstance(expires, (int, float)) or expires <= self.clock():
            return self._refuse(hello, "session expired", guest=True)
        return Accept(authid=user, authrole=role, authmethod="cookie", authprovider="cookie")

    def _refuse(self, hello: HelloInfo, why: str, guest: bool = False) -> Deny | None:
        """
        Refuse, or with guests allowed and C{guest}, let the client in as
        a guest (a stale cookie gets no more than no cookie at all).
        """
        if guest and self.guests:
            _log.debug("session cookie not valid ({why}): joining as a guest", why=why)
            return None
        _log.info(
            "session cookie refused on realm {realm} from {host}: {why}",
            realm=hello.realm,
            host=hello.host,
            why=why,
        )
        return _FAILED
