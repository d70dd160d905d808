"""
Log output: C{--log-format text|json} and C{--log-level}, the same under
C{wampd run}, C{twistd} and C{twist}.

Formats:

  - C{text}: Twisted's own line, C{<time> [<namespace>#<level>] <message>}.
    The default listener's messages name the event, the session, the realm,
    the authid and the client's address in words.
  - C{json}: one JSON object per line (no record separators, unlike Twisted's
    C{jsonFileLogObserver}, so C{jq}, Loki, Vector or Elasticsearch read it
    as it is): C{time} (ISO 8601, UTC), C{level}, C{namespace}, C{message}
    (the text format's message), then C{event}, C{session}, C{realm},
    C{authid}, C{address} and C{connection} (null where an event has none),
    and C{error} (a traceback) when the entry carries one.

How each runner gets them (both are decided when the options are parsed):

  - C{twistd}: wampd sets twistd's own C{--logger} to an observer factory
    that writes where twistd would (C{--logfile}, stdout under C{-n}, else
    C{twistd.log}). Without either wampd option twistd's logging is left
    exactly as it was. Giving one of them together with twistd's
    C{--logger} or C{--syslog} is a usage error: two settings would compete.
  - C{twist}: wampd sets twist's observer factory and level. wampd's
    options win over twist's C{--log-format}/C{--log-level}; without them
    twist's are used, except that wampd keeps C{text} when twist would have
    switched to JSON only because its output is not a terminal (a router
    behind systemd or a pipe should not change format by itself).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import IO, Any, Callable, Mapping

from twisted.logger import (
    FilteringLogObserver,
    FileLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    textFileLogObserver,
)

__all__ = [
    "FIELDS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "apply_log_options",
    "json_file_observer",
    "make_observer",
    "parse_format",
    "parse_level",
]

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")
# The structured fields of a lifecycle log entry, in both formats.
FIELDS = ("event", "session", "realm", "authid", "address", "connection")


def parse_format(value: str) -> str:
    """C{text} or C{json}; anything else raises ValueError saying what is allowed."""
    name = value.strip().lower()
    if name not in LOG_FORMATS:
        raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}, got {value!r}")
    return name


def parse_level(value: str) -> LogLevel:
    """A Twisted L{LogLevel} by name (C{warning} is taken for C{warn})."""
    name = value.strip().lower()
    if name == "warning":
        name = "warn"
    if name not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return LogLevel.levelWithName(name)


def _json_line(event: Mapping[str, Any]) -> str:
    stamp = event.get("log_time")
    when = (
        datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if stamp is not None
        else None
    )
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": when,
        "level": level.name if level is not None else None,
        "namespace": event.get("log_namespace"),
        "message": formatEvent(dict(event)),
    }
    for name in FIELDS:
        record[name] = event.get(name)
    failure = event.get("log_failure")
    if failure is not None:
        try:
            record["error"] = failure.getTraceback()
        except Exception:  # a traceback that can't be rendered still leaves a line
            record["error"] = repr(failure)
    return json.dumps(record, default=str, ensure_ascii=False) + "\n"


def json_file_observer(out: IO[str]) -> FileLogObserver:
    """An observer writing one plain JSON object per line to C{out}."""
    return FileLogObserver(out, _json_line)


def make_observer(out: IO[str], log_format: str = "text", level: LogLevel = LogLevel.info) -> ILogObserver:
    """An observer for C{out} in C{log_format}, passing C{level} and above."""
    inner = json_file_observer(out) if log_format == "json" else textFileLogObserver(out)
    return FilteringLogObserver(inner, [LogLevelFilterPredicate(defaultLogLevel=level)])


def _set_txaio_level(level: LogLevel) -> None:
    """Autobahn logs through txaio, which drops entries below its own level before Twisted sees them."""
    import txaio  # lazy: only when a level was asked for

    # bound by txaio.use_twisted(); not every txaio release declares it
    set_level: Callable[[str], None] = getattr(txaio, "set_global_log_level")
    set_level(level.name)


def _twistd_file(parent: Mapping[str, Any]) -> IO[str]:
    """Where twistd itself would write: --logfile, stdout under -n, else twistd.log."""
    from twisted.python.logfile import LogFile  # lazy: twistd only

    name = parent.get("logfile") or ""
    if name == "-":
        if not parent.get("nodaemon"):
            sys.exit("Daemons cannot log to stdout, exiting!")
        return sys.stdout
    if not name and parent.get("nodaemon"):
        return sys.stdout
    return LogFile.fromFullPath(name or "twistd.log")


def _explicit_twist_format(subcommand: str | None, argv: list[str]) -> bool:
    """Whether twist's own --log-format was given before the plugin's name."""
    for arg in argv[1:]:
        if arg == subcommand:
            return False
        if arg == "--log-format" or arg.startswith("--log-format="):
            return True
    return False


def apply_log_options(
    parent: Any, log_format: str | None, level: LogLevel | None, argv: list[str] | None = None
) -> Callable[[], ILogObserver] | None:
    """
    Hand wampd's log options to the runner whose options are C{parent}
    (twistd's or twist's), as the module docstring says. Returns the
    observer factory given to twistd, if any. Raises ValueError for options
    that twistd's own would contradict.
    """
    if level is not None:
        _set_txaio_level(level)
    if parent is None:
        return None
    if "fileLogObserverFactory" in parent:  # twist
        if log_format is not None:
            parent["fileLogObserverFactory"] = json_file_observer if log_format == "json" else textFileLogObserver
            parent["logFormat"] = log_format
        elif parent.get("logFormat") == "json" and not _explicit_twist_format(
            getattr(parent, "subCommand", None), sys.argv if argv is None else argv
        ):
            parent["fileLogObserverFactory"] = textFileLogObserver
            parent["logFormat"] = "text"
        if level is not None:
            parent["logLevel"] = level
        return None
    if "logfile" in parent and "logger" in parent:  # twistd
        if log_format is None and level is None:
            return None
        for option in ("logger", "syslog"):
            if parent.get(option):
                raise ValueError(
                    f"--log-format/--log-level set twistd's log observer; leave out twistd's --{option}"
                )
        chosen_format, chosen_level = log_format or "text", level or LogLevel.info

        def factory() -> ILogObserver:
            return make_observer(_twistd_file(parent), chosen_format, chosen_level)

        # twistd resolves --logger by name after the plugin's options are
        # parsed, so the factory is published under a name it can import.
        global _twistd_factory
        _twistd_factory = factory
        parent["logger"] = f"{__name__}._twistd_factory"
        return factory
    return None


_twistd_factory: Callable[[], ILogObserver] | None = None
