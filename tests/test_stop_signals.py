"""SIGTERM stops bulkref as Ctrl-C does (bulkref.stop_signals): while a server runs, and
apply's first stop; the handlers in place before are put back after."""

from __future__ import annotations

import asyncio
import signal

import pytest

from bulkref.stop_signals import first_stop, interrupt, stop_signals, stopping_as_interrupt


def test_sigterm_interrupts_while_serving_and_the_handler_before_is_put_back() -> None:
    heard: list[int] = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: heard.append(signum))
    try:
        with pytest.raises(KeyboardInterrupt), stopping_as_interrupt():
            assert signal.getsignal(signal.SIGTERM) is interrupt
            signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is not interrupt
        signal.raise_signal(signal.SIGTERM)
        assert heard == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, before)
    assert signal.SIGTERM in stop_signals()


def test_the_first_sigterm_of_an_apply_asks_it_to_stop_and_the_second_interrupts() -> None:
    before = signal.signal(signal.SIGTERM, interrupt)  # as the command line sets it
    stops: list[str] = []

    async def run() -> None:
        with first_stop(asyncio.get_running_loop(), lambda: stops.append("first")):
            signal.raise_signal(signal.SIGTERM)
            await asyncio.sleep(0.05)  # the loop runs the handler
            assert stops == ["first"]
            assert signal.getsignal(signal.SIGTERM) is interrupt  # the command's own, back
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGTERM)

    try:
        asyncio.run(run())
    finally:
        signal.signal(signal.SIGTERM, before)
    assert stops == ["first"]
