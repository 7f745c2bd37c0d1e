"""Benchmark: bulkref apply end to end against a minimal poster, on a local sandbox.

    python benchmarks/apply.py --rows 5000

In one run, against a sandbox in its own process (reset between the two):

  (a) a minimal asyncio httpx poster: the same precomputed payloads (a third
      of the rows two-step chains, step 2 filled from step 1's answer), at the
      same concurrency, nothing else;
  (b) ``bulkref apply FILE --yes`` as a user runs it: read, validate, read
      Partner Center and plan, execute with journal and pacing, write results.

Each side runs in a fresh child process so its peak memory is its own.
Prints rows/s for both, the ratio b/a and the peak memory. Goal: b/a <= 1.15.

``--rate-limit 20`` adds a run of ``--limited-rows`` rows against a sandbox
throttling at 20 calls/s: the calls/s achieved (goal: >= 90% of the limit)
and the share of calls answered 429 (goal: < 5%). ``--faults`` adds a run
with injected 429, 503, 500, resets and commit-then-fail, then counts the
referrals per External Reference ID (goal: zero duplicates).

``--documented-lag 3`` adds a run of ``--lag-rows`` rows (default 300) with those
faults against ``--profile documented --list-lag 3``: the duplicates counted
(goal: 0), then the same command again at once (goal: every row unchanged or
adopted, nothing created).

``--random-429`` adds runs of ``--random-rows`` rows (default 1,000) with 1%
and 5% of the calls answered 429 at random (Retry-After 1 s): the time of
each against a fault-free run of the same rows measured in the same command
(goal: <= 2.5x), with the duplicates counted: ``--random-repeat`` rounds
(default 3) of the three, in turn, and the median of each.

``--rows`` above 20,000 (``python benchmarks/apply.py --rows 100000``) is the
large run instead: ``bulkref apply`` alone on a CSV sheet of that many rows
(a third co-sell), its peak memory (goal: under 500 MB) and its pace over the
first and the last tenth of the rows, from the times the sandbox created
them (goal: the last tenth no slower than the first: journal and results
written without a slowdown toward the end). ``--large`` makes a run of fewer
rows the large one (``--rows 20000 --large``: how the peak grows with the rows).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from processes import run_child, start_sandbox

# Above this many rows, the run is the large one (``large``): bulkref alone, its pace
# at the start and at the end and its peak memory; the poster's ratio is for 5,000 rows.
LARGE = 20_000
FAULTS = "429=0.03,503=0.03,500=0.02,reset=0.02,commit-then-500=0.03,commit-then-reset=0.03,retry-after=0"
TOKEN = "benchmark"


def make_sheet(path: Path, rows: int) -> None:
    """Two co-sell deals and one shared deal in every five rows would be 60% chains; the issue
    asks for a third: co-sell on every third row, the other examples in between."""
    from bulkref.sheets.examples import EXAMPLES
    from bulkref.sheets.template import build_workbook, save_workbook

    singles = [
        e
        for e in EXAMPLES
        if e["deal_type"] in ("Private", "Partner-led") and e.get("referral_type") != "Shared"
    ]
    cosell = next(e for e in EXAMPLES if e["deal_type"] == "Co-sell")
    out = []
    for i in range(rows):
        row = dict(cosell if i % 3 == 2 else singles[i % len(singles)])
        row["external_id"] = f"B-{i:06d}"
        out.append(row)
    save_workbook(build_workbook(out), path)


# -- (a) the minimal poster ------------------------------------------------------------------------


async def post_all(url: str, plan_file: Path, concurrency: int) -> int:
    rows = json.loads(plan_file.read_text())["rows"]
    limit = asyncio.Semaphore(concurrency)
    calls = 0
    async with httpx.AsyncClient(
        timeout=60,
        headers={"Authorization": f"Bearer {TOKEN}"},
        limits=httpx.Limits(max_connections=concurrency),
    ) as client:

        async def one(row: dict[str, Any]) -> None:
            nonlocal calls
            async with limit:
                answers: dict[str, Any] = {}
                for step in row["steps"]:
                    body = step["body"]
                    for ptr, name in step.get("fill", {}).items():
                        *parents, leaf = ptr.strip("/").split("/")
                        node = body
                        for part in parents:
                            node = node.setdefault(part, {})
                        node[leaf] = answers[step["dependsOn"]][name]
                    response = await client.post(url, json=body)
                    calls += 1
                    response.raise_for_status()
                    answers[step["key"]] = response.json()

        await asyncio.gather(*(one(r) for r in rows))
    return calls


# -- the scenarios ---------------------------------------------------------------------------------


def environ(home: Path) -> dict[str, str]:
    return {**os.environ, "BULKREF_HOME": str(home), "BULKREF_ACCESS_TOKEN": TOKEN}


def apply_cmd(sheet: Path, url: str, concurrency: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bulkref",
        "apply",
        str(sheet),
        "--api-url",
        url,
        "--yes",
        "--concurrency",
        str(concurrency),
        "--format",
        "json",
        *extra,
    ]


def stats(root: str) -> dict[str, Any]:
    return httpx.get(f"{root}/_sandbox/stats", timeout=30).json()


def duplicates(url: str) -> tuple[int, int]:
    """(referrals counted, duplicates): an External Reference ID held twice, or an engagement
    holding more referrals than its row's chain makes (two for a co-sell, one otherwise)."""
    ext: Counter[str] = Counter()
    engagement: Counter[str] = Counter()
    cosell: dict[str, bool] = {}
    next_url: str | None = f"{url}?$top=1000000"
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
        while next_url:
            page = client.get(next_url).json()
            for d in page["value"]:
                engagement[d["engagementId"]] += 1
                if d.get("externalReferenceId"):
                    ext[d["externalReferenceId"]] += 1
                    cosell[d["engagementId"]] = int(d["externalReferenceId"][2:]) % 3 == 2
            next_url = page.get("@odata.nextLink")
    extra = sum(c - 1 for c in ext.values() if c > 1)
    extra += sum(max(0, n - (2 if cosell.get(e) else 1)) for e, n in engagement.items())
    return sum(engagement.values()), extra


def throughput(work: Path, rows: int, concurrency: int) -> None:
    sheet = work / f"bench-{rows}.xlsx"
    make_sheet(sheet, rows)
    plan = work / "plan.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bulkref",
            "plan",
            str(sheet),
            "--offline",
            "--out",
            str(plan),
            "--format",
            "json",
        ],
        check=False,
        stdout=subprocess.DEVNULL,
        env=environ(work / "p"),
    )
    process, url, root = start_sandbox()
    try:
        a_s, a_mb, a_out, _ = run_child(
            [sys.executable, __file__, "--child-post", url, str(plan), str(concurrency)], environ(work / "a")
        )
        calls = int(a_out.strip())
        httpx.post(f"{root}/_sandbox/reset")
        b_s, b_mb, b_out, _ = run_child(apply_cmd(sheet, url, concurrency), environ(work / "b"), ok=(0, 1))
        summary = json.loads(b_out)["summary"]
    finally:
        process.terminate()
    print(
        f"{rows:,} rows ({calls:,} calls, a third of the rows two-step co-sell chains), "
        f"concurrency {concurrency}"
    )
    print(f"(a) minimal httpx poster : {a_s:7.2f} s  {rows / a_s:8,.0f} rows/s  peak {a_mb:5.0f} MB")
    print(
        f"(b) bulkref apply        : {b_s:7.2f} s  {rows / b_s:8,.0f} rows/s  peak {b_mb:5.0f} MB  "
        f"(created {summary['created']}, failed {summary['failed']})"
    )
    print(f"ratio b/a: {b_s / a_s:.2f}  (goal: <= 1.15)")


def make_csv(path: Path, rows: int) -> None:
    """``make_sheet``'s rows as the CSV template, streamed: openpyxl would take minutes
    (and a gigabyte) to build a workbook of 100,000 rows."""
    from bulkref.sheets.examples import EXAMPLES
    from bulkref.sheets.template import write_csv

    singles = [
        e
        for e in EXAMPLES
        if e["deal_type"] in ("Private", "Partner-led") and e.get("referral_type") != "Shared"
    ]
    cosell = next(e for e in EXAMPLES if e["deal_type"] == "Co-sell")

    def out() -> Any:
        for i in range(rows):
            row = dict(cosell if i % 3 == 2 else singles[i % len(singles)])
            row["external_id"] = f"B-{i:06d}"
            yield row

    write_csv(path, out())


def creation_times(url: str) -> list[float]:
    """When the sandbox created each partner referral (one per row), in order, in seconds."""
    times: list[float] = []
    next_url: str | None = f"{url}?$select=externalReferenceId,createdDateTime"
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client:
        while next_url:
            page = client.get(next_url).json()
            for d in page["value"]:
                if d.get("externalReferenceId"):
                    # 100 ns ticks (2026-12-01T18:12:00.1234567Z): microseconds are plenty
                    times.append(dt.datetime.fromisoformat(d["createdDateTime"][:26]).timestamp())
            next_url = page.get("@odata.nextLink")
    return sorted(times)


def large(work: Path, rows: int, concurrency: int) -> None:
    """One ``bulkref apply`` of ``rows`` rows (a CSV sheet): its peak memory, and the pace
    of the first and the last tenth of the rows, read from the times the sandbox
    created them: a journal or results file that slows down as it grows shows as
    a last tenth slower than the first."""
    sheet = work / f"large-{rows}.csv"
    make_csv(sheet, rows)
    process, url, _ = start_sandbox("--page-size", "1000")
    try:
        seconds, peak, out, _ = run_child(apply_cmd(sheet, url, concurrency), environ(work / "l"), ok=(0, 1))
        summary = json.loads(out)["summary"]
        times = creation_times(url)
    finally:
        process.terminate()
    tenth = max(1, len(times) // 10)
    first = tenth / max(times[tenth - 1] - times[0], 1e-9)
    last = tenth / max(times[-1] - times[-tenth], 1e-9)
    pace = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
    print(
        f"{rows:,} rows (a third of them two-step co-sell chains), concurrency {concurrency}, "
        f"from a CSV sheet"
    )
    print(
        f"bulkref apply: {seconds:7.2f} s in all ({rows / seconds:,.0f} rows/s), peak {peak:5.0f} MB "
        f"(goal < 500 MB); created {summary['created']}, failed {summary['failed']}"
    )
    print(
        f"rows/s while sending: {pace:,.0f} overall, first 10% {first:,.0f}, last 10% {last:,.0f} "
        f"(last/first {last / first:.2f}; goal: no slowdown toward the end)"
    )


def rate_limited(work: Path, rows: int, limit: float, concurrency: int) -> None:
    sheet = work / f"limited-{rows}.xlsx"
    make_sheet(sheet, rows)
    process, url, root = start_sandbox("--rate-limit", str(limit))
    try:
        seconds, _, _, _ = run_child(apply_cmd(sheet, url, concurrency), environ(work / "r"), ok=(0, 1))
        s = stats(root)
    finally:
        process.terminate()
    total, throttled = s["requestsTotal"], s["rateLimited"]
    window = s["lastRequestAt"] - s["firstRequestAt"]  # from the first call to the last one
    accepted = total - throttled
    print(
        f"rate limit {limit:g} calls/s, {rows} rows ({seconds:.1f} s in all): {accepted} calls accepted "
        f"in {window:.1f} s = {accepted / window:.1f} calls/s ({100 * accepted / window / limit:.0f}% "
        f"of the limit, goal >= 90%); {throttled} of {total} calls answered 429 "
        f"({100 * throttled / total:.1f}%, goal < 5%)"
    )


def faulty(work: Path, rows: int, concurrency: int) -> None:
    sheet = work / f"faults-{rows}.xlsx"
    make_sheet(sheet, rows)
    process, url, root = start_sandbox("--faults", FAULTS, "--seed", "7")
    try:
        # The sandbox lists a write at once: a 1 s consistency window is as safe there as 10 s.
        seconds, _, out, _ = run_child(
            apply_cmd(sheet, url, concurrency, "--consistency-window", "1"), environ(work / "f"), ok=(0, 1)
        )
        s = stats(root)
        httpx.post(f"{root}/_sandbox/faults", json={"faults": ""})  # count on a quiet sandbox
        counted, dups = duplicates(url)
    finally:
        process.terminate()
    summary = json.loads(out)["summary"]
    print(
        f"faults {FAULTS}: {rows} rows in {seconds:.1f} s, {sum(s['faults'].values())} faults injected "
        f"({', '.join(f'{k} {v}' for k, v in s['faults'].items() if v)}); "
        f"created {summary['created']}, failed {summary['failed']}; "
        f"{counted} referrals, {dups} duplicates (goal: 0)"
    )


def documented_lag(work: Path, rows: int, concurrency: int, lag: float) -> None:
    """Against a sandbox as strict as the documentation (filters only as documented, so every
    look-up is a scan; creates answered Active/Accepted) whose listings show a write only
    ``lag`` seconds later, with the faults: every referral created once, and the same
    command run again at once creates nothing."""
    sheet = work / f"lag-{rows}.xlsx"
    make_sheet(sheet, rows)
    options = ("--profile", "documented", "--list-lag", str(lag), "--faults", FAULTS, "--seed", "7")
    process, url, root = start_sandbox(*options)
    home = work / "lag"
    try:
        seconds, _, out, _ = run_child(apply_cmd(sheet, url, concurrency), environ(home), ok=(0, 1))
        first = json.loads(out)["summary"]
        again_s, _, out, _ = run_child(apply_cmd(sheet, url, concurrency), environ(home), ok=(0, 1))
        again = json.loads(out)["summary"]
        s = stats(root)
        httpx.post(f"{root}/_sandbox/faults", json={"faults": ""})
        time.sleep(lag + 0.2)  # past the lag: the listing holds every write
        counted, dups = duplicates(url)
    finally:
        process.terminate()
    print(
        f"--profile documented --list-lag {lag:g}, faults: {rows} rows in {seconds:.1f} s, "
        f"{sum(s['faults'].values())} faults injected; created {first['created']}, failed "
        f"{first['failed']}; {counted} referrals, {dups} duplicates (goal: 0). Re-run at once: "
        f"{again_s:.1f} s, created {again['created']}, updated {again['updated']}, unchanged "
        f"{again['unchanged']} of {rows} ({again['adopted']} of them adopted: read by id, the listing "
        "lagging) (goal: every row unchanged, nothing created)"
    )


def random_429(work: Path, rows: int, concurrency: int, repeat: int) -> None:
    """Occasional 429s (what a service without a published limit may answer) must not
    slow a run to a crawl: each costs its own call a Retry-After, not the whole run.

    The three settings are run in turn, ``repeat`` rounds, and each is the median of its
    rounds: on a shared machine one run alone can take twice as long as the next."""
    sheet = work / f"random-{rows}.xlsx"
    make_sheet(sheet, rows)
    settings = (("none", ""), ("1%", "429=0.01,retry-after=1"), ("5%", "429=0.05,retry-after=1"))
    times: dict[str, list[float]] = {label: [] for label, _ in settings}
    facts: dict[str, str] = {}
    for n in range(repeat):
        for label, faults in settings:
            extra = ("--faults", faults, "--seed", str(3 + n)) if faults else ()
            process, url, root = start_sandbox(*extra)
            try:
                seconds, _, out, _ = run_child(
                    apply_cmd(sheet, url, concurrency), environ(work / f"q{label}-{n}"), ok=(0, 1)
                )
                s = stats(root)
                httpx.post(f"{root}/_sandbox/faults", json={"faults": ""})
                counted, dups = duplicates(url)
            finally:
                process.terminate()
            summary = json.loads(out)["summary"]
            times[label].append(seconds)
            facts[label] = (
                f"{s['faults'].get('429', 0)} 429s, created {summary['created']}, "
                f"failed {summary['failed']}, {counted} referrals, {dups} duplicates"
            )
    base = statistics.median(times["none"])
    for label, _ in settings:
        median = statistics.median(times[label])
        ratio = "" if label == "none" else f"  ratio {median / base:.2f} (goal: <= 2.5)"
        runs = ", ".join(f"{t:.1f}" for t in times[label])
        print(
            f"random 429s {label:>4}: {rows} rows, median {median:6.2f} s of {runs} "
            f"(last run: {facts[label]}){ratio}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rate-limit", type=float, default=None, help="also run against this rate limit")
    ap.add_argument("--limited-rows", type=int, default=600)
    ap.add_argument("--faults", action="store_true", help="also run with injected faults")
    ap.add_argument("--skip-throughput", action="store_true", help="only the --rate-limit/--faults runs")
    ap.add_argument("--fault-rows", type=int, default=2000)
    ap.add_argument(
        "--documented-lag",
        type=float,
        default=None,
        metavar="SECONDS",
        help="also run with faults against --profile documented --list-lag SECONDS",
    )
    ap.add_argument("--lag-rows", type=int, default=300)
    ap.add_argument("--random-429", action="store_true", help="also run with 1%% and 5%% random 429s")
    ap.add_argument("--random-rows", type=int, default=1000)
    ap.add_argument("--random-repeat", type=int, default=3, help="rounds of the --random-429 runs")
    ap.add_argument(
        "--large",
        action="store_true",
        help=f"the large run (peak memory, pace at the start and the end) even at {LARGE:,} rows or fewer",
    )
    ap.add_argument("--child-post", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_post:
        url, plan, concurrency = args.child_post
        print(asyncio.run(post_all(url, Path(plan), int(concurrency))))
        return
    with tempfile.TemporaryDirectory(prefix="bulkref-bench-") as tmp:
        work = Path(tmp)
        if args.rows > LARGE or args.large:
            large(work, args.rows, args.concurrency)
        elif not args.skip_throughput:
            throughput(work, args.rows, args.concurrency)
        if args.rate_limit:
            rate_limited(work, args.limited_rows, args.rate_limit, args.concurrency)
        if args.faults:
            faulty(work, args.fault_rows, args.concurrency)
        if args.documented_lag is not None:
            documented_lag(work, args.lag_rows, args.concurrency, args.documented_lag)
        if args.random_429:
            random_429(work, args.random_rows, args.concurrency, args.random_repeat)


if __name__ == "__main__":
    main()
