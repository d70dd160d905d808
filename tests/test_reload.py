"""
Reloading the configuration (router.reload): SIGHUP under a real twistd and
twist, and in process the diff, the ``server_reloaded`` event, realms added and
removed, roles that change under joined sessions, and refusals.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import reactor

from router.config import AuthMethodConfig, ListenConfig, PermissionConfig, RealmConfig, RoleConfig
from router.config._diff import config_changes
from router.reload import apply_config
from tests.conftest import in_namespaces, logged, make_service
from tests.config_helpers import config_from_toml
from tests.test_twistd import TWIST, TWISTD, _ended, spawn
from tests.wamp_clients import Recorder, join, leave

_V1 = """
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"

[[realm]]
name = "realm1"
auth = [{ method = "anonymous", role = "guest" }]

[[realm.role]]
name = "guest"
permissions = [ { uri = "news.", match = "prefix", subscribe = true } ]
"""

_V2 = _V1.replace(
    'subscribe = true } ]',
    'subscribe = true }, { uri = "com.x.", match = "prefix", register = true, call = true } ]',
)


async def _denied(d) -> str:
    try:
        await d
    except ApplicationError as exc:
        return exc.error
    raise AssertionError("the action was allowed")


@pytest.mark.parametrize("runner", ["twistd", "twist"])
@pytest_twisted.ensureDeferred
async def test_sighup_adds_a_permission_without_dropping_a_session(runner, tmp_path):
    """A session stays joined across a SIGHUP that grants its role register/call: it may then register, and a new session may call."""
    config = tmp_path / "wampd.toml"
    config.write_text(_V1)
    proto = spawn((TWISTD if runner == "twistd" else TWIST) + ["wampd", "--config", str(config)])
    try:
        m = await proto.wait_for(r"wampd listening on (ws://127\.0\.0\.1:\d+/ws) \(websocket\)")
        url = m.group(1)
        stayer = await join(url)
        assert await _denied(stayer.register(lambda: "hi", "com.x.hello")) == "wamp.error.not_authorized"
        config.write_text(_V2)
        proto.transport.signalProcess("HUP")
        await proto.wait_for(r"reloaded its configuration; changed: realm\[realm1\]\.role")
        await stayer.register(lambda: "hi", "com.x.hello")
        newcomer = await join(url)
        assert await newcomer.call("com.x.hello") == "hi"
        assert not stayer.left.called
        await leave(newcomer)
        proto.transport.signalProcess("TERM")
        code = await _ended(proto)
    finally:
        if not proto.ended.called:
            proto.transport.signalProcess("KILL")
    assert code == 0, "\n".join(proto.lines)


@pytest_twisted.ensureDeferred
async def test_sighup_with_an_invalid_config_keeps_the_running_one(tmp_path):
    """A SIGHUP whose config is invalid changes nothing, logs the error with its key path, and the router goes on serving."""
    config = tmp_path / "wampd.toml"
    config.write_text(_V1)
    proto = spawn(TWISTD + ["wampd", "--config", str(config)])
    try:
        m = await proto.wait_for(r"wampd listening on (ws://127\.0\.0\.1:\d+/ws) \(websocket\)")
        url = m.group(1)
        stayer = await join(url)
        config.write_text(_V2.replace("[[realm]]", "[router]\nmax_connections = -1\n\n[[realm]]"))
        proto.transport.signalProcess("HUP")
        await proto.wait_for(r"configuration reload refused, the running configuration stays")
        await proto.wait_for(r"reload error: .*router\.max_connections: must be 0 \(unlimited\) or more, got -1")
        newcomer = await join(url)
        assert await _denied(newcomer.register(lambda: "hi", "com.x.hello")) == "wamp.error.not_authorized"
        assert not stayer.left.called
        proto.transport.signalProcess("TERM")
        code = await _ended(proto)
    finally:
        if not proto.ended.called:
            proto.transport.signalProcess("KILL")
    assert code == 0
    assert not any("reloaded its configuration" in line for line in proto.lines), "\n".join(proto.lines)


# -- the diff --------------------------------------------------------------------


def test_changes_are_named_by_key_path():
    """The diff names changed router keys, realms added and removed, a realm's changed tables, and restart-only parts."""
    old = config_from_toml(_V1 + '\n[[realm]]\nname = "gone"\n')
    new = config_from_toml(
        _V2.replace('endpoint = "tcp:0:interface=127.0.0.1"', 'endpoint = "tcp:0:interface=127.0.0.1"\npath = "/wamp"')
        + '\n[[realm]]\nname = "fresh"\n\n[router]\nmax_connections = 5\n\n[[listen]]\nendpoint = "tcp:0"\n'
    )
    assert sorted(config_changes(old, new)) == sorted(
        [
            "router.max_connections",
            "listen[tcp:0]",
            "listen[tcp:0:interface=127.0.0.1].path",
            "realm[fresh]",
            "realm[gone]",
            "realm[realm1].role",
        ]
    )
    assert config_changes(old, old) == []


# -- applying in process ------------------------------------------------------------


def _config(service, **changes):
    import dataclasses

    return dataclasses.replace(service.config, **changes)


@pytest_twisted.ensureDeferred
async def test_reload_event_and_realms_added_and_removed():
    """server_reloaded names what changed; a removed realm's sessions get GOODBYE close_realm and it takes no joins; an added one does."""
    recorder = Recorder()
    service = make_service(recorder)
    await service.startService()
    try:
        url = next(e.url for e in service.endpoints if e.transport == "websocket")
        doomed = await join(url, realm="realm2")
        new = _config(service, realms=(RealmConfig("realm1"), RealmConfig("realm3")), max_connections=50)
        event = apply_config(service, new)
        assert event is not None and event in recorder.events
        assert event.realms_added == ("realm3",) and event.realms_removed == ("realm2",)
        assert set(event.changed) == {"router.max_connections", "realm[realm2]", "realm[realm3]"}
        assert event.not_applied == ()
        details = await doomed.left.addTimeout(5, reactor)
        assert details.reason == "wamp.close.close_realm"
        assert service.router.policy.max_connections == 50
        c3 = await join(url, realm="realm3")
        await leave(c3)
        refused = await _refused_join(url, "realm2")
        assert refused == "wamp.error.no_such_realm"
    finally:
        await service.stopService()


async def _refused_join(url, realm):
    from tests.wamp_clients import connect

    c = await connect(url, realm=realm)
    try:
        await c.joined.addTimeout(5, reactor)
    except Exception:
        details = await c.left
        return details.reason
    raise AssertionError("joined")


@pytest_twisted.ensureDeferred
async def test_a_joined_session_of_an_open_realm_is_checked_once_roles_arrive():
    """A session joined on an open realm may register; after a reload that gives the realm roles, its next REGISTER is refused."""
    service = make_service()
    await service.startService()
    try:
        url = next(e.url for e in service.endpoints if e.transport == "websocket")
        c = await join(url)
        await c.register(lambda: 1, "com.x.one")
        realm = RealmConfig(
            "realm1",
            auth=(AuthMethodConfig("anonymous"),),
            roles=(RoleConfig("anonymous", (PermissionConfig("news.", "prefix", subscribe=True),)),),
        )
        apply_config(service, _config(service, realms=(realm, RealmConfig("realm2"))))
        assert await _denied(c.register(lambda: 2, "com.x.two")) == "wamp.error.not_authorized"
        await c.subscribe(lambda: None, "news.today")
        await leave(c)
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_plugin_that_fails_to_load_refuses_the_whole_reload():
    """A realm authorizer that cannot be imported refuses the reload: both errors are logged, nothing changes, no event fires."""
    recorder = Recorder()
    service = make_service(recorder)
    await service.startService()
    try:
        bad = (
            RealmConfig("realm1", authorizer="no.such.module:may"),
            RealmConfig("realm2", authenticator="no.such.other:check"),
        )
        with logged(in_namespaces("wampd.reload")) as lines:
            assert apply_config(service, _config(service, realms=bad, max_connections=7)) is None
        text = "\n".join(str(e.get("error", "")) for e in lines)
        assert "realm[0].authorizer" in text and "realm[1].authenticator" in text, text
        assert service.router.policy.max_connections == 0
        assert service.router.realms["realm1"].authorizer.open_anonymous
        assert not [e for e in recorder.events if e.name == "server_reloaded"]
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_endpoint_changes_are_reported_and_not_applied():
    """A new [[listen]] endpoint is not bound by a reload: it is named in not_applied and logged, and the rest applies."""
    service = make_service()
    await service.startService()
    try:
        listen = service.config.listen + (ListenConfig("tcp:0:interface=127.0.0.2"),)
        with logged(in_namespaces("wampd.reload")) as lines:
            event = apply_config(service, _config(service, listen=listen, max_calls_in_flight=3))
        assert event.not_applied == ("listen[tcp:0:interface=127.0.0.2]",)
        assert service.router.max_calls_in_flight == 3
        assert len(service.ports) == 2
        assert any("restart to apply" in e["log_format"] for e in lines)
        # compared with what runs: the same change is reported again next time
        assert apply_config(service, _config(service, listen=listen)).not_applied == event.not_applied
    finally:
        await service.stopService()
