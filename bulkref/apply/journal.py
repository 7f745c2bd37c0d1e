"""The apply journal: every step's state as it happens, in SQLite, so a run
stopped by Ctrl-C, a crash or ``kill -9`` continues where it stopped.

A step is written ``sent`` before its call goes out and ``done`` (with the
ids of what it created) when the answer is in. A step found ``sent`` on the
next run was cut off mid-call: its outcome is unknown, and the executor looks
Partner Center up before sending it again. WAL mode with ``synchronous=NORMAL``:
a commit survives the process being killed (not a power cut), at the cost of
microseconds instead of an fsync per step.

The plan is kept a row at a time (``plan_row``, written in batches inside
transactions) and read back a page at a time, so a run of 100,000 rows never
holds its plan whole. Beside the plan's payloads, only ids, states, HTTP
statuses and error codes/messages are kept: no tokens. A step's ``sent`` is
committed before its call goes out; a ``done`` step and a row's result are
committed with the next ``sent`` (or within ``COMMIT_EVERY``): lost with the
process, they only make the next run look the step up in Partner Center.

A journal of the earlier layout (the whole plan as one JSON value) is
rewritten in this one when opened; one that cannot be read so is in doubt.

A journal is a cache of what Partner Center holds, never the truth. It is
checked when opened (SQLite's ``quick_check``, and the write-ahead log's
length: garbage appended after a kill makes SQLite drop later commits
silently). A journal in doubt (the check fails, the log is damaged, the file
is not a database) is set aside as ``<name>.damaged-<time>`` and a new one
started, with ``in_doubt`` saying why: the run then looks up every create in
Partner Center before sending anything (bulkref.apply.reconcile). A journal
that cannot be read or written (a full disk, a read-only folder) stops the
command with one sentence naming it (``JournalError``, exit 2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import hashlib
import json
import os
import sqlite3
import struct
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Any, overload

from bulkref.apply.outcome import Outcome, RowResult
from bulkref.errors import JournalError, JournalInUse
from bulkref.plan.model import Plan, RowPlan

SCHEMA = """
CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plan_row (
    pos INTEGER PRIMARY KEY,      -- the row's place in the plan, from 0
    row INTEGER NOT NULL,
    action TEXT NOT NULL,
    -- What the results need of the row, read without its payloads:
    sheet TEXT, external_id TEXT, referral_id TEXT, engagement_id TEXT, linked_referral_id TEXT,
    value TEXT NOT NULL           -- JSON: the RowPlan (bulkref.plan.model.RowPlan.as_json)
);
CREATE TABLE IF NOT EXISTS step (
    row INTEGER NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,          -- a StepState: sent | in_doubt | absent | done | failed
    -- JSON: done: id, engagementId, organizationId, organizationName, eTag; the others:
    -- sentAt, firstSentAt, failedAt, requestId, sends, error (bulkref.apply.executor)
    answer TEXT,
    PRIMARY KEY (row, key)
);
CREATE TABLE IF NOT EXISTS result (row INTEGER PRIMARY KEY, value TEXT NOT NULL, outcome TEXT);
"""


class StepState(StrEnum):
    """Where one call of a row stands."""

    SENT = "sent"  # it went out and no answer is in: the run was cut off mid-call
    IN_DOUBT = "in_doubt"  # its answer was lost: it may have been stored (bulkref.apply.doubt)
    ABSENT = "absent"  # it was in doubt, and Partner Center showed it was not stored
    DONE = "done"  # answered, or found in Partner Center
    FAILED = "failed"  # refused: nothing was stored


#: The journal's layout (``PRAGMA user_version``). 0: before 2: the whole plan as one JSON
#: value (``run.plan``), read once and rewritten a row at a time when such a journal is opened.
FORMAT = 2

# What a step's answer keeps: enough to fill step 2 and the results sheet.
ANSWER_FIELDS = ("id", "engagementId", "organizationId", "organizationName", "eTag")
# Plan rows written per transaction, and read per query.
ROWS_AT_ONCE = 500
# Writes that may be lost with the process (a done step, a row's result: the next run
# looks the step up instead) wait at most this long for the next commit.
COMMIT_EVERY = 0.25


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.in_doubt: str | None = None  # why this run must not trust what the journal said
        self.closed = False
        self._pending = False  # an open transaction holds writes not committed yet
        self._since = 0.0
        self._digest: Any = None
        self._written = 0
        with self._writing("created"):
            path.parent.mkdir(parents=True, exist_ok=True)
        damage = _wal_damage(path)
        try:
            self._db = self._open()
            if damage is None:
                damage = _check(self._db)
            if damage is None:
                damage = self._upgrade()
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise JournalInUse(
                    f"Another bulkref apply is using the journal {path}: wait for it to "
                    "finish (or stop it) before running this one."
                ) from None
            if _no_space(e):
                raise _journal_error(path, "written", e) from None
            damage = f"it cannot be read ({e})"
        except sqlite3.DatabaseError as e:  # "file is not a database", "malformed"
            damage = f"it is damaged ({e})"
        if damage is not None:
            self._set_aside(damage)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=0.5)
        try:
            # Exclusive: one run at a time may use a journal (two runs of one
            # input would race to create the same referrals), and a commit
            # skips the lock dance, a third cheaper per step.
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > FORMAT:
                raise JournalError(
                    f"The journal {self.path} was written by a newer bulkref (format {version}): "
                    "upgrade bulkref, or give another file with --state."
                )
            fresh = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
            db.executescript(SCHEMA)
            if fresh:
                db.execute(f"PRAGMA user_version={FORMAT}")
        except BaseException:
            db.close()
            raise
        return db

    def _upgrade(self) -> str | None:
        """A journal of the earlier layout rewritten in this one (None), or why it cannot be."""
        if self._db.execute("PRAGMA user_version").fetchone()[0] == FORMAT:
            return None
        try:
            with self._db:
                self._db.execute("BEGIN")
                columns = {r[1] for r in self._db.execute("PRAGMA table_info(result)")}
                if "outcome" not in columns:
                    self._db.execute("ALTER TABLE result ADD COLUMN outcome TEXT")
                stored = self._db.execute("SELECT row, value FROM result").fetchall()
                for row, value in stored:
                    outcome = json.loads(value).get("outcome")
                    self._db.execute("UPDATE result SET outcome = ? WHERE row = ?", (outcome, row))
                old = self._db.execute("SELECT value FROM run WHERE key = 'plan'").fetchone()
                if old is not None:
                    plan = Plan.from_json(json.loads(old[0]))
                    self._db.execute("DELETE FROM run WHERE key = 'plan'")
                    self._write_plan(plan, plan.rows)
                self._db.execute(f"PRAGMA user_version={FORMAT}")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            return f"it was written by an earlier bulkref and could not be read ({e})"
        return None

    def _set_aside(self, why: str) -> None:
        """Keep the doubtful journal for a post-mortem under another name; start a new one."""
        db: sqlite3.Connection | None = getattr(self, "_db", None)  # None: it did not even open
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        kept = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        try:
            for suffix in ("", "-wal", "-shm"):
                part = Path(f"{self.path}{suffix}")
                if part.exists():
                    os.replace(part, Path(f"{kept}{suffix}"))
            self._db = self._open()
        except (OSError, sqlite3.Error) as e:
            raise JournalError(
                f"The journal {self.path} is in doubt ({why}) and could not be set aside or "
                f"replaced ({e}): move it away (or give another file with --state), then run the "
                "same command again; every create is then looked up in Partner Center first."
            ) from None
        self.in_doubt = f"the journal {self.path} was in doubt ({why}); it was kept as {kept.name}"

    @contextmanager
    def _writing(self, what: str = "written") -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as e:
            raise _journal_error(self.path, what, e) from None

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection to read with: the journal's, or once it is closed (the results of a
        finished run, read afterwards) one of its own for this read."""
        with self._writing("read"):
            if not self.closed:
                yield self._db
                return
            with contextlib.closing(sqlite3.connect(self.path)) as db:
                yield db

    def flush(self) -> None:
        """Commit what waits for a commit."""
        if self._pending and not self.closed:
            with self._writing():
                try:
                    if self._db.in_transaction:
                        self._db.execute("COMMIT")
                finally:
                    self._pending = self._db.in_transaction

    def close(self) -> None:
        if self.closed:
            return
        try:
            # What cannot be committed now (a full disk, after the run said so) is only done
            # steps and results: the next run looks those steps up in Partner Center.
            with contextlib.suppress(JournalError):
                self.flush()
        finally:
            self.closed = True
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the run -----------------------------------------------------------------------------
    def plan(self) -> Plan | None:
        """The plan of the journal's run, its rows read from the journal as they are used."""
        self.flush()
        with self._writing("read"):
            row = self._db.execute("SELECT value FROM run WHERE key = 'header'").fetchone()
        if row is None:
            return None
        return dataclasses.replace(Plan.from_json({**json.loads(row[0]), "rows": []}), rows=PlanRows(self))

    def digest(self) -> str | None:
        """A digest of the journal's plan (its header and every row), to tell a saved plan again."""
        with self._writing("read"):
            row = self._db.execute("SELECT value FROM run WHERE key = 'digest'").fetchone()
        return row[0] if row else None

    def start(self, plan: Plan) -> None:
        """A new run of ``plan``: what an earlier run journaled is forgotten
        (it is in Partner Center now, and the new plan was made from there)."""
        self.begin()
        self.add(plan.rows)
        self.finish(plan)

    def begin(self) -> None:
        """A new run whose plan comes in batches (``add``), then ``finish``: until then the
        journal holds no plan, so a run stopped while planning plans afresh next time."""
        self.flush()
        with self._writing(), self._db:
            self._db.execute("BEGIN")
            for table in ("step", "result", "plan_row"):
                self._db.execute(f"DELETE FROM {table}")
            self._db.execute("DELETE FROM run WHERE key IN ('header', 'digest', 'plan')")
        self._digest = hashlib.sha256()
        self._written = 0

    def add(self, rows: Iterable[RowPlan]) -> None:
        """Plan rows, in order, written ``ROWS_AT_ONCE`` to a transaction."""
        batch: list[RowPlan] = []
        for rp in rows:
            batch.append(rp)
            if len(batch) >= ROWS_AT_ONCE:
                self._add(batch)
                batch = []
        if batch:
            self._add(batch)

    def _add(self, rows: list[RowPlan]) -> None:
        self.flush()
        with self._writing(), self._db:
            self._db.execute("BEGIN")
            self._insert_rows(rows)

    def _insert_rows(self, rows: Iterable[RowPlan]) -> None:
        values = []
        for rp in rows:
            text = json.dumps(rp.as_json(), ensure_ascii=False)
            if self._digest is not None:
                self._digest.update(text.encode())
            values.append(
                (
                    self._written,
                    rp.row,
                    str(rp.action),
                    rp.sheet,
                    rp.external_id,
                    rp.referral_id,
                    rp.engagement_id,
                    rp.linked_referral_id,
                    text,
                )
            )
            self._written += 1
        self._db.executemany("INSERT INTO plan_row VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def replace(self, rows: Iterable[RowPlan]) -> None:
        """Rows planned again (by row number), in place of those added."""
        self.flush()
        self._digest = None  # only a saved plan, written whole, is told again by its digest
        with self._writing(), self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE plan_row SET action = ?, sheet = ?, external_id = ?, referral_id = ?,"
                " engagement_id = ?, linked_referral_id = ?, value = ? WHERE row = ?",
                [
                    (
                        str(rp.action),
                        rp.sheet,
                        rp.external_id,
                        rp.referral_id,
                        rp.engagement_id,
                        rp.linked_referral_id,
                        json.dumps(rp.as_json(), ensure_ascii=False),
                        rp.row,
                    )
                    for rp in rows
                ],
            )

    def finish(self, header: Plan) -> None:
        """The plan complete: ``header`` is the plan's (its rows are those added)."""
        self.flush()
        with self._writing(), self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO run VALUES ('header', ?)", (json.dumps(_header(header)),)
            )
            if self._digest is not None:
                self._digest.update(json.dumps(_header(header), sort_keys=True).encode())
                self._db.execute(
                    "INSERT OR REPLACE INTO run VALUES ('digest', ?)", (self._digest.hexdigest(),)
                )

    def _write_plan(self, plan: Plan, rows: Iterable[RowPlan]) -> None:
        """Inside an open transaction (the upgrade of an earlier journal)."""
        self._digest = hashlib.sha256()
        self._written = 0
        self._insert_rows(rows)
        self._digest.update(json.dumps(_header(plan), sort_keys=True).encode())
        self._db.execute("INSERT OR REPLACE INTO run VALUES ('header', ?)", (json.dumps(_header(plan)),))
        self._db.execute("INSERT OR REPLACE INTO run VALUES ('digest', ?)", (self._digest.hexdigest(),))

    def rows_from(self, pos: int, limit: int = ROWS_AT_ONCE) -> list[tuple[int, RowPlan]]:
        """(position, row) of the plan's rows from ``pos`` on, at most ``limit`` of them."""
        with self._reading() as db:
            found = db.execute(
                "SELECT pos, value FROM plan_row WHERE pos >= ? ORDER BY pos LIMIT ?", (pos, limit)
            ).fetchall()
        return [(p, RowPlan.from_json(json.loads(v))) for p, v in found]

    def row_count(self) -> int:
        with self._reading() as db:
            return int(db.execute("SELECT count(*) FROM plan_row").fetchone()[0])

    def rows_of_action(self, action: str) -> list[RowPlan]:
        with self._reading() as db:
            query = "SELECT value FROM plan_row WHERE action = ? ORDER BY pos"
            found = db.execute(query, (action,)).fetchall()
        return [RowPlan.from_json(json.loads(v)) for (v,) in found]

    def action_counts(self) -> dict[str, int]:
        with self._reading() as db:
            return dict(db.execute("SELECT action, count(*) FROM plan_row GROUP BY action").fetchall())

    # -- steps -------------------------------------------------------------------------------
    def steps(self) -> dict[tuple[int, str], tuple[StepState, dict[str, Any] | None]]:
        with self._writing("read"):
            return {
                (r, k): (StepState(state), json.loads(a) if a else None)
                for r, k, state, a in self._db.execute("SELECT row, key, state, answer FROM step")
            }

    def steps_of(self, row: int) -> dict[str, tuple[StepState, dict[str, Any] | None]]:
        """One row's steps: key -> (state, answer)."""
        with self._writing("read"):
            found = self._db.execute("SELECT key, state, answer FROM step WHERE row = ?", (row,)).fetchall()
        return {k: (StepState(state), json.loads(a) if a else None) for k, state, a in found}

    def steps_in(self, *states: StepState) -> dict[tuple[int, str], dict[str, Any]]:
        """The steps in one of ``states``, with what was journaled of their call."""
        marks = ", ".join("?" * len(states))
        with self._writing("read"):
            found = self._db.execute(
                f"SELECT row, key, answer FROM step WHERE state IN ({marks})", [str(s) for s in states]
            ).fetchall()
        return {(r, k): json.loads(a) if a else {} for r, k, a in found}

    def sent(self, row: int, key: str, call: Mapping[str, Any] | None = None) -> None:
        """The call goes out now. ``call``: when it was sent and with which request id, so
        that a later run settles a cut-off create as a create in doubt. Committed before the
        call goes out (with whatever waited for a commit)."""
        self._set(row, key, StepState.SENT, {"sentAt": round(time.time(), 3), **(call or {})}, commit=True)

    def lost(self, row: int, key: str, call: Mapping[str, Any]) -> None:
        """The call's answer was lost: in doubt (``journal.in_doubt`` is about the journal itself)."""
        self._set(row, key, StepState.IN_DOUBT, dict(call), commit=True)

    def absent(self, row: int, key: str, call: Mapping[str, Any]) -> None:
        self._set(row, key, StepState.ABSENT, dict(call), commit=True)

    def done(self, row: int, key: str, answer: dict[str, Any] | None) -> None:
        kept = {f: answer[f] for f in ANSWER_FIELDS if answer and answer.get(f) is not None}
        self._set(row, key, StepState.DONE, kept)

    def failed(self, row: int, key: str) -> None:
        self._set(row, key, StepState.FAILED, None)

    def _set(
        self, row: int, key: str, state: StepState, answer: dict[str, Any] | None, commit: bool = False
    ) -> None:
        self._write(
            "INSERT OR REPLACE INTO step VALUES (?, ?, ?, ?)",
            (row, key, str(state), json.dumps(answer) if answer is not None else None),
            commit,
        )

    def _write(self, sql: str, values: tuple[Any, ...], commit: bool = False) -> None:
        """One write, committed now (``commit``) or with the next commit: a done step or a
        result lost with the process only makes the next run look the step up first."""
        with self._writing():
            try:
                if not self._db.in_transaction:
                    self._db.execute("BEGIN")
                    self._since = time.monotonic()
                self._db.execute(sql, values)
                if commit or time.monotonic() - self._since > COMMIT_EVERY:
                    self._db.execute("COMMIT")
            finally:
                # SQLite rolls back by itself on some errors (a full disk): nothing is pending then.
                self._pending = self._db.in_transaction

    # -- results -----------------------------------------------------------------------------
    def record(self, result: RowResult) -> None:
        # Field by field, not dataclasses.asdict: that deep-copies every value,
        # and this runs once per row of a 100,000-row run.
        values = {f.name: getattr(result, f.name) for f in fields(result)}
        self._write(
            "INSERT OR REPLACE INTO result VALUES (?, ?, ?)",
            (result.row, json.dumps(values), str(result.outcome)),
        )

    def results(self) -> dict[int, RowResult]:
        self.flush()
        with self._writing("read"):
            stored = self._db.execute("SELECT row, value FROM result").fetchall()
        return {row: _result(value) for row, value in stored}

    def result_of(self, row: int) -> RowResult | None:
        with self._reading() as db:
            found = db.execute("SELECT value FROM result WHERE row = ?", (row,)).fetchone()
        return None if found is None else _result(found[0])

    def rows_with(self, outcomes: Iterable[str]) -> set[int]:
        """The rows whose recorded result is one of ``outcomes``."""
        wanted = sorted(set(map(str, outcomes)))
        marks = ", ".join("?" * len(wanted))
        with self._writing("read"):
            found = self._db.execute(
                f"SELECT row FROM result WHERE outcome IN ({marks})",
                wanted,
            ).fetchall()
        return {r for (r,) in found}

    def outcomes_from(self, pos: int, limit: int = ROWS_AT_ONCE) -> list[tuple[Any, ...]]:
        """From plan position ``pos`` on, in plan order: (pos, sheet, row, external_id, action,
        referral_id, engagement_id, linked_referral_id, the recorded result or None, and the
        row's plan where it has no result)."""
        with self._reading() as db:
            return _outcomes_from(db, pos, limit)

    def sheet_names(self) -> set[str]:
        query = "SELECT DISTINCT sheet FROM plan_row WHERE sheet IS NOT NULL AND sheet != ''"
        with self._reading() as db:
            return {s for (s,) in db.execute(query)}

    def unfinished(self, final: Iterable[str]) -> bool:
        """Whether a create or an update of the plan has no ``final`` result yet."""
        kept = sorted(set(map(str, final)))
        marks = ", ".join("?" * len(kept))
        with self._writing("read"):
            return (
                self._db.execute(
                    "SELECT 1 FROM plan_row WHERE action IN ('create', 'update') AND row NOT IN "
                    f"(SELECT row FROM result WHERE outcome IN ({marks})) LIMIT 1",
                    kept,
                ).fetchone()
                is not None
            )

    def forget_unfinished(self, final: Iterable[str]) -> None:
        """Drop the results that are not ``final``: their rows are about to be tried again."""
        kept = sorted(set(map(str, final)))
        marks = ", ".join("?" * len(kept))
        self.flush()
        with self._writing():
            self._db.execute(f"DELETE FROM result WHERE outcome NOT IN ({marks})", kept)

    def result_view(self) -> ResultView:
        self.flush()
        return ResultView(self)

    def result_rows(self) -> list[int]:
        with self._reading() as db:
            return [r for (r,) in db.execute("SELECT row FROM result ORDER BY row")]


class ResultView(Mapping[int, RowResult]):
    """The journal's recorded results by row, each read when asked for."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def __getitem__(self, row: int) -> RowResult:
        found = self._journal.result_of(row)
        if found is None:
            raise KeyError(row)
        return found

    def __iter__(self) -> Iterator[int]:
        return iter(self._journal.result_rows())

    def __len__(self) -> int:
        return len(self._journal.result_rows())


class PlanRows(Sequence[RowPlan]):
    """A journal's plan rows, read ``ROWS_AT_ONCE`` at a time as they are used: a plan of
    100,000 rows is never held whole."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._length: int | None = None

    def __len__(self) -> int:
        if self._length is None:
            self._length = self._journal.row_count()
        return self._length

    def __iter__(self) -> Iterator[RowPlan]:
        pos = 0
        while True:
            page = self._journal.rows_from(pos)
            if not page:
                return
            for pos, rp in page:  # noqa: B007 (the last position read is where the next page starts)
                yield rp
            pos += 1

    @overload
    def __getitem__(self, i: int) -> RowPlan: ...
    @overload
    def __getitem__(self, i: slice) -> list[RowPlan]: ...
    def __getitem__(self, i: int | slice) -> RowPlan | list[RowPlan]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        page = self._journal.rows_from(i, 1) if 0 <= i < len(self) else []
        if not page:
            raise IndexError(i)
        return page[0][1]

    def counts(self) -> dict[str, int]:
        """Rows per action, counted by the journal."""
        return self._journal.action_counts()

    def of_action(self, action: str) -> Iterator[RowPlan]:
        """The rows planned ``action``, read by the journal (blocked rows are few; a plan's rows
        are many, and each read costs its parse)."""
        return iter(self._journal.rows_of_action(action))


def plan_digest(plan: Plan) -> str:
    """What ``Journal.digest`` says of a journal holding ``plan``."""
    digest = hashlib.sha256()
    for rp in plan.rows:
        digest.update(json.dumps(rp.as_json(), ensure_ascii=False).encode())
    digest.update(json.dumps(_header(plan), sort_keys=True).encode())
    return digest.hexdigest()


def _header(plan: Plan) -> dict[str, Any]:
    """The plan without its rows (nor their summary)."""
    d = dataclasses.replace(plan, rows=()).as_json()
    d.pop("rows", None)
    d.pop("summary", None)
    return d


def _outcomes_from(db: sqlite3.Connection, pos: int, limit: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT p.pos, p.sheet, p.row, p.external_id, p.action, p.referral_id, p.engagement_id,"
        " p.linked_referral_id, r.value, CASE WHEN r.value IS NULL THEN p.value END"
        " FROM plan_row p LEFT JOIN result r ON r.row = p.row"
        " WHERE p.pos >= ? ORDER BY p.pos LIMIT ?",
        (pos, limit),
    ).fetchall()


def result_of_json(value: str) -> RowResult:
    """A result as ``Journal.record`` stored it."""
    return _result(value)


def _result(value: str) -> RowResult:
    d = json.loads(value)
    d["outcome"] = Outcome(d["outcome"])
    return RowResult(**d)


def _check(db: sqlite3.Connection) -> str | None:
    """SQLite's own check of the pages (quick: it skips the index contents); None when sound."""
    rows = [r[0] for r in db.execute("PRAGMA quick_check")]
    return None if rows == ["ok"] else f"SQLite's check says: {'; '.join(map(str, rows[:3]))}"


def _wal_damage(path: Path) -> str | None:
    """Why the write-ahead log left beside ``path`` is damaged; None when sound or absent.

    SQLite replays the log's frames up to the first one that does not check out and
    drops the rest without a word: commits made after garbage are lost, and the
    journal would say "not sent" of calls that were. A log is a 32-byte header and
    frames of 24 bytes plus one page; any other length means something was torn or
    appended."""
    wal = Path(f"{path}-wal")
    try:
        size = wal.stat().st_size
        if size == 0:
            return None
        with wal.open("rb") as f:
            header = f.read(32)
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"its write-ahead log cannot be read ({e.strerror or e})"
    if len(header) < 32 or struct.unpack(">I", header[:4])[0] not in (0x377F0682, 0x377F0683):
        return "its write-ahead log is not one"
    page = struct.unpack(">I", header[8:12])[0]
    if page < 512 or (size - 32) % (24 + page):
        return "its write-ahead log is torn or has trailing garbage"
    return None


def _no_space(e: BaseException) -> bool:
    """SQLite's "database or disk is full", or the OS's ENOSPC."""
    return (
        getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        or getattr(e, "errno", None) == errno.ENOSPC
    )


def _journal_error(path: Path, what: str, e: BaseException) -> JournalError:
    if _no_space(e):
        return JournalError(
            f"The journal {path} could not be {what}: the disk is full. Free some space (or give "
            "--state a file on another disk), then run the same command again: what was sent is "
            "looked up in Partner Center before anything is sent again."
        )
    reason = getattr(e, "strerror", None) or str(e)
    return JournalError(
        f"The journal {path} could not be {what} ({reason}): check that its folder is writable "
        "(or give another file with --state), then run the same command again."
    )
