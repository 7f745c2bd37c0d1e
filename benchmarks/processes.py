"""Processes for the benchmarks: a local sandbox in a process of its own (the
client measured must not share an interpreter, or its GIL, with the server),
and a measured child process (its time and its own peak memory)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time


def start_sandbox(*options: str) -> tuple[subprocess.Popen[str], str, str]:
    """(the process, the referrals URL, the root URL) of a sandbox started with ``options``."""
    command = [sys.executable, "-m", "bulkref.sandbox", "--port", "0", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"(https?://[^/\s]+)(/v1\.0/engagements/referrals)", line)
    if not match:
        process.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return process, match.group(1) + match.group(2), match.group(1)


def run_child(
    command: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)
) -> tuple[float, float, str, str]:
    """(seconds, peak RSS in MB, stdout, stderr) of ``command`` run to the end."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage: its peak memory
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(command[:4])} failed ({proc.returncode}): {err[-800:]}")
    return seconds, usage.ru_maxrss / 1024, out, err  # ru_maxrss is in KiB on Linux
