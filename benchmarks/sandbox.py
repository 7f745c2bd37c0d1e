"""How fast the sandbox creates and lists referrals under concurrent load.

    python benchmarks/sandbox.py [--creates 5000] [--concurrency 16] [--page-size 100] [--db PATH]
                                 [--client raw|httpx] [--clients 1] [--json]

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
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--db", type=Path, help="serve from this SQLite file (emptied first), not memory")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--clients", type=int, default=1, help="client processes sharing the load")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
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


if __name__ == "__main__":
    main()
