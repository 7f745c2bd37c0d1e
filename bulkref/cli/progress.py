"""The progress display of ``bulkref apply``.

On a terminal: one line redrawn in place (carriage return) with a bar, rows
done of total, counts per outcome, rows/s and the time left. Anywhere else (a
CI log, a file, a pipe): plain lines, at most one every few seconds or per
tenth of the rows, with no carriage returns or escape codes to garble a log.

Hand-written rather than tqdm: tqdm draws with carriage returns even when the
output is not a terminal, so the log mode would have to be written anyway, and
what remains is one formatted line.

The executor calls :meth:`Progress.advance` once per row, up to 100,000 times,
from coroutines on one event loop: a call only counts and looks at the clock,
and the line is drawn at most ~10 times a second. Methods never await, so on
one event loop they cannot interleave; a lock makes them safe from threads too.
Writing to the stream may fail (a closed pipe): the display then goes quiet
rather than failing the run it reports on.
"""

from __future__ import annotations

import collections
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TextIO

from bulkref import Outcome

REDRAW_EVERY = 0.1  # seconds between redraws of the terminal line
LOG_EVERY = 5.0  # seconds between log lines (and at each further tenth of the rows)
RATE_WINDOW = 30.0  # rows/s over the last this many seconds: throttling changes the pace
BAR = 20  # characters of the terminal bar
SHOWN = ("created", "updated", "unchanged", "failed", "skipped")  # apply's JSON summary keys


class Progress:
    """Progress of ``total`` rows, reported on ``stream``.

    ``interactive`` defaults to whether ``stream`` is a terminal. ``clock`` is
    for tests.
    """

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        interactive: bool | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(0, total)
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = _isatty(self.stream) if interactive is None else interactive
        self.counts: dict[str, int] = dict.fromkeys(SHOWN, 0)
        self.counts["in_doubt"] = 0  # said only when there are some (a run with lost answers)
        self.done = 0
        self.before = 0  # rows an earlier run finished (``already``): done, but not at this pace
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        # A terminal shows the line at once; a log's first line waits LOG_EVERY
        # (a "1/100,000 rows" line tells nobody anything).
        self._next_draw = self._start if self.interactive else self._start + LOG_EVERY
        self._next_decile = 1
        self._samples: collections.deque[tuple[float, int]] = collections.deque([(self._start, 0)])
        self._width = 0  # of the line on screen, to blank what a shorter one leaves
        self._last_note: tuple[str, float] | None = None
        self._closed = False
        self._quiet = False
        self._bar_chars = _bar_chars(self.stream) if self.interactive else ("#", "-")
        if self.interactive and self.total:
            self._draw(self._start)  # show 0/N before the first (maybe slow) call returns

    # --- what the executor calls ---------------------------------------------------------------

    def advance(self, outcome: Outcome) -> None:
        """One row finished with ``outcome``."""
        with self._lock:
            if self._closed:
                return
            self.done += 1
            self.counts[outcome.counted_as] += 1
            now = self._clock()
            if self.interactive:
                if now >= self._next_draw:
                    self._draw(now)
            # The decile is checked first so that a line due for time also moves it on;
            # a run shorter than LOG_EVERY gets its final line only, not one per tenth.
            elif (self._crossed_decile() and now - self._start >= LOG_EVERY) or now >= self._next_draw:
                self._log(now)

    def already(self, outcome: Outcome) -> None:
        """One row an earlier (stopped) run finished with ``outcome``: counted as done,
        so that a resumed run ends at N/N, but kept out of the rate (it took no time now)."""
        with self._lock:
            if self._closed:
                return
            self.done += 1
            self.before += 1
            self.counts[outcome.counted_as] += 1
            self._samples = collections.deque([(self._samples[-1][0], self.done)])
            if self.total:
                self._next_decile = self.done * 10 // self.total + 1

    def note(self, text: str) -> None:
        """A message worth a line of its own, e.g. ``throttled: slowing to 12 calls/s``.

        The same note again within a few seconds is dropped: the executor may
        report one condition on every call it affects."""
        with self._lock:
            if self._closed:
                return
            text = " ".join(text.split())  # one line, whatever the executor passed
            now = self._clock()
            if self._last_note and self._last_note[0] == text and now - self._last_note[1] < LOG_EVERY:
                return
            self._last_note = (text, now)
            if self.interactive:
                # Above the bar: blank the bar, print the note, draw the bar again.
                self._write("\r" + " " * self._width + "\r" + text + "\n")
                self._width = 0
                self._draw(now)
            else:
                self._write(text + "\n")

    def close(self, interrupted: bool = False) -> None:
        """The final line: counts, elapsed time and pace. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            now = self._clock()
            if self.interactive:
                self._draw(now, final=True, interrupted=interrupted)
                self._write("\n")
            else:
                self._write(self._final_line(now, interrupted) + "\n")

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(interrupted=exc_type is not None)

    # --- drawing -------------------------------------------------------------------------------

    def _crossed_decile(self) -> bool:
        if self.total and self.done * 10 >= self._next_decile * self.total:
            self._next_decile = self.done * 10 // self.total + 1
            return True
        return False

    def _rate(self, now: float) -> float:
        """Rows per second over the last RATE_WINDOW seconds (over the run until then)."""
        self._samples.append((now, self.done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        return (self.done - d0) / (now - t0) if now > t0 else 0.0

    def _counts_text(self) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in self.counts.items() if k in SHOWN or v)

    def _draw(self, now: float, final: bool = False, interrupted: bool = False) -> None:
        self._next_draw = now + REDRAW_EVERY
        rate = self._rate(now)
        fraction = self.done / self.total if self.total else 1.0
        if final:
            timing = f"{'stopped after' if interrupted else 'in'} {_duration(now - self._start)}"
        else:
            timing = f"{_rate_text(rate)}, ETA {_eta(self.total - self.done, rate)}"
        # Only the outcomes that occurred: five counts, mostly 0, do not fit 80 columns.
        counts = ", ".join(f"{k} {v:,}" for k, v in self.counts.items() if v)
        line = f"{self.done:,}/{self.total:,} {fraction:4.0%}  {timing}" + (f"  {counts}" if counts else "")
        # A line wider than the terminal wraps, and \r then redraws only its last
        # part: every redraw would leave a line behind. The bar goes first when
        # space is short, then the line is cut to fit.
        width = _columns(self.stream) - 1
        filled, empty = self._bar_chars
        if len(line) + BAR + 1 <= width:
            n = int(fraction * BAR)
            line = filled * n + empty * (BAR - n) + " " + line
        line = line[:width]
        self._write("\r" + line + " " * max(0, self._width - len(line)))
        self._width = len(line)

    def _log(self, now: float) -> None:
        self._next_draw = now + LOG_EVERY
        rate = self._rate(now)
        pct = f" ({self.done / self.total:.0%})" if self.total else ""
        self._write(
            f"{self.done:,}/{self.total:,} rows{pct}: {self._counts_text()}; "
            f"{_rate_text(rate)}, ETA {_eta(self.total - self.done, rate)}\n"
        )

    def _final_line(self, now: float, interrupted: bool) -> str:
        elapsed = now - self._start
        word = "done" if self.done >= self.total and not interrupted else "stopped"
        now_done = self.done - self.before
        pace = f" ({_rate_text(now_done / elapsed)})" if elapsed > 0 and now_done else ""
        return (
            f"{word}: {self.done:,}/{self.total:,} rows in {_duration(elapsed)}{pace}: {self._counts_text()}"
        )

    def _write(self, text: str) -> None:
        if self._quiet:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: stop reporting, keep running
            self._quiet = True


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is both of the latter
        return 80  # no real terminal behind it (a test's StringIO): a common width


def _bar_chars(stream: TextIO) -> tuple[str, str]:
    """Block characters where the stream can encode them (a Windows console
    in a legacy code page cannot), else ASCII."""
    try:
        "█░".encode(getattr(stream, "encoding", None) or "ascii")
        return "█", "░"
    except (UnicodeEncodeError, LookupError):
        return "#", "-"


def _rate_text(rate: float) -> str:
    return f"{rate:.1f} rows/s" if rate < 10 else f"{rate:,.0f} rows/s"


def _eta(remaining: int, rate: float) -> str:
    if remaining <= 0:
        return "0s"
    if rate <= 0:
        return "?"
    return _duration(remaining / rate)


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s // 60 % 60:02d}m"


# --- bulkref export's display ------------------------------------------------------------


class ExportDisplay:
    """What ``bulkref export`` shows on stderr while it runs: a heading and a
    progress line for reading, then for writing. Pass it as ``on_progress``."""

    def __init__(
        self, out: Path, source: str, stream: TextIO | None = None, interactive: bool | None = None
    ) -> None:
        self.out, self.source = out, source
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = interactive
        self.phase: str | None = None
        self.line: _PhaseProgress | None = None

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase != self.phase:
            self.close()
            self.phase = phase
            if phase == "read":
                heading = f"Reading referrals from {self.source}" + (
                    f" ({total:,} to read)" if total is not None else ""
                )
            else:
                heading = f"Writing {total:,} row{'' if total == 1 else 's'} to {self.out}"
            _write(self.stream, heading + "\n")
            unit = "referrals" if phase == "read" else "rows"
            self.line = _PhaseProgress(total, self.stream, self.interactive, unit)
        if self.line is not None:
            self.line.update(done)

    def close(self, interrupted: bool = False) -> None:
        if self.line is not None:
            self.line.close(interrupted=interrupted)
            self.line = None


class _PhaseProgress(Progress):
    """``Progress``'s line for a count of rows with no outcomes to tell apart,
    and a total that may be unknown (a service that gives no ``@odata.count``)."""

    def __init__(
        self, total: int | None, stream: TextIO, interactive: bool | None, unit: str = "rows"
    ) -> None:
        self.known = total is not None
        self.unit = unit
        super().__init__(total or 0, stream, interactive)
        self.counts = {}  # nothing to count by outcome: the line shows rows only

    def update(self, done: int) -> None:
        with self._lock:
            if self._closed or done == self.done:
                return
            self.done = done
            if self.known and done > self.total:  # created since the count was taken
                self.total = done
            now = self._clock()
            if self.interactive:
                if now >= self._next_draw:
                    self._draw(now)
            elif (self._crossed_decile() and now - self._start >= LOG_EVERY) or now >= self._next_draw:
                self._log(now)

    def _draw(self, now: float, final: bool = False, interrupted: bool = False) -> None:
        if self.known:
            super()._draw(now, final, interrupted)
            return
        self._next_draw = now + 0.1
        timing = (
            f"{'stopped after' if interrupted else 'in'} {_duration(now - self._start)}"
            if final
            else _rate_text(self._rate(now))
        )
        line = f"{self.done:,} {self.unit}  {timing}"
        self._write("\r" + line + " " * max(0, self._width - len(line)))
        self._width = len(line)

    def _log(self, now: float) -> None:
        self._next_draw = now + LOG_EVERY
        rate = self._rate(now)
        if not self.known:
            self._write(f"{self.done:,} {self.unit}; {_rate_text(rate)}\n")
            return
        pct = f" ({self.done / self.total:.0%})" if self.total else ""
        left = self.total - self.done
        eta = _duration(left / rate) if rate > 0 and left > 0 else ("0s" if left <= 0 else "?")
        self._write(f"{self.done:,}/{self.total:,} {self.unit}{pct}; {_rate_text(rate)}, ETA {eta}\n")

    def _final_line(self, now: float, interrupted: bool) -> str:
        elapsed = now - self._start
        word = "stopped" if interrupted else "done"
        # Under a second, a pace says more about start-up than about the work.
        pace = f" ({_rate_text(self.done / elapsed)})" if elapsed >= 1 and self.done else ""
        of = f"/{self.total:,}" if self.known else ""
        return f"{word}: {self.done:,}{of} {self.unit} in {_duration(elapsed)}{pace}"


def _write(stream: TextIO, text: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # a closed pipe: the export goes on
        stream.write(text)
        stream.flush()
