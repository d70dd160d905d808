"""
Publish & subscribe for one realm.

* One subscription per (topic, match policy), shared by its subscribers.
* Match indexes (:mod:`router.matching`) for exact, prefix and wildcard
  subscriptions; a session receives one EVENT per matching subscription, with
  ``details.topic`` set for pattern matches.
* A publication builds one EVENT per matching subscription; the transports
  encode it once per serializer.
* Publisher exclusion (``exclude_me``, default true), publisher
  identification (``disclose_me``), subscriber black- and whitelisting
  (``exclude``, ``exclude_authid``, ``exclude_authrole``, ``eligible``,
  ``eligible_authid``, ``eligible_authrole``, in any combination: a receiver
  must be in every eligible list given and in no exclude list), and event
  retention (``retain`` on PUBLISH keeps the topic's last event for everyone
  plus newer black/whitelisted ones; ``get_retained`` on SUBSCRIBE delivers,
  per matching topic, the most recent one the subscriber could have received,
  with ``details.retained``).
* Each session keeps its own subscription ids, so leaving costs what it owns.
* Encodability is decided once per publication and serializer (the EVENT is
  encoded once per serializer anyway): a publication that one serializer
  cannot carry (an integer past 64 bits for msgpack, NaN or a non-string map
  key for JSON, a lone surrogate for any) is logged once, reaches the
  subscribers of the other serializers, and an acknowledged PUBLISH gets
  ERROR ``wamp.error.invalid_argument`` naming the serializers instead of
  PUBLISHED (and it is not retained).
* Retention: :mod:`router.broker._retention`.
"""

from router.broker._broker import Broker, Subscription, refuse_publish
from router.broker._retention import topic_matches

__all__ = ["Broker", "Subscription", "topic_matches", "refuse_publish"]
