"""How an export tells its progress: the callback it takes, and the rows written counted."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["REPORT_EVERY", "ProgressCallback", "reported"]

#: Called as ``on_progress(phase, done, total)``: phase ``"read"`` counts the
#: referrals read (total: ``@odata.count``, None when the service gives none),
#: phase ``"write"`` the rows written (total known).
ProgressCallback = Callable[[str, int, int | None], None]

# Rows written between two progress reports: a page of the listing's usual size.
REPORT_EVERY = 100


def reported(
    rows: Iterable[dict[str, Any]], total: int, report: ProgressCallback
) -> Iterator[dict[str, Any]]:
    """``rows``, reporting ``("write", done, total)`` every ``REPORT_EVERY`` rows and at the end."""
    done = 0
    for done, row in enumerate(rows, start=1):
        yield row
        if not done % REPORT_EVERY:
            report("write", done, total)
    if done % REPORT_EVERY:
        report("write", done, total)
