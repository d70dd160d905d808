"""Reading a secret from a config table: inline, from the environment, or from a file."""

from __future__ import annotations

import os
from collections.abc import Mapping

from router.config._errors import ConfigError, _check_secret, _check_str

__all__: list[str] = []


def _read_secret(
    where: str, table: Mapping, name: str, base_dir: str | None, required: str | None = None
) -> str | None:
    """
    The secret C{name} of a table (a principal's, or C{[http]}'s), given
    inline (C{name}), by environment variable (C{name_env}) or by file
    (C{name_file}, relative to C{base_dir}, without its trailing newline).
    At most one of the three may be given; with C{required} (why it is),
    exactly one.
    """
    given = [key for key in (name, f"{name}_env", f"{name}_file") if key in table]
    if required is not None and len(given) != 1:
        raise ConfigError(
            where, f"give exactly one of {name}, {name}_env, {name}_file ({required})"
        )
    if not given:
        return None
    if len(given) > 1:
        raise ConfigError(
            f"{where}.{given[1]}", f"give only one of {', '.join(given)}"
        )
    key = given[0]
    path = f"{where}.{key}"
    value = table[key]
    if key == name:
        return _check_secret(path, value)
    if key.endswith("_env"):
        variable = _check_str(path, value)
        if not variable:
            raise ConfigError(path, "must name an environment variable")
        secret = os.environ.get(variable)
        if secret is None:
            raise ConfigError(path, f"environment variable {variable} is not set")
        if not secret:
            raise ConfigError(path, f"environment variable {variable} is empty")
        return secret
    filename = _check_str(path, value)
    if not filename:
        raise ConfigError(path, "must name a file")
    full = os.path.join(base_dir, filename) if base_dir else filename
    try:
        with open(full, encoding="utf-8") as stream:
            secret = stream.read()
    except FileNotFoundError:
        raise ConfigError(path, f"no such file: {full}") from None
    except IsADirectoryError:
        raise ConfigError(path, f"is a directory, not a file: {full}") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read {full}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, f"not valid UTF-8: {full}") from None
    if secret.endswith("\r\n"):
        secret = secret[:-2]
    elif secret.endswith("\n"):
        secret = secret[:-1]
    if not secret:
        raise ConfigError(path, f"file {full} is empty")
    return secret
