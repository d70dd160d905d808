"""
What the per-session counters (and the other issue-13 hooks on the hot path)
cost: the CPU instructions of N routed calls and N publications to 10
subscribers through a MemoryRouter (real RawSocket protocols over
twisted.test.iosim, real autobahn-python clients), measured under
callgrind, for two source trees.  Instruction counts, not wall-clock time:
they do not depend on what else the machine runs.

    python bench/stats_cost.py                    # this tree vs 0b6340f (exported to a temporary directory)
    python bench/stats_cost.py --base REV --head REV --runs 3 --calls 2000

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

    memory = MemoryRouter(seed=1)  # repeatable IDs (with PYTHONHASHSEED=0: repeatable runs)
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
    env = dict(os.environ, PYTHONPATH=tree, PYTHONHASHSEED="0")
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
         "--workload", "--calls", str(calls), "--publications", str(publications)],
        env=env, cwd=tree, capture_output=True, text=True, check=True,
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(out.stderr[-2000:])
    return int(found.group(1))


def export(rev: str, into: str) -> None:
    archive = subprocess.run(["git", "archive", rev], cwd=HERE, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workload", action="store_true")
    parser.add_argument("--base", default="0b6340f")
    parser.add_argument("--head", default=None, help="a revision instead of this tree")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--publications", type=int, default=1000)
    args = parser.parse_args()
    if args.workload:
        workload(args.calls, args.publications)
        return
    head_name = args.head or "this tree"
    with tempfile.TemporaryDirectory() as base, tempfile.TemporaryDirectory() as other:
        export(args.base, base)
        head = HERE
        if args.head:
            export(args.head, other)
            head = other
        trees = ((args.base, base), (head_name, head))
        counts: dict[str, list[int]] = {args.base: [], head_name: []}
        fixed: dict[str, list[int]] = {args.base: [], head_name: []}
        for _ in range(args.runs):  # alternated: base, head, base, head, ...
            for name, tree in trees:
                counts[name].append(instructions(tree, args.calls, args.publications))
                # no calls and no publications: the fixed cost (imports, joins) to subtract
                fixed[name].append(instructions(tree, 0, 0))
    for name, runs in counts.items():
        print(f"{name}: {runs} instructions; setup alone {fixed[name]}")
    work = {name: min(runs) - min(fixed[name]) for name, runs in counts.items()}
    base_work, head_work = work[args.base], work[head_name]
    ops = args.calls + args.publications
    print(f"routed work: base {base_work}, head {head_work}: {head_work - base_work:+d} instructions "
          f"({100.0 * (head_work - base_work) / base_work:+.2f}%), {(head_work - base_work) / ops:+.1f} per operation "
          f"({args.calls} calls + {args.publications} publications to 10 subscribers)")


if __name__ == "__main__":
    main()
