"""wampd's version, from the installed package's metadata."""

from __future__ import annotations

import platform
from importlib import metadata

from router import __version__

__all__ = ["describe", "version"]


def version() -> str:
    """
    The version of the installed C{wampd} distribution; running from a
    source tree that was never installed, C{router.__version__}.
    """
    try:
        return metadata.version("wampd")
    except metadata.PackageNotFoundError:
        return __version__


def _of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> str:
    """One line: wampd's version, then the versions it runs on."""
    return (
        f"wampd {version()} (Twisted {_of('twisted')}, Autobahn {_of('autobahn')}, "
        f"Python {platform.python_version()})"
    )
