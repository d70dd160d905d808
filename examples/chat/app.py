"""
A chat with rooms, written against wampd's server-side API.

Three pieces, plugged in by ``examples/chat/wampd.toml``:

``app``
    A :class:`router.app.App` with

    * a topic handler for ``chat.room.{room}`` (room names: 1 to 32 of
      ``a-z``, ``0-9`` and ``_``).  It keeps who is in which room, refuses
      empty or over-long messages with ``chat.error.invalid_message``, puts
      the author's authid in front of every message, and pings each room
      that has members every 30 s with the member count;
    * a catch-all handler for ``chat.room.{anything}`` that refuses rooms
      whose names break the rule (``chat.error.invalid_room``): the first
      handler whose pattern matches a topic is the one that handles it;
    * a procedure ``chat.room.{room}.members``: the number of members.

``Announcer``
    A lifecycle listener that publishes ``chat.announce`` when a session
    joins or leaves the realm.

What clients see on ``chat.room.<room>``:

* a message: ``args = ["alice: hello"]``,
  ``kwargs = {"kind": "message", "author": "alice", "text": "hello"}``;
* a presence ping: ``args = []``, ``kwargs = {"kind": "presence", "members": 2}``;
* whatever a web application pushes through the HTTP endpoint, as it was sent
  (``POST /publish``: publications made by the router skip topic handlers).
"""

from __future__ import annotations

from router.app import App, Refuse, TopicHandler

__all__ = ["app", "Rooms", "InvalidRoom", "Announcer", "members", "MAX_MESSAGE_LENGTH", "ROOM"]

ROOM = r"[a-z0-9_]{1,32}"
MAX_MESSAGE_LENGTH = 500

app = App(name="chat")


class Rooms(TopicHandler):
    """``chat.room.{room}``: membership, message checks, author prefix, presence pings."""

    interval_ms = 30_000  # between presence pings; one timer per room with members

    def __init__(self) -> None:
        # (realm, room) -> session ids subscribed to chat.room.<room>
        self.members: dict[tuple[str, str], set[int]] = {}

    def count(self, realm: str, room: str) -> int:
        return len(self.members.get((realm, room), ()))

    def on_subscribe(self, session, topic, params):
        self.members.setdefault((session.realm, params["room"]), set()).add(session.session_id)

    def on_unsubscribe(self, session, topic, params):
        # Runs on UNSUBSCRIBE and also when a member leaves or its connection drops.
        key = (session.realm, params["room"])
        room = self.members.get(key)
        if room is not None:
            room.discard(session.session_id)
            if not room:
                del self.members[key]

    def on_publish(self, session, topic, params, args, kwargs):
        text = args[0] if args else None
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_MESSAGE_LENGTH:
            # The publisher gets ERROR chat.error.invalid_message; nobody else sees anything.
            raise Refuse(
                f"a message is one non-blank string of at most {MAX_MESSAGE_LENGTH} characters",
                uri="chat.error.invalid_message",
            )
        author = session.authid
        return [f"{author}: {text}"], {"kind": "message", "author": author, "text": text}

    def on_timer(self, topic, params):
        self.api.publish(topic, kind="presence", members=self.count(self.api.realm, params["room"]))


class InvalidRoom(TopicHandler):
    """Any other ``chat.room.<name>``: the name breaks the room rule."""

    def _refuse(self, topic):
        raise Refuse(f"room names are 1 to 32 of a-z, 0-9 and _; {topic!r} is not", uri="chat.error.invalid_room")

    def on_subscribe(self, session, topic, params):
        self._refuse(topic)

    def on_publish(self, session, topic, params, args, kwargs):
        self._refuse(topic)


rooms = Rooms()
app.add_topic("chat.room.{room}", rooms, room=ROOM)
app.add_topic("chat.room.{name}", InvalidRoom())  # after Rooms: only names Rooms turned down reach it


@app.procedure("chat.room.{room}.members", room=ROOM)
def members(call):
    """``chat.room.<room>.members()`` -> the number of sessions in the room."""
    return rooms.count(call.api.realm, call.params["room"])


class Announcer:
    """
    A listener: publishes ``chat.announce`` ``["session <id> joined"]`` (and
    ``... left``) with kwargs ``{"session": id, "authid": ...}``.

    It gets the router from ``server_launched`` and publishes as the router
    through the realm's :class:`router.internal.RealmApi`.
    """

    priority = 0

    def __init__(self, realm: str = "realm1", topic: str = "chat.announce") -> None:
        self.realm = realm
        self.topic = topic
        self.api = None

    def on_server_launched(self, event):
        self.api = event.router.api(self.realm)

    def _announce(self, session, what: str) -> None:
        if self.api is None or session.realm != self.realm:
            return
        self.api.publish(
            self.topic, f"session {session.session_id} {what}", session=session.session_id, authid=session.authid
        )

    def on_session_joined(self, event):
        self._announce(event.session, "joined")

    def on_session_left(self, event):
        self._announce(event.session, "left")
