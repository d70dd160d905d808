"""
The listen backlog: how many accepted-by-the-kernel connections may wait for
the router to call accept().

Twisted's endpoints default to 50.  When thousands of clients reconnect at once
(a router restart), SYNs beyond the backlog are dropped and each client's
kernel retries a second later, then two, then four: admissions crawl.  So the
router asks for the kernel's own ceiling, C{net.core.somaxconn}, and never less
than 1024 (the kernel still caps the request at C{somaxconn}).

A backlog applies to the endpoint types that take one (C{tcp}, C{tcp6},
C{ssl}, C{unix}); it is given either in the endpoint string (C{backlog=N},
Twisted's own syntax) or as the C{backlog} key of a C{[[listen]]} table, not
both.
"""

from __future__ import annotations

import re

from router.config._errors import ConfigError, _check_int

__all__ = ["BACKLOG_TYPES", "default_backlog", "effective_endpoint", "check_backlog"]

#: Endpoint types whose Twisted parser takes C{backlog=}.
BACKLOG_TYPES = frozenset({"tcp", "tcp6", "ssl", "unix"})
MIN_DEFAULT_BACKLOG = 1024
_SOMAXCONN = "/proc/sys/net/core/somaxconn"
# ":backlog=" as a keyword argument of the endpoint string (not escaped)
_BACKLOG_ARG = re.compile(r"(?<!\\):\s*backlog\s*=")


def default_backlog(path: str = _SOMAXCONN) -> int:
    """C{somaxconn} when it can be read, and at least 1024."""
    try:
        with open(path) as f:
            value = int(f.read().strip())
    except (OSError, ValueError):
        return MIN_DEFAULT_BACKLOG
    return max(value, MIN_DEFAULT_BACKLOG)


def _endpoint_type(endpoint: str) -> str:
    return re.split(r"(?<!\\):", endpoint.strip(), maxsplit=1)[0].strip().lower()


def has_backlog(endpoint: str) -> bool:
    return _BACKLOG_ARG.search(endpoint) is not None


def check_backlog(endpoint: str, backlog: object) -> int | None:
    """The C{[[listen]]} key C{backlog}: None, or a positive int on an endpoint that takes one."""
    if backlog is None:
        return None
    value = _check_int("backlog", backlog)
    if value < 1:
        raise ConfigError("backlog", f"must be at least 1, got {value}")
    if _endpoint_type(endpoint) not in BACKLOG_TYPES:
        raise ConfigError(
            "backlog",
            f"only applies to tcp, tcp6, ssl and unix endpoints, not {endpoint!r}",
        )
    if has_backlog(endpoint):
        raise ConfigError("backlog", f"given twice: the endpoint {endpoint!r} has backlog= already")
    return value


def effective_endpoint(endpoint: str, backlog: int | None = None) -> str:
    """
    The endpoint string to listen on: C{endpoint} with C{:backlog=N} added
    when its type takes one and it names none (N is C{backlog}, or the
    default).  Other endpoint types are returned as they are.
    """
    if _endpoint_type(endpoint) not in BACKLOG_TYPES or has_backlog(endpoint):
        return endpoint
    return f"{endpoint}:backlog={backlog if backlog is not None else default_backlog()}"
