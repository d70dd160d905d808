"""
Tests for plugin loading (router.plugins, re-exported by listeners), the twistd Options
(router.tap) and the twistd plugin file.
"""

import importlib.util
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from twisted.application.service import IServiceMaker
from twisted.python import usage

import listeners
from listeners import (
    DEFAULT_LISTENER,
    ENTRY_POINT_GROUP,
    PluginError,
    build_listener,
    build_listeners,
    listener_priority,
    load_object,
)
from router.config import ListenConfig, ListenerConfig, RealmConfig, RouterConfig
from router.tap import Options
from tests import plugins_fixture
from tests.plugins_fixture import Thing

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = "tests.plugins_fixture"


class StubLogListener:
    """Stands in for listeners.log:LogListener while that module is missing."""

    def on_session_joined(self, event):
        return None


@pytest.fixture
def default_listener(monkeypatch):
    """
    Make the shipped default listener loadable: the real one if
    listeners/log.py exists, a stub otherwise.  Returns its class.
    """
    try:
        from listeners.log import LogListener
    except ImportError:
        module = types.ModuleType("listeners.log")
        module.LogListener = StubLogListener
        monkeypatch.setitem(sys.modules, "listeners.log", module)
        return StubLogListener
    return LogListener


@pytest.fixture
def entry_points(tmp_path, monkeypatch):
    """
    Install a real distribution on sys.path whose entry points in
    wampd.listeners point into tests.plugins_fixture.
    """
    dist_info = tmp_path / "wampd_test_plugins-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: wampd-test-plugins\nVersion: 1.0\n",
        encoding="utf-8",
    )
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""\
            [{ENTRY_POINT_GROUP}]
            thing = {FIXTURE}:Thing
            ranked = {FIXTURE}:Ranked
            ready = {FIXTURE}:thing_instance
            broken = {FIXTURE}:DoesNotExist

            [some.other.group]
            elsewhere = {FIXTURE}:Thing
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.fixture
def module_factory(tmp_path, monkeypatch):
    """Write throwaway modules into an importable directory."""
    directory = tmp_path / "modules"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    created = []

    def make(name, source):
        (directory / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)


def parse(*argv):
    options = Options()
    options.parseOptions(list(argv))
    return options


def usage_error(*argv):
    with pytest.raises(usage.UsageError) as info:
        parse(*argv)
    return str(info.value)


# --- load_object -------------------------------------------------------------


def test_load_object_by_path():
    assert load_object(f"{FIXTURE}:Thing", ENTRY_POINT_GROUP) is Thing
    assert load_object(f"{FIXTURE}:thing_instance", "any.group") is plugins_fixture.thing_instance


def test_load_object_by_nested_path():
    assert load_object(f"{FIXTURE}:Namespace.Inner", ENTRY_POINT_GROUP) is plugins_fixture.Namespace.Inner


def test_load_object_by_entry_point(entry_points):
    assert load_object("thing", ENTRY_POINT_GROUP) is Thing
    assert load_object("ready", ENTRY_POINT_GROUP) is plugins_fixture.thing_instance
    assert load_object("elsewhere", "some.other.group") is Thing


def test_entry_points_are_looked_up_in_the_given_group(entry_points):
    with pytest.raises(PluginError) as info:
        load_object("elsewhere", ENTRY_POINT_GROUP)
    message = str(info.value)
    assert message.startswith(
        f"plugin 'elsewhere': no entry point named 'elsewhere' in group '{ENTRY_POINT_GROUP}' (available: "
    )
    for name in ("broken", "ranked", "ready", "thing"):
        assert name in message


def test_unknown_entry_point_lists_none_available():
    with pytest.raises(PluginError) as info:
        load_object("nothing-here", "wampd.tests.empty.group")
    assert str(info.value) == (
        "plugin 'nothing-here': no entry point named 'nothing-here' in group "
        "'wampd.tests.empty.group' (available: none)"
    )


def test_entry_point_to_missing_attribute(entry_points):
    with pytest.raises(PluginError) as info:
        load_object("broken", ENTRY_POINT_GROUP)
    assert str(info.value).startswith(
        f"plugin 'broken': loading entry point 'broken = {FIXTURE}:DoesNotExist' "
        f"in group '{ENTRY_POINT_GROUP}' failed: AttributeError"
    )


def test_dotted_path_without_colon_is_refused_with_a_hint():
    with pytest.raises(PluginError) as info:
        load_object(f"{FIXTURE}.Thing", "wampd.tests.empty.group")
    message = str(info.value)
    assert f"no entry point named '{FIXTURE}.Thing'" in message
    assert f"put a colon between module and attribute, e.g. '{FIXTURE}:Thing'" in message


def test_missing_module():
    with pytest.raises(PluginError) as info:
        load_object("wampd_no_such_module.sub:Thing", ENTRY_POINT_GROUP)
    assert str(info.value) == (
        "plugin 'wampd_no_such_module.sub:Thing': no module named 'wampd_no_such_module'"
    )


def test_missing_submodule():
    with pytest.raises(PluginError) as info:
        load_object("tests.no_such_fixture:Thing", ENTRY_POINT_GROUP)
    assert str(info.value) == (
        "plugin 'tests.no_such_fixture:Thing': no module named 'tests.no_such_fixture'"
    )


def test_missing_attribute():
    with pytest.raises(PluginError) as info:
        load_object(f"{FIXTURE}:Thingy", ENTRY_POINT_GROUP)
    assert str(info.value) == (
        f"plugin '{FIXTURE}:Thingy': '{FIXTURE}' has no attribute 'Thingy' "
        "(did you mean 'Thing'?)"
    )


def test_missing_nested_attribute():
    with pytest.raises(PluginError) as info:
        load_object(f"{FIXTURE}:Namespace.Outer", ENTRY_POINT_GROUP)
    assert str(info.value) == (
        f"plugin '{FIXTURE}:Namespace.Outer': '{FIXTURE}:Namespace' has no attribute 'Outer'"
    )


def test_module_whose_own_import_fails(module_factory):
    name = module_factory("wampd_needs_dep", "import wampd_missing_dependency\n")
    with pytest.raises(PluginError) as info:
        load_object(f"{name}:X", ENTRY_POINT_GROUP)
    assert str(info.value) == (
        f"plugin '{name}:X': importing module '{name}' failed: "
        "No module named 'wampd_missing_dependency'"
    )


def test_module_that_raises_on_import(module_factory):
    name = module_factory("wampd_raises", "raise RuntimeError('no config')\n")
    with pytest.raises(PluginError) as info:
        load_object(f"{name}:X", ENTRY_POINT_GROUP)
    assert str(info.value) == (
        f"plugin '{name}:X': importing module '{name}' raised RuntimeError: no config"
    )
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.parametrize("spec", ["", "  ", "mod:", ":Attr", "a b:C", "mod:1x"])
def test_malformed_specs(spec):
    with pytest.raises(PluginError):
        load_object(spec, ENTRY_POINT_GROUP)


def test_plugin_error_is_a_value_error():
    assert issubclass(PluginError, ValueError)


# --- build_listener --------------------------------------------------------


def test_build_from_class_with_options():
    listener = build_listener(ListenerConfig(f"{FIXTURE}:Thing", options={"greeting": "hi"}))
    assert isinstance(listener, Thing)
    assert listener.greeting == "hi"


def test_build_from_class_without_options():
    listener = build_listener(ListenerConfig(f"{FIXTURE}:Thing"))
    assert isinstance(listener, Thing)
    assert listener.greeting == "hello"


def test_build_from_factory_function():
    listener = build_listener(ListenerConfig(f"{FIXTURE}:make_thing", options={"greeting": "yo"}))
    assert isinstance(listener, Thing)
    assert listener.greeting == "yo"


def test_build_from_instance_uses_it_as_is():
    listener = build_listener(ListenerConfig(f"{FIXTURE}:thing_instance"))
    assert listener is plugins_fixture.thing_instance


def test_build_from_entry_point(entry_points):
    listener = build_listener(ListenerConfig("thing", options={"count": 3}))
    assert isinstance(listener, Thing)
    assert listener.count == 3


def test_options_for_an_instance_are_refused():
    with pytest.raises(PluginError) as info:
        build_listener(ListenerConfig(f"{FIXTURE}:thing_instance", options={"greeting": "x"}))
    message = str(info.value)
    assert message.startswith(f"plugin '{FIXTURE}:thing_instance': options {{'greeting': 'x'}} were given")
    assert "is a listener instance, so it cannot take them" in message


def test_options_for_a_non_callable_are_refused():
    with pytest.raises(PluginError) as info:
        build_listener(ListenerConfig(f"{FIXTURE}:not_callable", options={"a": 1}))
    assert str(info.value) == (
        f"plugin '{FIXTURE}:not_callable': options {{'a': 1}} were given, but 42 "
        "is not callable, so it cannot take them"
    )


def test_options_the_factory_does_not_accept():
    with pytest.raises(PluginError) as info:
        build_listener(ListenerConfig(f"{FIXTURE}:Thing", options={"colour": "red"}))
    assert str(info.value) == (
        f"plugin '{FIXTURE}:Thing' does not accept options {{'colour': 'red'}}: "
        "got an unexpected keyword argument 'colour'"
    )


def test_missing_required_option():
    with pytest.raises(PluginError) as info:
        build_listener(ListenerConfig(f"{FIXTURE}:make_thing"))
    assert str(info.value) == (
        f"plugin '{FIXTURE}:make_thing' does not accept options {{}}: "
        "missing a required argument: 'greeting'"
    )


def test_type_error_inside_the_factory_is_not_blamed_on_the_options():
    with pytest.raises(PluginError) as info:
        build_listener(ListenerConfig(f"{FIXTURE}:typo_factory"))
    assert str(info.value).startswith(
        f"plugin '{FIXTURE}:typo_factory': creating the listener with options {{}} raised TypeError: "
    )


def test_factory_that_fails():
    with pytest.raises(PluginError) as info:
        build_listener(ListenerConfig(f"{FIXTURE}:failing_factory", options={"dsn": "x"}))
    assert str(info.value) == (
        f"plugin '{FIXTURE}:failing_factory': creating the listener with options "
        "{'dsn': 'x'} raised ValueError: database is down"
    )
    assert isinstance(info.value.__cause__, ValueError)


def test_result_must_be_a_listener():
    with pytest.raises(PluginError) as info:
        build_listener(ListenerConfig(f"{FIXTURE}:NotAListener"))
    assert str(info.value).startswith(f"plugin '{FIXTURE}:NotAListener' gave <")
    assert "which is not a listener: it has no on_<event>(event) methods" in str(info.value)


def test_a_non_callable_non_listener_is_refused():
    with pytest.raises(PluginError) as info:
        build_listener(ListenerConfig(f"{FIXTURE}:not_callable"))
    assert "gave 42, which is not a listener" in str(info.value)


def test_a_module_of_handlers_is_a_listener(module_factory):
    module_factory("wampd_handlers", "def on_session_joined(event):\n    pass\n")
    holder = module_factory("wampd_holder", "import wampd_handlers as handlers\n")
    listener = build_listener(ListenerConfig(f"{holder}:handlers"))
    assert listener is sys.modules["wampd_handlers"]


def test_build_listeners_puts_the_default_first(default_listener):
    config = RouterConfig(listeners=[ListenerConfig(f"{FIXTURE}:Ranked")])
    built = build_listeners(config)
    assert [listener_config.plugin for listener_config, _ in built] == [
        DEFAULT_LISTENER,
        f"{FIXTURE}:Ranked",
    ]
    assert isinstance(built[0][1], default_listener)
    assert isinstance(built[1][1], plugins_fixture.Ranked)


def test_build_listeners_without_default():
    config = RouterConfig(default_listener=False)
    assert build_listeners(config) == []


def test_listener_priority():
    ranked = plugins_fixture.Ranked()
    assert listener_priority(ListenerConfig("x.y:Z"), ranked) == 7
    assert listener_priority(ListenerConfig("x.y:Z", priority=-3), ranked) == -3
    assert listener_priority(ListenerConfig("x.y:Z"), Thing()) == 0
    with pytest.raises(PluginError) as info:
        listener_priority(ListenerConfig("x.y:Z"), plugins_fixture.BadlyRanked())
    assert str(info.value) == "plugin 'x.y:Z': the listener's priority must be an integer, got 'high'"


def test_listeners_package_exports():
    assert set(listeners.__all__) == {
        "DEFAULT_LISTENER",
        "ENTRY_POINT_GROUP",
        "PluginError",
        "build_listener",
        "build_listeners",
        "listener_priority",
        "load_object",
    }
    assert DEFAULT_LISTENER == "listeners.log:LogListener"
    assert ENTRY_POINT_GROUP == "wampd.listeners"


# --- Options: defaults and the command line --------------------------------


def test_no_options(default_listener):
    options = parse()
    assert options["router_config"] == RouterConfig()
    [(listener_config, listener)] = options["listener_objects"]
    assert listener_config == ListenerConfig(DEFAULT_LISTENER)
    assert isinstance(listener, default_listener)


def test_no_default_listener():
    options = parse("--no-default-listener")
    assert options["router_config"].default_listener is False
    assert options["listener_objects"] == []


def test_repeated_listen():
    options = parse(
        "--no-default-listener",
        "--listen", "tcp:8080",
        "--listen", "ws:tcp:8081:interface=127.0.0.1",
        "--listen=rawsocket:tcp:9000",
        "--listen", "websocket:unix:/tmp/wampd-tap.sock",
    )
    assert options["router_config"].listen == (
        ListenConfig("tcp:8080"),
        ListenConfig("tcp:8081:interface=127.0.0.1"),
        ListenConfig("tcp:9000", "rawsocket"),
        ListenConfig("unix:/tmp/wampd-tap.sock"),
    )


def test_realm_replaces_the_default():
    options = parse("--no-default-listener", "--realm", "com.example", "--realm", "other")
    assert options["router_config"].realms == (RealmConfig("com.example"), RealmConfig("other"))


def test_realm1_can_be_kept_explicitly():
    options = parse("--no-default-listener", "--realm", "realm1", "--realm", "two")
    assert options["router_config"].realms == (RealmConfig("realm1"), RealmConfig("two"))


def test_repeated_listener():
    options = parse(
        "--no-default-listener",
        "--listener", f"{FIXTURE}:Thing",
        "--listener", f"{FIXTURE}:Ranked",
    )
    config = options["router_config"]
    assert config.listeners == (ListenerConfig(f"{FIXTURE}:Thing"), ListenerConfig(f"{FIXTURE}:Ranked"))
    pairs = options["listener_objects"]
    assert [pair[0] for pair in pairs] == list(config.listeners)
    assert isinstance(pairs[0][1], Thing)
    assert isinstance(pairs[1][1], plugins_fixture.Ranked)


def test_listener_by_entry_point_name(entry_points):
    options = parse("--no-default-listener", "--listener", "ranked")
    [(listener_config, listener)] = options["listener_objects"]
    assert listener_config.plugin == "ranked"
    assert isinstance(listener, plugins_fixture.Ranked)


def test_default_listener_comes_first(default_listener):
    options = parse("--listener", f"{FIXTURE}:Thing")
    plugins = [pair[0].plugin for pair in options["listener_objects"]]
    assert plugins == [DEFAULT_LISTENER, f"{FIXTURE}:Thing"]


def test_numbers():
    options = parse(
        "--no-default-listener",
        "--max-message-size", "2048",
        "--ping-interval", "0",
        "--ping-timeout", "2.5",
        "--listener-timeout", "1",
        "--shutdown-timeout", "0.5",
        "--auth-fail-window", "30",
        "--auth-fail-limit-authid", "0",
        "--auth-fail-limit-address", "200",
        "--auth-fail-tracked", "500",
    )
    config = options["router_config"]
    assert (config.auth_fail_window, config.auth_fail_limit_authid) == (30.0, 0)
    assert (config.auth_fail_limit_address, config.auth_fail_tracked) == (200, 500)
    assert config.max_message_size == 2048
    assert config.ping_interval == 0.0
    assert config.ping_timeout == 2.5
    assert config.listener_timeout == 1.0
    assert config.shutdown_timeout == 0.5


def test_input_limit_options():
    """--max-nesting-depth, --max-retained-topics, --retained-ttl and --max-calls-in-flight set their [router] keys."""
    config = parse(
        "--no-default-listener",
        "--max-nesting-depth", "16",
        "--max-retained-topics", "50",
        "--retained-ttl", "2.5",
        "--max-calls-in-flight", "7",
        "--max-queued-messages", "9",
    )["router_config"]
    assert (config.max_nesting_depth, config.max_retained_topics, config.retained_ttl) == (16, 50, 2.5)
    assert (config.max_calls_in_flight, config.max_queued_messages) == (7, 9)


# --- Options: config file, and the command line on top ---------------------

CONFIG = f"""
[router]
max_message_size = 4096
ping_interval = 15
default_listener = false

[[listen]]
endpoint = "tcp:7000"

[[realm]]
name = "from.file"

[[listener]]
plugin = "{FIXTURE}:Thing"
priority = 5
options = {{ greeting = "from file" }}
"""


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "wampd.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_config_file_alone(config_file):
    options = parse("--config", str(config_file))
    config = options["router_config"]
    assert config.max_message_size == 4096
    assert config.ping_interval == 15.0
    assert config.ping_timeout == 10.0
    assert config.listen == (ListenConfig("tcp:7000"),)
    assert config.realms == (RealmConfig("from.file"),)
    [(listener_config, listener)] = options["listener_objects"]
    assert listener_config.priority == 5
    assert listener.greeting == "from file"


def test_command_line_over_config_file(config_file):
    options = parse(
        "--config", str(config_file),
        "--listen", "tcp:7001",
        "--listen", "rawsocket:tcp:7002",
        "--realm", "from.cli",
        "--listener", f"{FIXTURE}:Ranked",
        "--max-message-size", "8192",
        "--ping-timeout", "3",
    )
    config = options["router_config"]
    # --listen replaces the file's endpoints
    assert config.listen == (ListenConfig("tcp:7001"), ListenConfig("tcp:7002", "rawsocket"))
    # --realm adds to the file's realms
    assert config.realms == (RealmConfig("from.file"), RealmConfig("from.cli"))
    # --listener is appended after the file's listeners
    assert [listener.plugin for listener in config.listeners] == [
        f"{FIXTURE}:Thing",
        f"{FIXTURE}:Ranked",
    ]
    assert config.max_message_size == 8192
    assert config.ping_timeout == 3.0
    # untouched values come from the file
    assert config.ping_interval == 15.0
    assert config.default_listener is False
    assert len(options["listener_objects"]) == 2


def test_realm_replaces_an_explicit_lone_realm1(tmp_path):
    path = tmp_path / "realm1.toml"
    path.write_text('[router]\ndefault_listener = false\n[[realm]]\nname = "realm1"\n', encoding="utf-8")
    options = parse("--config", str(path), "--realm", "other")
    assert options["router_config"].realms == (RealmConfig("other"),)


def test_no_default_listener_over_config_file(tmp_path):
    path = tmp_path / "default.toml"
    path.write_text("[router]\ndefault_listener = true\n", encoding="utf-8")
    options = parse("--config", str(path), "--no-default-listener")
    assert options["router_config"].default_listener is False
    assert options["listener_objects"] == []


# --- Options: errors name the option and the reason ------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--listen", "bogus:1"), "--listen bogus:1: not a valid Twisted server endpoint 'bogus:1': Unknown endpoint type: 'bogus'"),
        (("--listen", "ws:"), "--listen ws:: no endpoint after 'ws:' in 'ws:'"),
        (("--listen", "tcp:8080", "--listen", "tcp:99999"), "--listen tcp:99999: port must be between 0 and 65535 in 'tcp:99999', got 99999"),
        (("--realm", "wamp.x"), "--realm wamp.x: realm names starting with 'wamp.' are reserved, got 'wamp.x'"),
        (("--realm", "a b"), "--realm a b: must be a WAMP URI (dot-separated, non-empty components, no whitespace or '#'), got 'a b'"),
        (("--realm", "a", "--realm", "a"), "--realm a: realm 'a' is already configured"),
        (("--listener", "mod:"), "--listener mod:: must look like 'package.module:Attribute', got 'mod:'"),
        (("--max-message-size", "big"), "--max-message-size: must be an integer, got 'big'"),
        (("--max-message-size", "1.5"), "--max-message-size: must be an integer, got '1.5'"),
        (("--max-message-size", "0"), "--max-message-size: must be greater than 0, got 0"),
        (("--ping-interval", "soon"), "--ping-interval: must be a number, got 'soon'"),
        (("--ping-interval", "-1"), "--ping-interval: must be 0 or more, got -1.0"),
        (("--ping-timeout", "0"), "--ping-timeout: must be greater than 0, got 0.0"),
        (("--ping-timeout", "nan"), "--ping-timeout: must be a finite number, got nan"),
        (("--listener-timeout", "-2"), "--listener-timeout: must be greater than 0, got -2.0"),
        (("--shutdown-timeout", "x"), "--shutdown-timeout: must be a number, got 'x'"),
        (("--auth-fail-window", "0"), "--auth-fail-window: must be greater than 0, got 0.0"),
        (("--auth-fail-limit-authid", "-1"), "--auth-fail-limit-authid: must be 0 (off) or more, got -1"),
        (("--auth-fail-limit-address", "many"), "--auth-fail-limit-address: must be an integer, got 'many'"),
        (("--auth-fail-tracked", "0"), "--auth-fail-tracked: must be 1 or more, got 0"),
        (
            ("--allowed-origin", "not a url"),
            "--allowed-origin: 'not a url' is not an origin pattern (it has no scheme://): use scheme://host[:port] "
            "(e.g. https://app.example.com, https://*.example.com, http://localhost:*) or null",
        ),
        (
            ("--allowed-origin", "https://ok.example.com", "--allowed-origin", "https://app.example.com/"),
            "--allowed-origin: 'https://app.example.com/' is not an origin pattern (an origin has no path, not even "
            "a trailing '/'): use scheme://host[:port] (e.g. https://app.example.com, https://*.example.com, "
            "http://localhost:*) or null",
        ),
        (("--max-nesting-depth", "2"), "--max-nesting-depth: must be 0 (no limit) or from 8 to 100000, got 2"),
        (("--max-retained-topics", "-1"), "--max-retained-topics: must be 0 (unlimited) or more, got -1"),
        (("--retained-ttl", "later"), "--retained-ttl: must be a number, got 'later'"),
        (("--max-calls-in-flight", "-5"), "--max-calls-in-flight: must be 0 (unlimited) or more, got -5"),
        (("--max-queued-messages", "x"), "--max-queued-messages: must be an integer, got 'x'"),
    ],
)
def test_bad_command_line(argv, message):
    assert usage_error("--no-default-listener", *argv) == message


def test_unknown_option():
    assert "colour" in usage_error("--colour", "red")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("wampd_no_such_module:Thing", "--listener: plugin 'wampd_no_such_module:Thing': no module named 'wampd_no_such_module'"),
        (f"{FIXTURE}:Thingy", f"--listener: plugin '{FIXTURE}:Thingy': '{FIXTURE}' has no attribute 'Thingy' (did you mean 'Thing'?)"),
        ("no-such-entry-point", f"--listener: plugin 'no-such-entry-point': no entry point named 'no-such-entry-point' in group '{ENTRY_POINT_GROUP}' (available: "),
        (f"{FIXTURE}.Thing", f"--listener: plugin '{FIXTURE}.Thing': no entry point named '{FIXTURE}.Thing'"),
        (f"{FIXTURE}:make_thing", f"--listener: plugin '{FIXTURE}:make_thing' does not accept options {{}}: missing a required argument: 'greeting'"),
        (f"{FIXTURE}:NotAListener", f"--listener: plugin '{FIXTURE}:NotAListener' gave <"),
    ],
)
def test_bad_listener(spec, message):
    assert usage_error("--no-default-listener", "--listener", spec).startswith(message)


def test_bad_listener_in_config_file_names_file_and_table(tmp_path):
    path = tmp_path / "listeners.toml"
    path.write_text(
        "[router]\ndefault_listener = false\n"
        f'[[listener]]\nplugin = "{FIXTURE}:Thing"\n'
        f'[[listener]]\nplugin = "{FIXTURE}:Thing"\noptions = {{ colour = "red" }}\n',
        encoding="utf-8",
    )
    assert usage_error("--config", str(path)) == (
        f"--config: {path}: listener[1]: plugin '{FIXTURE}:Thing' does not accept "
        "options {'colour': 'red'}: got an unexpected keyword argument 'colour'"
    )


def test_missing_default_listener_is_a_usage_error(monkeypatch):
    module = types.ModuleType("listeners.log")  # no LogListener in it
    monkeypatch.setitem(sys.modules, "listeners.log", module)
    message = usage_error()
    assert message.startswith(
        "default listener (disable with --no-default-listener): plugin "
        "'listeners.log:LogListener': 'listeners.log' has no attribute 'LogListener'"
    )


def test_missing_config_file(tmp_path):
    path = tmp_path / "absent.toml"
    assert usage_error("--config", str(path)) == f"--config: {path}: no such file"


def test_bad_config_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[listen]]\nendpoint = "tcp:1"\ntransport = "http"\n', encoding="utf-8")
    assert usage_error("--config", str(path)) == (
        f"--config: {path}: listen[0].transport: must be one of websocket, rawsocket, longpoll, universal, got 'http'"
    )


def test_toml_syntax_error_in_config_file(tmp_path):
    path = tmp_path / "syntax.toml"
    path.write_text("[router\n", encoding="utf-8")
    assert usage_error("--config", str(path)).startswith(f"--config: {path}: invalid TOML: ")


# --- help ------------------------------------------------------------------


def test_help_text():
    options = Options()
    assert options.synopsis
    assert "WAMP" in options.longdesc
    text = options.getUsage(width=200)
    for option in (
        "--config",
        "--listen",
        "--realm",
        "--listener",
        "--max-message-size",
        "--ping-interval",
        "--ping-timeout",
        "--listener-timeout",
        "--shutdown-timeout",
        "--no-default-listener",
    ):
        assert option in text
    assert "rawsocket:tcp:9000" in text


# --- the twistd plugin -----------------------------------------------------


def load_plugin_file():
    path = ROOT / "twisted" / "plugins" / "wampd.py"
    spec = importlib.util.spec_from_file_location("wampd_twisted_plugin_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugin_file_is_a_lazy_service_maker():
    module = load_plugin_file()
    maker = module.wampd
    assert IServiceMaker.providedBy(maker)
    assert maker.tapname == "wampd"
    assert maker.module == "router.tap"
    assert maker.options is Options


def test_no_init_files_in_twisted_dirs():
    assert not (ROOT / "twisted" / "__init__.py").exists()
    assert not (ROOT / "twisted" / "plugins" / "__init__.py").exists()


def test_plugin_importable_as_twisted_plugins_wampd():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import twisted.plugins.wampd as p, twisted; "
            "print(p.wampd.tapname); print(twisted.__file__)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    name, twisted_file = result.stdout.split()
    assert name == "wampd"
    # Our twisted/ directory must not shadow the real Twisted package.
    assert not Path(twisted_file).is_relative_to(ROOT / "twisted")


def test_slow_consumer_options():
    """--max-outbound-buffer and --slow-consumer set the two [router] keys, over the config file."""
    config = parse("--no-default-listener", "--max-outbound-buffer", "65536", "--slow-consumer", "drop")["router_config"]
    assert (config.max_outbound_buffer, config.slow_consumer) == (65536, "drop")


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--max-outbound-buffer", "1M"), "--max-outbound-buffer: must be an integer, got '1M'"),
        (("--max-outbound-buffer", "-5"), "--max-outbound-buffer: must be 0 (unlimited) or more, got -5"),
        (("--slow-consumer", "block"), "--slow-consumer: must be one of 'disconnect', 'drop', got 'block'"),
    ],
)
def test_bad_slow_consumer_options(argv, message):
    """A bad value names the option and the reason."""
    assert usage_error("--no-default-listener", *argv) == message
