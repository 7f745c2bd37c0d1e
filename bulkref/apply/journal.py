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
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import fields
from pathlib import Path
from typing import Any

from bulkref.apply.outcome import Outcome, RowResult
from bulkref.errors import BulkrefError
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
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0.5)
        try:
            # Exclusive: one run at a time may use a journal (two runs of one
            # input would race to create the same referrals), and a commit
            # skips the lock dance, a third cheaper per step.
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.OperationalError as e:
            self._db.close()
            if "locked" in str(e):
                raise BulkrefError(
                    f"Another bulkref apply is using the journal {path}: wait for it to "
                    "finish (or stop it) before running this one."
                ) from None
            raise BulkrefError(
                f"The journal {path} cannot be used ({e}): remove it, or give another with --state."
            ) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the run -----------------------------------------------------------------------------
    def plan(self) -> Plan | None:
        row = self._db.execute("SELECT value FROM run WHERE key = 'plan'").fetchone()
        return Plan.from_json(json.loads(row[0])) if row else None

    def start(self, plan: Plan) -> None:
        """A new run of ``plan``: what an earlier run journaled is forgotten
        (it is in Partner Center now, and the new plan was made from there)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM step")
            self._db.execute("DELETE FROM result")
            self._db.execute("INSERT OR REPLACE INTO run VALUES ('plan', ?)", (json.dumps(plan.as_json()),))

    # -- steps -------------------------------------------------------------------------------
    def steps(self) -> dict[tuple[int, str], tuple[str, dict[str, Any] | None]]:
        return {
            (r, k): (state, json.loads(a) if a else None)
            for r, k, state, a in self._db.execute("SELECT row, key, state, answer FROM step")
        }

    def sent(self, row: int, key: str) -> None:
        self._set(row, key, "sent", None)

    def done(self, row: int, key: str, answer: dict[str, Any] | None) -> None:
        kept = {f: answer[f] for f in ANSWER_FIELDS if answer and answer.get(f) is not None}
        self._set(row, key, "done", kept)

    def failed(self, row: int, key: str) -> None:
        self._set(row, key, "failed", None)

    def _set(self, row: int, key: str, state: str, answer: dict[str, Any] | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO step VALUES (?, ?, ?, ?)",
            (row, key, state, json.dumps(answer) if answer is not None else None),
        )

    # -- results -----------------------------------------------------------------------------
    def record(self, result: RowResult) -> None:
        # Field by field, not dataclasses.asdict: that deep-copies every value,
        # and this runs once per row of a 100,000-row run.
        values = {f.name: getattr(result, f.name) for f in fields(result)}
        self._db.execute("INSERT OR REPLACE INTO result VALUES (?, ?)", (result.row, json.dumps(values)))

    def results(self) -> dict[int, RowResult]:
        out = {}
        for row, value in self._db.execute("SELECT row, value FROM result"):
            d = json.loads(value)
            d["outcome"] = Outcome(d["outcome"])
            out[row] = RowResult(**d)
        return out
