"""A second process for the later rows: how bulkref puts a second core to work.

Planning a large sheet (``bulkref.plan.parallel``) and writing a large export
(``bulkref.export.parallel``) are Python work, one core's worth, at a moment
when nothing else runs. So a second process does the rows from about the
middle on while this one does the first rows, and hands back its part.

Should the second process fail in any way (it cannot start, it dies, it
raises, it takes far longer than its part can), ``result`` is None and the
caller does those rows itself: nothing ever depends on the second process.

How it starts is decided here, once (``start_method``). A process forked
while another thread holds a lock (the web app's server thread, a log
handler, the deflate thread) can hang in the child on that lock, so fork is
used only where this process has no other thread, and on Linux only: on macOS
a child forked after the system's frameworks were loaded (httpx reads the
proxy settings through them) may be killed by them, and Windows cannot fork.
Elsewhere a caller may spawn a clean interpreter instead, where what it hands
over is small enough to be worth pickling (the export hands a file name; the
planner would hand the whole sheet, and so does not spawn).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["GRACE", "MIN_ROWS", "SecondProcess", "run_part", "start_method", "worth_it"]

# Below this many rows a second process costs more than it saves.
MIN_ROWS = 4000

# How long the second process may take past this process's own part before it is
# given up on and its rows done here: far more than doing them takes.
GRACE = 600.0


def worth_it(rows: int) -> bool:
    """Whether ``rows`` rows are worth a second process: enough of them, and a second core."""
    return rows >= MIN_ROWS and (os.cpu_count() or 1) > 1


def start_method(*, spawn: bool) -> str | None:
    """``fork`` where it is safe (see the module); else ``spawn`` when the caller can use
    it, else None: no second process."""
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return "fork"
    return "spawn" if spawn else None


class SecondProcess:
    """The second process doing ``work(*args)`` for the later rows, and its answer."""

    def __init__(self, process: Any, pipe: Any) -> None:
        self.process = process
        self.pipe = pipe

    @classmethod
    def start(
        cls, work: Callable[..., Any], args: tuple[Any, ...], *, name: str, spawn: bool
    ) -> SecondProcess | None:
        """The process started, or None where none can be (``start_method``) or it would
        not start. With spawn, ``work`` and ``args`` are pickled: a module's function and
        plain values."""
        method = start_method(spawn=spawn)
        if method is None:
            return None
        # Typed loosely: typeshed's BaseContext names no Process, which every context has.
        context: Any = multiprocessing.get_context(method)
        try:
            pipe, theirs = context.Pipe(duplex=False)
            process = context.Process(target=run_part, args=(work, args, theirs), name=name, daemon=True)
            process.start()
            theirs.close()
        except (OSError, RuntimeError, ValueError):  # no second process: the caller does every row
            return None
        return cls(process, pipe)

    def result(self) -> Any | None:
        """What ``work`` returned, or None when the process failed (the caller does its rows);
        the process is ended either way."""
        try:
            if not self.pipe.poll(GRACE):
                return None
            done, answer = self.pipe.recv()
        except (EOFError, OSError, TypeError, ValueError):  # it died before answering
            return None
        finally:
            self.stop()
        return answer if done else None

    def stop(self) -> None:
        """End the process (done, or no longer wanted: this one failed) and close the pipe.
        Safe to call again."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join()
        self.pipe.close()


def run_part(work: Callable[..., Any], args: tuple[Any, ...], pipe: Any) -> None:
    """In the second process: ``work(*args)``, sent as ``(True, answer)``, or ``(False, the
    error's text)`` when it raised (the caller does those rows itself; it only needs to know)."""
    try:
        pipe.send((True, work(*args)))
    except BaseException as e:
        pipe.send((False, f"{type(e).__name__}: {e}"))
    finally:
        pipe.close()
