"""``--cluster``, ``--cluster-name`` and ``--worker-fds`` for :mod:`router.tap` (see :mod:`router.cluster`, :mod:`router.workers`)."""

from __future__ import annotations

import dataclasses

from twisted.python import usage

from router.config import ClusterConfig, ConfigError, RouterConfig

__all__ = ["cluster_config", "worker_fds"]


def cluster_config(config: RouterConfig, url: str | None, name: str | None) -> ClusterConfig:
    """``--cluster`` and ``--cluster-name`` over the config file's ``[cluster]`` table."""
    base = config.cluster
    if url is None and base is None:
        raise usage.UsageError("--cluster-name needs --cluster URL (or a [cluster] table in --config)")
    try:
        if base is None:
            return ClusterConfig(url=url, name=name or "")
        return dataclasses.replace(base, url=url or base.url, name=base.name if name is None else name)
    except ConfigError as exc:
        option = "--cluster-name" if exc.key == "name" else "--cluster"
        raise usage.UsageError(f"{option}: {exc.reason}") from None


def worker_fds(spec: str, wanted: int) -> tuple[tuple[int, str], ...]:
    """``--worker-fds 3:inet,4:unix``: the inherited listening sockets, one per listen endpoint, in order."""
    found = []
    for part in spec.split(","):
        fd, _, family = part.partition(":")
        if not fd.isdigit() or family not in ("inet", "inet6", "unix"):
            raise usage.UsageError(f"--worker-fds: {part!r} is not FD:inet, FD:inet6 or FD:unix")
        found.append((int(fd), family))
    if len(found) != wanted:
        raise usage.UsageError(f"--worker-fds: {len(found)} sockets for {wanted} listen endpoints")
    return tuple(found)
