"""The pass over a workbook's parts (``xlsxcheck.scan_parts``), in a child process.

Every part is inflated once to check it and to find hidden rows and
uncalculated formulas while calamine reads the cells in its own child
(``bulkref.sheets.native``). Run in a thread, that pass held this process's
interpreter for most of a second at 20,000 rows, just when ``bulkref plan``
also reads Partner Center here: planning took a second longer for it. In a
child of its own it costs this process nothing; where no interpreter can be
started, or the child dies without an answer, the pass runs here as before.

Only where this process has other work meanwhile (``busy_meanwhile``, set by
the plan while it scans Partner Center): otherwise the thread costs nothing,
and a third busy process on two cores slowed the read itself (validating
50,000 rows went from 1.7 to 2.1 times a bare read).

The child answers with the facts as plain lists, or with the sentence a
damaged or hostile part deserves (``ZipTrouble``).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from bulkref.sheets.xlsxcheck import PartFacts, ZipTrouble, scan_parts

# Whether this process has other work while the workbook is read (see the module).
busy_meanwhile: ContextVar[bool] = ContextVar("bulkref_busy_meanwhile", default=False)

# How often the parent looks whether the read has failed and the pass can stop.
POLL = 0.1  # seconds


def scan_parts_apart(
    source: Path, worksheets: dict[str, str], stopped: Callable[[], bool] = lambda: False
) -> dict[str, PartFacts]:
    """``scan_parts`` run in a child process (see the module); stops it once ``stopped()``."""
    if not sys.executable:
        return scan_parts(source, worksheets, stopped)
    request = json.dumps({"path": str(source), "worksheets": worksheets}).encode()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bulkref.sheets.partscan"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return scan_parts(source, worksheets, stopped)
    out = b""
    try:
        pending: bytes | None = request
        while True:
            try:
                out, _ = proc.communicate(pending, timeout=POLL)
                break
            except subprocess.TimeoutExpired:
                pending = None  # written already: a retry only waits
                if stopped():
                    return {}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or not out:
        return scan_parts(source, worksheets, stopped)  # the child died: the pass runs here
    # The child is bulkref's own code: it pickles lists of numbers and a sentence only.
    doc: dict[str, Any] = pickle.loads(out)
    if "trouble" in doc:
        raise ZipTrouble(doc["trouble"])
    facts = doc["facts"].items()
    return {name: PartFacts(hidden, [tuple(c) for c in cells]) for name, (hidden, cells) in facts}


def _main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    try:
        facts = scan_parts(Path(request["path"]), request["worksheets"])
        doc: dict[str, Any] = {"facts": {n: (f.hidden, f.uncalculated) for n, f in facts.items()}}
    except ZipTrouble as e:
        doc = {"trouble": str(e)}
    sys.stdout.buffer.write(pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _main()
