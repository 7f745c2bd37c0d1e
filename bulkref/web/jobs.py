"""Long calls (plan, apply, export) in background threads, with the progress a page polls.

One job per import at a time: a second apply of an import is refused while the
first runs (and, across processes, the journal's exclusive lock refuses it).
Stop sets the event ``apply_input`` watches: the calls in flight finish, then
the journal and the results are written, as after a first Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bulkref
from bulkref.web.store import Import, Store, now, write_json

log = logging.getLogger("bulkref.web")

# What the progress counters show, by the results' summary keys.
COUNTS = ("created", "updated", "unchanged", "failed", "in_doubt", "skipped")


@dataclass
class Job:
    kind: str  # apply | export
    key: str  # the import's id, or the export's
    stop: threading.Event = field(default_factory=threading.Event)
    state: str = "starting"  # starting | running | stopping | done | interrupted | failed
    phase: str = ""
    total: int | None = None
    done: int = 0  # rows finished, counting those an earlier run finished
    done_before: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.state in ("starting", "running", "stopping")

    def snapshot(self) -> dict[str, Any]:
        elapsed = (self.finished or time.monotonic()) - self.started
        this_run = self.done - self.done_before
        rate = this_run / elapsed if elapsed > 0.5 and this_run else None
        left = None if self.total is None else max(0, self.total - self.done)
        eta = left / rate if rate and left is not None and self.running else None
        return {
            "kind": self.kind,
            "state": self.state,
            "phase": self.phase,
            "total": self.total,
            "done": self.done,
            "counts": dict(self.counts),
            "rate": round(rate, 1) if rate else None,
            "etaSeconds": round(eta) if eta is not None else None,
            "elapsedSeconds": round(elapsed, 1),
            "notes": self.notes[-5:],
            "error": self.error,
        }


class Jobs:
    def __init__(
        self, store: Store, api_url: str | None, sandbox: bool, wait_in_doubt: float = 120.0
    ) -> None:
        self.store, self.api_url, self.sandbox = store, api_url, sandbox
        self.wait_in_doubt = wait_in_doubt
        self._jobs: dict[tuple[str, str], Job] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, key: str) -> Job | None:
        return self._jobs.get((kind, key))

    def running(self, kind: str, key: str) -> bool:
        job = self.get(kind, key)
        return job is not None and job.running

    def _claim(self, kind: str, key: str) -> Job | None:
        with self._lock:
            current = self._jobs.get((kind, key))
            if current is not None and current.running:
                return None
            job = Job(kind, key)
            self._jobs[(kind, key)] = job
            return job

    def _start(self, job: Job, work: Callable[[Job], None]) -> Job:
        def run() -> None:
            try:
                work(job)
            except bulkref.BulkrefError as e:
                job.state, job.error = "failed", str(e)
            except Exception as e:  # reported on the page, with the log for the details
                log.exception("%s %s failed", job.kind, job.key)
                job.state, job.error = (
                    "failed",
                    f"unexpected error ({type(e).__name__}): see the server's log.",
                )
            finally:
                job.finished = time.monotonic()

        job.thread = threading.Thread(target=run, name=f"{job.kind}-{job.key}", daemon=True)
        job.thread.start()
        return job

    # -- apply --------------------------------------------------------------------------------
    def start_apply(
        self,
        imp: Import,
        concurrency: int,
        caller: bulkref.Caller | None = None,
        on_end: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> Job | None:
        """The apply of ``imp``'s approved plan, started, its calls made as ``caller``
        (None: the server's own credentials); None when one runs already. ``on_end``
        hears how it ended (done, interrupted, failed) and its summary or error."""
        job = self._claim("apply", imp.id)
        if job is None:
            return None
        write_json(imp.run_path, {"state": "running", "started": now()})
        tally = bulkref.Tally()  # the library's summary, counted as rows finish
        job.counts = {k: tally.counts[k] for k in COUNTS}

        def confirm(plan: bulkref.Plan, resumed: bool) -> bool:
            job.total = len(plan.rows)
            job.state = "stopping" if job.stop.is_set() else "running"
            return True

        def count(result: bulkref.RowResult) -> None:
            tally.add(result)
            job.done = tally.rows
            job.counts = {k: tally.counts[k] for k in COUNTS}

        def done_before(result: bulkref.RowResult) -> None:
            # A row an earlier run finished: counted, so that a resumed run goes on from
            # where it stopped, but kept out of this run's rate (it took no time now).
            count(result)
            job.done_before = tally.rows

        def work(job: Job) -> None:
            try:
                run = bulkref.apply_input(
                    imp.plan_path,
                    api_url=self.api_url,
                    sandbox=self.sandbox,
                    concurrency=concurrency,
                    results=imp.results_path,
                    state=imp.journal_path,
                    confirm=confirm,
                    on_result=count,
                    on_note=job.notes.append,
                    stop=job.stop,
                    on_done_before=done_before,
                    wait_in_doubt=self.wait_in_doubt,
                    caller=caller,
                )
            except bulkref.BulkrefError as e:
                write_json(imp.run_path, {"state": "failed", "error": str(e), "finished": now()})
                if on_end is not None:
                    on_end("failed", {"error": str(e)})
                raise
            except Exception:  # the journal knows what was sent: the page offers apply again
                error = "The apply stopped on an unexpected error: see the server's log, then apply again."
                write_json(imp.run_path, {"state": "failed", "error": error, "finished": now()})
                if on_end is not None:
                    on_end("failed", {"error": error})
                raise
            write_json(imp.results_json, [_plain(r) for r in run.results])
            job.counts = {k: run.summary[k] for k in COUNTS}
            job.state = "interrupted" if run.interrupted else "done"
            write_json(
                imp.run_path,
                {"state": job.state, "summary": run.summary, "resumed": run.resumed, "finished": now()},
            )
            if on_end is not None:
                on_end(job.state, dict(run.summary))

        return self._start(job, work)

    def stop(self, kind: str, key: str) -> bool:
        job = self.get(kind, key)
        if job is None or not job.running:
            return False
        job.stop.set()
        job.state = "stopping"
        job.notes.append("Stopping: finishing the calls in flight.")
        return True

    # -- plan ---------------------------------------------------------------------------------
    def start_plan(
        self, imp: Import, saved: Callable[[bulkref.Plan], None], caller: bulkref.Caller | None = None
    ) -> Job | None:
        """The plan of ``imp``'s input, made in the background with its progress (rows read,
        pages of Partner Center listed, rows planned); ``saved(plan)`` keeps it. None when
        one is being made already."""
        job = self._claim("plan", imp.id)
        if job is None:
            return None
        job.phase = "reading the sheet and Partner Center"
        job.counts = {"rows": 0, "pages": 0}

        def on_progress(phase: str, done: int, total: int | None) -> None:
            job.state = "running"
            if phase == "listed":
                job.counts = {**job.counts, "pages": done}
            elif phase == "read":
                job.counts = {**job.counts, "rows": done}
                job.total = total
            else:  # planning, planned: rows
                job.phase, job.done, job.total = phase, done, total

        def work(job: Job) -> None:
            plan = bulkref.make_plan(
                imp.input,
                api_url=self.api_url,
                sandbox=self.sandbox,
                mapping=imp.mapping,
                on_note=job.notes.append,
                on_progress=on_progress,
                caller=caller,
            )
            job.phase = "saving"
            saved(plan)
            job.state = "done"

        return self._start(job, work)

    # -- export -------------------------------------------------------------------------------
    def start_export(
        self, export_id: str, out: Any, query: dict[str, Any], caller: bulkref.Caller | None = None
    ) -> Job:
        job = self._claim("export", export_id)
        assert job is not None  # a fresh id

        def on_progress(phase: str, done: int, total: int | None) -> None:
            job.state, job.phase, job.done, job.total = "running", phase, done, total

        def work(job: Job) -> None:
            result = bulkref.export_referrals(
                out,
                api_url=self.api_url,
                sandbox=self.sandbox,
                on_progress=on_progress,
                caller=caller,
                **query,
            )
            job.phase, job.done, job.total = "written", result.rows, result.rows
            job.notes.append(f"{result.referrals} referrals as {result.rows} rows.")
            job.state = "done"

        return self._start(job, work)

    def stop_all(self) -> None:
        for kind, key in list(self._jobs):
            self.stop(kind, key)

    def wait(self, timeout: float = 10) -> None:
        """Until every job has ended (tests, and a server shutting down)."""
        deadline = time.monotonic() + timeout
        for job in list(self._jobs.values()):
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))


def _plain(result: bulkref.RowResult) -> dict[str, Any]:
    d = dataclasses.asdict(result)
    d["outcome"] = str(result.outcome)
    return d
