"""Tests for router.config: TOML -> frozen, validated values."""

import dataclasses
import math
import tomllib
from types import MappingProxyType

import pytest

from router.config import (
    ConfigError,
    ListenConfig,
    ListenerConfig,
    RealmConfig,
    RouterConfig,
    load_config,
    parse_config,
    parse_listen,
)
from tests.config_helpers import config_error

FULL = """
[router]
max_message_size = 65536
ping_interval = 20
ping_timeout = 5.5
listener_timeout = 2.0
shutdown_timeout = 1.0
default_listener = false

[[listen]]
endpoint = "tcp:8080:interface=127.0.0.1"
transport = "websocket"
path = "/wamp"

[[listen]]
endpoint = "unix:/tmp/wampd-test.sock"
transport = "rawsocket"

[[realm]]
name = "realm1"

[[realm]]
name = "com.example.app"

[[listener]]
plugin = "mypkg.mod:MyListener"
priority = 10
options = { greeting = "hi", nested = { a = [1, 2] } }

[[listener]]
plugin = "log"
"""


# --- good configurations ---------------------------------------------------


def test_defaults():
    config = RouterConfig()
    assert config.listen == (ListenConfig("tcp:8080:interface=127.0.0.1"),)
    assert config.listen[0].transport == "websocket"
    assert config.listen[0].path == "/ws"
    assert config.realms == (RealmConfig("realm1"),)
    assert config.listeners == ()
    assert config.default_listener is True
    assert config.max_message_size == 1048576
    assert config.ping_interval == 30.0
    assert config.ping_timeout == 10.0
    assert config.listener_timeout == 5.0
    assert config.shutdown_timeout == 3.0


def test_empty_document_gives_defaults():
    assert parse_config({}) == RouterConfig()


def test_empty_sections_give_defaults():
    assert parse_config(tomllib.loads("[router]\n")) == RouterConfig()


def test_full_document():
    config = parse_config(tomllib.loads(FULL))
    assert config.max_message_size == 65536
    assert config.ping_interval == 20.0
    assert isinstance(config.ping_interval, float)
    assert config.ping_timeout == 5.5
    assert config.listener_timeout == 2.0
    assert config.shutdown_timeout == 1.0
    assert config.default_listener is False
    assert config.listen == (
        ListenConfig("tcp:8080:interface=127.0.0.1", "websocket", "/wamp"),
        ListenConfig("unix:/tmp/wampd-test.sock", "rawsocket"),
    )
    assert [realm.name for realm in config.realms] == ["realm1", "com.example.app"]
    first, second = config.listeners
    assert first.plugin == "mypkg.mod:MyListener"
    assert first.priority == 10
    assert first.options == {"greeting": "hi", "nested": {"a": [1, 2]}}
    assert isinstance(first.options, MappingProxyType)
    assert second == ListenerConfig("log")
    assert second.priority is None
    assert second.options == {}


def test_partial_router_section_keeps_other_defaults():
    config = parse_config(tomllib.loads("[router]\nping_interval = 0\n"))
    assert config.ping_interval == 0.0
    assert config.ping_timeout == 10.0
    assert config.listen == RouterConfig().listen


def test_empty_listener_array_is_allowed():
    assert parse_config({"listener": []}).listeners == ()


def test_endpoint_forms():
    for endpoint in (
        "tcp:8080",
        "tcp:0",
        "tcp:port=8080:interface=127.0.0.1",
        "tcp6:8080:interface=\\:\\:1",
        "unix:/tmp/wampd.sock",
        "unix:/tmp/wampd.sock:mode=660",
    ):
        assert ListenConfig(endpoint).endpoint == endpoint


def test_realm_uris():
    for name in ("realm1", "com.example", "a.b.c", "x-y_z.1"):
        assert RealmConfig(name).name == name


def test_values_are_frozen():
    config = RouterConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.ping_interval = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.listen[0].endpoint = "tcp:1"
    listener = ListenerConfig("a.b:C", options={"x": 1})
    with pytest.raises(TypeError):
        listener.options["x"] = 2


def test_values_are_hashable():
    config = parse_config(tomllib.loads(FULL))
    assert hash(config) == hash(parse_config(tomllib.loads(FULL)))
    assert config == parse_config(tomllib.loads(FULL))


def test_listener_options_are_copied():
    options = {"greeting": "hi"}
    listener = ListenerConfig("a.b:C", options=options)
    options["greeting"] = "changed"
    assert listener.options == {"greeting": "hi"}


def test_sequences_become_tuples():
    config = RouterConfig(
        listen=[ListenConfig("tcp:1234")],
        realms=[RealmConfig("a")],
        listeners=[ListenerConfig("log")],
    )
    assert config.listen == (ListenConfig("tcp:1234"),)
    assert config.realms == (RealmConfig("a"),)
    assert config.listeners == (ListenerConfig("log"),)


def test_load_config(tmp_path):
    path = tmp_path / "wampd.toml"
    path.write_text(FULL, encoding="utf-8")
    assert load_config(path) == parse_config(tomllib.loads(FULL))
    assert load_config(str(path)) == load_config(path)


# --- ConfigError -----------------------------------------------------------


def test_config_error_is_a_value_error_with_parts():
    error = config_error('[[listen]]\nendpoint = "tcp:1"\n[[listen]]\nendpoint = "tcp:2"\ntransport = "http"\n')
    assert isinstance(error, ValueError)
    assert error.key == "listen[1].transport"
    assert error.reason == "must be one of websocket, rawsocket, longpoll, universal, got 'http'"
    assert error.source == "<config>"
    assert str(error) == "listen[1].transport: must be one of websocket, rawsocket, longpoll, universal, got 'http'"


def test_config_error_names_the_source():
    error = config_error('[router]\nping_timeout = 0\n', source="/etc/wampd.toml")
    assert str(error) == "/etc/wampd.toml: router.ping_timeout: must be greater than 0, got 0"


# --- unknown keys ----------------------------------------------------------


@pytest.mark.parametrize(
    "text, key",
    [
        ("colour = 1\n", "colour"),
        ("[routr]\n", "routr"),
        ("[router]\nmax_size = 1\n", "router.max_size"),
        ('[[listen]]\nendpoint = "tcp:1"\nport = 2\n', "listen[0].port"),
        ('[[listen]]\nendpoint = "tcp:1"\n[[listen]]\nendpont = "tcp:2"\n', "listen[1].endpont"),
        ('[[realm]]\nname = "a"\ncolour = "x"\n', "realm[0].colour"),
        ('[[listener]]\nplugin = "log"\nargs = {}\n', "listener[0].args"),
    ],
)
def test_unknown_keys(text, key):
    error = config_error(text)
    assert error.key == key
    assert str(error).startswith(f"{key}: unknown key; expected one of: ")


def test_unknown_key_suggests_the_right_one():
    error = config_error("[router]\nping_intervall = 1\n")
    from router.config._toml import _ROUTER_KEYS

    assert _ROUTER_KEYS[:12] == (
        "max_message_size", "ping_interval", "ping_timeout", "listener_timeout", "shutdown_timeout",
        "default_listener", "hello_timeout", "allowed_origins", "allow_addresses", "deny_addresses",
        "max_connections", "max_connections_per_address",
    )
    assert {"auth_fail_window", "auth_fail_limit_authid", "auth_fail_limit_address", "auth_fail_tracked"} <= set(
        _ROUTER_KEYS
    )
    assert str(error) == (
        f"router.ping_intervall: unknown key; expected one of: {', '.join(_ROUTER_KEYS)} "
        "(did you mean 'ping_interval'?)"
    )


# --- wrong types -----------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("router = 1\n", "router: must be a table ([router]), got integer 1"),
        ("[router]\nmax_message_size = true\n", "router.max_message_size: must be an integer, got boolean true"),
        ("[router]\nmax_message_size = 1.5\n", "router.max_message_size: must be an integer, got float 1.5"),
        ('[router]\nmax_message_size = "1MB"\n', "router.max_message_size: must be an integer, got string '1MB'"),
        ("[router]\nping_interval = true\n", "router.ping_interval: must be a number, got boolean true"),
        ('[router]\nping_timeout = "10"\n', "router.ping_timeout: must be a number, got string '10'"),
        ("[router]\nlistener_timeout = [1]\n", "router.listener_timeout: must be a number, got an array"),
        ("[router]\nshutdown_timeout = {}\n", "router.shutdown_timeout: must be a number, got a table"),
        ("[router]\ndefault_listener = 1\n", "router.default_listener: must be a boolean, got integer 1"),
        ('[router]\ndefault_listener = "yes"\n', "router.default_listener: must be a boolean, got string 'yes'"),
        ('listen = "tcp:8080"\n', "listen: must be an array of tables ([[listen]]), got string 'tcp:8080'"),
        ('[listen]\nendpoint = "tcp:8080"\n', "listen: must be an array of tables ([[listen]]), got a single table"),
        ("listen = [1]\n", "listen[0]: must be a table, got integer 1"),
        ("[[listen]]\nendpoint = 8080\n", "listen[0].endpoint: must be a string, got integer 8080"),
        ('[[listen]]\nendpoint = "tcp:1"\ntransport = 1\n', "listen[0].transport: must be a string, got integer 1"),
        ('[[listen]]\nendpoint = "tcp:1"\npath = false\n', "listen[0].path: must be a string, got boolean false"),
        ('[realm]\nname = "a"\n', "realm: must be an array of tables ([[realm]]), got a single table"),
        ('realm = ["a"]\n', "realm[0]: must be a table, got string 'a'"),
        ("[[realm]]\nname = 1\n", "realm[0].name: must be a string, got integer 1"),
        ('[listener]\nplugin = "log"\n', "listener: must be an array of tables ([[listener]]), got a single table"),
        ("[[listener]]\nplugin = 1\n", "listener[0].plugin: must be a string, got integer 1"),
        ('[[listener]]\nplugin = "log"\npriority = true\n', "listener[0].priority: must be an integer, got boolean true"),
        ('[[listener]]\nplugin = "log"\npriority = 1.5\n', "listener[0].priority: must be an integer, got float 1.5"),
        ('[[listener]]\nplugin = "log"\npriority = "10"\n', "listener[0].priority: must be an integer, got string '10'"),
        ('[[listener]]\nplugin = "log"\noptions = "x=1"\n', "listener[0].options: must be a table, got string 'x=1'"),
    ],
)
def test_wrong_types(text, message):
    assert str(config_error(text)) == message


def test_wrong_type_of_whole_document():
    with pytest.raises(ConfigError) as info:
        parse_config(["not", "a", "table"])
    assert "must be a table" in str(info.value)


# --- bad values ------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("[router]\nmax_message_size = 0\n", "router.max_message_size: must be greater than 0, got 0"),
        ("[router]\nmax_message_size = -5\n", "router.max_message_size: must be greater than 0, got -5"),
        ("[router]\nping_interval = -1\n", "router.ping_interval: must be 0 or more, got -1"),
        ("[router]\nping_timeout = 0\n", "router.ping_timeout: must be greater than 0, got 0"),
        ("[router]\nlistener_timeout = -0.5\n", "router.listener_timeout: must be greater than 0, got -0.5"),
        ("[router]\nshutdown_timeout = 0.0\n", "router.shutdown_timeout: must be greater than 0, got 0.0"),
        ("[router]\nlistener_timeout = nan\n", "router.listener_timeout: must be a finite number, got nan"),
        ("[router]\nping_interval = inf\n", "router.ping_interval: must be a finite number, got inf"),
        ("listen = []\n", "listen: must not be empty; give at least one [[listen]] table"),
        ("realm = []\n", "realm: must not be empty; give at least one [[realm]] table"),
        ("[[listen]]\ntransport = \"websocket\"\n", "listen[0].endpoint: is required"),
        ("[[realm]]\n", "realm[0].name: is required"),
        ("[[listener]]\npriority = 1\n", "listener[0].plugin: is required"),
        ('[[listen]]\nendpoint = "tcp:1"\ntransport = "http"\n', "listen[0].transport: must be one of websocket, rawsocket, longpoll, universal, got 'http'"),
        ('[[listen]]\nendpoint = "tcp:1"\ntransport = "WebSocket"\n', "listen[0].transport: must be one of websocket, rawsocket, longpoll, universal, got 'WebSocket'"),
        ('[[listen]]\nendpoint = "tcp:1"\npath = "ws"\n', "listen[0].path: must start with '/' and contain no whitespace, '?' or '#', got 'ws'"),
        ('[[listen]]\nendpoint = "tcp:1"\npath = "/ws?x=1"\n', "listen[0].path: must start with '/' and contain no whitespace, '?' or '#', got '/ws?x=1'"),
        ('[[listen]]\nendpoint = "tcp:1"\npath = "/w s"\n', "listen[0].path: must start with '/' and contain no whitespace, '?' or '#', got '/w s'"),
        ('[[listen]]\nendpoint = "tcp:1"\ntransport = "rawsocket"\npath = "/ws"\n', "listen[0].path: only applies to transports 'websocket' and 'universal'"),
        ('[[listen]]\nendpoint = ""\n', "listen[0].endpoint: must not be empty"),
        ('[[listen]]\nendpoint = "bogus:1"\n', "listen[0].endpoint: not a valid Twisted server endpoint 'bogus:1': Unknown endpoint type: 'bogus'"),
        ('[[listen]]\nendpoint = "tcp:http"\n', "listen[0].endpoint: not a valid Twisted server endpoint 'tcp:http': invalid literal for int() with base 10: 'http'"),
        ('[[listen]]\nendpoint = "tcp:8080:colour=red"\n', "listen[0].endpoint: not a valid Twisted server endpoint 'tcp:8080:colour=red': got an unexpected keyword argument 'colour'"),
        ('[[listen]]\nendpoint = "tcp:70000"\n', "listen[0].endpoint: port must be between 0 and 65535 in 'tcp:70000', got 70000"),
        ('[[listen]]\nendpoint = "tcp:-1"\n', "listen[0].endpoint: port must be between 0 and 65535 in 'tcp:-1', got -1"),
        ('[[listen]]\nendpoint = "unix:"\n', "listen[0].endpoint: a unix endpoint needs a socket path: 'unix:'"),
        ('[[realm]]\nname = ""\n', "realm[0].name: must be a WAMP URI (dot-separated, non-empty components, no whitespace or '#'), got ''"),
        ('[[realm]]\nname = "a..b"\n', "realm[0].name: must be a WAMP URI (dot-separated, non-empty components, no whitespace or '#'), got 'a..b'"),
        ('[[realm]]\nname = ".a"\n', "realm[0].name: must be a WAMP URI (dot-separated, non-empty components, no whitespace or '#'), got '.a'"),
        ('[[realm]]\nname = "a."\n', "realm[0].name: must be a WAMP URI (dot-separated, non-empty components, no whitespace or '#'), got 'a.'"),
        ('[[realm]]\nname = "my realm"\n', "realm[0].name: must be a WAMP URI (dot-separated, non-empty components, no whitespace or '#'), got 'my realm'"),
        ('[[realm]]\nname = "a#b"\n', "realm[0].name: must be a WAMP URI (dot-separated, non-empty components, no whitespace or '#'), got 'a#b'"),
        ('[[realm]]\nname = "wamp.meta"\n', "realm[0].name: realm names starting with 'wamp.' are reserved, got 'wamp.meta'"),
        ('[[realm]]\nname = "a"\n[[realm]]\nname = "b"\n[[realm]]\nname = "a"\n', "realm[2].name: duplicate realm 'a' (also in realm[0])"),
        ('[[listener]]\nplugin = ""\n', "listener[0].plugin: must be a non-empty name without whitespace, got ''"),
        ('[[listener]]\nplugin = "my plugin"\n', "listener[0].plugin: must be a non-empty name without whitespace, got 'my plugin'"),
        ('[[listener]]\nplugin = "pkg.mod:"\n', "listener[0].plugin: must look like 'package.module:Attribute', got 'pkg.mod:'"),
        ('[[listener]]\nplugin = ":Thing"\n', "listener[0].plugin: must look like 'package.module:Attribute', got ':Thing'"),
        ('[[listener]]\nplugin = "pkg-x.mod:Thing"\n', "listener[0].plugin: must look like 'package.module:Attribute', got 'pkg-x.mod:Thing'"),
        ('[[listener]]\nplugin = "log"\noptions = { "not-an-identifier" = 1 }\n', "listener[0].options.not-an-identifier: option names must be Python identifiers (they are passed as keyword arguments)"),
    ],
)
def test_bad_values(text, message):
    assert str(config_error(text)) == message


def test_bad_ssl_endpoint_names_the_key(tmp_path):
    missing = tmp_path / "missing.pem"
    text = f'[[listen]]\nendpoint = "ssl:8443:privateKey={missing}:certKey={missing}"\n'
    error = config_error(text)
    assert error.key == "listen[0].endpoint"
    assert str(error).startswith("listen[0].endpoint: not a valid Twisted server endpoint 'ssl:8443:")
    # Without pyOpenSSL the parser fails before it looks for the files.
    assert "No such file or directory" in str(error) or "twisted[tls]" in str(error)


def test_good_ssl_endpoint(tmp_path):
    pytest.importorskip("OpenSSL")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path = tmp_path / "key.pem"
    cert_path = tmp_path / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    endpoint = f"ssl:8443:privateKey={key_path}:certKey={cert_path}"
    config = parse_config({"listen": [{"endpoint": endpoint}]})
    assert config.listen == (ListenConfig(endpoint),)
    with pytest.raises(ConfigError) as info:
        ListenConfig(f"ssl:70000:privateKey={key_path}:certKey={cert_path}")
    assert "port must be between 0 and 65535" in str(info.value)


def test_zero_ping_interval_disables_pings():
    assert RouterConfig(ping_interval=0).ping_interval == 0.0


# --- values built in code are validated too --------------------------------


def test_listen_config_checks_itself():
    with pytest.raises(ConfigError) as info:
        ListenConfig("bogus:1")
    assert info.value.key == "endpoint"
    with pytest.raises(ConfigError) as info:
        ListenConfig("tcp:1", transport="http")
    assert str(info.value) == "transport: must be one of websocket, rawsocket, longpoll, universal, got 'http'"


def test_realm_config_checks_itself():
    with pytest.raises(ConfigError) as info:
        RealmConfig("wamp.x")
    assert info.value.key == "name"


def test_listener_config_checks_itself():
    with pytest.raises(ConfigError) as info:
        ListenerConfig("log", priority=True)
    assert str(info.value) == "priority: must be an integer, got boolean true"
    with pytest.raises(ConfigError) as info:
        ListenerConfig("log", options=[("a", 1)])
    assert info.value.key == "options"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"listen": ()}, "listen: must not be empty"),
        ({"realms": []}, "realms: must not be empty"),
        ({"listen": "tcp:8080"}, "listen: must be a sequence of ListenConfig, got string 'tcp:8080'"),
        ({"listen": ["tcp:8080"]}, "listen[0]: must be a ListenConfig, got string 'tcp:8080'"),
        ({"realms": [RealmConfig("a"), RealmConfig("a")]}, "realms[1]: duplicate realm 'a'"),
        ({"listeners": [RealmConfig("a")]}, "listeners[0]: must be a ListenerConfig, got RealmConfig RealmConfig(name='a')"),
        ({"max_message_size": True}, "max_message_size: must be an integer, got boolean true"),
        ({"ping_timeout": math.inf}, "ping_timeout: must be a finite number, got inf"),
        ({"default_listener": None}, "default_listener: must be a boolean, got NoneType None"),
    ],
)
def test_router_config_checks_itself(kwargs, message):
    with pytest.raises(ConfigError) as info:
        RouterConfig(**kwargs)
    assert str(info.value) == message


def test_replace_validates():
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(RouterConfig(), ping_timeout=-1)
    assert info.value.key == "ping_timeout"


# --- load_config: file problems name the file ------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: no such file"
    assert info.value.source == str(path)


def test_toml_syntax_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[router\nping_interval = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: invalid TOML: ")
    assert "line 1" in str(info.value)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[[realm]]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, not a TOML file"


def test_bad_value_in_file_names_file_and_key(tmp_path):
    path = tmp_path / "wampd.toml"
    path.write_text('[[listen]]\nendpoint = "tcp:1"\ntransport = "http"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: listen[0].transport: must be one of websocket, rawsocket, longpoll, universal, got 'http'"
    )


# --- parse_listen: the command-line form -----------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("tcp:8080", ListenConfig("tcp:8080", "websocket")),
        ("ws:tcp:8080:interface=127.0.0.1", ListenConfig("tcp:8080:interface=127.0.0.1", "websocket")),
        ("websocket:unix:/tmp/s", ListenConfig("unix:/tmp/s", "websocket")),
        ("rawsocket:tcp:9000", ListenConfig("tcp:9000", "rawsocket")),
        ("rawsocket:unix:/tmp/raw.sock", ListenConfig("unix:/tmp/raw.sock", "rawsocket")),
        ("unix:/tmp/s", ListenConfig("unix:/tmp/s", "websocket")),
    ],
)
def test_parse_listen(spec, expected):
    assert parse_listen(spec) == expected
    assert parse_listen(spec).path == "/ws"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("ws:", "listen: no endpoint after 'ws:' in 'ws:'"),
        ("rawsocket:", "listen: no endpoint after 'rawsocket:' in 'rawsocket:'"),
        ("", "listen: must not be empty"),
        ("bogus:1", "listen: not a valid Twisted server endpoint 'bogus:1': Unknown endpoint type: 'bogus'"),
        ("rawsocket:tcp:x", "listen: not a valid Twisted server endpoint 'tcp:x': invalid literal for int() with base 10: 'x'"),
        ("ws:tcp:99999", "listen: port must be between 0 and 65535 in 'tcp:99999', got 99999"),
        ("http:tcp:8080", "listen: not a valid Twisted server endpoint 'http:tcp:8080': Unknown endpoint type: 'http'"),
    ],
)
def test_parse_listen_errors(spec, message):
    with pytest.raises(ConfigError) as info:
        parse_listen(spec)
    assert str(info.value) == message


def test_parse_listen_reports_against_a_given_key():
    with pytest.raises(ConfigError) as info:
        parse_listen("bogus:1", key="--listen")
    assert info.value.key == "--listen"


@pytest.mark.parametrize(
    "text,key",
    [
        ('[router]\nallowed_origins = ["https://a.example.com", ""]\n', "router.allowed_origins[1]"),
        ('[router]\nallowed_origins = ["not a url"]\n', "router.allowed_origins[0]"),
        ('[router]\nallowed_origins = ["https://a.example.com/"]\n', "router.allowed_origins[0]"),
        ('[router]\nallowed_origins = ["https://a.example.com/app"]\n', "router.allowed_origins[0]"),
        ('[router]\nallowed_origins = ["a.example.com"]\n', "router.allowed_origins[0]"),
        ('[router]\nallow_addresses = ["10.0.0.0/8", "not-a-net"]\n', "router.allow_addresses"),
        ('[router]\ndeny_addresses = "10.0.0.1"\n', "router.deny_addresses"),
        ("[router]\nmax_connections = -1\n", "router.max_connections"),
        ("[router]\nhello_timeout = -2\n", "router.hello_timeout"),
        ("[router]\nauth_fail_window = 0\n", "router.auth_fail_window"),
        ("[router]\nauth_fail_limit_authid = -1\n", "router.auth_fail_limit_authid"),
        ('[router]\nauth_fail_limit_address = "50"\n', "router.auth_fail_limit_address"),
        ("[router]\nauth_fail_tracked = 0\n", "router.auth_fail_tracked"),
    ],
)
def test_policy_keys_are_validated(text, key):
    error = config_error(text)
    assert str(error).startswith(key + ":"), str(error)


# --- slow consumers -----------------------------------------------------------


def test_slow_consumer_keys_default_and_read():
    """max_outbound_buffer defaults to 1 MiB and slow_consumer to "disconnect"; both are read from [router]."""
    assert (RouterConfig().max_outbound_buffer, RouterConfig().slow_consumer) == (1048576, "disconnect")
    config = parse_config(tomllib.loads('[router]\nmax_outbound_buffer = 0\nslow_consumer = "drop"\n'))
    assert (config.max_outbound_buffer, config.slow_consumer) == (0, "drop")


@pytest.mark.parametrize(
    "text,message",
    [
        ("[router]\nmax_outbound_buffer = -1\n", "router.max_outbound_buffer: must be 0 (unlimited) or more, got -1"),
        ('[router]\nmax_outbound_buffer = "1M"\n', "router.max_outbound_buffer: must be an integer, got string '1M'"),
        ('[router]\nslow_consumer = "block"\n', "router.slow_consumer: must be one of 'disconnect', 'drop', got 'block'"),
        ("[router]\nslow_consumer = 1\n", "router.slow_consumer: must be a string, got integer 1"),
    ],
)
def test_slow_consumer_keys_are_validated(text, message):
    """A bad limit or policy names the key and the reason."""
    assert str(config_error(text)) == message
@pytest.mark.parametrize(
    "text,message",
    [
        ("[router]\nmax_nesting_depth = 3\n", "router.max_nesting_depth: must be 0 (no limit) or from 8 to 100000, got 3"),
        ("[router]\nmax_nesting_depth = -1\n", "router.max_nesting_depth: must be 0 (no limit) or from 8 to 100000, got -1"),
        ('[router]\nmax_nesting_depth = "64"\n', "router.max_nesting_depth: must be an integer, got string '64'"),
        ("[router]\nmax_retained_topics = -5\n", "router.max_retained_topics: must be 0 (unlimited) or more, got -5"),
        ("[router]\nretained_ttl = -1.0\n", "router.retained_ttl: must be 0 or more, got -1.0"),
        ("[router]\nretained_ttl = nan\n", "router.retained_ttl: must be a finite number, got nan"),
        ("[router]\nmax_calls_in_flight = -1\n", "router.max_calls_in_flight: must be 0 (unlimited) or more, got -1"),
        ('[router]\nmax_calls_in_flight = "many"\n', "router.max_calls_in_flight: must be an integer, got string 'many'"),
        ("[router]\nmax_queued_messages = -1\n", "router.max_queued_messages: must be 0 (unlimited) or more, got -1"),
    ],
)
def test_input_limits_are_validated(text, message):
    """The nesting and retention limits name the key and the reason for a bad value."""
    assert str(config_error(text)) == message


def test_input_limits_defaults_and_values():
    """Defaults: 64 levels, 10000 retained topics per realm, no retained TTL; values from the file are kept."""
    default = RouterConfig()
    assert (default.max_nesting_depth, default.max_retained_topics, default.retained_ttl) == (64, 10000, 0.0)
    config = parse_config(tomllib.loads("[router]\nmax_nesting_depth = 0\nmax_retained_topics = 3\nretained_ttl = 2\n"))
    assert (config.max_nesting_depth, config.max_retained_topics, config.retained_ttl) == (0, 3, 2.0)


def test_max_calls_in_flight_default_and_value():
    """max_calls_in_flight and max_queued_messages default to 1000 per session and are read from [router] (0 turns them off)."""
    assert (RouterConfig().max_calls_in_flight, RouterConfig().max_queued_messages) == (1000, 1000)
    config = parse_config(tomllib.loads("[router]\nmax_calls_in_flight = 0\nmax_queued_messages = 5\n"))
    assert (config.max_calls_in_flight, config.max_queued_messages) == (0, 5)
