"""How fast the sandbox creates and lists referrals under concurrent load.

    python benchmarks/sandbox.py [--creates 5000] [--concurrency 16] [--page-size 100] [--db PATH]
                                 [--client raw|httpx] [--clients 1] [--json]
                                 [--lookup-referrals 100000] [--lookups 300]

The sandbox runs in its own process (``python -m bulkref.sandbox --port 0``,
logging one line per request as it always does) so that the client does not
share its interpreter; on a 2-core machine they still share the cores, so the
figures are a floor for the sandbox alone.

The client is plain: ``raw`` (default) is a minimal HTTP/1.1 keep-alive client
on asyncio streams, one connection per concurrent request, cheap enough that
the figures are the sandbox's; ``httpx`` is httpx.AsyncClient, to see what a
real client costs (on this machine httpx spends over 1 ms of CPU per request
and slows down beyond ~8 concurrent requests per process). ``--clients`` runs
several client processes.

Prints creates/s (201s per second over the create phase), then the listing of
everything created, page by page through @odata.nextLink: referrals listed per
second and pages per second. The goal: at least 1,000 creates/s, so that the
sandbox is never what limits the executor's benchmark.

Then filtered look-ups, in a fresh sandbox: ``externalReferenceId eq``,
``engagementId eq`` and ``id eq`` (what a plan's batched look-ups send, one
referral each) timed among 1,000 referrals and again among
``--lookup-referrals`` (seeded through ``/_sandbox/referrals``), printed as the
ratio large/small. The goal: about 1 (equality filters on those properties are
index look-ups; a filter on another property scans every referral, and its
ratio, printed beside for comparison, grows with the count).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from processes import start_sandbox

HEADERS = {"Authorization": "Bearer benchmark-token", "Content-Type": "application/json"}


class RawConnection:
    """One keep-alive HTTP/1.1 connection; enough HTTP for the sandbox's answers
    (which always carry Content-Length)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: {HEADERS['Authorization']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line, _, rest = (await self.reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", rest).group(1))  # type: ignore[union-attr]
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def referral(n: int) -> dict[str, Any]:
    """A realistic body (the shape of the documentation's example), a few kB."""
    return {
        "name": f"Benchmark deal {n}",
        "externalReferenceId": f"BENCH-{n}",
        "status": "New",
        "substatus": "Pending",
        "qualification": "SalesQualified",
        "type": "Shared",
        "target": [{"type": "SolutionProfile", "id": "SOL-34104-EBB"}],
        "customerProfile": {
            "name": f"Contoso Customer {n}",
            "address": {
                "addressLine1": "One Microsoft Way",
                "addressLine2": "34",
                "city": "Redmond",
                "state": "WA",
                "postalCode": "98052",
                "country": "US",
            },
            "size": "10to50employees",
            "team": [
                {
                    "firstName": "Sue",
                    "lastName": "Smith",
                    "phoneNumber": "1234567890",
                    "email": "sue.smith@contoso.com",
                    "contactPreference": {"locale": "en-us", "disableNotifications": False},
                }
            ],
            "ids": [{"profileType": "External", "id": f"CUST-{n}"}],
        },
        "consent": {
            "consentToToShareInfoWithOthers": True,
            "consentToContact": True,
            "consentToShareReferralWithMicrosoftSellers": True,
        },
        "details": {
            "notes": "Customer is looking to leverage Dynamics 365 to manage their supply chain.",
            "dealValue": 50000,
            "currency": "USD",
            "closingDateTime": "2027-11-14T00:00:00Z",
            "requirements": {
                "industries": [{"id": "Manufacturing"}],
                "products": [{"id": "Dynamics365Enterprise"}],
                "services": [{"id": "DeploymentOrMigration"}],
                "solutions": [
                    {
                        "name": "Dynamics 365 for Field Service",
                        "type": "Category",
                        "id": "Dynamics365forFieldService",
                    }
                ],
                "additionalRequirements": {
                    "attributes": [{"type": "CustomerMarketplaceIntent", "id": "HaveNotDecided"}]
                },
            },
        },
        "team": [
            {
                "firstName": "John",
                "lastName": "Doe",
                "phoneNumber": "1231231234",
                "email": "john.doe@example.com",
            }
        ],
    }


def start(page_size: int, db: Path | None) -> tuple[subprocess.Popen[str], str]:
    options = ["--page-size", str(page_size), *(["--db", str(db)] if db is not None else [])]
    process, url, _ = start_sandbox(*options)
    return process, url


async def create_many(url: str, first: int, count: int, concurrency: int, client: str) -> Counter[int]:
    statuses: Counter[int] = Counter()
    numbers = iter(range(first, first + count))
    parts = httpx.URL(url)
    if client == "raw":

        async def raw_worker() -> None:
            connection = RawConnection(parts.host, parts.port or 80)
            try:
                for n in numbers:
                    status, _ = await connection.request(
                        "POST", parts.raw_path.decode(), json.dumps(referral(n)).encode()
                    )
                    statuses[status] += 1
            finally:
                connection.close()

        await asyncio.gather(*(raw_worker() for _ in range(concurrency)))
        return statuses
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=HEADERS, limits=limits, timeout=30) as session:

        async def worker() -> None:
            for n in numbers:
                response = await session.post(url, content=json.dumps(referral(n)).encode())
                statuses[response.status_code] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def _client_process(url: str, first: int, count: int, concurrency: int, client: str, out: Any) -> None:
    out.put(dict(asyncio.run(create_many(url, first, count, concurrency, client))))


def creates(url: str, total: int, concurrency: int, clients: int, client: str) -> tuple[float, Counter[int]]:
    if clients == 1:
        started = time.perf_counter()
        statuses = asyncio.run(create_many(url, 0, total, concurrency, client))
        return time.perf_counter() - started, statuses
    queue: Any = multiprocessing.Queue()
    share = total // clients
    processes = []
    for i in range(clients):
        count = share if i < clients - 1 else total - i * share
        args = (url, i * share, count, max(1, concurrency // clients), client, queue)
        processes.append(multiprocessing.Process(target=_client_process, args=args))
    started = time.perf_counter()
    for p in processes:
        p.start()
    statuses = Counter[int]()
    for _ in processes:
        statuses.update({int(k): v for k, v in queue.get().items()})
    elapsed = time.perf_counter() - started
    for p in processes:
        p.join()
    return elapsed, statuses


def list_all(url: str, client: str) -> tuple[float, int, int]:
    """Every page, one after another, as an export reads them."""
    referrals = pages = 0
    started = time.perf_counter()
    next_url: str | None = url
    if client == "raw":
        parts = httpx.URL(url)
        connection = RawConnection(parts.host, parts.port or 80)

        async def read_all() -> None:
            nonlocal referrals, pages, next_url
            while next_url:
                target = httpx.URL(next_url).raw_path.decode()
                status, body = await connection.request("GET", target)
                assert status == 200, body
                payload = json.loads(body)
                referrals += len(payload["value"])
                pages += 1
                next_url = payload.get("@odata.nextLink")
            connection.close()

        asyncio.run(read_all())
        return time.perf_counter() - started, referrals, pages
    with httpx.Client(headers=HEADERS, timeout=30) as session:
        while next_url:
            response = session.get(next_url)
            response.raise_for_status()
            payload = response.json()
            referrals += len(payload["value"])
            pages += 1
            next_url = payload.get("@odata.nextLink")
    return time.perf_counter() - started, referrals, pages


def seed(root: str, first: int, count: int) -> list[dict[str, Any]]:
    """Store referrals ``first`` .. ``first + count - 1`` through the admin route, in batches."""
    stored: list[dict[str, Any]] = []
    with httpx.Client(timeout=120) as session:
        for start in range(first, first + count, 250):  # 250 bodies stay under the 1 MB body limit
            batch = [referral(n) for n in range(start, min(first + count, start + 250))]
            response = session.post(f"{root}/_sandbox/referrals", json=batch)
            response.raise_for_status()
            stored += [{"id": d["id"], "engagementId": d["engagementId"]} for d in response.json()["value"]]
    return stored


def time_filters(url: str, filters: list[str]) -> float:
    """Seconds per filtered listing, one after another on one keep-alive connection."""
    parts = httpx.URL(url)
    path = parts.raw_path.decode()

    async def run() -> float:
        connection = RawConnection(parts.host, parts.port or 80)
        started = time.perf_counter()
        for text in filters:
            status, body = await connection.request("GET", f"{path}?{urlencode({'$filter': text})}")
            assert status == 200 and b'"value":[{' in body, body[:300]
        elapsed = time.perf_counter() - started
        connection.close()
        return elapsed / len(filters)

    return asyncio.run(run())


def lookups(large: int, count: int) -> dict[str, Any]:
    """Look-up cost among 1,000 referrals and among ``large``: the ratio shows whether a
    filtered query costs its matches (about 1) or a scan (grows with the count)."""
    small = 1000
    process, url, root = start_sandbox("--page-size", "100")
    try:
        stored = seed(root, 0, small)
        pick = random.Random(7)

        def equality_filters(known: list[dict[str, Any]]) -> list[str]:
            out: list[str] = []
            for i in range(count):
                n = pick.randrange(len(known))
                kind = i % 3
                if kind == 0:
                    out.append(f"externalReferenceId eq 'BENCH-{n}'")
                elif kind == 1:
                    out.append(f"engagementId eq '{known[n]['engagementId']}'")
                else:
                    out.append(f"id eq '{known[n]['id']}'")
            return out

        scans = [f"name eq 'Benchmark deal {pick.randrange(small)}'" for _ in range(5)]
        time_filters(url, equality_filters(stored)[:30])  # warm-up
        small_lookup = time_filters(url, equality_filters(stored))
        small_scan = time_filters(url, scans)
        seed_started = time.perf_counter()
        stored += seed(root, small, large - small)
        seed_seconds = time.perf_counter() - seed_started
        large_lookup = time_filters(url, equality_filters(stored))
        large_scan = time_filters(url, scans)
    finally:
        process.terminate()
        process.wait(timeout=10)
    return {
        "small_referrals": small,
        "large_referrals": large,
        "lookups": count,
        "seed_seconds": round(seed_seconds, 1),
        "lookup_ms_small": round(small_lookup * 1000, 3),
        "lookup_ms_large": round(large_lookup * 1000, 3),
        "lookup_ratio": round(large_lookup / small_lookup, 2),
        "scan_ms_small": round(small_scan * 1000, 3),
        "scan_ms_large": round(large_scan * 1000, 3),
        "scan_ratio": round(large_scan / small_scan, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--db", type=Path, help="serve from this SQLite file (emptied first), not memory")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--clients", type=int, default=1, help="client processes sharing the load")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument(
        "--lookup-referrals",
        type=int,
        default=100_000,
        help="referrals among which filtered look-ups are timed against 1,000 (0: skip)",
    )
    parser.add_argument("--lookups", type=int, default=300, help="filtered look-ups timed at each size")
    args = parser.parse_args()
    if args.db is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)

    process, url = start(args.page_size, args.db)
    try:
        asyncio.run(create_many(url, -200, 200, 8, args.client))  # warm-up: imports, caches
        create_seconds, statuses = creates(url, args.creates, args.concurrency, args.clients, args.client)
        list_seconds, listed, pages = list_all(url, args.client)
    finally:
        process.terminate()
        process.wait(timeout=10)

    created = statuses.get(201, 0)
    settings: dict[str, Any] = {
        "creates": args.creates,
        "concurrency": args.concurrency,
        "client": args.client,
        "clients": args.clients,
        "page_size": args.page_size,
        "state": str(args.db) if args.db else "memory",
        "cores": os.cpu_count(),
    }
    result: dict[str, Any] = {
        "settings": settings,
        "creates_per_second": round(created / create_seconds, 1),
        "create_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "listed_referrals": listed,
        "pages": pages,
        "referrals_listed_per_second": round(listed / list_seconds, 1),
        "pages_per_second": round(pages / list_seconds, 1),
    }
    if args.lookup_referrals > 1000:
        result["filtered_lookups"] = lookups(args.lookup_referrals, args.lookups)
    if args.json:
        print(json.dumps(result))
        return
    s = settings
    print(
        f"sandbox benchmark: {s['creates']} creates, concurrency {s['concurrency']}, {s['client']} client "
        f"x{s['clients']} process(es), page size {s['page_size']}, state {s['state']}, {s['cores']} cores"
    )
    print(f"creates:  {result['creates_per_second']:>9.1f} /s   statuses {result['create_statuses']}")
    print(
        f"listing:  {result['referrals_listed_per_second']:>9.1f} referrals/s, "
        f"{result['pages_per_second']:.1f} pages/s ({listed} referrals in {pages} pages)"
    )
    found = result.get("filtered_lookups")
    if found:
        print(
            f"look-ups: {found['lookup_ms_small']:.2f} ms among {found['small_referrals']:,}, "
            f"{found['lookup_ms_large']:.2f} ms among {found['large_referrals']:,}: "
            f"ratio {found['lookup_ratio']:.2f} (goal: about 1; id, engagementId, externalReferenceId eq; "
            f"{found['large_referrals'] - found['small_referrals']:,} seeded in "
            f"{found['seed_seconds']:.0f} s)"
        )
        print(
            f"scans:    {found['scan_ms_small']:.2f} ms among {found['small_referrals']:,}, "
            f"{found['scan_ms_large']:.2f} ms among {found['large_referrals']:,}: "
            f"ratio {found['scan_ratio']:.1f} (a filter on an unindexed property, for comparison)"
        )


if __name__ == "__main__":
    main()
