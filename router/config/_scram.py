"""The C{scram} and C{tls} credentials of a principal, checked."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from router.config._errors import ConfigError, _check_int, _check_items, _check_str, _describe

__all__ = ["SCRAM_KDFS", "ScramConfig", "check_tls_credentials"]

SCRAM_KDFS = ("argon2id-13", "argon2id13", "pbkdf2")
_SCRAM_KEYS = ("kdf", "salt", "iterations", "memory", "stored_key", "server_key")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _base64(key: str, value: object, size: int | None = None) -> str:
    text = _check_str(key, value)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(key, "must be base64") from None
    if not raw or (size is not None and len(raw) != size):
        raise ConfigError(key, f"must be base64 of {size or 'one or more'} bytes, got {len(raw)}")
    return text


@dataclass(frozen=True)
class ScramConfig:
    """
    A principal's WAMP-SCRAM credential, as C{python -m router.auth.scram}
    prints it: C{scram = { kdf, salt, iterations, memory, stored_key,
    server_key }} (salt and keys base64; C{memory} for Argon2 only, KiB).
    """

    kdf: str
    salt: str
    iterations: int
    memory: int | None
    stored_key: str = field(repr=False)
    server_key: str = field(repr=False)

    @classmethod
    def from_table(cls, table: object) -> ScramConfig:
        if not isinstance(table, Mapping):
            raise ConfigError(None, f"must be a table {{ kdf, salt, ... }}, got {_describe(table)}")
        for key in table:
            if key not in _SCRAM_KEYS:
                raise ConfigError(str(key), f"unknown key; expected one of: {', '.join(_SCRAM_KEYS)}")
        for key in _SCRAM_KEYS:
            if key not in table and key != "memory":
                raise ConfigError(key, "is required (python -m router.auth.scram prints the whole table)")
        return cls(**{key: table.get(key) for key in _SCRAM_KEYS})

    def __post_init__(self) -> None:
        if _check_str("kdf", self.kdf) not in SCRAM_KDFS:
            raise ConfigError("kdf", f"must be one of {', '.join(SCRAM_KDFS)}, got {self.kdf!r}")
        _base64("salt", self.salt)
        if _check_int("iterations", self.iterations) < 1:
            raise ConfigError("iterations", f"must be 1 or more, got {self.iterations}")
        if self.kdf == "pbkdf2":
            if self.memory is not None:
                raise ConfigError("memory", "only applies to the argon2 KDFs")
        elif self.memory is None:
            raise ConfigError("memory", f"is required for kdf {self.kdf!r} (KiB)")
        elif _check_int("memory", self.memory) < 8:
            raise ConfigError("memory", f"must be 8 KiB or more, got {self.memory}")
        _base64("stored_key", self.stored_key, 32)
        _base64("server_key", self.server_key, 32)


def check_tls_credentials(fingerprints: object, cn: object) -> tuple[str, ...]:
    """A principal's C{tls_fingerprints} (SHA-256, hex, colons allowed), normalised; checks C{tls_cn}."""
    if isinstance(fingerprints, str):
        raise ConfigError("tls_fingerprints", f"must be a sequence of str, got {_describe(fingerprints)}")
    normalised: list[str] = []
    for index, text in enumerate(_check_items("tls_fingerprints", fingerprints, str, allow_empty=True)):
        value = text.replace(":", "").lower()
        if not _FINGERPRINT.fullmatch(value):
            raise ConfigError(
                f"tls_fingerprints[{index}]",
                f"must be a SHA-256 fingerprint (64 hex digits, colons allowed), got {text!r}",
            )
        if value in normalised:
            raise ConfigError(f"tls_fingerprints[{index}]", f"duplicate fingerprint {text!r}")
        normalised.append(value)
    if cn is not None and not _check_str("tls_cn", cn):
        raise ConfigError("tls_cn", "must not be empty")
    return tuple(normalised)
