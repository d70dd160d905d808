"""The one way the C{wampd} command reports a usage error."""

from __future__ import annotations

import sys

__all__ = ["usage_error"]


def usage_error(command: str | None, message: str) -> int:
    """Print C{message} and one hint line on stderr; the exit status for it."""
    prog = f"wampd {command}" if command else "wampd"
    print(f"{prog}: {message}", file=sys.stderr)
    print(f"run `{prog} --help` for the {'options' if command else 'commands'}", file=sys.stderr)
    return 1
