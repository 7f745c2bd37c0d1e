"""Planning a sheet a chunk of rows at a time, for ``bulkref apply``: the sheet's
typed values, the remote state and the plan's rows are held for one chunk, not
for the whole sheet (at 100,000 rows, holding them all took gigabytes).

The sheet is read once; each chunk of ``CHUNK_ROWS`` rows is then validated,
looked up in Partner Center and planned by the pure planner, and its rows are
handed to ``on_rows`` (the apply journal) before the next chunk is made. What
spans the whole sheet is kept whole-sheet:

- the uniqueness of External Reference IDs and Referral IDs: the validator is
  run once over those two columns alone, for every row, and its duplicate
  findings replace each chunk's own (which would see only the chunk);
- two rows claiming one referral: rows of different chunks whose plans name
  the same referral are planned again together (``on_replace``), so that the
  planner sees all of them, as it would over the whole sheet;
- how Partner Center is read: chosen once for the sheet's ids (a scan then
  reads the listing once, for every chunk).

A mapped export (``mapping``) is read and planned whole, as ``plan_file`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkref.plan.make import _now, fingerprint, plan_file
from bulkref.plan.model import Action, Plan, RowPlan
from bulkref.plan.parallel import plan
from bulkref.plan.planner import Remote
from bulkref.problems import ProblemCode, Report, Severity

if TYPE_CHECKING:
    from bulkref.api.client import ReferralsClient
    from bulkref.plan.index import ReferralIndex
    from bulkref.plan.remote import Lookup
    from bulkref.sheets.table import Table
    from bulkref.validation.schema import Validated

#: Rows validated, looked up and planned at once.
CHUNK_ROWS = 2000
_UNIQUE = frozenset({ProblemCode.DUPLICATE_EXTERNAL_ID, ProblemCode.DUPLICATE_REFERRAL_ID})
_ID_KEYS = ("external_id", "referral_id")
# Actions whose row names an existing referral (the planner's claim on it).
_CLAIMING = frozenset({Action.UPDATE, Action.UNCHANGED, Action.BLOCKED})


async def plan_chunks(
    path: Path,
    client: ReferralsClient,
    *,
    api_url: str,
    on_rows: Callable[[Sequence[RowPlan]], None],
    on_replace: Callable[[Sequence[RowPlan]], None],
    mapping: Path | None = None,
    overwrite_newer: bool = False,
    target: dict[str, Any] | None = None,
    rows_at_once: int = CHUNK_ROWS,
    lookup: Lookup | str | None = None,
) -> Plan:
    """Plan ``path`` against what ``client`` reads, handing the rows to ``on_rows`` a chunk
    at a time (in the sheet's order) and rows planned again to ``on_replace``. Returns the
    plan without its rows (they are where ``on_rows`` put them)."""
    if mapping is not None:
        whole = await plan_file(
            path,
            client,
            api_url=api_url,
            mapping=mapping,
            overwrite_newer=overwrite_newer,
            target=target,
            lookup=lookup,
        )
        on_rows(whole.rows)
        return dataclasses.replace(whole, rows=())
    from bulkref.plan.remote import as_lookup, scan_ahead, scan_all

    reads = as_lookup(lookup)
    ahead = await scan_ahead(client, reads)
    try:
        table = await asyncio.to_thread(_read, path) if ahead is not None else _read(path)
    except BaseException:
        if ahead is not None:
            ahead.cancel()
            with contextlib.suppress(BaseException):
                (await ahead).close()
        raise
    index: ReferralIndex | None = None if ahead is None else await ahead
    if table is None:  # Partner Center's layout: read again through its mapping, planned whole
        if index is not None:
            index.close()
        whole = await plan_file(
            path, client, api_url=api_url, overwrite_newer=overwrite_newer, target=target, lookup=lookup
        )
        on_rows(whole.rows)
        return dataclasses.replace(whole, rows=())
    try:
        if index is None and reads.mode != "filtered":
            keys = sum(int(table.frame[k].notna().sum()) for k in _ID_KEYS if k in table.frame.columns)
            if await reads.choose(client, keys) == "scan":
                index = await scan_all(client)  # once, for every chunk
        made = Plan(
            source=str(path),
            fingerprint=fingerprint(path),
            api_url=api_url,
            rows=(),
            created=_now(),
            overwrite_newer=overwrite_newer,
            target=target,
        )
        chunker = _Chunker(table, client, reads, index, made, rows_at_once)
        claims: dict[str, list[tuple[int, int]]] = defaultdict(list)  # referral -> (chunk, row)
        n = table.rows
        for k, start in enumerate(range(0, max(n, 1), rows_at_once)):
            rows = await chunker.plan(slice(start, start + rows_at_once))
            for rp in rows:
                if rp.action in _CLAIMING and rp.referral_id:
                    claims[rp.referral_id].append((k, rp.row))
            on_rows(rows)
        shared = sorted(
            {row for found in claims.values() if len({k for k, _ in found}) > 1 for _, row in found}
        )
        del claims
        if shared:
            on_replace(await chunker.plan(chunker.positions(shared)))
        strategy = "scan" if index is not None else reads.strategy or "filtered"
        return dataclasses.replace(made, lookup=strategy)
    finally:
        if index is not None:
            index.close()


def _read(path: Path) -> Table | None:
    """The sheet's table; None for a sheet in Partner Center's co-sell layout, whose cells
    are converted (bulkref.mapping.partner_center) and validated whole, as a mapped export's."""
    from bulkref.mapping.partner_center import is_partner_center
    from bulkref.sheets.reader import read_sheet, table_of

    if path.suffix.lower() in (".xlsx", ".xlsm"):
        # As check_file does: the validator loads while a child process reads the workbook.
        threading.Thread(target=_load_validator, name="bulkref-load-validator", daemon=True).start()
    raw = read_sheet(path)
    return None if is_partner_center(raw.headers) else table_of(raw)


def _load_validator() -> None:
    with contextlib.suppress(Exception):  # imported again, and any error shown, where it is used
        importlib.import_module("bulkref.validation.schema")


class _Chunker:
    """Validates, looks up and plans slices of one read table."""

    def __init__(
        self,
        table: Table,
        client: Any,
        lookup: Lookup,
        index: ReferralIndex | None,
        made: Plan,
        rows_at_once: int,
    ) -> None:
        from bulkref.validation.schema import validate

        self.table, self.client, self.index, self.made = table, client, index, made
        self.lookup = lookup
        header = table.header_row
        self._sheet_wide = [p for p in table.problems if p.row is None or p.row == header]
        self._by_row: dict[int, list[Any]] = defaultdict(list)
        for p in table.problems:
            if p.row is not None and p.row != header:
                self._by_row[p.row].append(p)
        self._uncalculated: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for cell in table.uncalculated:
            self._uncalculated[cell[0]].append(cell)
        # The duplicates of the whole sheet, by row: the validator over the id columns alone.
        ids = {k: c for k, c in table.columns.items() if k in _ID_KEYS}
        self._unique: dict[int, list[Any]] | None = None  # None: one chunk sees every row itself
        if ids and table.rows > rows_at_once:
            self._unique = defaultdict(list)
            only = dataclasses.replace(
                table, frame=table.frame[list(ids)], columns=ids, problems=[], uncalculated=[]
            )
            for p in validate(only).report.problems:
                if p.code in _UNIQUE and p.row is not None:
                    self._unique[p.row].append(p)

    def positions(self, rows: Sequence[int]) -> list[int]:
        where = self.table.frame.index
        return [int(where.get_loc(r)) for r in rows]

    async def plan(self, which: slice | list[int]) -> list[RowPlan]:
        from bulkref.plan.remote import fetch
        from bulkref.validation.schema import validate

        frame = self.table.frame.iloc[which]
        rows = [int(r) for r in frame.index]
        part = dataclasses.replace(
            self.table,
            frame=frame,
            problems=self._sheet_wide + [p for r in rows for p in self._by_row.get(r, ())],
            uncalculated=[c for r in rows for c in self._uncalculated.get(r, ())],
        )
        checked = validate(part)
        if self._unique is None:
            return await self._planned(checked, fetch)
        problems = [p for p in checked.report.problems if p.code not in _UNIQUE]
        problems += [p for r in rows for p in self._unique.get(r, ())]
        invalid = frozenset(p.row for p in problems if p.severity is Severity.ERROR and p.row is not None)
        checked = dataclasses.replace(
            checked, report=Report(rows=checked.report.rows, problems=problems), invalid_rows=invalid
        )
        return await self._planned(checked, fetch)

    async def _planned(self, checked: Validated, fetch: Any) -> list[RowPlan]:
        remote: Remote = await fetch(self.client, self.lookup, checked, self.index)
        try:
            made = plan(
                checked,
                remote,
                source=self.made.source,
                fingerprint=self.made.fingerprint,
                api_url=self.made.api_url,
                overwrite_newer=self.made.overwrite_newer,
            )
        finally:
            # Under a scan the index serves every chunk: it is closed once, at the end.
            if remote.release is not None and self.index is None:
                remote.release()
        return list(made.rows)
