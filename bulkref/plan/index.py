"""A local index of the partner's referrals, filled by one paged scan.

Where Partner Center does not filter by External Reference ID or id (its
documentation shows neither), bulkref reads every referral once and answers
its questions from here. The referrals are kept marshalled (several times
faster to write and read than JSON text; the file never leaves this process)
in a temporary SQLite file, indexed by id, External Reference ID and
engagement, so that memory stays flat at 100,000 referrals: a document is
parsed only when the planner asks for it (``Groups.get`` / ``ById.get``).
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

Referral = dict[str, Any]

# Rows written per transaction while a scan fills the index.
_BATCH = 2000
# Look-ups whose answers are kept (see ``ReferralIndex.by``).
_RECENT = 32


class ReferralIndex:
    """Referrals by id, External Reference ID and engagement, on disk."""

    def __init__(self) -> None:
        handle, name = tempfile.mkstemp(prefix="bulkref-index-", suffix=".sqlite")
        os.close(handle)
        self.path = name
        self.db = sqlite3.connect(name, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        # NOCASE: nothing says Partner Center keeps the case of an id (a GUID) or of an
        # External Reference ID; a look-up that missed a referral over case would create it again.
        self.db.execute(
            "CREATE TABLE referral (id TEXT PRIMARY KEY COLLATE NOCASE, ext TEXT COLLATE NOCASE,"
            " engagement TEXT COLLATE NOCASE, doc BLOB)"
        )
        self.count = 0
        self._pending: list[tuple[str, str | None, str | None, bytes]] = []
        self._recent: dict[tuple[str, str], list[Referral]] = {}
        self._docs: dict[str, Referral] = {}
        self._ahead: dict[str, bytes] = {}  # read_ahead's referrals, not parsed yet
        # Engagements of more than one referral, once finished (None: not known).
        self._shared: set[str] | None = None

    def add(self, referral: Referral) -> None:
        rid = referral.get("id")
        if not isinstance(rid, str) or not rid:
            return
        ext, engagement = referral.get("externalReferenceId"), referral.get("engagementId")
        self._pending.append(
            (
                rid,
                ext if isinstance(ext, str) and ext else None,
                engagement if isinstance(engagement, str) and engagement else None,
                marshal.dumps(referral),
            )
        )
        if len(self._pending) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        with self.db:
            # A referral read twice (a page boundary moved during the scan) is kept once.
            self.db.executemany("INSERT OR REPLACE INTO referral VALUES (?, ?, ?, ?)", self._pending)
        self.count += len(self._pending)
        self._pending.clear()
        self._recent.clear()  # an answer kept may have changed
        self._docs.clear()
        self._ahead.clear()
        self._shared = None

    def finish(self) -> ReferralIndex:
        """Flushed and indexed: ready for look-ups."""
        self.flush()
        with self.db:
            self.db.execute("CREATE INDEX IF NOT EXISTS by_ext ON referral (ext)")
            self.db.execute("CREATE INDEX IF NOT EXISTS by_engagement ON referral (engagement)")
        sql = (
            "SELECT engagement FROM referral WHERE engagement IS NOT NULL "
            "GROUP BY engagement HAVING COUNT(*) > 1"
        )
        self._shared = {e.lower() for (e,) in self.db.execute(sql)}
        return self

    def by_id(self, rid: str) -> Referral | None:
        found = self.by("id", rid)
        return found[0] if found else None

    def by(self, column: str, key: str) -> list[Referral]:
        # The planner asks about one row's referral several times in a row (by id, by
        # engagement, for the linked id): the last few answers are kept, not parsed again.
        assert column in ("id", "ext", "engagement")
        cached = self._recent.get((column, key))
        if cached is not None:
            return [dict(d) for d in cached]
        if column == "id" and key in self._ahead:
            found = [self._parsed(key, self._ahead.pop(key))]
            self._remember(column, key, found)
            return [dict(d) for d in found]
        if column == "engagement" and self._shared is not None and key.lower() not in self._shared:
            # An engagement of one referral (every deal but co-sell and shared ones) is the
            # referral just read by id, most likely: no query for it.
            for doc in reversed(self._docs.values()):
                if str(doc.get("engagementId") or "").lower() == key.lower():
                    return [dict(doc)]
        rows = self.db.execute(f"SELECT id, doc FROM referral WHERE {column} = ? ORDER BY id", (key,))
        found = [self._parsed(rid, doc) for rid, doc in rows]
        self._remember(column, key, found)
        return [dict(d) for d in found]

    def _remember(self, column: str, key: str, found: list[Referral]) -> None:
        if len(self._recent) >= _RECENT:
            self._recent.pop(next(iter(self._recent)))
        self._recent[(column, key)] = found

    def read_ahead(self, ids: Iterable[str]) -> None:
        """Fetch the referrals of ``ids`` in one query, to be parsed when ``by_id`` asks for
        them: the planner says which ids its next rows will ask for (a query per row costs
        as much as parsing the referral)."""
        self._ahead.clear()
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT id, doc FROM referral WHERE id IN ({marks})", chunk)
            self._ahead.update(rows)

    def _parsed(self, rid: str, doc: bytes) -> Referral:
        # A referral read by id is read again with its engagement, at once: parsed once.
        found = self._docs.get(rid)
        if found is None:
            found = marshal.loads(doc)
            if len(self._docs) >= _RECENT:
                self._docs.pop(next(iter(self._docs)))
            self._docs[rid] = found
        return found

    def has(self, column: str, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` some referral has in ``column`` (``id``, ``ext`` or ``engagement``)."""
        assert column in ("id", "ext", "engagement")
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT DISTINCT {column} FROM referral WHERE {column} IN ({marks})"
            held = {k.lower() for (k,) in self.db.execute(sql, chunk)}
            found.update(k for k in chunk if k.lower() in held)  # as asked, whatever the case held
        return found

    def reopen(self) -> None:
        """In a forked child: a connection of its own to the finished index (a SQLite
        connection must not be used across a fork), and none of the parent's caches."""
        from pathlib import Path

        self.db = sqlite3.connect(f"{Path(self.path).as_uri()}?mode=ro", uri=True, check_same_thread=False)
        self._recent.clear()
        self._docs.clear()
        self._ahead.clear()

    def close(self) -> None:
        self.db.close()
        with contextlib.suppress(OSError):  # Windows may hold the file a moment longer
            os.unlink(self.path)


class Groups(Mapping[str, list[Referral]]):
    """``key -> referrals`` read from the index on demand, plus referrals found elsewhere
    (``extra``: read by id because the scan did not show them yet)."""

    def __init__(
        self,
        index: ReferralIndex,
        column: str,
        keys: Iterable[str] | None,
        extra: Mapping[str, list[Referral]],
    ) -> None:
        # keys None: every key the index holds (an engagement never asked about by name).
        self._index, self._column = index, column
        self._keys = None if keys is None else set(keys) | set(extra)
        self._extra = extra

    def __getitem__(self, key: str) -> list[Referral]:
        if self._keys is not None and key not in self._keys:
            raise KeyError(key)
        found = self._index.by(self._column, key)
        ids = {d.get("id") for d in found}
        return found + [d for d in self._extra.get(key, []) if d.get("id") not in ids]

    def get(self, key: str, default: Any = None) -> Any:
        # One query, not a membership test and then a read.
        return self[key] if self._keys is None or key in self._keys else default

    def _all(self) -> set[str]:
        if self._keys is not None:
            return self._keys
        column = self._column
        rows = self._index.db.execute(f"SELECT DISTINCT {column} FROM referral WHERE {column} IS NOT NULL")
        return {k for (k,) in rows} | set(self._extra)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._all()))

    def __len__(self) -> int:
        return len(self._all())


class ById(Mapping[str, Referral]):
    """``id -> referral`` for the ids that were found (in the index, or read by id)."""

    def __init__(self, index: ReferralIndex, present: Iterable[str], extra: Mapping[str, Referral]):
        self._index = index
        self._present = set(present)
        self._extra = extra

    def __getitem__(self, key: str) -> Referral:
        if key in self._extra:
            return self._extra[key]
        if key not in self._present:
            raise KeyError(key)
        doc = self._index.by_id(key)
        if doc is None:
            raise KeyError(key)
        return doc

    def read_ahead(self, ids: Iterable[str]) -> None:
        """See ``ReferralIndex.read_ahead``: the ids the next look-ups will ask for."""
        self._index.read_ahead(i for i in ids if i in self._present and i not in self._extra)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._present | set(self._extra)))

    def __len__(self) -> int:
        return len(self._present | set(self._extra))
