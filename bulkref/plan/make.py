"""``bulkref plan`` as a library call: read, validate, read Partner Center, plan."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import datetime as dt
import functools
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkref.plan.model import Plan
from bulkref.plan.parallel import plan
from bulkref.plan.planner import Remote
from bulkref.sheets.partscan import busy_meanwhile
from bulkref.validation.check import check_file

if TYPE_CHECKING:
    from bulkref.api.client import ReferralsClient
    from bulkref.api.target import Caller, Target
    from bulkref.plan.doubts import Ledger
    from bulkref.plan.remote import Lookup


def fingerprint(path: Path) -> str:
    """sha256 of the input's bytes: apply refuses a plan whose input has changed since."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def api_label(target: Target) -> str:
    # The embedded sandbox's port changes with every run: name it, not its URL.
    return "sandbox" if target.is_sandbox else target.url


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def mapping_fingerprint(mapping: Path | None) -> str | None:
    """The mapping file's fingerprint (None without one): a plan covers both files."""
    return None if mapping is None else fingerprint(mapping)


#: ``on_progress(phase, done, total)`` of ``make_plan``.
Progress = Callable[[str, int, int | None], None]


def _quiet(phase: str, done: int, total: int | None) -> None:
    pass


def why_stale(plan: Plan) -> str | None:
    """Why a saved ``plan`` no longer describes the files it was made from, in words (None:
    it is current). A plan covers its input's bytes and its mapping's: apply runs exactly
    what was reviewed, so either file edited, or gone, makes it stale. The one rule, used
    by ``apply PLAN.json`` and by ``bulkref serve`` alike."""
    source = Path(plan.source)
    if not source.is_file() or fingerprint(source) != plan.fingerprint:
        return f"the input '{plan.source}' changed since the plan was made (or is gone)"
    if plan.mapping is not None:
        used = Path(plan.mapping)
        if not used.is_file() or fingerprint(used) != plan.mapping_fingerprint:
            return f"the mapping '{plan.mapping}' changed since the plan was made (or is gone)"
    return None


async def plan_file(
    path: Path,
    client: ReferralsClient | None,
    *,
    api_url: str | None,
    sheet: str | None = None,
    mapping: Path | str | None = None,
    overwrite_newer: bool = False,
    target: dict[str, Any] | None = None,
    lookup: Lookup | str | None = None,
    on_progress: Progress | None = None,
) -> Plan:
    """The plan of ``path`` (read through the ``mapping`` file, if any) against
    what ``client`` reads (None: offline, every row new). ``target`` names where
    (``Destination.as_json()``), for the reviewer; ``overwrite_newer`` lets rows
    made from an older version of their referral win over Partner Center's.
    ``lookup`` (a ``Lookup``, or its mode: auto, filtered, scan; None: auto) says how
    Partner Center is read (bulkref.plan.remote). ``on_progress`` as ``make_plan``'s."""
    from bulkref.plan.remote import as_lookup, fetch, scan_ahead

    report = on_progress or _quiet

    mapping = None if mapping is None else Path(mapping)
    reads = as_lookup(lookup)
    ahead = None if client is None else await scan_ahead(client, reads)
    if ahead is None:
        validated = check_file(path, sheet=sheet, mapping=mapping)
    else:
        # The scan waits on the service most of the time: the sheet is read meanwhile.
        try:
            # A thread of its own, ended once the sheet is read: planning may fork a second
            # process, and only does so where this one has no other thread (bulkref.second_process).
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulkref-read")
            # With the reading options in force here (--max-file-size, --locale), and saying
            # this process is busy meanwhile: the workbook's parts are checked in a child.
            context = contextvars.copy_context()
            context.run(busy_meanwhile.set, True)
            read = functools.partial(context.run, check_file, path, sheet=sheet, mapping=mapping)
            try:
                validated = await asyncio.get_running_loop().run_in_executor(pool, read)
            except BaseException:
                pool.shutdown(wait=False)  # a stopped plan does not wait for the read
                raise
            pool.shutdown(wait=True)  # done: the thread ends at once
        except BaseException:
            ahead.cancel()
            with contextlib.suppress(BaseException):
                (await ahead).close()
            raise
    rows = validated.report.rows
    report("read", rows, rows)
    if client is None:
        remote = Remote(offline=True)
    else:
        remote = await fetch(client, reads, validated, None if ahead is None else await ahead)
    report("planning", 0, rows)
    try:
        made = plan(
            validated,
            remote,
            source=str(path),
            fingerprint=fingerprint(path),
            api_url=api_url if client is not None else None,
            created=_now(),
            overwrite_newer=overwrite_newer,
        )
    finally:
        if remote.release is not None:
            remote.release()
    report("planned", len(made.rows), rows)
    if client is not None:
        made = dataclasses.replace(made, lookup=remote.strategy)
    if client is not None and target is not None:
        made = dataclasses.replace(made, target=target)
    if mapping is None:
        if validated.report.layout is not None:
            # Partner Center's layout leaves rows out too (consent No): never silently.
            made = dataclasses.replace(
                made, layout=validated.report.layout, skipped=tuple(validated.report.skipped or ())
            )
        return made
    return dataclasses.replace(
        made,
        mapping=str(mapping),
        mapping_fingerprint=mapping_fingerprint(mapping),
        skipped=tuple(validated.report.skipped or ()),
    )


def make_plan(
    path: Path | str,
    *,
    api_url: str | None = None,
    sandbox: bool = False,
    offline: bool = False,
    sheet: str | None = None,
    mapping: Path | str | None = None,
    overwrite_newer: bool = False,
    lookup: str = "auto",
    on_note: Callable[[str], None] | None = None,
    caller: Caller | None = None,
    on_progress: Progress | None = None,
) -> Plan:
    """``bulkref plan`` as a call. ``lookup``: how Partner Center is read (auto, filtered,
    scan); ``on_note`` hears a switch to a scan when the service refuses a filter;
    ``caller``: whom Partner Center is read as (a person signed in through ``serve``).

    ``on_progress(phase, done, total)``, for someone waiting: ``"read"`` once the sheet is
    read and checked (its rows), ``"listed"`` at each page of referrals read from Partner
    Center (pages so far, total None: a listing does not say how many), ``"planning"`` and
    ``"planned"`` (rows). Called from the thread that plans; it should only record."""
    path = Path(path)
    report = on_progress or _quiet
    if offline:
        return asyncio.run(
            plan_file(
                path,
                None,
                api_url=None,
                sheet=sheet,
                mapping=mapping,
                overwrite_newer=overwrite_newer,
                on_progress=report,
            )
        )
    from bulkref.api import target
    from bulkref.api.destination import destination
    from bulkref.files import data_dir

    with target.resolve(api_url, sandbox, caller=caller) as where:

        async def run() -> Plan:
            async with where.client() as client:
                from bulkref.plan.remote import Lookup

                pages = 0

                def listed() -> None:
                    nonlocal pages
                    pages += 1
                    report("listed", pages, None)

                client.on_page = listed
                return await plan_file(
                    path,
                    client,
                    api_url=api_label(where),
                    sheet=sheet,
                    mapping=mapping,
                    overwrite_newer=overwrite_newer,
                    target=destination(where).as_json(),
                    lookup=Lookup(lookup, on_note),
                    on_progress=report,
                )

        made = asyncio.run(run())
        from bulkref.plan.doubts import ledger_of

        ledger = ledger_of(api_label(where), data_dir())
        return dataclasses.replace(made, in_doubt=doubts_of(made, ledger))


def doubts_of(made: Plan, ledger: Ledger) -> tuple[dict[str, Any], ...]:
    """The creates of ``made`` that an earlier run left in doubt (bulkref.plan.doubts), with
    when each can be told absent: apply looks them up before sending any."""
    from bulkref.plan.doubts import Window, doubt_key
    from bulkref.plan.model import Action

    doubts = ledger.doubts()
    if not doubts:
        return ()
    window = Window(remembered=ledger.lags()).seconds()
    found = []
    for rp in made.rows:
        kept = doubts.get(doubt_key(external_id=rp.external_id)) if rp.external_id else None
        if rp.action is Action.CREATE and kept is not None:
            found.append(
                {
                    "row": rp.row,
                    "externalId": rp.external_id,
                    "sentAt": _iso(kept.sent_at),
                    # None: no lag measured yet, so no time can be told (found, or a person decides).
                    "decidableAfter": _iso(kept.failed_at + window) if window != float("inf") else None,
                }
            )
    return tuple(found)


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
