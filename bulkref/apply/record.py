"""The record of a run is safe before anything is written to Partner Center.

- ``check_results_path``: the results file's name, folder, writability and
  free space are checked before the first call, so that a run never creates
  referrals and then fails to say which (and with which ids).
- ``rebuild_results`` (``bulkref results --state JOURNAL``): the results file
  written again, at any time, from what the journal holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bulkref.apply.journal import Journal, StepState, result_of_json
from bulkref.apply.outcome import Outcome, RowResult, summarize
from bulkref.errors import JournalError, UnwritableOutput
from bulkref.plan.model import Action, Plan, RowPlan

RESULT_SUFFIXES = (".xlsx", ".csv")
#: Free space a results file needs, whatever its size: a workbook's skeleton and some rows.
MIN_FREE_BYTES = 1 << 20
#: Generously, what one row takes in a results file (ids, a message), to check the free space.
BYTES_PER_ROW = 400
# A temporary file older than this is a leftover of a killed run, not one being written.
STALE_TMP_SECONDS = 60.0

NOT_REACHED = "Not reached: the run was stopped. Run the same command again to continue."


def check_results_path(out: Path, rows: int = 0) -> None:
    """Raise a one-sentence ``BulkrefError`` unless ``out`` can take a results file of
    ``rows`` rows: a known suffix, an existing folder bulkref may write in, free space.
    Leftover temporary files of earlier runs beside it are removed on the way."""
    out = Path(out)
    if out.suffix.lower() not in RESULT_SUFFIXES:
        raise UnwritableOutput(
            f"The results file must end in .xlsx or .csv, not {out.name}: choose another --results."
        )
    folder = out.parent
    if not folder.is_dir():
        raise UnwritableOutput(
            f"Cannot write the results file {out}: the folder {folder} does not exist. Create it, "
            "or choose another --results, before anything is sent."
        )
    if out.is_dir():
        raise UnwritableOutput(
            f"Cannot write the results file {out}: it is a folder. Choose another --results."
        )
    if out.exists() and not os.access(out, os.W_OK):
        raise UnwritableOutput(
            f"Cannot write the results file {out}: it is read-only. Choose another --results, "
            "or make it writable."
        )
    _remove_stale_tmp(out)
    probe = folder / f".{out.name}.{secrets.token_hex(4)}.tmp"
    try:
        probe.touch(exist_ok=False)
    except OSError as e:
        raise UnwritableOutput(
            f"Cannot write the results file {out}: the folder {folder} is not writable "
            f"({e.strerror or e}). Choose another --results before anything is sent."
        ) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # not knowable here (some network drives): the write itself will tell
    need = MIN_FREE_BYTES + rows * BYTES_PER_ROW
    if free < need:
        raise UnwritableOutput(
            f"Cannot write the results file {out}: only {free // 1024} KB are free in {folder}, "
            f"and {rows:,} rows need about {need // 1024} KB. Free some space, or choose another "
            "--results, before anything is sent."
        )


def _remove_stale_tmp(out: Path) -> None:
    """The ``.<name>.<random>.tmp`` files a killed run left beside ``out``
    (bulkref.sheets.xlsxstream.atomic_write makes them)."""
    now = time.time()
    for tmp in out.parent.glob(f".{out.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                tmp.unlink()


def not_reached(sheet: str, row: int, external_id: str | None, action: str) -> RowResult:
    return RowResult(
        sheet=sheet,
        row=row,
        external_id=external_id,
        action=action,
        outcome=Outcome.SKIPPED,
        error_code="notReached",
        error_message=NOT_REACHED,
    )


class JournalResults(Sequence[RowResult]):
    """One result per row of the journal's plan, in the plan's order, read from the journal
    a page at a time whenever iterated (a run of 100,000 rows holds none of them): the
    recorded result with the ids the plan read where the run learnt none (an unchanged,
    blocked or unreached row keeps the record of what Partner Center holds), else what
    its steps say (``steps``: a run killed between a call and its result), else not reached."""

    def __init__(self, journal: Journal, *, steps: bool = False) -> None:
        self._journal = journal
        self._steps = steps
        self._length: int | None = None

    def __len__(self) -> int:
        if self._length is None:
            self._length = self._journal.row_count()  # outcomes_from yields one per plan row
        return self._length

    # An index only, not Sequence's slice too: nothing slices the results (they are read in order).
    def __getitem__(self, i: int) -> RowResult:  # type: ignore[override]
        if i < 0:
            i += len(self)
        for k, r in enumerate(self):
            if k == i:
                return r
        raise IndexError(i)

    def sheet_names(self) -> set[str]:
        return self._journal.sheet_names()

    def _pages(self) -> Iterator[tuple[Any, ...]]:
        pos = 0
        while page := self._journal.outcomes_from(pos):
            yield from page
            pos = page[-1][0] + 1

    def __iter__(self) -> Iterator[RowResult]:
        for _, sheet, row, ext, action, rid, eid, linked, recorded, planned in self._pages():
            known = {"referral_id": rid, "engagement_id": eid, "linked_referral_id": linked}
            if recorded is not None:
                result = result_of_json(recorded)
            elif self._steps:
                result = _from_steps(RowPlan.from_json(json.loads(planned)), self._journal)
            else:
                result = not_reached(sheet, row, ext, action)
            missing = {k: v for k, v in known.items() if v is not None and getattr(result, k) is None}
            yield replace(result, **missing) if missing else result


def journal_rows(plan: Plan, journal: Journal) -> JournalResults:
    """One result per row of ``plan`` (the journal's) from what ``journal`` holds: the
    recorded result, else what its steps say (a run killed between a call and its result)."""
    return JournalResults(journal, steps=True)


def _from_steps(rp: RowPlan, journal: Journal) -> RowResult:
    steps = journal.steps_of(rp.row)
    states = [steps.get(s.key, (None, None)) for s in rp.steps]
    answers = {
        s.key: a or {} for s, (state, a) in zip(rp.steps, states, strict=True) if state == StepState.DONE
    }
    if not answers:
        base = not_reached(rp.sheet, rp.row, rp.external_id, str(rp.action))
        if any(state in (StepState.SENT, StepState.IN_DOUBT) for state, _ in states):
            base = _with(base, "maybeSent", "A call was cut off: the next run looks it up first.")
        return base
    first = answers.get("referral") or answers.get("update") or {}
    linked = answers.get("connected") or {}
    complete = len(answers) == len(rp.steps)
    done = Outcome.CREATED if rp.action is Action.CREATE else Outcome.UPDATED
    return RowResult(
        sheet=rp.sheet,
        row=rp.row,
        external_id=rp.external_id,
        action=str(rp.action),
        outcome=done if complete else Outcome.PARTIAL,
        referral_id=first.get("id") or rp.referral_id,
        engagement_id=first.get("engagementId") or linked.get("engagementId") or rp.engagement_id,
        linked_referral_id=linked.get("id"),
        error_code=None if complete else "notReached",
        error_message=None if complete else NOT_REACHED,
    )


def _with(r: RowResult, code: str, message: str) -> RowResult:
    return replace(r, error_code=code, error_message=message)


def rebuild_results(state: Path | str, out: Path | str | None = None) -> tuple[Path, dict[str, int]]:
    """Write the results file of the run journaled in ``state`` again (to ``out``, else
    where apply writes it by default, beside the input); returns (path, summary)."""
    from bulkref.apply.results import default_path, refuse_input, write_results

    state = Path(state)
    if not state.is_file():
        raise JournalError(
            f"The journal {state} does not exist: give the file apply printed as its journal "
            "(apply --format json names it), or the one given to apply --state."
        )
    with Journal(state) as journal:
        if journal.in_doubt:
            raise JournalError(
                f"{journal.in_doubt[0].upper()}{journal.in_doubt[1:]}: its results cannot be "
                "rebuilt. Run apply again: it looks every row up in Partner Center."
            )
        plan = journal.plan()
        if plan is None:
            raise JournalError(f"The journal {state} holds no run: there are no results to rebuild.")
        rows = journal_rows(plan, journal)
        target = Path(out) if out is not None else default_path(Path(plan.source))
        refuse_input(target, Path(plan.source))
        check_results_path(target, len(plan.rows))
        counts = summarize(rows)
        write_results(rows, target, source=plan.source, summary=counts, in_order=True)
    return target, counts
