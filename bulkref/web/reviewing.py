"""A saved plan as the review page reads it: a page of rows at a time, filtered as the
plan's own HTML page filters (by action, by text, unchanged rows folded away).

``plan.json`` is the artifact apply runs and a reviewer downloads; at 20,000 rows it is
tens of megabytes, seconds to parse. Beside it, ``review.sqlite`` holds the same plan
(its header once, each row as its JSON, with the action and the text a filter matches),
so that a page of it is one indexed query, whatever the plan's size. It names the
``plan.json`` it was made from by fingerprint: a plan it does not match is read again,
once. Nothing here decides anything: the rows are the library's, shown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import bulkref

PAGE_ROWS = 100
ACTIONS = ("all", "create", "update", "unchanged", "blocked", "invalid")
FORMAT = 1  # of the index: another is read again from plan.json

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE rows (n INTEGER PRIMARY KEY, action TEXT NOT NULL, search TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX rows_action ON rows (action, n);
"""


def build(plan: bulkref.Plan, out: Path, plan_print: str) -> None:
    """Write ``out`` for ``plan`` (whose plan.json has the fingerprint ``plan_print``),
    replacing any earlier one only once it is whole."""
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        with contextlib.closing(sqlite3.connect(tmp)) as db:
            db.executescript(_SCHEMA)
            header = {**_header(plan), "summary": plan.summary}
            meta = {
                "format": str(FORMAT),
                "plan": plan_print,
                "header": _json(header),
                "sheets": str(len({r.sheet for r in plan.rows})),
            }
            db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            db.executemany(
                "INSERT INTO rows VALUES (?, ?, ?, ?)",
                (
                    (
                        n,
                        str(r.action),
                        bulkref.row_search_text(r),
                        json.dumps(r.as_json(), ensure_ascii=False, default=str),
                    )
                    for n, r in enumerate(plan.rows)
                ),
            )
            db.commit()
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _header(plan: bulkref.Plan) -> dict[str, Any]:
    """The plan's JSON without its rows (built without serialising 20,000 of them)."""
    return dataclasses.replace(plan, rows=()).as_json()


def _json(doc: Any) -> str:
    return json.dumps(doc, ensure_ascii=False, default=str)


class IndexedRows(Sequence[Any]):
    """A plan's rows read from the index as they are used; they count themselves
    (``Plan.summary`` asks ``counts()``), so a header costs no row."""

    def __init__(self, path: Path, total: int, summary: dict[str, int]) -> None:
        self.path, self.total, self.summary = path, total, summary

    def counts(self) -> dict[str, int]:
        return dict(self.summary)

    def __len__(self) -> int:
        return self.total

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.total))]
        if i < 0:
            i += self.total
        with _reading(self.path) as db:
            found = db.execute("SELECT doc FROM rows WHERE n = ?", (i,)).fetchone()
        if found is None:
            raise IndexError(i)
        return bulkref.RowPlan.from_json(json.loads(found[0]))

    def __iter__(self) -> Iterator[Any]:
        with _reading(self.path) as db:
            for (doc,) in db.execute("SELECT doc FROM rows ORDER BY n"):
                yield bulkref.RowPlan.from_json(json.loads(doc))


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield db
    finally:
        db.close()


def load(path: Path, plan_print: str) -> tuple[bulkref.Plan, int] | None:
    """(the plan, its rows read as used; how many sheets they come from) when ``path``
    indexes the plan.json with fingerprint ``plan_print``; else None."""
    if not path.is_file():
        return None
    try:
        with _reading(path) as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            total = db.execute("SELECT count(*) FROM rows").fetchone()[0]
    except sqlite3.Error:
        return None
    if meta.get("format") != str(FORMAT) or meta.get("plan") != plan_print:
        return None
    header = json.loads(meta["header"])
    summary = header.get("summary") or {}
    plan = bulkref.Plan.from_json({**header, "rows": []})
    plan = dataclasses.replace(plan, rows=IndexedRows(path, total, summary))
    return plan, int(meta.get("sheets") or 1)


@dataclass
class Filter:
    """What a reviewer asked to see, from the address: ``?action=&q=&unchanged=&page=``,
    the words of the plan page's own filter (``#filter=blocked&q=text``)."""

    action: str = "all"
    text: str = ""
    unchanged: str = "hidden"  # folded out of "all" (when the plan has some), or shown
    page: int = 1

    @classmethod
    def of(cls, query: Any, default_unchanged: str) -> Filter:
        action = query.get("action") or query.get("filter") or "all"
        unchanged = query.get("unchanged")
        try:
            page = int(query.get("page") or 1)
        except ValueError:
            page = 1
        return cls(
            action=action if action in ACTIONS else "all",
            text=" ".join(str(query.get("q") or "").split())[:200],
            unchanged=unchanged if unchanged in ("hidden", "shown") else default_unchanged,
            page=max(1, page),
        )

    def query(self, **changes: Any) -> str:
        """The address of this view with ``changes`` (page 1 unless a page is given)."""
        from urllib.parse import urlencode

        values = {"action": self.action, "q": self.text, "unchanged": self.unchanged, "page": 1}
        values.update(changes)
        kept = {k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)}
        if kept.get("action") == "all":
            kept.pop("action")
        return "?" + urlencode(kept) if kept else "?"


@dataclass
class Page:
    rows: list[dict[str, Any]]  # bulkref.plan.review.review_row of each
    matched: int  # rows the filter matches
    folded: int  # unchanged rows folded out of "all"
    page: int
    pages: int
    first: int  # the number of the page's first row among those matched (1-based)


def page(path: Path, chosen: Filter, sheets: int) -> Page:
    where, args = [], []
    if chosen.action != "all":
        where.append("action = ?")
        args.append(chosen.action)
    if chosen.text:
        where.append("instr(search, ?) > 0")
        args.append(chosen.text.casefold())
    fold = chosen.action == "all" and chosen.unchanged == "hidden"
    with _reading(path) as db:
        folded = 0
        if fold:
            folded = db.execute(
                "SELECT count(*) FROM rows WHERE " + " AND ".join([*where, "action = 'unchanged'"]),
                args,
            ).fetchone()[0]
            where.append("action != 'unchanged'")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        matched = db.execute("SELECT count(*) FROM rows" + clause, args).fetchone()[0]
        pages = max(1, math.ceil(matched / PAGE_ROWS))
        number = min(chosen.page, pages)
        docs = db.execute(
            "SELECT doc FROM rows" + clause + " ORDER BY n LIMIT ? OFFSET ?",
            [*args, PAGE_ROWS, (number - 1) * PAGE_ROWS],
        ).fetchall()
    rows = [bulkref.RowPlan.from_json(json.loads(d)) for (d,) in docs]
    return Page(
        rows=[bulkref.review_row(r, with_sheet=sheets > 1) for r in rows],
        matched=matched,
        folded=folded,
        page=number,
        pages=pages,
        first=(number - 1) * PAGE_ROWS + 1,
    )
