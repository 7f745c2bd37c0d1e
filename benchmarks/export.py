"""Benchmark: bulkref export of many referrals, against a bare listing of the same pages.

    python benchmarks/export.py --referrals 100000 [--page-size 100] [--format xlsx|csv|both]

Seeds a local sandbox (its own process, state in a temporary ``--db`` file)
with N referrals through the admin route, 300 a request: a mix of
private, partner-led and co-sell deals (each co-sell two referrals in one
engagement, the second Microsoft's), incoming leads without an External
Reference ID, deals with three customer contacts, closed ones. Then, each in
a fresh child process so that its peak memory (max RSS) is its own:

  (a) a bare listing: httpx following ``@odata.nextLink`` to the end, each page
      parsed as JSON and dropped;
  (b) ``bulkref export --api-url URL -o OUT`` as a user runs it.

Prints referrals/s and the peak memory of each, the ratio of each export's
time to the bare listing's (measured in the same run, against the same
sandbox), and checks the file: its data rows are counted in the sheet's XML
(or the CSV's lines) and must be every referral but the Microsoft referrals
folded into their co-sell rows. Goals: each export within 2x of the bare
listing; 100,000 referrals under 300 MB peak.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from processes import run_child, start_sandbox

TOKEN = "benchmark"
GOAL_RATIO = 2.0  # bulkref export against the bare listing of the same pages (issue 17)
SEED_BATCH = 300  # the sandbox takes bodies up to 1 MB; a referral here is ~2.5 kB


def _person(first: str, last: str, domain: str, n: int) -> dict[str, Any]:
    return {
        "firstName": first,
        "lastName": last,
        "email": f"{first.lower()}.{last.lower()}{n}@{domain}",
        "phoneNumber": f"+1 425 555 {n % 10000:04d}",
        "title": "IT Director",
    }


def _deal(n: int, **changes: Any) -> dict[str, Any]:
    """A partner's outgoing referral, about as full as a real one."""
    doc: dict[str, Any] = {
        "name": f"Contoso modernisation #{n}",
        "externalReferenceId": f"CRM-{n:07d}",
        "type": "Shared",
        "qualification": "SalesQualified",
        "status": "New",
        "substatus": "Pending",
        "direction": "Outgoing",
        "customerProfile": {
            "name": f"Contoso {n} Ltd",
            "address": {
                "addressLine1": f"{n} Main Street",
                "city": "Seattle",
                "state": "WA",
                "postalCode": "98052",
                "country": "US",
            },
            "size": "51to500employees",
            "team": [_person("Sue", "Smith", "contoso.com", n)],
            "ids": [{"profileType": "External", "id": f"ACC-{n}"}],
        },
        "consent": {
            "consentToToShareInfoWithOthers": True,
            "consentToContact": True,
            "consentToMicrosoftToContactSpecificPartners": False,
            "consentToShareReferralWithMicrosoftSellers": True,
        },
        "details": {
            "notes": "Customer wants to move its warehouse system to Azure within the year.",
            "dealValue": 1000 + n % 250_000,
            "currency": "USD",
            "closingDateTime": f"2027-{1 + n % 12:02d}-15T00:00:00Z",
            "requirements": {
                "industries": [{"id": "Manufacturing"}],
                "products": [{"id": "Azure"}],
                "services": [{"id": "DeploymentOrMigration"}],
                "solutions": [
                    {
                        "id": f"SOL-{n % 97}",
                        "name": "Contoso Solution",
                        "type": "Name",
                        "publisherName": "Adatum",
                        "solutionType": "3P",
                    }
                ],
                "additionalRequirements": {
                    "attributes": [{"type": "CustomerMarketplaceIntent", "id": "HaveNotDecided"}]
                },
            },
        },
        "team": [_person("Ravi", "Kumar", "adatum.com", n)],
        "dealSensitivity": "None",
    }
    doc.update(changes)
    return doc


def referrals(count: int) -> Iterator[list[dict[str, Any]]]:
    """``count`` referrals of every kind, a deal (one or two referrals) at a time."""
    made = 0
    n = 0
    while made < count:
        out: list[dict[str, Any]] = []
        kind = n % 6
        if kind == 0:
            out.append(
                _deal(
                    n,
                    type="Independent",
                    consent={
                        "consentToToShareInfoWithOthers": False,
                        "consentToContact": True,
                        "consentToShareReferralWithMicrosoftSellers": False,
                    },
                )
            )
        elif kind == 1 or (kind == 2 and made == count - 1):
            out.append(_deal(n))
        elif kind == 2:
            engagement = str(uuid.uuid4())
            partner = _deal(n, engagementId=engagement)
            details = {k: v for k, v in partner["details"].items() if k != "requirements"}
            out += [
                partner,
                {
                    "engagementId": engagement,
                    "organizationId": "msft",
                    "organizationName": "Microsoft",
                    "name": partner["name"],
                    "type": "Shared",
                    "direction": "Outgoing",
                    "customerProfile": partner["customerProfile"],
                    "consent": partner["consent"],
                    "details": details,
                    "target": [{"type": "BusinessProfileLocation", "id": "msft"}],
                    "inviteContext": {
                        "notes": "Please help with the proof of concept.",
                        "assistanceRequestCode": "ProofOfConceptOrDemo",
                    },
                },
            ]
        elif kind == 3:
            out.append(
                _deal(
                    n,
                    externalReferenceId=None,
                    direction="Incoming",
                    type="Independent",
                    qualification="Direct",
                    substatus="Received",
                    consent=None,
                )
            )
        elif kind == 4:
            doc = _deal(n)
            doc["customerProfile"]["team"] += [
                _person("Bob", "Jones", "contoso.com", n),
                _person("Cy", "Young", "contoso.com", n),
            ]
            out.append(doc)
        else:
            out.append(_deal(n, status="Closed", substatus="Won"))
        n += 1
        made += len(out)
        yield out


def seed(root: str, count: int) -> tuple[float, int]:
    """(seconds, Microsoft referrals among them) of seeding ``count`` referrals.

    Made batch by batch, never all at once: a child's peak memory (ru_maxrss) starts
    from this process's own peak, which Linux hands on through fork and exec, so
    this process must stay small for the children's figures to be theirs."""
    start = time.perf_counter()
    microsoft = 0
    batch: list[dict[str, Any]] = []
    with httpx.Client(timeout=300) as client:
        for deal in referrals(count):
            batch += deal
            if len(batch) >= SEED_BATCH:
                client.post(f"{root}/_sandbox/referrals", json=batch).raise_for_status()
                microsoft += sum(1 for d in batch if d.get("organizationId") == "msft")
                batch = []
        if batch:
            client.post(f"{root}/_sandbox/referrals", json=batch).raise_for_status()
            microsoft += sum(1 for d in batch if d.get("organizationId") == "msft")
    return time.perf_counter() - start, microsoft


def _bare_listing(url: str) -> None:
    count = 0
    next_url: str | None = url
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        while next_url:
            page = client.get(next_url).json()
            count += len(page["value"])
            next_url = page.get("@odata.nextLink")
    print(count)


def data_rows(path: Path) -> int:
    if path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as f:
            return sum(1 for _ in csv.reader(f)) - 1
    mark = b"<row "
    with zipfile.ZipFile(path) as z, z.open("xl/worksheets/sheet2.xml") as f:  # the Referrals sheet
        rows, tail = 0, b""
        while chunk := f.read(1 << 20):
            data = tail + chunk
            rows += data.count(mark)
            tail = data[-(len(mark) - 1) :]  # too short to hold a whole mark: none is counted twice
    return rows - 1  # the header row


def export(url: str, target: Path, env: dict[str, str], referrals: int, folded: int, bare: float) -> float:
    command = [
        sys.executable,
        "-m",
        "bulkref",
        "export",
        "--api-url",
        url,
        "-o",
        str(target),
        "--format",
        "json",
    ]
    seconds, peak, out, _ = run_child(command, env)
    summary = json.loads(out)
    rows = data_rows(target)
    ok = rows == summary["rows"] == referrals - folded and summary["referrals"] == referrals
    size = target.stat().st_size / 1e6
    print(
        f"(b) bulkref export {target.suffix[1:]:<5}  : {seconds:7.2f} s  {referrals / seconds:8,.0f} "
        f"referrals/s  peak {peak:5.0f} MB  ({rows:,} rows, {size:.1f} MB; "
        f"{'rows check out' if ok else 'ROW COUNT WRONG'})  ratio b/a: {seconds / bare:.2f}"
    )
    if not ok:
        raise SystemExit(f"expected {referrals - folded} rows: {summary}, counted {rows}")
    return seconds / bare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--referrals", type=int, default=100_000)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--format", choices=("xlsx", "csv", "both"), default="both")
    ap.add_argument("--child-list", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_list:
        _bare_listing(args.child_list)
        return
    n = args.referrals
    with tempfile.TemporaryDirectory(prefix="bulkref-bench-export-") as tmp:
        work = Path(tmp)
        options = ("--db", str(work / "sandbox.db"), "--page-size", str(args.page_size))
        process, url, root = start_sandbox(*options)
        try:
            seeded, folded = seed(root, n)
            print(
                f"{n:,} referrals seeded in {seeded:.1f} s ({folded:,} of them the Microsoft halves of "
                f"co-sell deals), pages of {args.page_size}"
            )
            env = {**os.environ, "BULKREF_ACCESS_TOKEN": TOKEN, "BULKREF_HOME": str(work / "home")}
            seconds, peak, out, _ = run_child([sys.executable, __file__, "--child-list", url], env)
            assert int(out) == n, out
            print(
                f"(a) bare listing (httpx)  : {seconds:7.2f} s  {n / seconds:8,.0f} referrals/s  "
                f"peak {peak:5.0f} MB"
            )
            for fmt in ("xlsx", "csv") if args.format == "both" else (args.format,):
                export(url, work / f"export.{fmt}", env, n, folded, seconds)
        finally:
            process.terminate()
            process.wait()
    print(f"goal: ratio b/a <= {GOAL_RATIO} (same run), 100,000 referrals under 300 MB peak")


if __name__ == "__main__":
    main()
