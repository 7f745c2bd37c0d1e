"""Where referrals live: in memory, or in SQLite (``--db``) so that state survives a restart.

Both stores keep every referral in memory, in insertion order, because a
listing evaluates its filter over the documents; the SQLite store writes
through to a WAL-mode database and reads it back on start. Both index the
referrals by ``id``, ``engagementId`` and ``externalReferenceId`` in memory
(rebuilt when the SQLite store reloads), so that an equality filter on one of
them costs what its matches cost, not a scan of every referral. These ids are
looked up without regard to case (``key``): the service's ids are GUIDs, which
it answers in lower case but which are the same GUID in upper case, and a
look-up that misses on case would read as "absent" to a client.

With a list lag (``--list-lag``) a write is at once what a read by id sees,
but listings see it only after the lag: each record keeps the versions
written within the lag, and ``listed`` hands out, per referral, the newest
version older than the lag (nothing for a referral created within it). One lock serialises
all access, so requests served concurrently (or from several threads) see each
write whole. Each referral has an insertion sequence number, never reused,
that gives listings a stable order and paging tokens a stable anchor.

Several processes may share one database file (``bulkref --sandbox`` commands
run one after another, or side by side): before each operation the store asks
SQLite whether another connection committed (``PRAGMA data_version``) and
reloads if so, and a write takes SQLite's write lock (``BEGIN IMMEDIATE``)
before it reads what it changes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bulkref.sandbox.document import Doc, dumps, to_ticks

Change = Callable[[Doc], Doc]

#: The properties indexed besides ``id``: what look-ups by equality filter on.
INDEXED = ("engagementId", "externalReferenceId")


@dataclass(slots=True)
class Record:
    """A stored referral. ``doc`` is never changed in place (a write stores a new
    Record), so ``text``, its JSON, stays true."""

    seq: int
    doc: Doc
    created: int  # createdDateTime in 100 ns ticks, for ordering
    updated: int
    text: str
    #: time.monotonic() of the write, and the version before it while the list lag
    #: may still show it (None otherwise): what listings see under --list-lag.
    written: float = 0.0
    previous: Record | None = None

    @classmethod
    def of(cls, seq: int, doc: Doc, text: str | None = None) -> Record:
        return cls(
            seq,
            doc,
            to_ticks(doc.get("createdDateTime")),
            to_ticks(doc.get("updatedDateTime")),
            text if text is not None else dumps(doc),
        )


class DuplicateId(Exception):
    pass


def key(value: object) -> str:
    """How ids are compared: without regard to case."""
    return str(value).casefold()


class MemoryStore:
    """Referrals for the life of the process."""

    description = "memory"

    def __init__(self, lag: float = 0.0) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, Record] = {}  # by key(id), in insertion order
        # property -> key(value) -> key(id)s (an ordered set) of the referrals that had that
        # value. Entries are never removed on update (a value changed by a PUT
        # stays listed under the old one): look-ups check each candidate's
        # document, so a stale entry costs one check and keeps lagged versions findable.
        self._index: dict[str, dict[str, dict[str, None]]] = {name: {} for name in INDEXED}
        self._seq = 0
        self.lag = lag

    # -- reads ------------------------------------------------------------------------
    def get(self, referral_id: str) -> Record | None:
        with self._reading():
            return self._records.get(key(referral_id))

    def rows(self) -> list[Record]:
        """All referrals in insertion order (a snapshot: later writes do not change it)."""
        with self._reading():
            return list(self._records.values())

    def lookup(self, pairs: Iterable[tuple[str, str]]) -> list[Record]:
        """The referrals whose ``property`` had ``value`` for any of ``pairs``
        (``id`` or an ``INDEXED`` property), once each, in insertion order: a
        superset of the matches, which the caller checks against the filter."""
        with self._reading():
            found: dict[str, Record] = {}
            for name, value in pairs:
                ids = (key(value),) if name == "id" else self._index[name].get(key(value), {})
                for referral_id in ids:
                    record = self._records.get(referral_id)
                    if record is not None:
                        found[referral_id] = record
            return sorted(found.values(), key=lambda r: r.seq)

    def listed(self, records: Sequence[Record]) -> Sequence[Record]:
        """What a listing sees of ``records``: the versions older than the lag."""
        if not self.lag:
            return records
        cutoff = time.monotonic() - self.lag
        out: list[Record] = []
        for record in records:
            version: Record | None = record
            while version is not None and version.written > cutoff:
                version = version.previous
            if version is not None:
                out.append(version)
        return out

    def engagement(self, engagement_id: str) -> str | None:
        """The engagementId as stored (its referrals' spelling) of the engagement
        ``engagement_id`` names in any case, or None when no referral is in it."""
        with self._reading():
            for referral_id in self._index["engagementId"].get(key(engagement_id), {}):
                record = self._records.get(referral_id)
                if record is not None and key(str(record.doc.get("engagementId"))) == key(engagement_id):
                    return str(record.doc["engagementId"])
            return None

    def __len__(self) -> int:
        with self._reading():
            return len(self._records)

    # -- writes -------------------------------------------------------------------------
    def insert(self, doc: Doc, check: Callable[[], None] | None = None) -> Record:
        """Store a new referral. ``check`` runs under the write lock first (e.g. that
        the engagement it joins exists), so the check and the insert are one step."""
        with self._writing():
            if check is not None:
                check()
            if key(doc["id"]) in self._records:
                raise DuplicateId(doc["id"])
            text = dumps(doc)
            record = Record.of(self._next_seq(doc, text), doc, text)
            if self.lag:
                record.written = time.monotonic()
            self._remember(record)
            return record

    def update(self, referral_id: str, change: Change) -> Record | None:
        """Replace a referral by ``change(current document)``; None if there is none.
        ``change`` runs under the write lock, so a check of its If-Match and the
        write cannot be split by another request."""
        with self._writing():
            current = self._records.get(key(referral_id))
            if current is None:
                return None
            record = Record.of(current.seq, change(current.doc))
            if self.lag:
                record.written = now = time.monotonic()
                if current.written <= now - self.lag:
                    current.previous = None  # listings see ``current`` until ``record`` shows
                record.previous = current
            self._save(record)
            self._remember(record)
            return record

    def reset(self) -> None:
        with self._writing():
            self._wipe()
            self._forget()

    def close(self) -> None:
        pass

    # -- what the SQLite store overrides -----------------------------------------------
    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self._lock:
            yield

    @contextmanager
    def _writing(self) -> Iterator[None]:
        with self._lock:
            yield

    def _next_seq(self, doc: Doc, text: str) -> int:
        self._seq += 1
        return self._seq

    def _save(self, record: Record) -> None:
        pass

    def _wipe(self) -> None:
        pass

    def _remember(self, record: Record) -> None:
        referral_id = key(record.doc["id"])
        self._records[referral_id] = record
        for name, index in self._index.items():
            value = record.doc.get(name)
            if isinstance(value, str):
                index.setdefault(key(value), {})[referral_id] = None

    def _forget(self) -> None:
        self._records.clear()
        for index in self._index.values():
            index.clear()


class SqliteStore(MemoryStore):
    """Referrals in a SQLite file, one row per referral holding its JSON document."""

    def __init__(self, path: Path, lag: float = 0.0) -> None:
        super().__init__(lag)
        self.path = Path(path)
        self.description = str(self.path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are begun explicitly, as BEGIN IMMEDIATE.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a crash of the process, which is what a
        # sandbox needs; only a power cut can lose the last writes.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        # AUTOINCREMENT: a sequence number is never reused, not even after a
        # reset, so an old paging token cannot land in the middle of new data.
        # No other SQLite index: queries are answered from memory, where the
        # store indexes id, engagementId and externalReferenceId (see _remember);
        # an index here would cost every write and serve no read.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS referrals ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " id TEXT NOT NULL UNIQUE,"
            " doc TEXT NOT NULL)"
        )
        self._version = -1
        self._wrote = False
        with self._lock:
            self._sync()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self._lock:
            self._sync()
            yield

    @contextmanager
    def _writing(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._wrote = False
            try:
                self._sync()
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if self._wrote:
                    # Memory was changed along with the rolled-back rows: read the file again.
                    self._version = -1
                    self._sync()
                raise

    def _sync(self) -> None:
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return
        self._forget()
        for seq, text in self._db.execute("SELECT seq, doc FROM referrals ORDER BY seq"):
            self._remember(Record.of(seq, json.loads(text), text))
        self._version = version

    def _next_seq(self, doc: Doc, text: str) -> int:
        self._wrote = True
        cursor = self._db.execute("INSERT INTO referrals (id, doc) VALUES (?, ?)", (doc["id"], text))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _save(self, record: Record) -> None:
        self._wrote = True
        self._db.execute("UPDATE referrals SET doc = ? WHERE seq = ?", (record.text, record.seq))

    def _wipe(self) -> None:
        self._wrote = True
        self._db.execute("DELETE FROM referrals")


def open_store(db: Path | None, lag: float = 0.0) -> MemoryStore:
    return SqliteStore(db, lag) if db is not None else MemoryStore(lag)
