"""``bulkref export``: Partner Center's referrals as a sheet in the template's shape,
to edit and apply back as updates.

::

    from bulkref.export.query import compose_filter
    from bulkref.export.run import export_referrals

    result = export_referrals("deals.xlsx", sandbox=True,
                              filter=compose_filter(status="Active", direction="Outgoing"))
    result.rows, result.referrals, result.folded

One row per deal. Every referral of the partner's own becomes a row
(``payload.row_of``), and so does one without an External Reference ID (an
incoming lead, one made in Partner Center's UI): its Referral ID finds it
again. The connected referrals of a deal are folded into its row:

- the Microsoft referral of a co-sell (``organizationId`` msft, in the
  engagement of an exported partner referral): it is what makes the deal
  Co-sell and carries Help Needed and Invite Notes;
- the other party's referral of a deal shared with another partner (step 2 of
  that chain: the same engagement, no External Reference ID of its own). The
  deal's row is the engagement's referral with an External Reference ID (the
  oldest, should there be several without), and planning that row back finds the
  connected referral again by the engagement.

A referral with an External Reference ID of its own is always a row. A
Microsoft referral with no partner referral beside it in the export is a row
of its own, and so is a connected referral whose deal's referral the query left out.

Two passes, so that memory stays flat however many referrals there are. How
many numbered columns each group needs (a deal with five customer contacts)
and which deals are co-sells are known only after the last page, and the
header row comes first. Pass 1 reads every page (``ReferralsClient.list``
follows ``@odata.nextLink`` with the client's retries and throttling) into a
spool: a temporary SQLite file, one referral a row, each referral once even
if a page repeats one. Pass 2 writes the file from the spool: a workbook
skeleton made by ``template.build_workbook`` (Instructions, the styled header,
drop-downs, input messages, Lists) with the data rows streamed into the
Referrals sheet's XML (``bulkref.sheets.xlsxstream``), or the template's CSV. The file
is written beside its final name and renamed into place: an interrupted
export leaves no half file.

A filtered (or ``top``-limited) export may hold a partner referral without
the Microsoft referral of its co-sell. The engagements of what was exported
are then read too, in batched queries, so that a co-sell row says Co-sell:
planned back, it would otherwise look like an attempt to withdraw the
co-sell.

A referral whose data fits no deal type the way the validator asks (an
incoming invitation is Shared and carries Help Needed without being a
partner's co-sell) gets a blank Deal Type, which on a row with a Referral ID
means "leave as it is": the row validates, and plans as ``unchanged`` until
someone edits it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bulkref.api.client import InvalidRequest, ServerError, with_query
from bulkref.api.readahead import read_ahead
from bulkref.errors import BadOption, UnwritableOutput
from bulkref.export import parallel
from bulkref.export.partner_center import write_layout_csv
from bulkref.export.progress import REPORT_EVERY, ProgressCallback, reported
from bulkref.export.spool import Spool, spool_folder
from bulkref.plan.payload import is_microsoft
from bulkref.sheets import xlsxstream

if TYPE_CHECKING:
    from bulkref.api.client import ReferralsClient, RetryPolicy
    from bulkref.api.target import Caller

__all__ = [
    "FORMATS",
    "LAYOUTS",
    "ExportResult",
    "check_output",
    "default_path",
    "export_from",
    "export_referrals",
]

FORMATS = (".xlsx", ".csv")

# Referrals spooled in one statement: a page of the listing's usual size, as often as the
# progress line counts. Per referral, the statement costs as much as the SQL.
_SPOOL_BATCH = REPORT_EVERY

# Engagements looked up per batch of a filtered export's co-sell check: each
# batch is about ten URLs of ~45 ids (client.filter_batches), read concurrently.
_ENGAGEMENT_BATCH = 500


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int  # data rows written
    referrals: int  # distinct referrals the query returned
    folded: int  # connected referrals (Microsoft's of co-sells, the other party's) in their deal's row
    total: int | None  # what the service said the query matches (@odata.count), when it said
    filter: str | None  # the $filter sent
    seconds: float
    folded_connected: int = 0  # of ``folded``: the other party's referrals of shared deals

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "rows": self.rows,
            "referrals": self.referrals,
            "folded": self.folded,
            "foldedConnected": self.folded_connected,
            "filter": self.filter,
        }


def default_path(today: dt.date | None = None, csv: bool = False) -> Path:
    """``referrals-export-<date>.xlsx`` (``.csv``) in the current folder."""
    return Path(f"referrals-export-{(today or dt.date.today()).isoformat()}.{'csv' if csv else 'xlsx'}")


#: The layouts an export is written in: the template's, or Partner Center's co-sell CSV.
LAYOUTS = ("template", "partner-center")


def check_output(out: Path, force: bool = False, layout: str = "template") -> Path:
    """Refuse, before anything is read, an output that cannot or should not be written.

    People re-export often and edit the last export meanwhile: replacing it
    would lose their edits, so an existing file needs ``force``.
    """
    if layout not in LAYOUTS:
        raise BadOption(f"The export's layout is template or partner-center, not {layout!r}.")
    if layout != "template" and out.suffix.lower() != ".csv":
        raise UnwritableOutput(
            f"Partner Center's layout is a CSV file, as its bulk upload takes: {out.name} is not "
            "(e.g. -o referrals.csv)."
        )
    if out.suffix.lower() not in FORMATS:
        raise UnwritableOutput(
            f"The export is written as .xlsx or .csv, by the name's suffix: {out.name} has "
            "neither (e.g. -o referrals.xlsx)."
        )
    if out.is_dir():
        raise UnwritableOutput(f"{out} is a folder: give a file name, e.g. -o {out / default_path().name}.")
    if out.exists() and not force:
        raise UnwritableOutput(
            f"{out} already exists: choose another name with -o, or add --force to replace it."
        )
    if not out.parent.is_dir():
        raise UnwritableOutput(f"Cannot write {out}: the folder {out.parent} does not exist.")
    return out


def export_referrals(
    out: Path | str | None = None,
    *,
    api_url: str | None = None,
    sandbox: bool = False,
    filter: str | None = None,
    orderby: str | None = None,
    top: int | None = None,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
    retry: RetryPolicy | None = None,
    layout: str = "template",
    caller: Caller | None = None,
) -> ExportResult:
    """Export every referral the query matches to ``out`` (.xlsx or .csv; default
    ``default_path()``), from ``--sandbox`` or ``--api-url`` as ``target.resolve``
    reads them, as ``caller`` when given. Refuses an existing ``out`` unless ``force``.
    ``layout``: the template's shape, or ``partner-center`` (Partner Center's co-sell CSV)."""
    from bulkref.api import target

    chosen = Path(out) if out is not None else default_path(csv=layout != "template")
    path = check_output(chosen, force, layout)
    with target.resolve(api_url, sandbox, caller=caller) as where:

        async def run() -> ExportResult:
            async with where.client(**({"retry": retry} if retry is not None else {})) as client:
                return await export_from(
                    client,
                    path,
                    filter=filter,
                    orderby=orderby,
                    top=top,
                    force=force,
                    on_progress=on_progress,
                    layout=layout,
                )

        return asyncio.run(run())


async def export_from(
    client: ReferralsClient,
    out: Path | str,
    *,
    filter: str | None = None,
    orderby: str | None = None,
    top: int | None = None,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
    layout: str = "template",
) -> ExportResult:
    """``export_referrals`` with a client of your own. The file is written at the end
    on the caller's event loop (CPU work, no awaits)."""
    started = time.monotonic()
    path = check_output(Path(out), force, layout)
    report = on_progress or (lambda phase, done, total: None)
    with spool_folder() as folder, Spool(folder) as spool:
        total = await _count(client, filter)
        if total is not None and top is not None:
            total = min(total, top)
        report("read", 0, total)
        # Read ahead: the service makes the next page while this one is spooled.
        batch: list[dict[str, Any]] = []
        async for doc in read_ahead(client.list(filter=filter, orderby=orderby, top=top)):
            batch.append(doc)
            if len(batch) == _SPOOL_BATCH:
                spool.add_many(batch)
                batch.clear()
                report("read", spool.exported, total)
        spool.add_many(batch)
        report("read", spool.exported, total)
        if filter or top is not None:
            # Only part of Partner Center was read: find the co-sells among it.
            await _add_microsoft_referrals(client, spool)
        spool.finish()
        rows = spool.row_count()
        connected = spool.folded_connected()
        report("write", 0, rows)
        if layout == "template":
            written = parallel.write_spool(path, spool, folder, rows, report)
        else:
            written = _write_layout(path, spool, rows, report)
    assert written == rows, (written, rows)
    return ExportResult(
        path,
        rows,
        spool.exported,
        spool.exported - rows,
        total,
        filter,
        time.monotonic() - started,
        folded_connected=connected,
    )


async def _count(client: ReferralsClient, filter: str | None) -> int | None:
    """``@odata.count`` of the query, for the progress line; None when the service
    gives none. One referral rides along (``$top=1``): a service may refuse ``$top=0``."""
    try:
        reply = await client.request(
            "GET",
            with_query(client.base_url, {"$filter": filter, "$count": "true", "$top": 1, "$select": "id"}),
        )
    except InvalidRequest as e:
        if "filter" in (e.target or "").lower():
            raise  # the query itself is wrong: say so now, before the reading starts
        return None  # a service without $count or $select: the count only feeds the progress line
    except ServerError:
        return None
    count = reply.body.get("@odata.count") if isinstance(reply.body, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


async def _add_microsoft_referrals(client: ReferralsClient, spool: Spool) -> None:
    engagements = spool.engagements()
    for start in range(0, len(engagements), _ENGAGEMENT_BATCH):
        found = await client.by_engagement_ids(engagements[start : start + _ENGAGEMENT_BATCH])
        for docs in found.values():
            spool.add_many([doc for doc in docs if is_microsoft(doc)], exported=False)


def _write_layout(path: Path, spool: Spool, rows: int, report: ProgressCallback) -> int:
    """The spooled deals in Partner Center's co-sell layout (bulkref.export.partner_center)."""
    written = 0

    def csv_file(f: IO[str]) -> None:
        nonlocal written
        written = write_layout_csv(f, reported(spool.rows(), rows, report), spool.counts)

    xlsxstream.atomic_write(path, "w", csv_file, what="export")
    return written
