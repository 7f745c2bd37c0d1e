"""Mappings kept by the columns they read: a mapping saved on the mapping page is
kept under ``<data dir>/web/mappings/``, keyed by the export's header row, and
offered again (used, and said so) when a sheet with the very same headers is
uploaded: next month's export of the same CRM report needs no mapping work.

The key is a hash of the headers in order, so a file name
from the browser never becomes a path, and a report with one column more or
less is another report.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from bulkref.web.store import now, read_json, write_json


@dataclass(frozen=True)
class KeptMapping:
    name: str  # as the user knows it (the upload it was saved for, .mapping.toml)
    text: str
    saved: str


class KeptMappings:
    def __init__(self, root: Path) -> None:
        self.root = root / "mappings"

    @staticmethod
    def key(headers: list[str]) -> str:
        return hashlib.sha256(json.dumps(headers, ensure_ascii=False).encode("utf-8")).hexdigest()[:32]

    def find(self, headers: list[str]) -> KeptMapping | None:
        folder = self.root / self.key(headers)
        meta = read_json(folder / "meta.json")
        try:
            text = (folder / "mapping.toml").read_text(encoding="utf-8")
        except OSError:
            return None
        if not isinstance(meta, dict) or meta.get("headers") != headers:
            return None  # a hash collision, or a folder not of ours: never a wrong mapping
        return KeptMapping(str(meta.get("name") or "mapping.toml"), text, str(meta.get("saved", "")))

    def keep(self, headers: list[str], name: str, text: str) -> None:
        folder = self.root / self.key(headers)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".mapping.toml.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(folder / "mapping.toml")
        write_json(folder / "meta.json", {"name": name, "headers": headers, "saved": now()})
