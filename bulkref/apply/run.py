"""``bulkref apply`` as a library call: plan (or load a saved plan), confirm,
execute with a journal, write the results file.

The journal lives in the user's data directory, named after the input and the
API (or ``--state``). Running the same command again continues an unfinished
run of the same input: finished calls are not repeated, calls cut off mid-way
are looked up before being sent again. A finished run, or an edited input,
is planned afresh from what Partner Center holds.

Every row's result carries the ids Partner Center holds for it (from the
plan when the run itself made no call for the row: unchanged, blocked, not
reached). A results file already there is kept under a dated name
(``results.keep_previous``), never replaced; ``apply PLAN.json`` names its
results after the sheet the plan was made from.

Safety around it: one apply per target at a time on this machine
(bulkref.apply.lock); the results path is checked before the first call
(bulkref.apply.record); a plan made before this run (a saved PLAN.json, a
resumed run) or a journal in doubt has every create looked up in Partner
Center first (bulkref.apply.reconcile); Ctrl-C and SIGTERM stop gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkref.api.client import RetryPolicy
from bulkref.apply.executor import CONSISTENCY_WINDOW, WAIT_IN_DOUBT, Executor
from bulkref.apply.journal import Journal, plan_digest
from bulkref.apply.lanes import lanes
from bulkref.apply.lock import target_lock
from bulkref.apply.outcome import FINAL, RowResult, summarize
from bulkref.apply.pacing import Pacer
from bulkref.apply.reconcile import adopt_existing, adopt_known
from bulkref.apply.record import JournalResults, check_results_path
from bulkref.errors import BulkrefError, StalePlan, UnreadablePlan, UnusableFile, UnwritableOutput
from bulkref.plan.chunks import plan_chunks
from bulkref.plan.doubts import Ledger, ledger_of
from bulkref.plan.make import api_label, doubts_of, fingerprint, mapping_fingerprint, why_stale
from bulkref.plan.model import Action, Plan, RowPlan
from bulkref.stop_signals import first_stop

if TYPE_CHECKING:
    from bulkref.api.destination import Destination
    from bulkref.api.target import Caller
    from bulkref.plan.remote import Lookup


@dataclass
class ApplyRun:
    plan: Plan
    # In the plan's order; read from the journal whenever iterated (JournalResults).
    results: Sequence[RowResult]
    resumed: bool
    interrupted: bool
    declined: bool
    results_path: Path
    journal_path: Path
    target: Destination | None = None  # where it was written, named
    previous_results: Path | None = None  # the results file found there, kept under this name
    #: How long Partner Center's listing took to show the run's new referrals, and the window
    #: used: ``window`` (seconds), ``measured`` (the largest lag seen, or None), ``samples``
    #: (creates timed), ``unseen`` (not shown by the end), ``override`` (given, not learned).
    consistency: dict[str, Any] = dataclasses.field(default_factory=dict)
    # A sheet in Partner Center's co-sell layout: its rows with Errors and ids filled, that layout.
    layout_results: Path | None = None

    @functools.cached_property
    def summary(self) -> dict[str, int]:
        return summarize(self.results)  # one pass over the journal's results, once


def journal_path(source: Path, api: str, data_dir: Path) -> Path:
    key = hashlib.sha256(f"{source.resolve()}|{api}".encode()).hexdigest()[:12]
    return data_dir / "journals" / f"{source.stem}-{key}.sqlite"


def apply_input(
    path: Path | str,
    *,
    api_url: str | None = None,
    sandbox: bool = False,
    concurrency: int = 8,
    results: Path | None = None,
    state: Path | None = None,
    confirm: Callable[[Plan, bool], bool] = lambda plan, resumed: True,
    on_result: Callable[[RowResult], None] = lambda r: None,
    on_note: Callable[[str], None] = lambda text: None,
    mapping: Path | str | None = None,
    stop: threading.Event | None = None,
    overwrite_newer: bool = False,
    on_done_before: Callable[[RowResult], None] | None = None,
    consistency_window: float | None = CONSISTENCY_WINDOW,
    lookup: str = "auto",
    wait_in_doubt: float = WAIT_IN_DOUBT,
    resend_in_doubt: bool = False,
    clock: Callable[[], float] = time.time,
    retry: RetryPolicy | None = None,
    caller: Caller | None = None,
) -> ApplyRun:
    """Apply ``path``: a spreadsheet (read through the ``mapping`` file, if
        any), planned now, or a PLAN.json from ``plan --out``, executed as saved.

        ``stop``, set from another thread, acts as a first Ctrl-C does: the calls
        in flight finish, then the run ends with its journal and results written
        (``bulkref serve``'s Stop button).

        ``confirm`` gets the plan with its ``target`` set to where it will be
        written now. ``on_done_before`` gets, on a resumed run, each row an earlier
        run finished (default: ``on_result``), so that progress counts every row.
        ``overwrite_newer`` lets rows made from an older version of their referral win.

    ``consistency_window``: how long after a create's answer was lost a listing must
        be read before it may show the create absent (``--consistency-window``); None:
        learned from the run's own creates (bulkref.apply.doubt).
    ``wait_in_doubt``: seconds the run waits, once the other rows are done, for creates in
        doubt to be settled; those still in doubt end ``in_doubt`` (``--wait-in-doubt``).
    ``resend_in_doubt``: the creates in doubt from earlier runs were checked by a person
        and are not in Partner Center: send them (``--resend-in-doubt``).
    ``lookup``: how Partner Center is read, auto, filtered or scan (``--lookup``).
    ``clock`` (epoch seconds) and ``retry`` (its ``sleep`` does every wait): injectable, so
        that tests of timing need not wait on the wall clock.
    ``caller``: whom the calls are made as (a person signed in through ``serve``), instead
        of the process's own sign-in."""
    from bulkref.api import target
    from bulkref.api.destination import destination
    from bulkref.apply.results import default_path, drop_kept, keep_previous, refuse_input, write_results
    from bulkref.files import data_dir

    path = Path(path)
    mapping = None if mapping is None else Path(mapping)
    if not path.exists():
        raise UnusableFile(f"'{path}' does not exist: check the path and the file name.")
    source = _sheet_of(path)
    with target.resolve(api_url, sandbox, caller=caller) as where:
        label = api_label(where)
        named = destination(where)
        state = state or journal_path(path, label, data_dir())
        out = results or default_path(source)
        refuse_input(out, path)
        refuse_input(out, source)
        check_results_path(out)  # before the first call: a run must be able to say what it did
        options = _Options(
            concurrency,
            overwrite_newer,
            named,
            on_done_before or on_result,
            consistency_window,
            lookup,
            wait_in_doubt,
            resend_in_doubt,
            clock,
            retry,
            ledger_of(label, data_dir()),
        )
        with target_lock(label, data_dir(), on_note), Journal(state) as journal:
            if journal.in_doubt:
                on_note(f"Note: {journal.in_doubt}. Every create is looked up in Partner Center first.")
            outcome = asyncio.run(
                _apply(
                    path,
                    mapping,
                    where,
                    label,
                    journal,
                    options,
                    confirm,
                    on_result,
                    on_note,
                    stop,
                    lambda rows: check_results_path(out, rows),
                )
            )
        made, rows, resumed, interrupted, declined, consistency = outcome
        run = ApplyRun(
            made,
            rows,
            resumed,
            interrupted,
            declined,
            results_path=out,
            journal_path=state,
            target=named,
            consistency=consistency,
        )
        if not run.declined:
            run.results_path, run.previous_results = keep_previous(out)
            try:
                write_results(
                    run.results, run.results_path, source=str(source), summary=run.summary, in_order=True
                )
            except BulkrefError as e:
                drop_kept(run.results_path, run.previous_results)
                raise UnwritableOutput(
                    f"{e} Every result, with its ids, is in the journal: `bulkref results --state "
                    f"{state}` (or --out OTHER) writes the file once it can be written."
                ) from None
            if run.plan.layout == "partner-center" and source.exists():
                run.layout_results = _layout_results(run, source, out)
        return run


def _layout_results(run: ApplyRun, source: Path, out: Path) -> Path:
    """The input's rows in Partner Center's layout, Errors and ids filled, beside the results."""
    from bulkref.apply.partner_center_results import layout_results_path, write_layout_results
    from bulkref.apply.results import drop_kept, keep_previous
    from bulkref.sheets.reader import read_sheet

    target, kept = keep_previous(out.with_name(layout_results_path(source).name))
    try:
        return write_layout_results(
            read_sheet(source), run.results, target, {s.row: s.reason for s in run.plan.skipped}
        )
    except BulkrefError:
        drop_kept(target, kept)
        raise


@dataclass(frozen=True)
class _Options:
    concurrency: int
    overwrite_newer: bool
    target: Destination
    done_before: Callable[[RowResult], None]
    consistency_window: float | None
    lookup: str
    wait_in_doubt: float
    resend_in_doubt: bool
    clock: Callable[[], float]
    retry: RetryPolicy | None
    ledger: Ledger


def _finite(seconds: float) -> float | None:
    """Seconds, rounded; None for a window not known (no lag measured yet)."""
    return round(seconds, 1) if seconds != float("inf") else None


def _sheet_of(path: Path) -> Path:
    """The spreadsheet behind ``path``: itself, or the source a PLAN.json was made from
    (the plan is checked properly later: here only its results' name is at stake)."""
    if path.suffix.lower() != ".json":
        return path
    try:
        source = json.loads(path.read_text(encoding="utf-8")).get("source")
    except (OSError, ValueError, AttributeError):
        return path
    return Path(source) if isinstance(source, str) and source else path


async def _apply(
    path: Path,
    mapping: Path | None,
    where: Any,
    label: str,
    journal: Journal,
    options: _Options,
    confirm: Callable[[Plan, bool], bool],
    on_result: Callable[[RowResult], None],
    on_note: Callable[[str], None],
    stop: threading.Event | None,
    check_room: Callable[[int], None],
) -> tuple[Plan, Sequence[RowResult], bool, bool, bool, dict[str, Any]]:
    """(plan, results, resumed, interrupted, declined, consistency)."""
    pacer = Pacer()
    concurrency = options.concurrency
    # The one limit on calls in flight: the client's connections (one per lane:
    # bulkref.apply.lanes, httpx's pool costs more per call than the call) and its slots.
    async with where.client(
        max_connections=concurrency, pacer=pacer, transport=lanes(concurrency), retry=options.retry
    ) as client:
        from bulkref.plan.remote import Lookup

        reads = Lookup(options.lookup, on_note)  # every read of the run, the same way
        known = _created_by_last_run(journal)
        plan, resumed, fresh = await _plan(
            path, mapping, client, reads, label, journal, options.overwrite_newer, options.target
        )
        check_room(len(plan.rows))
        # Whoever says yes is told where it goes now (a saved plan names where it was made),
        # and which creates an earlier run left in doubt (looked up before any is sent).
        plan = dataclasses.replace(
            plan, target=options.target.as_json(), in_doubt=doubts_of(plan, options.ledger)
        )
        if not confirm(plan, resumed):
            return plan, [], resumed, False, True, {}
        if resumed:
            for earlier in journal.results().values():
                if earlier.outcome in FINAL:
                    options.done_before(earlier)
        # The remote is the truth: a plan made before this run, or a journal in doubt,
        # has every create the journal does not know as done looked up first.
        adopted = (
            set() if fresh and not journal.in_doubt else await adopt_existing(plan, client, journal, reads)
        )
        if fresh and known:  # what the last run created, read by id: a listing may not show it yet
            adopted |= await adopt_known(plan, client, journal, known)
        executor = Executor(
            plan,
            client,
            journal,
            lookup=reads,
            concurrency=concurrency,
            clock=options.clock,
            consistency_window=options.consistency_window,
            wait_in_doubt=options.wait_in_doubt,
            ledger=options.ledger,
            resend_in_doubt=options.resend_in_doubt,
            on_note=on_note,
            adopted=adopted,
        )

        def finished(result: RowResult) -> None:
            while pacer.notes:
                on_note(pacer.notes.pop(0))
            on_result(result)
            # Another thread's stop, carried into the loop here: a worker checks after
            # each row, so the calls in flight finish, as after a first Ctrl-C.
            if stop is not None and stop.is_set():
                executor.stop.set()

        executor.on_result = finished
        loop = asyncio.get_running_loop()
        with _stop_on_ctrl_c(loop, executor.stop, on_note):
            try:
                await executor.run()
            finally:
                # What the run measured informs the next one, and doctor.
                options.ledger.record_lags(executor.watcher.lags())
    window = executor.window
    consistency = {
        "window": _finite(executor.watcher.current_window()),
        "measured": None if window.measured is None else round(window.measured, 1),
        "samples": len(window.seen),
        "unseen": len(executor.watcher.unseen_ages(options.clock())),
        "override": window.override is not None,
    }
    return plan, JournalResults(journal), resumed, executor.stop.is_set(), False, consistency


async def _plan(
    path: Path,
    mapping: Path | None,
    client: Any,
    lookup: Lookup,
    label: str,
    journal: Journal,
    overwrite_newer: bool = False,
    target: Destination | None = None,
) -> tuple[Plan, bool, bool]:
    """(plan, resumed, fresh): ``fresh`` when the plan was made now, from what Partner Center holds."""
    if path.suffix.lower() == ".json":
        plan = _saved_plan(path, label, mapping, overwrite_newer)
        previous = journal.plan()
        if previous is not None and journal.digest() == plan_digest(plan):
            return previous, True, False
        journal.start(plan)
        return _journaled(journal), False, False
    previous = journal.plan()
    if (
        previous is not None
        and previous.fingerprint == fingerprint(path)
        and previous.api_url == label
        and previous.mapping_fingerprint == _mapping_print(mapping)
        and previous.overwrite_newer == overwrite_newer
        and journal.unfinished(FINAL)
    ):
        return previous, True, False
    begun = False

    def on_rows(rows: Sequence[RowPlan]) -> None:
        nonlocal begun
        if not begun:  # the last run is forgotten only once the sheet has been read and checked
            journal.begin()
            begun = True
        journal.add(rows)

    header = await plan_chunks(
        path,
        client,
        api_url=label,
        on_rows=on_rows,
        on_replace=journal.replace,
        mapping=mapping,
        overwrite_newer=overwrite_newer,
        target=None if target is None else target.as_json(),
        lookup=lookup,
    )
    if not begun:
        journal.begin()
    journal.finish(header)
    return _journaled(journal), False, True


def _journaled(journal: Journal) -> Plan:
    """The journal's plan: its rows read from there as they are used, the objects let go."""
    plan = journal.plan()
    assert plan is not None  # just written
    return plan


def _created_by_last_run(journal: Journal) -> dict[str, RowResult]:
    """The creates the journal's last run made, by External Reference ID (before a new plan
    replaces them)."""
    return {
        r.external_id: r
        for r in journal.results().values()
        if r.external_id and r.referral_id and r.action == "create" and r.outcome in FINAL
    }


def _mapping_print(mapping: Path | None) -> str | None:
    if mapping is not None and not mapping.is_file():
        from bulkref.mapping.file import load_mapping

        load_mapping(mapping)  # raises the mapping's own "does not exist" sentence
    return mapping_fingerprint(mapping)


def _saved_plan(path: Path, label: str, mapping: Path | None = None, overwrite_newer: bool = False) -> Plan:
    try:
        plan = Plan.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UnreadablePlan(
            f"'{path}' is not a plan bulkref can read ({e}): make it with "
            "`bulkref plan FILE --out PLAN.json`."
        ) from None
    stale = why_stale(plan)
    if stale is not None:
        raise StalePlan(f"{stale[0].upper()}{stale[1:]}: run `bulkref plan` again and review the new plan.")
    if mapping is not None and (plan.mapping is None or Path(plan.mapping).resolve() != mapping.resolve()):
        made = f"with the mapping '{plan.mapping}'" if plan.mapping else "without a mapping"
        raise StalePlan(
            f"This plan was made {made}, not with '{mapping}': a saved plan is applied as "
            "it was made, so leave --mapping out (or plan again with this mapping)."
        )
    if plan.api_url is None:
        raise StalePlan(
            "This plan was made --offline, without reading Partner Center: plan again "
            "against the API you apply to."
        )
    if plan.api_url != label:
        raise StalePlan(
            f"This plan was made against {plan.api_url}, not {label}: plan again "
            "against the API you apply to."
        )
    newer = sum(1 for r in plan.rows if r.action is Action.BLOCKED and r.changed_since)
    if overwrite_newer and newer and not plan.overwrite_newer:
        raise StalePlan(
            f"This plan was made without --overwrite-newer and blocks {newer} row"
            f"{'s' if newer != 1 else ''} changed in Partner Center since the sheet was made: "
            "a saved plan is applied as it was made, so plan again with --overwrite-newer."
        )
    return plan


def _stop_on_ctrl_c(
    loop: asyncio.AbstractEventLoop, stop: asyncio.Event, on_note: Callable[[str], None]
) -> contextlib.AbstractContextManager[None]:
    """The first Ctrl-C (or SIGTERM: ``timeout``, CI, ``docker stop``) lets the calls
    in flight finish, then the run stops with its journal and results written; a
    second one stops at once (the journal still knows which calls were cut off)."""

    def first() -> None:
        on_note("Stopping: finishing the calls in flight (Ctrl-C again to stop at once).")
        stop.set()

    return first_stop(loop, first)
