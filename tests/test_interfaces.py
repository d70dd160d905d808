"""Every interface of router.interfaces against its implementations (zope.interface.verify)."""

from __future__ import annotations

from twisted.internet.task import Clock
from zope.interface.verify import verifyClass, verifyObject

from router.app import Refuse, TopicHandler
from router.config.auth import build_realm_auth
from router.config import RealmConfig
from router.errors import ProtocolViolation, Refusal
from router.events import Reject
from router.interfaces import IAuthenticator, IAuthorizer, IListener, IRoutedSession, ITopicHandler, LISTENER_METHODS
from router.meta import MetaError
from router.testing import MemoryRouter, RecordingListener


def test_recording_listener_is_a_listener():
    """RecordingListener provides IListener and has every documented on_<event> method."""
    assert verifyObject(IListener, RecordingListener())
    assert set(LISTENER_METHODS) <= set(dir(RecordingListener))


def test_realm_auth_implements_the_auth_interfaces():
    """A realm's built authenticator and authorizer provide IAuthenticator and IAuthorizer."""
    authenticator, authorizer = build_realm_auth(RealmConfig("realm1"), Clock())
    assert verifyObject(IAuthenticator, authenticator, tentative=True)
    assert verifyObject(IAuthorizer, authorizer, tentative=True)


def test_topic_handler_base():
    """The App topic handler base class provides ITopicHandler."""
    assert verifyObject(ITopicHandler, TopicHandler())


def test_routed_sessions():
    """Client sessions and the realm's internal session provide IRoutedSession; joining and leaving fire the usual events."""
    seen = RecordingListener()
    memory = MemoryRouter(listeners=[seen])
    client = memory.join()
    realm = memory.router.realms["realm1"]
    assert verifyObject(IRoutedSession, realm.internal)
    [session] = realm.sessions.values()
    assert verifyClass(IRoutedSession, type(session))
    assert verifyObject(IRoutedSession, session)
    memory.disconnect(client)
    assert [e.name for e in seen.events] == [
        "client_connected", "session_joining", "session_joined", "session_left", "client_disconnected"
    ]


def test_one_refusal_base():
    """Reject, Refuse and MetaError share the Refusal base (uri, message) and keep their own constructors."""
    for refusal, uri, message in (
        (Reject("no"), "wamp.error.not_authorized", "no"),
        (Reject("no", "realm", "wamp.error.no_such_realm"), "wamp.error.no_such_realm", "no"),
        (Refuse("staff only"), "wamp.error.not_authorized", "staff only"),
        (Refuse("empty", uri="chat.error.empty"), "chat.error.empty", "empty"),
        (MetaError("wamp.error.no_such_session", "gone"), "wamp.error.no_such_session", "gone"),
    ):
        assert isinstance(refusal, Refusal)
        assert (refusal.uri, refusal.message, str(refusal), refusal.args) == (uri, message, message, (message,))
    assert MetaError("u", "t").text == "t"
    assert not issubclass(ProtocolViolation, Refusal)


def test_protocol_violation_still_importable_from_the_session():
    """ProtocolViolation moved to router.errors and is still importable from router.session."""
    from router.session import ProtocolViolation as old

    assert old is ProtocolViolation
