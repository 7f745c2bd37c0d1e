"""Benchmark: bulkref read + validate against a bare read of the same workbook.

    python benchmarks/validate.py --rows 50000

Generates a realistic N-row workbook (every template column, a mix of deal
types, ~1% of rows with a mistake), then times in the same run:

  (a) a bare read with the fastest available reader (python-calamine, all
      cell values into Python lists), and
  (b) bulkref's read + validate (``bulkref.validation.schema.check_file``),

each in a fresh child process so that its peak memory (max RSS) is its own.
Prints rows/s for both, the ratio b/a and the peak memory of each. Goals:
50,000 rows in at most 2x the bare read; 100,000 rows under 600 MB peak.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openpyxl

from bulkref.sheets.examples import EXAMPLES
from bulkref.spec.columns import SPEC


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """A workbook shaped like a filled template: the example deals, varied."""
    rnd = random.Random(seed)
    columns = SPEC.columns()
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Referrals")
    ws.append([c.label for c in columns])
    cities = ["Seattle", "Berlin", "London", "Paris", "Madrid", "Oslo", "Austin", "Denver"]
    for i in range(rows):
        base = dict(EXAMPLES[i % len(EXAMPLES)])
        base["external_id"] = f"CRM-{i:07d}"
        base["name"] = f"{base.get('name', 'Deal')} #{i}"
        base["city"] = rnd.choice(cities)
        base["deal_value"] = round(rnd.uniform(1_000, 2_000_000), 2)
        base["closing_date"] = dt.date(2027, 1, 1) + dt.timedelta(days=rnd.randrange(365))
        if rnd.random() < 0.01:  # a realistic sprinkle of mistakes
            base[rnd.choice(["country", "currency", "deal_value", "substatus"])] = "??"
        ws.append([base.get(c.key) for c in columns])
    wb.save(path)


def _child(mode: str, path: str) -> None:
    if mode == "bare":
        from python_calamine import CalamineWorkbook

        start = time.perf_counter()
        wb = CalamineWorkbook.from_path(path)
        data = wb.get_sheet_by_name("Referrals").to_python()
        seconds = time.perf_counter() - start
        rows = len(data) - 1
    else:
        from bulkref.validation.check import check_file

        start = time.perf_counter()
        result = check_file(path)
        seconds = time.perf_counter() - start
        rows = result.report.rows
    print(json.dumps({"seconds": seconds, "rows": rows}))


def measure(mode: str, path: Path) -> tuple[float, int, float]:
    """(seconds, rows, peak RSS in MB) of one fresh child process."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed (exit {proc.returncode})")
    doc = json.loads(out)
    return doc["seconds"], doc["rows"], usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the median is shown")
    ap.add_argument("--file", type=Path, help="reuse or keep the generated workbook here")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    path = args.file or Path(tempfile.gettempdir()) / f"bulkref-bench-{args.rows}.xlsx"
    if not path.exists():
        print(f"generating {args.rows:,} rows into {path} ...", flush=True)
        generate(path, args.rows)
    runs: dict[str, list[tuple[float, int, float]]] = {"bare": [], "bulkref": []}
    for _ in range(args.repeat):
        for mode in runs:  # interleaved, so a busy moment hits both alike
            runs[mode].append(measure(mode, path))
    print(
        f"workbook: {path} ({path.stat().st_size / 1e6:.1f} MB, {args.rows:,} rows, "
        f"{len(SPEC.columns())} columns), median of {args.repeat} runs"
    )
    med = {}
    for mode, results in runs.items():
        seconds = statistics.median(r[0] for r in results)
        peak = max(r[2] for r in results)
        med[mode] = seconds
        label = "(a) bare calamine read   " if mode == "bare" else "(b) bulkref read+validate"
        print(f"{label}: {seconds:7.2f} s  {results[0][1] / seconds:10,.0f} rows/s  peak {peak:6.0f} MB")
    print(
        f"ratio b/a: {med['bulkref'] / med['bare']:.2f}  (goal: <= 2.0 at 50,000 rows; "
        "peak under 600 MB at 100,000 rows)"
    )


if __name__ == "__main__":
    main()
