"""Being told to stop: SIGTERM (``timeout``, CI, ``docker stop``), and Ctrl-Break on Windows,
stop bulkref the way Ctrl-C does, so that its ``finally`` clauses run (temporary files
go, a store is closed, apply's journal and results are written) where the default
handler would end the process at once.

One handler (``interrupt``: raise KeyboardInterrupt, as Ctrl-C does), installed for a
whole command (``terminate_as_interrupt``) or while a server runs
(``stopping_as_interrupt``); and apply's gentler first stop (``first_stop``). Where a
signal cannot be caught (not the main thread, a platform without it), nothing changes.

Process plumbing only, knowing nothing of Partner Center or of the client: the
sandbox, which imports nothing else of bulkref, may use it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:  # not loaded for it: every command, --help too, installs a handler from here
    import asyncio

__all__ = ["first_stop", "interrupt", "stop_signals", "stopping_as_interrupt", "terminate_as_interrupt"]


def stop_signals() -> list[signal.Signals]:
    """The signals that ask a process to stop besides Ctrl-C, those this platform has:
    SIGTERM, and SIGBREAK (Ctrl-Break) on Windows."""
    return [getattr(signal, name) for name in ("SIGTERM", "SIGBREAK") if hasattr(signal, name)]


def interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    """The handler: the signal stops the program as Ctrl-C does."""
    raise KeyboardInterrupt


def terminate_as_interrupt() -> None:
    """SIGTERM ends the command like Ctrl-C from now on (apply installs its own handler
    while it runs). Where SIGTERM cannot be caught, nothing changes."""
    with contextlib.suppress(ValueError, OSError, AttributeError):  # not the main thread; no SIGTERM
        signal.signal(signal.SIGTERM, interrupt)


@contextlib.contextmanager
def stopping_as_interrupt() -> Iterator[None]:
    """While in the block, SIGTERM (and Ctrl-Break on Windows) stop like Ctrl-C; the handlers
    in place before are put back after. For a uvicorn server run in the foreground: it stops
    gracefully on them, then raises the signal again for the handler that was in place
    before it ran, and the default one would end the process before the ``finally``
    clauses that close what it served. Only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, interrupt) for sig in stop_signals()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def first_stop(loop: asyncio.AbstractEventLoop, first: Callable[[], None]) -> Iterator[None]:
    """While in the block, the first Ctrl-C (or SIGTERM, or Ctrl-Break) calls ``first`` on
    ``loop`` instead of stopping at once, and puts the handlers in place before back: a
    second one stops as those do.

    Where the event loop cannot watch signals (Windows), ``signal.signal`` handlers
    hand the stop to the loop instead; the signals a platform lacks are left alone."""
    wanted = [signal.SIGINT, *stop_signals()]
    before = {sig: signal.getsignal(sig) for sig in wanted}
    watched: list[signal.Signals] = []
    by_loop = True

    def restore() -> None:
        for sig in watched:
            with contextlib.suppress(Exception):
                if by_loop:
                    loop.remove_signal_handler(sig)
                signal.signal(sig, before[sig])  # the command's own (SIGTERM ends it like Ctrl-C)
        watched.clear()

    def stop() -> None:
        first()
        restore()

    for sig in wanted:
        try:
            if by_loop:
                loop.add_signal_handler(sig, stop)
            else:
                signal.signal(sig, lambda signum, frame: loop.call_soon_threadsafe(stop))
            watched.append(sig)
        except NotImplementedError:  # Windows' event loops: fall back to signal.signal
            by_loop = False
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                signal.signal(sig, lambda signum, frame: loop.call_soon_threadsafe(stop))
                watched.append(sig)
        except (ValueError, OSError, RuntimeError):  # not the main thread, or not this signal here
            continue
    try:
        yield
    finally:
        restore()
