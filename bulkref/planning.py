"""``bulkref plan`` as a library call: read, validate, read Partner Center, plan."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from pathlib import Path

from bulkref.check import check_file
from bulkref.plan import Plan
from bulkref.planner import Remote, plan


def fingerprint(path: Path) -> str:
    """sha256 of the input's bytes: apply refuses a plan whose input has changed since."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def make_plan(path: Path | str, *, api_url: str | None = None, sandbox: bool = False,
              offline: bool = False, sheet: str | None = None) -> Plan:
    path = Path(path)
    validated = check_file(path, sheet=sheet)
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if offline:
        return plan(validated, Remote(offline=True), source=str(path), fingerprint=fingerprint(path),
                    api_url=None, created=created)
    from bulkref import target
    from bulkref.remote import fetch

    with target.resolve(api_url, sandbox) as where:

        async def read() -> Remote:
            async with where.client() as client:
                return await fetch(client, validated)

        remote = asyncio.run(read())
        return plan(validated, remote, source=str(path), fingerprint=fingerprint(path),
                    # The embedded sandbox's port changes with every run: name it, not its URL.
                    api_url="sandbox" if where.is_sandbox else where.url, created=created)
