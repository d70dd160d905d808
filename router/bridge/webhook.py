"""
Webhook subscribers: every event on a topic is POSTed as JSON to a URL.

    POST <url>   {"topic": "com.example.news", "publication": 123, "args": [...], "kwargs": {...}}

One POST at a time per webhook, so events arrive in the order they were
published.  A POST that fails (no connection, no answer within ``timeout``,
a status other than 2xx) is retried ``retries`` times, after ``backoff``
seconds and then twice as long each time (at most 60 s); after the last
try the event is dropped.  Events wait in a queue of at most ``max_queue``;
one more is dropped.  An event whose body is over ``max_body`` is dropped.
Drops are counted (``dropped``), and failures are logged once per outage:
one warning when POSTs start failing, one line when one succeeds again,
with the count of events dropped in between.  A response body is never
read past 64 KiB (it is not used).

Binary payloads (from msgpack or CBOR publishers) are base64 text.
"""

from __future__ import annotations

import json
from collections import deque

from twisted.logger import Logger

from router.bridge._client import HttpFailure, as_json, post
from router.bridge._session import BridgeSession

__all__ = ["Webhook"]

_log = Logger(namespace="wampd.bridge")
_MAX_BACKOFF = 60.0
_MAX_RESPONSE = 65536


class Webhook:
    def __init__(self, realm, config, agent, clock) -> None:
        self.config = config
        self.agent = agent
        self.clock = clock
        self.queue: deque = deque()
        self.dropped = 0
        self.delivered = 0
        self._busy = None  # the POST in flight, or the retry timer
        self._attempt = 0
        self._failing: str | None = None  # why, while POSTs fail
        self._dropped_in_outage = 0
        self._stopped = False
        self.session = BridgeSession(realm, f"webhook:{config.url}", self._event)
        self.session.subscribe(config.topic, config.match)

    def _event(self, event) -> None:
        cfg = self.config
        body = {
            "topic": event.topic or cfg.topic,
            "publication": event.publication,
            "args": list(event.args or ()),
            "kwargs": dict(event.kwargs or {}),
        }
        try:
            data = json.dumps(body, default=as_json, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            self._drop(f"an event on {body['topic']} is not JSON: {exc}")
            return
        if len(data) > cfg.max_body:
            self._drop(f"an event of {len(data)} bytes is over max_body ({cfg.max_body})")
            return
        if len(self.queue) >= cfg.max_queue:
            self._drop(f"{cfg.max_queue} events are waiting (max_queue)")
            return
        self.queue.append(data)
        if self._busy is None:
            self._next()

    def _next(self) -> None:
        if self._stopped or not self.queue:
            self._busy = None
            return
        cfg = self.config
        d = self._busy = post(self.agent, self.clock, cfg.url, self.queue[0], cfg.headers, cfg.timeout, _MAX_RESPONSE)
        d.addCallbacks(self._answered, self._failed)

    def _answered(self, result) -> None:
        status, _ = result
        if not 200 <= status < 300:
            self._failed_because(f"{self.config.url} answered HTTP {status}")
            return
        self.queue.popleft()
        self.delivered += 1
        self._attempt = 0
        if self._failing is not None:
            _log.info(
                "webhook {url} for {topic} is delivering again; {dropped} events were dropped while it failed",
                url=self.config.url, topic=self.config.topic, dropped=self._dropped_in_outage,
            )
            self._failing, self._dropped_in_outage = None, 0
        self._next()

    def _failed(self, failure) -> None:
        if self._stopped:
            return
        failure.trap(HttpFailure)
        self._failed_because(f"POST {self.config.url}: {failure.value.text}")

    def _failed_because(self, why: str) -> None:
        cfg = self.config
        if self._failing is None:
            self._failing = why
            _log.warn(
                "webhook for {topic} is failing: {why}; retrying each event {retries} times, then dropping it "
                "(logged again when it recovers)",
                topic=cfg.topic, why=why, retries=cfg.retries,
            )
        if self._attempt < cfg.retries:
            delay = min(cfg.backoff * 2**self._attempt, _MAX_BACKOFF)
            self._attempt += 1
            self._busy = self.clock.callLater(delay, self._next)
            return
        self.queue.popleft()
        self._attempt = 0
        self._drop(None)
        self._next()

    def _drop(self, why: str | None) -> None:
        """One event not delivered: counted; logged once per outage (``why`` None: already logged)."""
        self.dropped += 1
        if self._failing is not None or why is None:
            self._dropped_in_outage += 1
            return
        self._failing = why
        self._dropped_in_outage = 1
        _log.warn("webhook for {topic} dropped an event: {why} (logged again when it recovers)",
                  topic=self.config.topic, why=why)

    def stop(self) -> None:
        self._stopped = True
        busy, self._busy = self._busy, None
        if busy is not None:
            if hasattr(busy, "cancel") and getattr(busy, "active", lambda: True)():
                busy.cancel()
        self.session.leave()
