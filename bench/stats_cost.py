"""
What the per-session counters (and the other issue-13 hooks on the hot path)
cost: the CPU instructions of N routed calls and N publications to 10
subscribers through a MemoryRouter (real RawSocket protocols over
twisted.test.iosim, real autobahn-python clients), measured under
callgrind, for two source trees.  Instruction counts, not wall-clock time:
they do not depend on what else the machine runs.

    python bench/stats_cost.py                    # this tree vs 0b6340f (exported to a temporary directory)
    python bench/stats_cost.py --base REV --runs 3 --calls 2000

Prints the instructions of each run and the per-call/per-publication
difference.  Needs valgrind.  The workload itself (``--workload``) runs in
the tree on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def workload(calls: int, publications: int) -> None:
    from autobahn.wamp.types import PublishOptions

    from router.testing import MemoryRouter

    memory = MemoryRouter()
    callee = memory.join()
    caller = memory.join()
    subscribers = [memory.join() for _ in range(10)]
    memory.result(callee.register(lambda x: x, "com.bench.echo"))
    for s in subscribers:
        memory.result(s.subscribe(lambda *a: None, "com.bench.topic"))
    for n in range(calls):
        memory.result(caller.call("com.bench.echo", n))
    ack = PublishOptions(acknowledge=True)
    for n in range(publications):
        memory.result(caller.publish("com.bench.topic", n, options=ack))


def instructions(tree: str, calls: int, publications: int) -> int:
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
         "--workload", "--calls", str(calls), "--publications", str(publications)],
        env=env, cwd=tree, capture_output=True, text=True, check=True,
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(out.stderr[-2000:])
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", action="store_true")
    parser.add_argument("--base", default="0b6340f")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--publications", type=int, default=1000)
    args = parser.parse_args()
    if args.workload:
        workload(args.calls, args.publications)
        return
    with tempfile.TemporaryDirectory() as base:
        archive = subprocess.run(["git", "archive", args.base], cwd=HERE, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", base], input=archive, check=True)
        counts: dict[str, list[int]] = {args.base: [], "HEAD (this tree)": []}
        for _ in range(args.runs):  # alternated: base, this, base, this, ...
            counts[args.base].append(instructions(base, args.calls, args.publications))
            counts["HEAD (this tree)"].append(instructions(HERE, args.calls, args.publications))
            # a run with no calls and publications: the fixed cost (imports, joins) to subtract
        fixed = {name: instructions(tree, 0, 0) for name, tree in ((args.base, base), ("HEAD (this tree)", HERE))}
    for name, runs in counts.items():
        print(f"{name}: {runs} instructions; setup alone {fixed[name]}")
    work = {name: min(runs) - fixed[name] for name, runs in counts.items()}
    base_work, head_work = work[args.base], work["HEAD (this tree)"]
    ops = args.calls + args.publications
    print(f"routed work: base {base_work}, head {head_work}: {head_work - base_work:+d} instructions "
          f"({100.0 * (head_work - base_work) / base_work:+.2f}%), {(head_work - base_work) / ops:+.1f} per operation "
          f"({args.calls} calls + {args.publications} publications to 10 subscribers)")


if __name__ == "__main__":
    main()
