"""Where bulkref keeps its files, and how it replaces one safely.

- The data directory: ``BULKREF_HOME`` when set, else the platform's user data
  folder (platformdirs): journals, the embedded sandbox's state, the sign-in
  record and token cache, the web app's imports.
- ``atomic_write``: the one way a file the user opens (results, exports) or
  that must never be half-written (the token cache) is replaced.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from bulkref.errors import UnwritableOutput

ENV_HOME = "BULKREF_HOME"


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where bulkref keeps its state: ``BULKREF_HOME``, else the user data directory."""
    home = env.get(ENV_HOME, "").strip()
    if home:
        return Path(home).expanduser()
    import platformdirs  # only commands that keep state need it

    # appauthor=False: no "bulkref\\bulkref" nesting on Windows.
    return Path(platformdirs.user_data_dir("bulkref", appauthor=False))


def atomic_write(
    out: Path, mode: str, write: Callable[[IO[Any]], None], what: str = "file", *, private: bool = False
) -> None:
    """Write ``out`` through ``write(f)`` via ``.<name>.<random>.tmp`` in the same folder
    (a rename is only atomic within one file system), flushed to disk before it
    replaces ``out``: whoever opens ``out`` sees the previous complete file or the
    new complete one, never half of one. Text modes write UTF-8 with a BOM, which
    Excel needs to read a CSV as UTF-8 (``private`` files, which are not for Excel,
    get none). ``what`` names the file in error messages. ``private``: readable by
    the user only from its creation (0600 where the platform has modes), for files
    that hold tokens.
    """
    if not out.parent.is_dir():
        raise UnwritableOutput(f"Cannot write {out}: the folder {out.parent} does not exist.")
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open with 0o666 lets the umask decide the permissions, as for any new
        # file (tempfile.mkstemp would force 0600).
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
            0o600 if private else 0o666,
        )
        text = "b" not in mode
        encoding = "utf-8" if private else "utf-8-sig"
        # errors="replace": a lone surrogate in an API message must not cost the whole file.
        with open(fd, mode, encoding=encoding, errors="replace", newline="") if text else open(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if out.exists() and not private:
            # A user who made the file private (or shared) keeps that.
            with contextlib.suppress(OSError):
                shutil.copymode(out, tmp)
        os.replace(tmp, out)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        hint = " (is it open in Excel? close it and run again)" if isinstance(e, PermissionError) else ""
        raise UnwritableOutput(f"Cannot write the {what} {out}: {e.strerror or e}{hint}.") from e
    except BaseException:
        # Interrupted (Ctrl+C) or failed while writing: leave the old file, and no debris.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
