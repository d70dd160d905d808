"""
Event history of one realm (the spec's ``event_history``, beta; as Crossbar
and nexus have it): the latest events of configured topics, for
``wamp.subscription.get_events`` (router.meta._events).

* Each configured topic (``[[realm.history]]``: topic, match, limit) gets a
  subscription of its own that lives as long as the realm (the spec's "dummy
  subscription"), so its history starts before anyone subscribes and its id
  stays the same; a SUBSCRIBE to the same topic and match joins it.
* A publication is kept for every history topic it matches, in the order the
  broker got them; each topic keeps its ``limit`` latest, and the realm
  keeps at most ``max_history_events`` in all (the oldest go first, whatever
  their topic).  An event holds the publication's args and kwargs (shared,
  not copied), so the memory bound is ``max_history_events`` x the largest
  message (``max_message_size``).
* A publication with ``exclude`` or ``eligible`` (session IDs, which mean
  nothing to a later session) is not kept, as the spec says; its
  authid/authrole lists are kept and applied to whoever asks.
* Publications in payload passthru mode are kept with their ``ppt_*``
  details, their payload untouched.

Only realms with history topics have a :class:`History`; the broker's only
cost elsewhere is one ``is None`` check per publication.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timezone
from typing import Any

from router.matching import PatternIndex

__all__ = ["History", "HistoryRecord"]


class HistoryRecord:
    """One kept event."""

    __slots__ = ("publication", "at", "topic", "args", "kwargs", "details", "filters", "alive", "kept")

    def __init__(self, publication, at, topic, args, kwargs, details, filters, kept) -> None:
        self.publication = publication
        self.at = at  # seconds since the epoch
        self.topic = topic
        self.args = args
        self.kwargs = kwargs
        self.details = details  # publisher identity when disclosed, ppt_* (without the topic)
        self.filters = filters  # router.filters.Receivers (authid/authrole lists) or None
        self.alive = True
        self.kept = kept


class _Topic:
    __slots__ = ("subscription", "limit", "records")

    def __init__(self, subscription, limit: int) -> None:
        self.subscription = subscription
        self.limit = limit
        self.records: deque[HistoryRecord] = deque()


class History:
    """The kept events of one realm's history topics."""

    def __init__(self, broker: Any, entries, max_events: int, clock) -> None:
        # entries: (topic, match, limit) triples; broker: the realm's Broker (keep_subscription)
        self._clock = clock
        self._max = max_events
        self._index: PatternIndex[_Topic] = PatternIndex()
        self._by_subscription: dict[int, _Topic] = {}
        self._order: deque[HistoryRecord] = deque()  # every live record (and some dead ones), oldest first
        self.total = 0
        for topic, match, limit in entries:
            kept = _Topic(broker.keep_subscription(topic, match), limit)
            self._index.add(topic, match, kept)
            self._by_subscription[kept.subscription.id] = kept

    def keeps(self, subscription_id: int) -> bool:
        return subscription_id in self._by_subscription

    def record(self, topic: str, publication: int, args, kwargs, publisher_info, filters, ppt) -> None:
        """A publication the broker delivered: kept for each history topic it matches."""
        if filters is not None and (filters.exclude is not None or filters.eligible is not None):
            return  # session IDs: meaningless to whoever asks later (the spec)
        found = list(self._index.matches(topic))
        if not found:
            return
        details = {}
        if publisher_info is not None:
            details = {
                "publisher": publisher_info.session_id,
                "publisher_authid": publisher_info.authid,
                "publisher_authrole": publisher_info.authrole,
            }
        if ppt:
            details.update(ppt)
        at = self._clock.seconds()
        for _, kept in found:
            record = HistoryRecord(publication, at, topic, args, kwargs, details, filters, kept)
            kept.records.append(record)
            self._order.append(record)
            self.total += 1
            if len(kept.records) > kept.limit:
                self._forget(kept.records.popleft())
        while self.total > self._max:
            oldest = self._order.popleft()
            if oldest.alive:
                oldest.kept.records.popleft()  # the oldest of all is the oldest of its topic
                self._forget(oldest)
        if len(self._order) > 2 * self.total + 64:  # records a topic's limit dropped: compact now and then
            self._order = deque(r for r in self._order if r.alive)

    def _forget(self, record: HistoryRecord) -> None:
        record.alive = False
        self.total -= 1

    def events(self, subscription_id: int, info, query: dict) -> list[dict]:
        """
        The kept events of a history subscription that ``info`` (the asking
        session) could have received, filtered by the spec's ``query``
        (``reverse``, ``limit``, ``topic``, ``from_time``/``after_time``/
        ``before_time``/``until_time``, ``from_publication``/
        ``after_publication``/``before_publication``/``until_publication``);
        ValueError names a bad one.
        """
        kept = self._by_subscription[subscription_id]
        records = [r for r in kept.records if r.filters is None or r.filters.allows(info)]
        topic = query.get("topic")
        if topic is not None:
            if type(topic) is not str:
                raise ValueError("topic must be a URI")
            records = [r for r in records if r.topic == topic]
        records = _by_time(records, query)
        records = _by_publication(records, query)
        if query.get("reverse") is True:
            records.reverse()
        limit = query.get("limit")
        if limit is not None:
            if type(limit) is not int or limit < 1:
                raise ValueError("limit must be a positive integer")
            records = records[:limit]
        sub = kept.subscription
        return [_as_event(r, sub) for r in records]


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_event(record: HistoryRecord, sub) -> dict:
    details = dict(record.details)
    if sub.match != "exact":
        details["topic"] = record.topic
    event = {"timestamp": _timestamp(record.at), "subscription": sub.id, "publication": record.publication, "details": details}
    if record.args is not None:
        event["args"] = record.args
    if record.kwargs is not None:
        event["kwargs"] = record.kwargs
    return event


def _seconds(name: str, value) -> float:
    if type(value) is not str:
        raise ValueError(f"{name} must be an RFC 3339 timestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} is not an RFC 3339 timestamp: {value!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{name} must say its time zone (e.g. Z): {value!r}")
    return moment.timestamp()


_TIME_TESTS = {
    "from_time": lambda at, t: at >= t,
    "after_time": lambda at, t: at > t,
    "before_time": lambda at, t: at < t,
    "until_time": lambda at, t: at <= t,
}


def _by_time(records: list, query: dict) -> list:
    for name, keep in _TIME_TESTS.items():
        if name in query:
            # timestamps are reported to the millisecond: compare at that precision
            bound = round(_seconds(name, query[name]), 3)
            records = [r for r in records if keep(round(r.at, 3), bound)]
    return records


def _by_publication(records: list, query: dict) -> list:
    """The spec's ``*_publication`` bounds: by the named publication's place in the order received."""
    for name in ("from_publication", "after_publication", "before_publication", "until_publication"):
        if name not in query:
            continue
        wanted = query[name]
        if type(wanted) is not int:
            raise ValueError(f"{name} must be a publication ID")
        at = next((i for i, r in enumerate(records) if r.publication == wanted), None)
        if at is None:
            records = []
        elif name == "from_publication":
            records = records[at:]
        elif name == "after_publication":
            records = records[at + 1 :]
        elif name == "before_publication":
            records = records[:at]
        else:
            records = records[: at + 1]
    return records
