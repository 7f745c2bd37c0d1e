"""One apply at a time per target on this machine.

Two runs against the same API (a copied plan and its original, a sheet saved
under two names, two terminals) would each confirm a row absent and each
create it. A lock file per target in the data directory makes the second wait
until the first is done; it then reads what the first created.

``filelock`` rather than ``fcntl``: the same lock on Windows (``msvcrt``),
macOS and Linux, released by the operating system when a process dies, so a
``kill -9`` leaves no stale lock behind.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from bulkref.errors import DataDirError


def lock_path(label: str, data_dir: Path) -> Path:
    key = hashlib.sha256(label.encode()).hexdigest()[:16]
    return data_dir / "locks" / f"apply-{key}.lock"


@contextlib.contextmanager
def target_lock(label: str, data_dir: Path, on_wait: Callable[[str], None]) -> Iterator[None]:
    """Hold the apply lock of the target ``label``; ``on_wait`` is told once if it must wait."""
    path = lock_path(label, data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(path)
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            on_wait(
                f"Waiting for another bulkref apply against {label} to finish "
                f"(Ctrl-C to give up; the lock is {path})."
            )
            lock.acquire()
    except OSError as e:
        raise DataDirError(
            f"Cannot take the apply lock {path} ({e.strerror or e}): check that the data "
            "directory is writable, or set BULKREF_HOME to another folder."
        ) from None
    try:
        yield
    finally:
        lock.release()
