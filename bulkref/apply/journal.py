"""The apply journal: every step's state as it happens, in SQLite, so a run
stopped by Ctrl-C, a crash or ``kill -9`` continues where it stopped.

A step is written ``sent`` before its call goes out and ``done`` (with the
ids of what it created) when the answer is in. A step found ``sent`` on the
next run was cut off mid-call: its outcome is unknown, and the executor looks
Partner Center up before sending it again. WAL mode with ``synchronous=NORMAL``:
a commit survives the process being killed (not a power cut), at the cost of
microseconds instead of an fsync per step.

Only ids, states, HTTP statuses and error codes/messages are kept: no
payloads, no tokens.

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
import datetime as dt
import json
import os
import sqlite3
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from bulkref.apply.outcome import Outcome, RowResult
from bulkref.errors import BulkrefError, JournalError
from bulkref.plan.model import Plan

SCHEMA = """
CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS step (
    row INTEGER NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,          -- sent | done | failed
    answer TEXT,                  -- JSON: id, engagementId, organizationId, organizationName, eTag
    PRIMARY KEY (row, key)
);
CREATE TABLE IF NOT EXISTS result (row INTEGER PRIMARY KEY, value TEXT NOT NULL);
"""

# What a step's answer keeps: enough to fill step 2 and the results sheet.
ANSWER_FIELDS = ("id", "engagementId", "organizationId", "organizationName", "eTag")


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.in_doubt: str | None = None  # why this run must not trust what the journal said
        with self._writing("created"):
            path.parent.mkdir(parents=True, exist_ok=True)
        damage = _wal_damage(path)
        try:
            self._db = self._open()
            if damage is None:
                damage = _check(self._db)
        except sqlite3.OperationalError as e:
            if "locked" in str(e):
                raise BulkrefError(
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
            db.executescript(SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

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

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the run -----------------------------------------------------------------------------
    def plan(self) -> Plan | None:
        with self._writing("read"):
            row = self._db.execute("SELECT value FROM run WHERE key = 'plan'").fetchone()
        return Plan.from_json(json.loads(row[0])) if row else None

    def start(self, plan: Plan) -> None:
        """A new run of ``plan``: what an earlier run journaled is forgotten
        (it is in Partner Center now, and the new plan was made from there)."""
        with self._writing(), self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM step")
            self._db.execute("DELETE FROM result")
            self._db.execute("INSERT OR REPLACE INTO run VALUES ('plan', ?)", (json.dumps(plan.as_json()),))

    # -- steps -------------------------------------------------------------------------------
    def steps(self) -> dict[tuple[int, str], tuple[str, dict[str, Any] | None]]:
        with self._writing("read"):
            return {
                (r, k): (state, json.loads(a) if a else None)
                for r, k, state, a in self._db.execute("SELECT row, key, state, answer FROM step")
            }

    def sent(self, row: int, key: str) -> None:
        # When: a later run looks a cut-off call up for only what is left of the consistency window.
        self._set(row, key, "sent", {"sentAt": round(time.time(), 3)})

    def done(self, row: int, key: str, answer: dict[str, Any] | None) -> None:
        kept = {f: answer[f] for f in ANSWER_FIELDS if answer and answer.get(f) is not None}
        self._set(row, key, "done", kept)

    def failed(self, row: int, key: str) -> None:
        self._set(row, key, "failed", None)

    def _set(self, row: int, key: str, state: str, answer: dict[str, Any] | None) -> None:
        with self._writing():
            self._db.execute(
                "INSERT OR REPLACE INTO step VALUES (?, ?, ?, ?)",
                (row, key, state, json.dumps(answer) if answer is not None else None),
            )

    # -- results -----------------------------------------------------------------------------
    def record(self, result: RowResult) -> None:
        # Field by field, not dataclasses.asdict: that deep-copies every value,
        # and this runs once per row of a 100,000-row run.
        values = {f.name: getattr(result, f.name) for f in fields(result)}
        with self._writing():
            self._db.execute("INSERT OR REPLACE INTO result VALUES (?, ?)", (result.row, json.dumps(values)))

    def results(self) -> dict[int, RowResult]:
        out = {}
        with self._writing("read"):
            stored = self._db.execute("SELECT row, value FROM result").fetchall()
        for row, value in stored:
            d = json.loads(value)
            d["outcome"] = Outcome(d["outcome"])
            out[row] = RowResult(**d)
        return out


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
    return "full" in str(e).lower() or getattr(e, "errno", None) == 28  # ENOSPC


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
