"""Benchmark: bulkref plan of an exported, unchanged sheet, against a bare listing plus a bare read.

    python benchmarks/plan.py --referrals 20000 [--page-size 100] [--lookup auto|filtered|scan]

Seeds a local sandbox in ``--profile documented`` (its own process, state in a
temporary ``--db`` file; filters only as documented, so bulkref cannot look up
by External Reference ID or id) with N referrals of every kind (as
benchmarks/export.py seeds them), exports them with ``bulkref export``, then,
each in a fresh child process so that its time and peak memory are its own:

  (a) a bare paged listing of the same referrals: httpx following
      ``@odata.nextLink`` to the end, each page parsed and dropped;
  (b) a bare read of the exported sheet with python-calamine, every row of the
      Referrals sheet read and dropped;
  (c) ``bulkref plan EXPORT --api-url URL --format json`` as a user runs it.

Prints each, the ratio (c) / ((a) + (b)) (goal: at most 2x) and the plan's peak
memory (goal: under 600 MB), and checks that every row planned ``unchanged``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from export import TOKEN, seed
from processes import run_child, start_sandbox


def _bare_listing(url: str) -> None:
    import httpx

    count = 0
    next_url: str | None = url
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        while next_url:
            page = client.get(next_url).json()
            count += len(page["value"])
            next_url = page.get("@odata.nextLink")
    print(count)


def _bare_read(path: str) -> None:
    import python_calamine

    book = python_calamine.CalamineWorkbook.from_path(path)
    rows = sum(1 for _ in book.get_sheet_by_name("Referrals").iter_rows())
    print(rows - 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--referrals", type=int, default=20_000)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--lookup", choices=("auto", "filtered", "scan"), default="auto")
    ap.add_argument("--child-list", help=argparse.SUPPRESS)
    ap.add_argument("--child-read", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_list:
        _bare_listing(args.child_list)
        return
    if args.child_read:
        _bare_read(args.child_read)
        return
    n = args.referrals
    with tempfile.TemporaryDirectory(prefix="bulkref-bench-plan-") as tmp:
        work = Path(tmp)
        options = ("--db", str(work / "sandbox.db"), "--page-size", str(args.page_size))
        process, url, root = start_sandbox(*options, "--profile", "documented")
        try:
            seeded, _ = seed(root, n)
            print(
                f"{n:,} referrals seeded in {seeded:.1f} s (--profile documented, pages of {args.page_size})"
            )
            env = {**os.environ, "BULKREF_ACCESS_TOKEN": TOKEN, "BULKREF_HOME": str(work / "home")}
            sheet = work / "export.xlsx"
            command = [sys.executable, "-m", "bulkref", "export", "--api-url", url, "-o", str(sheet)]
            seconds, _, _, _ = run_child([*command, "--format", "json"], env)
            print(f"exported in {seconds:.1f} s")

            list_s, list_peak, out, _ = run_child([sys.executable, __file__, "--child-list", url], env)
            assert int(out) == n, out
            print(f"(a) bare listing (httpx)     : {list_s:7.2f} s  peak {list_peak:5.0f} MB")
            read_s, read_peak, out, _ = run_child([sys.executable, __file__, "--child-read", str(sheet)], env)
            rows = int(out)
            print(
                f"(b) bare read (calamine)     : {read_s:7.2f} s  peak {read_peak:5.0f} MB  ({rows:,} rows)"
            )

            plan = [sys.executable, "-m", "bulkref", "plan", str(sheet), "--api-url", url, "--format", "json"]
            plan_s, plan_peak, out, _ = run_child([*plan, "--lookup", args.lookup], env, ok=(0, 1))
            made = json.loads(out)
            summary = made["summary"]
            print(
                f"(c) bulkref plan ({made.get('lookup')})  : {plan_s:7.2f} s  peak {plan_peak:5.0f} MB  "
                f"{summary}"
            )
            if summary["unchanged"] != rows:
                odd = [r for r in made["rows"] if r["action"] != "unchanged"][:3]
                raise SystemExit(f"expected {rows:,} rows unchanged: {summary}; e.g. {odd}")
            ratio = plan_s / (list_s + read_s)
            print(
                f"ratio (c) / ((a) + (b))      : {ratio:.2f}x  (goal <= 2x); plan peak {plan_peak:.0f} MB "
                "(goal < 600 MB)"
            )
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
