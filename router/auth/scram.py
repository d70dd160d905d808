"""
WAMP-SCRAM credentials from a password, for a principal's C{scram} key::

    python -m router.auth.scram alice                 # asks for the password
    python -m router.auth.scram --kdf pbkdf2 alice < password.txt

prints one TOML line to put in alice's C{[[realm.principal]]} table::

    scram = { kdf = "argon2id-13", salt = "...", iterations = 2, memory = 19456, stored_key = "...", server_key = "..." }

The password itself is never stored.  The KDFs:

  - C{argon2id-13} (the default): Argon2id, as Autobahn-Python's C{AuthScram}
    (and Crossbar) compute it; their SaltedPassword is the unpadded base64
    text of the 32-byte Argon2id output.
  - C{argon2id13}: Argon2id as the WAMP spec writes it (the raw 32 bytes).
  - C{pbkdf2}: PBKDF2-HMAC-SHA256, 32 bytes, as the spec writes it.

The salt is random (16 bytes, base64) and every KDF gets its decoded bytes.
Argon2 needs the C{argon2-cffi} package (C{pip install wampd[scram]}); the
router itself never runs a KDF.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import os
import sys

from router.auth._scram import scram_keys
from router.auth._types import ScramCredential

__all__ = ["KDFS", "derive_scram_credential", "salted_password", "main"]

KDFS = ("argon2id-13", "argon2id13", "pbkdf2")
"""The KDFs a credential can use (the C{kdf} the CHALLENGE carries)."""

_DEFAULTS = {  # iterations, memory (KiB): OWASP's minimums for Argon2id, and for PBKDF2-SHA256
    "argon2id-13": (2, 19456),
    "argon2id13": (2, 19456),
    "pbkdf2": (600000, None),
}


def salted_password(kdf: str, password: str, salt: str, iterations: int, memory: int | None) -> bytes:
    """The SaltedPassword of WAMP-SCRAM (C{salt} is base64)."""
    raw_salt = base64.b64decode(salt, validate=True)
    secret = password.encode("utf-8")
    if kdf == "pbkdf2":
        return hashlib.pbkdf2_hmac("sha256", secret, raw_salt, iterations, 32)
    if kdf not in KDFS:
        raise ValueError(f"unknown kdf {kdf!r}; use one of {', '.join(KDFS)}")
    if memory is None:
        raise ValueError(f"kdf {kdf!r} needs memory (KiB)")
    from argon2.low_level import Type, hash_secret_raw  # lazy: optional dependency (wampd[scram])

    raw = hash_secret_raw(
        secret, raw_salt, time_cost=iterations, memory_cost=memory, parallelism=1, hash_len=32, type=Type.ID, version=19
    )
    if kdf == "argon2id-13":
        return base64.b64encode(raw).rstrip(b"=")
    return raw


def derive_scram_credential(
    password: str,
    kdf: str = "argon2id-13",
    *,
    iterations: int | None = None,
    memory: int | None = None,
    salt: str | None = None,
) -> ScramCredential:
    """A L{ScramCredential} for C{password}; a random salt unless C{salt} (base64) is given."""
    if kdf not in KDFS:
        raise ValueError(f"unknown kdf {kdf!r}; use one of {', '.join(KDFS)}")
    default_iterations, default_memory = _DEFAULTS[kdf]
    iterations = iterations or default_iterations
    memory = (memory or default_memory) if kdf != "pbkdf2" else None
    salt = salt or base64.b64encode(os.urandom(16)).decode("ascii")
    stored_key, server_key = scram_keys(salted_password(kdf, password, salt, iterations, memory))
    return ScramCredential(kdf, salt, iterations, memory, stored_key, server_key)


def toml_line(credential: ScramCredential) -> str:
    """The C{scram = {...}} line of a principal table."""
    parts = [f'kdf = "{credential.kdf}"', f'salt = "{credential.salt}"', f"iterations = {credential.iterations}"]
    if credential.memory is not None:
        parts.append(f"memory = {credential.memory}")
    for name in ("stored_key", "server_key"):
        parts.append(f'{name} = "{base64.b64encode(getattr(credential, name)).decode("ascii")}"')
    return "scram = { " + ", ".join(parts) + " }"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m router.auth.scram",
        description="Print the scram = {...} line of a [[realm.principal]] for a password "
        "(read from the terminal, or from stdin when it is not one).",
    )
    parser.add_argument("authid", help="the principal (only named in the prompt)")
    parser.add_argument("--kdf", choices=KDFS, default="argon2id-13")
    parser.add_argument("--iterations", type=int, help="Argon2 time cost or PBKDF2 rounds")
    parser.add_argument("--memory", type=int, help="Argon2 memory in KiB")
    args = parser.parse_args(argv)
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.authid}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        parser.error("the password is empty")
    try:
        credential = derive_scram_credential(password, args.kdf, iterations=args.iterations, memory=args.memory)
    except ImportError:
        parser.error("Argon2 needs the argon2-cffi package: pip install 'wampd[scram]'")
    print(toml_line(credential))
    return 0


if __name__ == "__main__":
    sys.exit(main())
