"""
A node's state in Redis, written whole and read whole: at join, after an
outage, and (reading) every ``resync_every`` heartbeats.  Between those, the
``P notices`` channel carries the changes one by one.
"""

from __future__ import annotations

from typing import Any

import msgpack

__all__ = ["SEP", "write_state", "read_state"]

SEP = "\x1f"  # between realm, match and URI in a subscription or registration field


def _fields(entries) -> list:
    fields: list = []
    for entry, value in entries:
        fields += [SEP.join(entry), value]
    return fields


async def write_state(node: Any) -> None:
    """Replace ``node``'s subscriptions and registrations in Redis, then announce it (``hello``)."""
    cmd = node._cmd
    for key, entries in (
        (node._subs_key(node.name), [(entry, "1") for entry in node._local]),
        (node._regs_key(node.name), list(node._local_regs.items())),
    ):
        await cmd.command("DEL", key)
        if entries:
            await cmd.command("HSET", key, *_fields(entries))
    await node.sessions.write(cmd)
    await node.testaments.write(cmd)  # first publishes what dead nodes left (router.cluster._testaments)
    await node.claims.reclaim(node._local_regs)  # a restarted Redis lost them
    await node.calls.procedures.write_local()  # shared registrations' callees and their times
    await cmd.command("PUBLISH", node._notices, msgpack.packb(("hello", node.name), use_bin_type=True))


async def read_state(node: Any) -> tuple[dict, dict]:
    """
    Every other live node's subscriptions ({node: {entry}}) and registrations
    ({node: {entry: invocation policy, and callees for a shared one}}), as Redis holds them now.
    """
    cmd = node._cmd
    subscriptions: dict[str, set] = {}
    cursor = b"0"
    skip = len(node.prefix) + len("node:")
    while True:
        cursor, keys = await cmd.command("SCAN", cursor, "MATCH", f"{node.prefix}node:*", "COUNT", 1000)
        for key in keys:
            name = key.decode()[skip:]
            if name != node.name:
                subscriptions[name] = set()
        if cursor == b"0":
            break
    procedures: dict[str, dict] = {}
    for name in subscriptions:
        fields = await cmd.command("HKEYS", node._subs_key(name))
        subscriptions[name] = {tuple(field.decode().split(SEP, 2)) for field in fields}
        flat = await cmd.command("HGETALL", node._regs_key(name))
        procedures[name] = {
            tuple(flat[i].decode().split(SEP, 2)): flat[i + 1].decode() for i in range(0, len(flat), 2)
        }
    return subscriptions, procedures
