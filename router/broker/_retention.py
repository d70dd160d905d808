"""
Event retention for one realm's broker.

* Retention is bounded per realm.  ``max_retained_topics`` (the router's
  setting) caps the topics holding a retained event; when a new topic would
  pass it, the topic retained *least recently* loses its event.  Evicting,
  not refusing, because a retained event is "the latest state of a topic":
  refusing would freeze retention on whatever topics came first (stale ones
  included) and silently lose the newest state; the spec makes retention best
  effort, and the least recently retained topic is the one least likely still
  wanted.  ``retained_ttl`` (seconds, 0: none) expires events: an expired one
  is never delivered, and expired topics are swept from the front of the
  retain-ordered table whenever something is retained or asked for (no timer
  per topic).  Prefix ``get_retained`` walks a sorted topic list from the
  prefix (bisect), so it costs what it returns; wildcard scans the bounded
  set.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import TYPE_CHECKING, Any

from autobahn.wamp import message
from twisted.logger import Logger

if TYPE_CHECKING:
    from router.interfaces import IRoutedSession as RouterSession

__all__ = ["Retention", "topic_matches"]

_log = Logger(namespace="wampd.broker")


#: Retained events with a black/whitelist kept per topic besides the newest
#: one for everyone (retention is best effort, the spec says).
_RETAIN_KEEP = 16


class _Retained:
    __slots__ = ("publication", "args", "kwargs", "filters", "publisher", "excluded", "at")

    def __init__(self, publication, args, kwargs, filters, publisher, excluded=None):
        self.at = 0.0  # when it was retained (router clock)
        self.publication = publication
        self.args = args
        self.kwargs = kwargs
        self.filters = filters
        self.publisher = publisher
        self.excluded = excluded  # the publisher's session id when exclude_me was in force


def topic_matches(topic: str, pattern: str, match: str) -> bool:
    """Whether one concrete topic matches one subscription pattern."""
    if match == "exact":
        return topic == pattern
    if match == "prefix":
        return topic.startswith(pattern)
    parts, wants = topic.split("."), pattern.split(".")
    return len(parts) == len(wants) and all(w == "" or w == p for p, w in zip(parts, wants))


class Retention:
    """The broker's retained events (a part of :class:`router.broker.Broker`)."""

    def _init_retention(self) -> None:
        # topic -> retained events, oldest first; the dict's order is the order
        # topics were last retained in (least recent first: evicted/expired first)
        self._retained: dict[str, list[_Retained]] = {}
        self._retained_sorted: list[str] = []  # the same topics, sorted: prefix look-ups
        self._evicting_logged = False

    def retained_topics(self) -> tuple[str, ...]:
        """Topics holding a retained event now, least recently retained first."""
        self._expire(self.realm.router.clock.seconds())
        return tuple(self._retained)

    def _retain(self, topic: str, kept: _Retained) -> None:
        """
        A retained event for everyone replaces the topic's retained events; one
        with a black/whitelist is kept beside them, so that every subscriber can
        get the most recent one it could have received.  The topic becomes the
        most recently retained; past ``max_retained_topics`` the least recent
        one is evicted.
        """
        router = self.realm.router
        now = kept.at = router.clock.seconds()
        self._expire(now)
        retained = self._retained
        history = retained.pop(topic, None)  # re-inserted last: most recently retained
        if history is None:
            insort(self._retained_sorted, topic)
        if kept.filters is None:
            history = [kept]
        else:
            history = history or []
            history.append(kept)
            if len(history) > _RETAIN_KEEP + 1:
                del history[1 if history[0].filters is None else 0]
        retained[topic] = history
        limit = router.max_retained_topics
        if limit and len(retained) > limit:
            if not self._evicting_logged:
                self._evicting_logged = True
                _log.warn(
                    "realm {realm} holds retained events on {limit} topics (max_retained_topics): "
                    "the least recently retained ones are evicted to make room (logged once)",
                    realm=self.realm.name,
                    limit=limit,
                )
            while len(retained) > limit:
                self._forget_retained(next(iter(retained)))

    def _forget_retained(self, topic: str) -> None:
        del self._retained[topic]
        topics = self._retained_sorted
        del topics[bisect_left(topics, topic)]

    def _expire(self, now: float) -> None:
        """Drop topics whose newest retained event is past ``retained_ttl`` (oldest first, so it stops early)."""
        ttl = self.realm.router.retained_ttl
        if not ttl:
            return
        retained = self._retained
        while retained:
            topic = next(iter(retained))
            if retained[topic][-1].at + ttl > now:
                return
            self._forget_retained(topic)

    def _retained_for(self, sub: Any) -> list[str]:
        """The retained topics ``sub`` matches: a lookup, a bisect walk, or (wildcard) a scan."""
        uri = sub.uri
        if sub.match == "exact":
            return [uri] if uri in self._retained else []
        if sub.match == "prefix":
            topics = self._retained_sorted
            at = bisect_left(topics, uri)
            found = []
            while at < len(topics) and topics[at].startswith(uri):
                found.append(topics[at])
                at += 1
            return found
        return [topic for topic in self._retained if topic_matches(topic, uri, "wildcard")]

    def _send_retained(self, session: RouterSession, sub: Any) -> None:
        """
        For each matching topic, the most recent retained event this
        subscriber could have received.  Sent paced (``send_paced``: as the
        subscriber reads them, ahead of whatever is sent to it later), so a
        subscriber asking for thousands is not mistaken for a slow consumer.
        """
        now = self.realm.router.clock.seconds()
        self._expire(now)
        ttl = self.realm.router.retained_ttl
        skipped, first = 0, None  # events this subscriber's serializer cannot carry: logged once
        events = []
        for topic in self._retained_for(sub):
            for kept in reversed(self._retained[topic]):
                if ttl and kept.at + ttl <= now:
                    break  # this one and all older ones have expired
                if kept.excluded == session.session_id:
                    continue
                if kept.filters is None or kept.filters.allows(session.info):
                    break
            else:
                continue
            if ttl and kept.at + ttl <= now:
                continue
            info = kept.publisher
            event = message.Event(
                sub.id,
                kept.publication,
                args=kept.args,
                kwargs=kept.kwargs,
                publisher=info.session_id if info else None,
                publisher_authid=info.authid if info else None,
                publisher_authrole=info.authrole if info else None,
                topic=topic if sub.match != "exact" else None,
                retained=True,
            )
            problem = session.codec.check(event)
            if problem is not None:
                skipped += 1
                first = first or (topic, problem)
                continue
            events.append(event)
        if events:
            session.send_paced(events)
        if skipped:
            _log.error(
                "{skipped} retained event(s) matching {uri} ({match}) cannot be encoded as {serializer} "
                "for session {session}, e.g. on {topic}: {error}",
                skipped=skipped,
                uri=sub.uri,
                match=sub.match,
                serializer=session.codec.name,
                session=session.session_id,
                topic=first[0],
                error=first[1],
            )
