"""Imports on disk: one folder each under ``<data dir>/web/imports/``, so that a
browser refresh or a server restart loses nothing.

A folder holds the uploaded input and mapping (under generated names: a file
name from the browser never becomes a path), ``plan.json``, ``approval.json``,
the apply journal, ``run.json`` (the last run's state) and the results, the
audit trail (``audit.jsonl``, see ``audit``), and ``runs/<n>/``: every earlier
run, kept whole (its state, results, journal, and the plan and approval it ran)
when a new plan or input starts a new round. Results are never deleted. Every
JSON file is written as bulkref writes every file that must never be half
written (``bulkref.files.atomic_write``: flushed to disk, then renamed), so a
crash mid-write leaves the previous version, not half a file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import bulkref

INPUT_SUFFIXES = (".xlsx", ".xlsm", ".csv")
MAPPING_SUFFIXES = (".toml",)
_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{8}$")
# What a browser-given file name may keep for display: no paths, no controls.
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def display_name(name: str | None, fallback: str) -> str:
    """The browser's file name, for showing only: its last part, without controls, at most 120 characters."""
    if not name:
        return fallback
    last = re.split(r"[/\\]", name)[-1]
    return _UNSAFE_NAME.sub("", last)[:120] or fallback


def download_stem(name: str) -> str:
    """The uploaded file's stem for a download's name: letters, digits, spaces, dots,
    dashes and underscores only, so that it cannot bend the Content-Disposition header."""
    stem = re.sub(r"[^\w .-]+", "_", Path(name).stem).strip(" ._")
    return stem[:80] or "referrals"


def private_names(home: Path, imp: Import | None = None) -> list[tuple[str, str]]:
    """What a page says instead of the server's own paths, longest first: an
    import's input and mapping by the names they were uploaded under (their
    generated names too, which a CSV's sheet name and a mapping's messages
    carry), its other files by their own names, the rest of the data directory
    relative to it. A page shows what the user gave, never where the server keeps it."""
    pairs: list[tuple[str, str]] = []

    def add(path: Path, shown: str, suffix: str = "") -> None:
        for form in {str(path), str(path.resolve())}:  # a message may name either
            pairs.append((form + suffix, shown))

    if imp is not None:
        add(imp.input, imp.name)
        pairs.append((imp.input.name, imp.name))
        if imp.mapping is not None:
            shown = imp.mapping_name or "the mapping file"
            add(imp.mapping, shown)
            pairs.append((imp.mapping.name, shown))
        add(imp.folder, "", os.sep)
    add(home, "", os.sep)
    add(home, "the bulkref data directory")
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


def hide_paths(text: str, pairs: list[tuple[str, str]]) -> str:
    for path, shown in pairs:
        if path:
            text = text.replace(path, shown)
    return text


def write_json(path: Path, doc: Any) -> None:
    data = json.dumps(doc, ensure_ascii=False, indent=2, default=str).encode("utf-8")

    def write(f: IO[Any]) -> None:
        f.write(data)

    bulkref.atomic_write(path, "wb", write, what=path.name)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Import:
    """One import's folder and what its meta.json says."""

    id: str
    folder: Path
    meta: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.id)

    @property
    def created(self) -> str:
        return str(self.meta.get("created", ""))

    @property
    def input(self) -> Path:
        return self.folder / str(self.meta["input"])

    @property
    def mapping(self) -> Path | None:
        m = self.meta.get("mapping")
        return self.folder / str(m) if m else None

    @property
    def mapping_name(self) -> str | None:
        return self.meta.get("mapping_name")

    # the files of the later steps
    @property
    def plan_path(self) -> Path:
        return self.folder / "plan.json"

    @property
    def review_path(self) -> Path:
        return self.folder / "review.sqlite"  # the plan a page at a time (web.reviewing)

    @property
    def approval_path(self) -> Path:
        return self.folder / "approval.json"

    @property
    def journal_path(self) -> Path:
        return self.folder / "journal.sqlite"

    @property
    def run_path(self) -> Path:
        return self.folder / "run.json"

    @property
    def results_path(self) -> Path:
        return self.folder / "results.xlsx"

    @property
    def results_json(self) -> Path:
        return self.folder / "results.json"

    @property
    def annotated_path(self) -> Path:
        return self.folder / "annotated.xlsx"

    @property
    def runs_folder(self) -> Path:
        return self.folder / "runs"

    def approval(self) -> dict[str, Any] | None:
        doc = read_json(self.approval_path)
        return doc if isinstance(doc, dict) else None

    def run(self) -> dict[str, Any] | None:
        doc = read_json(self.run_path)
        return doc if isinstance(doc, dict) else None

    def results(self) -> list[dict[str, Any]]:
        doc = read_json(self.results_json)
        return doc if isinstance(doc, list) else []


def _run_of(folder: Path, number: int, *, current: bool) -> dict[str, Any]:
    run = read_json(folder / "run.json")
    approval = read_json(folder / "approval.json")
    return {
        "number": number,
        "current": current,
        "run": run if isinstance(run, dict) else {},
        "approvedBy": approval.get("name") if isinstance(approval, dict) else None,
        "results": (folder / "results.xlsx").is_file(),
    }


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root / "imports"
        self.exports = root / "exports"

    def _new_id(self) -> str:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        return f"{stamp}-{secrets.token_hex(4)}"

    def create(
        self, name: str, data: bytes, suffix: str, prepared_by: dict[str, Any] | None = None
    ) -> Import:
        imp_id = self._new_id()
        folder = self.root / imp_id
        folder.mkdir(parents=True)
        meta: dict[str, Any] = {"id": imp_id, "name": name, "created": now(), "input": None, "history": []}
        imp = Import(imp_id, folder, meta)
        return self.replace_input(imp, name, data, suffix, prepared_by)

    def replace_input(
        self, imp: Import, name: str, data: bytes, suffix: str, prepared_by: dict[str, Any] | None = None
    ) -> Import:
        """A new input for the import (a corrected sheet): the plan and its
        approval are of the old one, so both go (the last run is kept, see
        ``forget_run``). Whoever uploads it is the import's preparer from now on."""
        filename = f"input-{secrets.token_hex(6)}{suffix}"
        (imp.folder / filename).write_bytes(data)
        meta = dict(imp.meta)
        if meta.get("input"):
            meta["history"] = [*meta.get("history", []), {"name": meta.get("name"), "replaced": now()}]
            (imp.folder / str(meta["input"])).unlink(missing_ok=True)
        meta.update(input=filename, name=name, updated=now(), preparedBy=prepared_by)
        for stale in (imp.plan_path, imp.review_path, imp.approval_path, imp.annotated_path):
            stale.unlink(missing_ok=True)
        self.forget_run(imp)
        write_json(imp.folder / "meta.json", meta)
        return Import(imp.id, imp.folder, meta)

    def forget_run(self, imp: Import) -> None:
        """A new plan starts a new round: the last run (its state, results and journal,
        and the plan and approval it ran) moves to ``runs/<n>/``, whole, so that the
        record of which referrals it created is never lost. Nothing happens when no
        run was made."""
        if not imp.run_path.is_file():
            for stale in (imp.results_json, imp.results_path):  # a run.json lost, its files kept
                if stale.is_file():
                    break
            else:
                return
        imp.runs_folder.mkdir(exist_ok=True)
        number = len([p for p in imp.runs_folder.iterdir() if p.name.isdigit()]) + 1
        kept = imp.runs_folder / str(number)
        kept.mkdir()
        for path in (imp.run_path, imp.results_json, imp.results_path):
            if path.is_file():
                os.replace(path, kept / path.name)
        for path in list(imp.folder.glob(imp.journal_path.name + "*")):
            os.replace(path, kept / path.name)
        for path in (imp.plan_path, imp.approval_path):  # what the run executed, and who approved it
            if path.is_file():
                shutil.copy2(path, kept / path.name)

    def runs(self, imp: Import) -> list[dict[str, Any]]:
        """Every run of ``imp`` in order, the current one last: number, state, summary and
        who approved what it ran."""
        found = []
        if imp.runs_folder.is_dir():
            for folder in sorted(
                (p for p in imp.runs_folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
            ):
                found.append(_run_of(folder, int(folder.name), current=False))
        if imp.run_path.is_file():
            found.append(_run_of(imp.folder, len(found) + 1, current=True))
        return found

    def run_results(self, imp: Import, number: int) -> Path | None:
        """The results workbook of run ``number`` (the current run's too)."""
        runs = self.runs(imp)
        if not 1 <= number <= len(runs):
            return None
        folder = imp.folder if runs[number - 1]["current"] else imp.runs_folder / str(number)
        path = folder / "results.xlsx"
        return path if path.is_file() else None

    def update_meta(self, imp: Import, **changes: Any) -> Import:
        meta = {**imp.meta, **changes}
        write_json(imp.folder / "meta.json", meta)
        return Import(imp.id, imp.folder, meta)

    def set_mapping(self, imp: Import, name: str, data: bytes) -> Import:
        filename = f"mapping-{secrets.token_hex(6)}.toml"
        (imp.folder / filename).write_bytes(data)
        meta = dict(imp.meta)
        if meta.get("mapping"):
            (imp.folder / str(meta["mapping"])).unlink(missing_ok=True)
        meta.update(mapping=filename, mapping_name=name)
        for stale in (imp.plan_path, imp.review_path, imp.approval_path, imp.annotated_path):
            stale.unlink(missing_ok=True)
        write_json(imp.folder / "meta.json", meta)
        return Import(imp.id, imp.folder, meta)

    def get(self, imp_id: str) -> Import | None:
        if not _ID.match(imp_id):
            return None
        folder = self.root / imp_id
        meta = read_json(folder / "meta.json")
        if not isinstance(meta, dict) or not meta.get("input"):
            return None
        return Import(imp_id, folder, meta)

    def recent(self, limit: int = 20) -> list[Import]:
        if not self.root.is_dir():
            return []
        found = [self.get(p.name) for p in sorted(self.root.iterdir(), reverse=True)[: limit * 2]]
        return [i for i in found if i is not None][:limit]

    def export_path(self, export_id: str, suffix: str) -> Path:
        self.exports.mkdir(parents=True, exist_ok=True)
        return self.exports / f"{export_id}{suffix}"

    def new_export_id(self) -> str:
        return self._new_id()

    def export_file(self, export_id: str) -> Path | None:
        if not _ID.match(export_id) or not self.exports.is_dir():
            return None
        return next((p for p in self.exports.glob(f"{export_id}.*") if p.suffix in (".xlsx", ".csv")), None)

    @staticmethod
    def valid_id(text: str) -> bool:
        return bool(_ID.match(text))
