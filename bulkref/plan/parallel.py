"""Planning a large sheet in two processes: the later rows are planned by a forked child.

Planning a row (its referral read from the scan's index, turned into a row,
compared cell by cell) is Python work, one core's worth, and by then nothing
else is running: the sheet is read and Partner Center is scanned. So for a
sheet of ``MIN_ROWS`` or more against a scan's index, a child process forked
at that moment plans the rows from the middle on, with its own connection to
the index file (a SQLite connection must not cross a fork), and sends their
plans back; this process plans the first rows meanwhile. The plan is the one
a single process makes (``tests/test_plan_fast.py`` checks): rows claiming one
referral are still found across the whole sheet, afterwards.

Fork only, on Linux only, and only where this process has no other thread: a
thread holding a lock at the fork (the web app's server, a log handler)
could hang the child, and on macOS a child forked after the system's
frameworks were loaded (httpx reads the proxy settings through them) may be
killed by them; Windows cannot fork.
Spawning instead would pickle the whole sheet and import bulkref anew, which
costs what it would save. Should the child not start, die or fail, this
process plans its rows itself: the plan never depends on the second process.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bulkref.plan.model import RowPlan
from bulkref.validation.schema import Validated

# Below this many rows a second process costs more than it saves.
MIN_ROWS = 4000
# The share of the rows this process plans: it also unpickles the child's plans.
OWN_SHARE = 0.47
# How long the child may take: far more than planning its rows takes.
_CHILD_GRACE = 600.0

Planned = tuple[list[RowPlan], list[tuple[int, str | None]]]
# The planner's per-row pass (planner._plan_rows), handed in by the planner, which imports this module.
PlanRows = Callable[[Validated, Mapping[int, str], Any, bool, Sequence[int]], Planned]


@dataclass
class Helper:
    """The child planning ``theirs`` while this process plans ``mine``."""

    mine: list[int]
    theirs: list[int]
    process: Any
    pipe: Any

    def result(self) -> Planned | None:
        """The child's plans and claims, or None when it failed (plan ``theirs`` here)."""
        try:
            if not self.pipe.poll(_CHILD_GRACE):
                return None
            answer = self.pipe.recv()
        except (EOFError, OSError):  # it died before answering
            return None
        finally:
            self.stop()
        return answer if isinstance(answer, tuple) else None

    def stop(self) -> None:
        """End the child (done, or no longer wanted: this process failed) and close the pipe."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()
        self.pipe.close()


def later_rows(
    plan_rows: PlanRows, validated: Validated, errors: Mapping[int, str], remote: Any, overwrite_newer: bool
) -> Helper | None:
    """A child planning the later rows, or None where a second process does not pay or
    cannot be forked safely (see the module)."""
    numbers = [int(r) for r in validated.values.index]
    if len(numbers) < MIN_ROWS or (os.cpu_count() or 1) < 2 or remote.index is None:
        return None
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return None
    split = int(len(numbers) * OWN_SHARE)
    mine, theirs = numbers[:split], numbers[split:]
    context = multiprocessing.get_context("fork")
    try:
        pipe, child_end = context.Pipe(duplex=False)
        process = context.Process(
            target=_plan_part,
            args=(plan_rows, validated, errors, remote, overwrite_newer, theirs, child_end),
            name="bulkref-plan-rows",
            daemon=True,
        )
        process.start()
        child_end.close()
    except (OSError, RuntimeError, ValueError):  # no second process: this one plans every row
        return None
    return Helper(mine, theirs, process, pipe)


def _plan_part(
    plan_rows: PlanRows,
    validated: Validated,
    errors: Mapping[int, str],
    remote: Any,
    overwrite_newer: bool,
    rows: Sequence[int],
    pipe: Any,
) -> None:
    """In the child: plan ``rows`` and send the plans and claims, or an error's text."""
    try:
        remote.index.reopen()
        pipe.send(plan_rows(validated, errors, remote, overwrite_newer, rows))
    except BaseException as e:  # the parent plans these rows itself; it only needs to know
        pipe.send(f"{type(e).__name__}: {e}")
    finally:
        pipe.close()
