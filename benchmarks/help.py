"""Check: ``bulkref --help`` and every ``bulkref COMMAND --help`` answer within 0.15 s.

    python benchmarks/help.py [--runs 7] [--limit 0.15]

Each is timed as a user meets it: a fresh interpreter running ``python -m bulkref
... --help`` to its exit, the best of ``--runs`` runs (the best, not the mean: on a
shared machine the others measure the neighbours), with the CPU time it used beside it
(where the platform reports a child's: less swayed by a busy machine). The floor is a fresh
interpreter that imports click and exits, the least any click command can cost.
Exits 1, naming the slow ones, when any is over ``--limit``; a help that prints
nothing or fails exits 2.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

try:
    import resource
except ImportError:  # Windows: no child CPU times; the wall time still tells
    resource = None  # type: ignore[assignment]


def _children_cpu() -> float:
    if resource is None:
        return float("nan")
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def best_of(runs: int, argv: list[str]) -> tuple[float, float]:
    """The least wall time and the least CPU time of ``runs`` runs of ``argv``."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(runs):
        cpu = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        took = time.perf_counter() - start
        if done.returncode != 0 or "Usage:" not in done.stdout:
            sys.exit(f"{' '.join(argv[3:])} failed ({done.returncode}): {done.stderr.strip()}")
        best, best_cpu = min(best, took), min(best_cpu, _children_cpu() - cpu)
    return best, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--limit", type=float, default=0.15)
    args = parser.parse_args()

    from bulkref.cli.main import cli

    commands = cli.list_commands(None)  # type: ignore[arg-type]  # the names alone need no context
    floor, floor_cpu = best_of(args.runs, [sys.executable, "-c", "import click; print('Usage:')"])
    print(f"{'':32} {'wall':>8} {'cpu':>8}")
    print(f"{'floor (python + click)':32} {floor:6.3f} s {floor_cpu:6.3f} s")
    slow = []
    for words in [[], *([c] for c in commands)]:
        took, cpu = best_of(args.runs, [sys.executable, "-m", "bulkref", *words, "--help"])
        name = " ".join(["bulkref", *words, "--help"])
        mark = "" if took <= args.limit else "  over"
        print(f"{name:32} {took:6.3f} s {cpu:6.3f} s{mark}")
        if took > args.limit:
            slow.append(name)
    if slow:
        sys.exit(f"over {args.limit} s: {', '.join(slow)}")


if __name__ == "__main__":
    main()
