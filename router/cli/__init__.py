"""
The C{wampd} command: C{wampd run}, C{wampd check CONFIG}, C{wampd --version}.

C{wampd run} takes exactly the options of C{twistd -n wampd} (they are the
same L{router.tap.Options}) and runs the same L{router.service.RouterService}
in the foreground, logging to stdout: the same exit statuses (0 after a
graceful SIGTERM, SIGINT or SIGHUP; 1 when an endpoint can't listen or an
option is wrong) and the same signals. C{twistd -n wampd} and C{twist wampd}
keep working.

A usage error prints the error and one line saying where the help is, on
stderr, and exits with status 1, like every other failure of this command.
"""

from __future__ import annotations

import sys
from typing import Sequence

from router.cli._usage import usage_error

__all__ = ["main", "usage_error"]

_HELP = """\
Usage: wampd COMMAND [options]

A WAMP v2 router for Twisted.

Commands:
  run [options]   run the router in the foreground (`wampd run --help` lists the options)
  check CONFIG    check a TOML config: every error with its key path, or a summary
  --version       print wampd's version and exit
  --help          print this help and exit

`twistd -n wampd [options]` and `twist wampd [options]` run the same router.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """The console script's entry point; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return usage_error(None, "no command given")
    command, rest = args[0], args[1:]
    if command in ("-h", "--help", "help"):
        print(_HELP, end="")
        return 0
    if command in ("-V", "--version", "version"):
        from router.version import describe  # lazy: importlib.metadata only for --version

        print(describe())
        return 0
    if command == "run":
        from router.cli._run import run  # lazy: the reactor and the router load only to run

        return run(rest)
    if command == "check":
        from router.cli._check import check  # lazy: the config loader loads only to check

        return check(rest)
    return usage_error(None, f"unknown command {command!r}")


def console() -> None:
    """The C{wampd} console script."""
    try:
        status = main()
    except BrokenPipeError:  # `wampd run --help | head`: the reader left, nothing is wrong
        status = 0
    raise SystemExit(status)
