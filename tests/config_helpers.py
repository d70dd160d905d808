"""Reading TOML text as the config file reader does, for the config and auth tests."""

from __future__ import annotations

import tomllib

import pytest

from router.config import ConfigError, RealmConfig, RouterConfig, parse_config


def config_from_toml(text: str, source: str = "<config>") -> RouterConfig:
    """Parse TOML text into a L{RouterConfig}."""
    return parse_config(tomllib.loads(text), source)


def realm_from_toml(text: str, source: str = "<config>") -> RealmConfig:
    """The first realm of a TOML text."""
    return config_from_toml(text, source).realms[0]


def config_error(text: str, source: str = "<config>") -> ConfigError:
    """Parse TOML text and return the ConfigError it must raise."""
    with pytest.raises(ConfigError) as info:
        config_from_toml(text, source)
    return info.value
