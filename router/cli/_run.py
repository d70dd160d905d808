"""C{wampd run}: the twistd plugin's options and service, in the foreground."""

from __future__ import annotations

import sys
from typing import cast

from twisted.python import usage

from router.cli._usage import usage_error

__all__ = ["run"]


def run(args: list[str]) -> int:
    """
    Parse C{args} as C{twistd wampd}'s options, start the router, run the
    reactor until a signal stops it, and return the exit status.

    Logging starts before the service does, so that an endpoint that can't
    listen is reported in the chosen format, on stdout like every other line.
    """
    from router.tap import Options, makeService  # lazy: keeps `wampd --help` fast

    options = Options()
    options.synopsis = "Usage: wampd run [options]"
    try:
        options.parseOptions(args)
    except usage.UsageError as exc:
        return usage_error("run", str(exc))

    from twisted.internet import reactor as installed  # lazy: installed only once the options are right
    from twisted.internet.interfaces import IReactorCore
    from twisted.logger import LogLevel, globalLogBeginner

    from router.logs import make_observer  # lazy: with the reactor, only to run

    log_format, level = options["log_settings"]
    observer = make_observer(sys.stdout, log_format or "text", level or LogLevel.info)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    service = makeService(options)
    try:
        service.startService()
    except SystemExit as exc:  # an endpoint could not listen; the log says which and why
        return exc.code if isinstance(exc.code, int) else 1
    reactor = cast(IReactorCore, installed)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
    return 0
