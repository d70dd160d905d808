"""
The live status page: realms, sessions, subscriptions, registrations,
message rates and recent lifecycle events, updated in the browser.

Paths (all behind the page's secret):

* ``GET /status``: the page (HTML; its script and style are
  ``/status/app.js`` and ``/status/app.css``, package data of
  :mod:`router.ops`).  ``/status?token=<secret>`` checks the secret, sets an
  ``HttpOnly``, ``SameSite=Strict`` cookie (a keyed hash of the secret, not
  the secret) and redirects to ``/status``, so the secret does not stay in
  the address bar or the browser's history.
* ``GET /status/events``: server-sent events.  ``snapshot`` (the whole
  state, as ``/status/snapshot``) at once and every ``interval`` seconds;
  ``lifecycle`` for each lifecycle event as it happens.
* ``GET /status/snapshot``: the state as JSON, for scripts.

**Why server-sent events rather than the meta API over WebSocket.** The page
needs what the meta API does not say (transport, address, serializer,
message rates, listener events), and a meta API client would be a WAMP
session of its own: it would need a role allowed to call ``wamp.*`` in every
realm, show up in the very lists it displays, and need Autobahn's browser
build vendored and kept up to date.  SSE is plain HTTP: ``EventSource`` is in
every browser, reconnects by itself, sends the cookie, and needs no library.

**Access.** A secret (``[status] secret``, ``secret_env`` or
``secret_file``), sent as the ``token`` query parameter once, then as the
cookie, or as ``Authorization: Bearer <secret>``; compared in constant time.
Anything else gets 401 and nothing about the router; a check that fails for
any reason refuses.  Pages are ``no-store``, framed by nobody, and limited
by a Content Security Policy to their own script and style; names from
clients (authids, topics) are put in the page as text, never as HTML.

**Bounded.** At most :data:`MAX_VIEWERS` open event streams (more get 503).
A viewer that stops reading is paused (Twisted's producer API): it is sent
nothing until it reads again, and then a fresh snapshot.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import deque
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs

from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web import server
from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer

from router import __version__

__all__ = ["StatusPage", "MAX_VIEWERS"]

_log = Logger(namespace="wampd.status")

MAX_VIEWERS = 20
_COOKIE = b"wampd_status"
_LISTED = 500  # sessions, subscriptions and registrations listed at most (counts are always whole)
_STATIC = {
    b"/status": ("status.html", b"text/html; charset=utf-8"),
    b"/status/app.js": ("status.js", b"text/javascript; charset=utf-8"),
    b"/status/app.css": ("status.css", b"text/css; charset=utf-8"),
}
_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _event_fields(event) -> dict:
    """What the page shows of a lifecycle event: its name, the session and connection it is about, and why."""
    out: dict[str, Any] = {"event": event.name}
    session = getattr(event, "session", None)
    conn = getattr(event, "connection", None) or getattr(session, "connection", None)
    if session is not None:
        out.update(session=session.session_id, realm=session.realm, authid=session.authid, authrole=session.authrole)
    if conn is not None:
        out.update(connection=conn.id, address=conn.peer, transport=conn.transport)
    for name in ("reason", "message", "realm", "authid"):
        value = getattr(event, name, None)
        if isinstance(value, str) and name not in out:
            out[name] = value
    return out


class _StatusListener:
    """Keeps the recent lifecycle events and passes each to the open pages."""

    name = "wampd.status"
    priority = 2**31 - 1

    def __init__(self, page: "StatusPage") -> None:
        self.page = page
        for method in ("client_connected", "client_rejected", "session_joined", "session_left",
                       "client_disconnected", "client_error", "server_launched", "server_stopping"):
            setattr(self, f"on_{method}", self._record)

    def _record(self, event) -> None:
        self.page.lifecycle(event)


@implementer(IPushProducer)
class _Viewer:
    """One open event stream."""

    def __init__(self, page: "StatusPage", request) -> None:
        self.page, self.request, self.paused = page, request, False

    def send(self, kind: str, data: Any) -> None:
        if not self.paused:
            self.request.write(b"event: %s\ndata: %s\n\n" % (kind.encode(), json.dumps(data).encode()))

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            self.send("snapshot", self.page.snapshot())

    def stopProducing(self) -> None:
        self.page.gone(self)


class StatusPage:
    """The page, its event streams and the state they show, for one router."""

    def __init__(self, router: Any, meter: Any, secret: str, recent_events: int = 50, interval: float = 1.0) -> None:
        self.router, self.meter, self.interval = router, meter, interval
        self._secret = secret.encode()
        self._cookie = hmac.new(self._secret, b"wampd status page cookie", hashlib.sha256).hexdigest().encode()
        self.events: deque = deque(maxlen=recent_events)
        self.viewers: list[_Viewer] = []
        self._loop: LoopingCall | None = None
        self._last = (router.clock.seconds(), *meter.totals())
        self._rates = (0.0, 0.0)
        router.dispatcher.add(_StatusListener(self))

    # -- access -------------------------------------------------------------------

    def allowed(self, request) -> bool:
        """Whether the request carries the secret (bearer) or the page's cookie; any doubt refuses."""
        try:
            values = request.requestHeaders.getRawHeaders(b"authorization") or []
            if len(values) == 1:
                scheme, _, token = values[0].strip().partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._secret):
                    return True
            cookie = request.getCookie(_COOKIE)
            return cookie is not None and hmac.compare_digest(cookie, self._cookie)
        except Exception:
            _log.failure("checking a status page request failed; refused")
            return False

    def render(self, request):
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-frame-options", b"DENY")
        request.setHeader(b"x-content-type-options", b"nosniff")
        request.setHeader(b"referrer-policy", b"no-referrer")
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return _text(request, 405, "use GET")
        path = request.path
        token = parse_qs(request.uri.partition(b"?")[2]).get(b"token")
        if path == b"/status" and token is not None:
            return self._login(request, token)
        if not self.allowed(request):
            request.setHeader(b"www-authenticate", b'Bearer realm="wampd status"')
            return _text(request, 401, "the status page needs its secret: open /status?token=<secret> once, "
                         "or send 'Authorization: Bearer <secret>'")
        if path == b"/status/events":
            return self._stream(request)
        if path == b"/status/snapshot":
            request.setHeader(b"content-type", b"application/json")
            return json.dumps(self.snapshot()).encode()
        if path in _STATIC:
            name, kind = _STATIC[path]
            request.setHeader(b"content-type", kind)
            request.setHeader(b"content-security-policy", _CSP)
            return files("router.ops").joinpath(name).read_bytes()
        return _text(request, 404, "no such page")

    def _login(self, request, token: list[bytes]) -> bytes:
        if len(token) != 1 or not hmac.compare_digest(token[0], self._secret):
            request.setHeader(b"www-authenticate", b'Bearer realm="wampd status"')
            return _text(request, 401, "wrong token")
        request.addCookie(
            _COOKIE, self._cookie, path=b"/status", httpOnly=True, sameSite=b"strict", secure=request.isSecure()
        )
        request.setResponseCode(303)
        request.setHeader(b"location", b"/status")
        return b""

    # -- the event streams --------------------------------------------------------

    def _stream(self, request):
        if len(self.viewers) >= MAX_VIEWERS:
            return _text(request, 503, f"at most {MAX_VIEWERS} status pages may be open at once")
        request.setHeader(b"content-type", b"text/event-stream")
        viewer = _Viewer(self, request)
        self.viewers.append(viewer)
        request.registerProducer(viewer, True)
        request.notifyFinish().addBoth(lambda _: self.gone(viewer))
        request.write(b"retry: 2000\n\n")
        viewer.send("snapshot", self.snapshot())
        if self._loop is None:
            self._loop = LoopingCall(self._tick)
            self._loop.clock = self.router.clock
            self._loop.start(self.interval, now=False)
        return server.NOT_DONE_YET

    def gone(self, viewer: _Viewer) -> None:
        if viewer in self.viewers:
            self.viewers.remove(viewer)
        if not self.viewers and self._loop is not None:
            if self._loop.running:
                self._loop.stop()
            self._loop = None

    def close(self) -> None:
        """The router stops: end every stream (the browsers reconnect to whatever comes next)."""
        for viewer in list(self.viewers):
            self.gone(viewer)
            viewer.request.unregisterProducer()
            viewer.request.finish()

    def _tick(self) -> None:
        state = self.snapshot()
        for viewer in list(self.viewers):
            viewer.send("snapshot", state)

    def lifecycle(self, event) -> None:
        fields = _event_fields(event)
        fields["at"] = self.router.clock.seconds()
        self.events.append(fields)
        for viewer in list(self.viewers):
            viewer.send("lifecycle", fields)

    # -- the state ------------------------------------------------------------------

    def _update_rates(self, now: float) -> tuple[float, float]:
        then, received, sent = self._last
        if now - then >= min(self.interval, 1.0):
            got, gave = self.meter.totals()
            self._rates = ((got - received) / (now - then), (gave - sent) / (now - then))
            self._last = (now, got, gave)
        return self._rates

    def snapshot(self) -> dict:
        """Everything the page shows, as plain JSON values."""
        router, now = self.router, self.router.clock.seconds()
        realms, sessions, subscriptions, registrations = [], [], [], []
        for name, realm in sorted(router.realms.items()):
            subs, regs = realm.broker.subscriptions(), realm.dealer.registrations()
            realms.append({"name": name, "sessions": len(realm.sessions), "subscriptions": len(subs),
                           "registrations": len(regs), "retained": len(realm.broker.retained_topics())})
            for session in realm.sessions.values():
                info = session.info
                if info is None or len(sessions) >= _LISTED:
                    continue
                conn = info.connection
                sessions.append({
                    "id": info.session_id, "realm": name, "authid": info.authid, "authrole": info.authrole,
                    "transport": conn.transport, "serializer": conn.serializer, "address": conn.peer,
                    "connected_for": round(now - conn.opened_at, 1),
                })
            subscriptions += [{"realm": name, "uri": s.uri, "match": s.match, "subscribers": len(s.subscribers)}
                              for s in subs[: _LISTED - len(subscriptions)]]
            registrations += [{"realm": name, "uri": r.uri, "match": r.match, "invoke": r.invoke, "callees": len(r.callees)}
                              for r in regs[: _LISTED - len(registrations)]]
        received, sent = self._update_rates(now)
        return {
            "version": __version__, "now": now, "uptime": round(now - self.meter.started, 1),
            "connections": len(router.connections), "realms": realms, "sessions": sessions,
            "subscriptions": subscriptions, "registrations": registrations,
            "rates": {"received": round(received, 1), "sent": round(sent, 1)},
            "events": list(self.events),
        }


def _text(request, status: int, text: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return text.encode() + b"\n"
