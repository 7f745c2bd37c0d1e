"""A local sandbox in a process of its own, for the benchmarks: the client
measured must not share an interpreter (or its GIL) with the server."""

from __future__ import annotations

import re
import subprocess
import sys


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
