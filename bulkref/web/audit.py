"""An import's audit trail: every event, who did it, when, and the fingerprints of the
input and the plan it concerned, kept in ``audit.jsonl`` in the import's folder.

Append-only, one JSON object a line. Each entry carries the SHA-256 of the entry
before it (``prev``; the first one's is 64 zeros) and its own (``hash``, over the
entry's canonical JSON without ``hash``), so that editing, removing or
reordering an entry breaks the chain from there on and ``verify`` names the
first entry that does not hold. A chain alone cannot show entries cut off its
end: ``audit-head.json`` keeps the count and the last hash too, which
``verify`` compares. (Someone who can rewrite both files can rewrite history:
the chain shows what an edit of the trail did, not what a determined
administrator of the server can do.)

Events: ``upload``, ``input replaced``, ``mapping``, ``check``, ``plan``,
``approve``, ``approval refused``, ``withdraw``, ``apply start``, ``apply
stop``, ``apply resume``, ``apply finish``, ``download``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkref.web.people import Actor
from bulkref.web.store import now, read_json, write_json

GENESIS = "0" * 64
FILE = "audit.jsonl"
CSV_FIELDS = (
    "seq",
    "at",
    "event",
    "person",
    "personKey",
    "inputFingerprint",
    "planFingerprint",
    "details",
    "prev",
    "hash",
)
# Formula-looking text must reach a spreadsheet as text: a leading quote keeps it so.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_locks: dict[Path, threading.Lock] = {}
_locks_lock = threading.Lock()


def _lock(path: Path) -> threading.Lock:
    with _locks_lock:
        return _locks.setdefault(path, threading.Lock())


def entry_hash(entry: Mapping[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Check:
    """What ``verify`` found: intact, or the first entry that breaks the chain and why."""

    intact: bool
    entries: int
    broken_at: int | None = None
    reason: str | None = None

    def text(self) -> str:
        if self.intact:
            return f"Intact: {self.entries} entries, each chained to the one before."
        return f"Entry {self.broken_at} does not hold: {self.reason}"


class Trail:
    """One import's audit trail."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / FILE

    def append(
        self,
        event: str,
        actor: Actor,
        *,
        input_fingerprint: str | None = None,
        plan_fingerprint: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        with _lock(self.path):
            entries = self.entries()
            last = entries[-1] if entries else None
            entry: dict[str, Any] = {
                "seq": (int(last["seq"]) + 1) if last else 1,
                "at": now(),
                "event": event,
                "person": actor.as_json(),
                "inputFingerprint": input_fingerprint,
                "planFingerprint": plan_fingerprint,
                "details": dict(details or {}),
                "prev": str(last["hash"]) if last else GENESIS,
            }
            entry["hash"] = entry_hash(entry)
            line = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
            # Appended and flushed to disk before the answer: a trail that lost its last
            # entry in a crash would read as intact.
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            self._anchor(entry)
            return entry

    def _anchor(self, entry: Mapping[str, Any]) -> None:
        write_json(self.folder / "audit-head.json", {"entries": entry["seq"], "hash": entry["hash"]})

    def entries(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                doc = {"seq": None, "event": "(unreadable line)", "hash": "", "prev": ""}
            out.append(doc if isinstance(doc, dict) else {"seq": None, "hash": "", "prev": ""})
        return out

    def verify(self) -> Check:
        entries = self.entries()
        prev = GENESIS
        for number, entry in enumerate(entries, 1):
            if entry.get("seq") != number:
                return Check(
                    False, len(entries), number, "its number is out of order (one was removed or moved)."
                )
            if entry.get("prev") != prev:
                return Check(False, len(entries), number, "it does not follow the entry before it.")
            if entry.get("hash") != entry_hash(entry):
                return Check(False, len(entries), number, "it was changed after it was written.")
            prev = str(entry["hash"])
        head = _read_head(self.folder)
        if head is not None and entries and (head.get("entries"), head.get("hash")) != (len(entries), prev):
            return Check(False, len(entries), len(entries), "entries were removed from the end.")
        if head is not None and not entries and head.get("entries"):
            return Check(False, 0, 1, "the trail was emptied.")
        return Check(True, len(entries))

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_FIELDS)
        for e in self.entries():
            person = e.get("person") or {}
            row = [
                e.get("seq"),
                e.get("at"),
                e.get("event"),
                person.get("username") or person.get("name"),
                person.get("key"),
                e.get("inputFingerprint"),
                e.get("planFingerprint"),
                json.dumps(e.get("details") or {}, ensure_ascii=False, sort_keys=True),
                e.get("prev"),
                e.get("hash"),
            ]
            writer.writerow([_cell(v) for v in row])
        return out.getvalue()

    def as_json(self) -> dict[str, Any]:
        check = self.verify()
        return {
            "entries": self.entries(),
            "check": {
                "intact": check.intact,
                "entries": check.entries,
                "brokenAt": check.broken_at,
                "reason": check.reason,
            },
        }


def _read_head(folder: Path) -> dict[str, Any] | None:
    doc = read_json(folder / "audit-head.json")
    return doc if isinstance(doc, dict) else None


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
