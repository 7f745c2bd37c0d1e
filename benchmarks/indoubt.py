"""Benchmark: what the discipline of creates in doubt costs, and that it holds.

    python benchmarks/indoubt.py

Every run is ``bulkref apply`` as a user runs it (the whole command, in a child process),
against a sandbox in its own process with ``--profile documented --no-replay-request-ids``:
Partner Center promises neither a replay of a repeated request id nor how soon a new
referral shows in a listing, so the sandbox does neither.

  (1) The issue's case: 60 rows (a third co-sell), 30% of creates stored and then their
      connection reset, 10% stored and then answered 500, listings 25 s behind; a second
      run 27 s after the first (a fresh journal: ``--state``). Prints each run's exit code,
      the referrals held against what a fault-free run stores, and the duplicates (goal:
      exactly the fault-free count, none twice; no run exits 0 with a row in doubt).
  (2) Cost in a fault-free run: ``--rows`` rows (default 2,000) applied by bulkref and by a
      minimal poster (the same payloads, the same concurrency: benchmarks/apply.py's floor),
      in the same command; prints the ratio and the listing calls bulkref made to time its
      creates (goal: no measurable cost beside apply's own ratio).
  (3) 5% lost answers: the same rows with 5% of creates stored and their answer lost, listings
      2 s behind; prints the time against (2)'s fault-free bulkref run, the duplicates (goal: 0)
      and the creates sent against the referrals held (goal: equal: a lost answer is found,
      never sent again).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from apply import TOKEN, apply_cmd, environ, make_sheet, post_all, stats
from processes import run_child, start_sandbox

STRICT = ("--profile", "documented", "--no-replay-request-ids")


def held(url: str) -> tuple[int, int]:
    """(referrals held, duplicates: an External Reference ID held more than once, or an
    engagement with more referrals than a co-sell's two). The documented profile's next
    link names another path: its query is read on the collection, as bulkref does."""
    ext: Counter[str] = Counter()
    engagement: Counter[str] = Counter()
    query: str | None = "?$top=1000000"
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
        while query is not None:
            page = client.get(url + query).json()
            for d in page["value"]:
                engagement[d["engagementId"]] += 1
                if d.get("organizationId") != "msft" and d.get("externalReferenceId"):
                    ext[d["externalReferenceId"]] += 1
            link = page.get("@odata.nextLink")
            query = "?" + link.split("?", 1)[1] if link else None
    extra = sum(c - 1 for c in ext.values() if c > 1) + sum(max(0, n - 2) for n in engagement.values())
    return sum(engagement.values()), extra


def expected(rows: int) -> int:
    """What a fault-free run stores: one referral a row, two for a co-sell (every third)."""
    return rows + sum(1 for i in range(rows) if i % 3 == 2)


def summary_of(out: str) -> dict[str, Any]:
    try:
        return dict(json.loads(out))
    except ValueError:
        return {}


def the_issue(work: Path, concurrency: int) -> None:
    rows = 60
    sheet = work / "sixty.xlsx"
    make_sheet(sheet, rows)
    faults = "commit-then-reset=0.3,commit-then-500=0.1"
    process, url, root = start_sandbox(*STRICT, "--list-lag", "25", "--faults", faults, "--seed", "3")
    try:
        home = work / "issue"
        first_s, _, out1, _ = run_child(
            apply_cmd(sheet, url, concurrency, "--state", str(work / "one.sqlite")),
            environ(home),
            ok=(0, 1, 3),
        )
        first = summary_of(out1)
        time.sleep(27)
        second_s, _, out2, _ = run_child(
            apply_cmd(sheet, url, concurrency, "--state", str(work / "two.sqlite")),
            environ(home),
            ok=(0, 1, 3),
        )
        second = summary_of(out2)
        httpx.post(f"{root}/_sandbox/faults", json={"faults": ""})
        time.sleep(26)  # the listing shows everything stored by now
        count, dups = held(url)
        posts = stats(root)["methods"].get("POST", 0)
    finally:
        process.kill()
    print(
        f"(1) 60 rows, 30% commit-then-reset + 10% commit-then-500, list lag 25 s, no replay:\n"
        f"    run 1: {first_s:.1f} s, summary {first.get('summary')}\n"
        f"    consistency {first.get('consistency')}\n"
        f"    run 2 (27 s later, fresh journal): {second_s:.1f} s, summary {second.get('summary')}\n"
        f"    referrals held {count} (a fault-free run stores {expected(rows)}), duplicates {dups}, "
        f"creates sent {posts}"
    )


def fault_free(work: Path, rows: int, concurrency: int) -> float:
    sheet = work / f"free-{rows}.xlsx"
    make_sheet(sheet, rows)
    plan = work / "plan.json"
    process, url, root = start_sandbox(*STRICT)
    try:
        # The poster posts what bulkref would: the plan, made once, offline.
        run_child(
            [sys.executable, "-m", "bulkref", "plan", str(sheet), "--offline", "--out", str(plan)],
            environ(work / "p"),
        )
        poster_s, _, _, _ = run_child(
            [sys.executable, __file__, "--child-post", url, str(plan), str(concurrency)], environ(work / "a")
        )
        httpx.post(f"{root}/_sandbox/reset")
        before = stats(root)["methods"].get("GET", 0)
        bulkref_s, _, out, _ = run_child(apply_cmd(sheet, url, concurrency), environ(work / "b"), ok=(0, 1))
        gets = stats(root)["methods"].get("GET", 0) - before
        summary = summary_of(out)
    finally:
        process.kill()
    print(
        f"(2) fault-free, {rows:,} rows, concurrency {concurrency}: poster {poster_s:.2f} s, bulkref "
        f"{bulkref_s:.2f} s, ratio {bulkref_s / poster_s:.2f}; bulkref's GETs {gets} (planning and "
        f"timing its creates); consistency {summary.get('consistency')}"
    )
    return bulkref_s


def lost_answers(work: Path, rows: int, concurrency: int, free_s: float) -> None:
    sheet = work / f"lost-{rows}.xlsx"
    make_sheet(sheet, rows)
    process, url, root = start_sandbox(
        *STRICT, "--list-lag", "2", "--faults", "commit-then-reset=0.05", "--seed", "5"
    )
    try:
        seconds, _, out, _ = run_child(apply_cmd(sheet, url, concurrency), environ(work / "c"), ok=(0, 1, 3))
        summary = summary_of(out)
        s = stats(root)
        httpx.post(f"{root}/_sandbox/faults", json={"faults": ""})
        time.sleep(2.5)
        count, dups = held(url)
    finally:
        process.kill()
    print(
        f"(3) 5% lost answers (stored), list lag 2 s, {rows:,} rows: {seconds:.2f} s, "
        f"{seconds / free_s:.2f}x the fault-free run; lost {s['faults'].get('commit-then-reset', 0)}, "
        f"duplicates {dups}, creates sent {s['methods'].get('POST', 0)} for {count} referrals held "
        f"(a fault-free run stores {expected(rows)}); summary {summary.get('summary')}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--skip-issue", action="store_true", help="skip (1), which waits about two minutes")
    ap.add_argument("--child-post", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_post:
        url, plan, concurrency = args.child_post
        asyncio.run(post_all(url, Path(plan), int(concurrency)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_issue:
            the_issue(work, args.concurrency)
        free_s = fault_free(work, args.rows, args.concurrency)
        lost_answers(work, args.rows, args.concurrency, free_s)


if __name__ == "__main__":
    main()
