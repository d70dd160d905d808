"""
Where Redis is, from a ``redis://HOST:PORT/DB`` or ``unix:PATH`` URL.  No
Redis client is imported here, so the config can check a cluster URL without
the ``wampd[cluster]`` extra installed.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, UNIXClientEndpoint

__all__ = ["RedisAddress", "parse_redis_url"]


class RedisAddress:
    """Where Redis is: a TCP host and port, or a unix socket path; and the database number."""

    __slots__ = ("host", "port", "path", "db", "username", "password")

    def __init__(
        self, host: str | None = None, port: int = 6379, path: str | None = None, db: int = 0,
        username: str | None = None, password: str | None = None,
    ) -> None:
        self.host, self.port, self.path, self.db = host, port, path, db
        self.username, self.password = username, password  # Redis AUTH (ACL user, or requirepass alone)

    def endpoint(self, reactor):
        if self.path is not None:
            return UNIXClientEndpoint(reactor, self.path, timeout=5)
        kind = TCP6ClientEndpoint if ":" in (self.host or "") else TCP4ClientEndpoint
        return kind(reactor, self.host, self.port, timeout=5)

    def __str__(self) -> str:
        where = f"unix:{self.path}" if self.path is not None else f"redis://{self.host}:{self.port}"
        return f"{where} (db {self.db})"


def parse_redis_url(url: str) -> RedisAddress:
    """
    ``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`` or
    ``unix:PATH[?db=N][&user=USER][&password=PASSWORD]`` (also ``unix://PATH``).
    With a password the node sends ``AUTH`` first.  Raises ValueError saying
    what is wrong (never repeating the password).
    """
    if url.startswith("unix:"):
        rest = url[len("unix:"):]
        if rest.startswith("//"):
            rest = rest[2:]
        path, _, query = rest.partition("?")
        if not path:
            raise ValueError(f"{url!r} names no socket path (use unix:/path/to/redis.sock)")
        found = {}
        for item in filter(None, query.split("&")):
            key, _, value = item.partition("=")
            if key not in ("db", "user", "password") or (key == "db" and not value.isdigit()):
                raise ValueError(f"unix:{path}: a unix: URL takes db=N, user=U and password=P, got {key!r}")
            found[key] = unquote(value)
        return RedisAddress(
            path=unquote(path), db=int(found.get("db", 0)), username=found.get("user"), password=found.get("password")
        )
    parts = urlsplit(url)
    shown = url.split("@", 1)[-1] if "@" in url else url  # never the password
    if parts.scheme != "redis":
        raise ValueError(f"{shown!r} is not a redis:// or unix: URL")
    if not parts.hostname:
        raise ValueError(f"{shown!r} names no host")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"{shown!r} has a port that is not a number from 1 to 65535") from None
    db_text = parts.path.strip("/")
    if db_text and not db_text.isdigit():
        raise ValueError(f"{shown!r}: the path must be a database number, got {db_text!r}")
    return RedisAddress(
        host=parts.hostname, port=port, db=int(db_text or 0),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )
