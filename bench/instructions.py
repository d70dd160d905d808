"""
Instructions per routed message, counted by valgrind's callgrind: repeatable
on a busy machine, where wall-clock figures are not.

    python bench/instructions.py [--python .venv/bin/python] [--tree .] [-n 400]

For CALL/RESULT (one callee) and acknowledged PUBLISH (ten subscribers) it
runs a MemoryRouter workload twice under callgrind, with 0 and with n
messages, and prints (instructions(n) - instructions(0)) / n.  Both sides of
the wire run in the process (the Autobahn clients too), so a change in the
router shows as a smaller share of the figure than it is of the router's own
cost; compare trees with the same Python and packages.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

WORKLOAD = r"""
import sys
from autobahn.wamp.types import PublishOptions
from router.testing import MemoryRouter
n, kind = int(sys.argv[1]), sys.argv[2]
memory = MemoryRouter()
callee, caller = memory.join(), memory.join()
subscribers = [memory.join() for _ in range(10)]
memory.result(callee.register(lambda x: x, "com.echo"))
for s in subscribers:
    memory.result(s.subscribe(lambda x: None, "com.news"))
memory.result(caller.call("com.echo", 1))
for i in range(n):
    if kind == "call":
        memory.result(caller.call("com.echo", i))
    else:
        memory.result(caller.publish("com.news", i, options=PublishOptions(acknowledge=True)))
"""


def count(python: str, tree: Path, n: int, kind: str) -> int:
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, "-c", WORKLOAD, str(n), kind],
        env=env, capture_output=True, text=True, check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("-n", type=int, default=400)
    args = parser.parse_args()
    for kind in ("call", "publish"):
        base = count(args.python, args.tree, 0, kind)
        loaded = count(args.python, args.tree, args.n, kind)
        print(f"{kind}: {(loaded - base) / args.n:,.0f} instructions per message (tree {args.tree})")


if __name__ == "__main__":
    main()
