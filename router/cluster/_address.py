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

    __slots__ = ("host", "port", "path", "db")

    def __init__(self, host: str | None = None, port: int = 6379, path: str | None = None, db: int = 0) -> None:
        self.host, self.port, self.path, self.db = host, port, path, db

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
    ``redis://HOST[:PORT][/DB]`` or ``unix:PATH[?db=N]`` (also ``unix://PATH``).
    Raises ValueError saying what is wrong.
    """
    if url.startswith("unix:"):
        rest = url[len("unix:"):]
        if rest.startswith("//"):
            rest = rest[2:]
        path, _, query = rest.partition("?")
        if not path:
            raise ValueError(f"{url!r} names no socket path (use unix:/path/to/redis.sock)")
        db = 0
        if query:
            key, _, value = query.partition("=")
            if key != "db" or not value.isdigit():
                raise ValueError(f"{url!r}: the only query a unix: URL takes is db=N")
            db = int(value)
        return RedisAddress(path=unquote(path), db=db)
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"{url!r} is not a redis:// or unix: URL")
    if not parts.hostname:
        raise ValueError(f"{url!r} names no host")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"{url!r} has a port that is not a number from 1 to 65535") from None
    db_text = parts.path.strip("/")
    if db_text and not db_text.isdigit():
        raise ValueError(f"{url!r}: the path must be a database number, got {db_text!r}")
    return RedisAddress(host=parts.hostname, port=port, db=int(db_text or 0))
