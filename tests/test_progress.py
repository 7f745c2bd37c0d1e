"""The progress display of ``bulkref apply``: a redrawn line on a terminal, sparse plain lines elsewhere."""

from __future__ import annotations

import io
import re

import pytest

from bulkref.apply.outcome import Outcome
from bulkref.cli.progress import Progress

ANSI = re.compile(r"\x1b\[")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Broken(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError


def _run(
    p: Progress, clock: Clock, rows: int, seconds_per_row: float, outcome: Outcome = Outcome.CREATED
) -> None:
    for _ in range(rows):
        clock.now += seconds_per_row
        p.advance(outcome)


def test_not_a_terminal_plain_lines_at_each_tenth_and_a_final_line() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress(1000, out, clock=clock)
    assert not p.interactive
    _run(p, clock, 900, 0.006, Outcome.CREATED)
    _run(p, clock, 50, 0.006, Outcome.FAILED)
    _run(p, clock, 50, 0.006, Outcome.CONFLICT)  # counted as failed, as in apply's JSON summary
    p.close()
    text = out.getvalue()
    assert "\r" not in text and not ANSI.search(text)
    lines = text.splitlines()
    # Nothing for the first 5 s (a short run gets its final line only), then one
    # line at 5 s, one per further tenth, then the final line.
    assert [ln.split(" rows")[0] for ln in lines[:3]] == ["834/1,000", "900/1,000", "1,000/1,000"]
    assert len(lines) == 4
    assert lines[-1].startswith("done: 1,000/1,000 rows in 6s")
    assert "created 900, updated 0, unchanged 0, failed 100, skipped 0" in lines[-1]


def test_not_a_terminal_is_rate_limited() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress(10_000_000, out, interactive=False, clock=clock)
    _run(p, clock, 10_000, 0.0001)  # 1 s, far below a tenth: nothing yet
    assert out.getvalue() == ""
    _run(p, clock, 60_000, 0.001)  # 60 s more: a line every 5 s at most
    lines = out.getvalue().splitlines()
    assert 11 <= len(lines) <= 13
    assert all(ln.startswith(("10,", "1", "2", "3", "4", "5", "6", "7", "8", "9")) for ln in lines)
    assert "rows/s" in lines[-1] and "ETA" in lines[-1]
    p.close()
    final = out.getvalue().splitlines()[-1]
    assert final.startswith("stopped: 70,000/10,000,000 rows")  # fewer rows than announced


def test_terminal_redraws_one_line() -> None:
    out, clock = Tty(), Clock()
    p = Progress(1000, out, clock=clock)
    assert p.interactive
    assert out.getvalue().startswith("\r")  # 0/1,000 shown before the first row finishes
    _run(p, clock, 100, 0.0001)  # 10 ms: within one redraw interval
    draws = out.getvalue().count("\r")
    assert draws <= 2
    _run(p, clock, 400, 0.01)  # 4 s: ~10 redraws a second
    assert 30 <= out.getvalue().count("\r") - draws <= 45
    assert "\n" not in out.getvalue()
    _run(p, clock, 500, 0.01, Outcome.FAILED)
    p.close()
    text = out.getvalue()
    last = text.split("\r")[-1]
    assert text.endswith("\n") and text.count("\n") == 1
    assert "1,000/1,000 100%" in last and "created 500, failed 500" in last and "in 9s" in last
    assert all(len(seg.rstrip("\n")) < 80 for seg in text.split("\r"))  # fits: no wrapped leftovers


def test_terminal_line_shows_bar_counts_rate_and_eta() -> None:
    out, clock = Tty(), Clock()
    p = Progress(100, out, clock=clock)
    _run(p, clock, 50, 0.1)
    last = out.getvalue().split("\r")[-1]
    assert re.match(r"#{10}-{10} 50/100  50%  10\.0 rows/s, ETA 5s  created 50", last), last


def test_note_on_a_terminal_goes_above_the_bar() -> None:
    out, clock = Tty(), Clock()
    p = Progress(10, out, clock=clock)
    _run(p, clock, 3, 0.2)
    p.note("throttled: slowing to 12 calls/s")
    p.note("throttled: slowing to 12 calls/s")  # the same again at once: dropped
    text = out.getvalue()
    assert text.count("throttled") == 1
    assert re.search(r"\r +\rthrottled: slowing to 12 calls/s\n\r", text)
    assert "3/10" in text.split("\n")[-1]  # the bar is back below the note


def test_note_in_a_log() -> None:
    out, clock = io.StringIO(), Clock()
    with Progress(10, out, clock=clock) as p:
        p.note("throttled:\r slowing to 12 calls/s")
        clock.now += 6
        p.note("throttled:\r slowing to 12 calls/s")  # again later: shown again
        _run(p, clock, 10, 0.1)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["throttled: slowing to 12 calls/s"] * 2
    assert lines[-1].startswith("done: 10/10 rows")
    assert "\r" not in out.getvalue()


def test_interrupted_run_says_so() -> None:
    out, clock = io.StringIO(), Clock()
    with pytest.raises(KeyboardInterrupt), Progress(10, out, clock=clock) as p:
        _run(p, clock, 10, 0.1)
        raise KeyboardInterrupt
    assert out.getvalue().splitlines()[-1].startswith("stopped: 10/10 rows")


def test_close_twice_and_advance_after_close() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress(2, out, clock=clock)
    p.advance(Outcome.SKIPPED)
    p.close()
    p.close()
    p.advance(Outcome.CREATED)
    p.note("late")
    assert out.getvalue().count("\n") == 1  # a run this short: the final line only
    assert "skipped 1" in out.getvalue().splitlines()[-1]


def test_a_broken_stream_does_not_stop_the_run() -> None:
    p = Progress(5, Broken(), interactive=True)
    for _ in range(5):
        p.advance(Outcome.CREATED)
    p.note("x")
    p.close()
    assert p.done == 5


def test_many_calls_are_cheap() -> None:
    out = Tty()
    p = Progress(100_000, out)
    for _ in range(100_000):
        p.advance(Outcome.UNCHANGED)
    p.close()
    assert p.counts["unchanged"] == 100_000
    assert out.getvalue().count("\r") < 100  # a real clock: drawn a few times, not per call


def test_rows_an_earlier_run_finished_count_as_done_but_not_in_the_pace() -> None:
    clock, out = Clock(), io.StringIO()
    p = Progress(total=10, stream=out, interactive=False, clock=clock)
    for _ in range(6):
        p.already(Outcome.CREATED)
    _run(p, clock, 4, 0.5, Outcome.UPDATED)  # 4 rows in 2 s: 2 rows/s, not (6 + 4) / 2
    p.close()
    last = out.getvalue().strip().splitlines()[-1]
    assert last.startswith("done: 10/10 rows in 2s (2.0 rows/s)"), last
    assert "created 6, updated 4" in last
