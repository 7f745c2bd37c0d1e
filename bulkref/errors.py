"""bulkref's exceptions. Each carries the exit code the CLI contract gives it."""

from __future__ import annotations


class BulkrefError(Exception):
    """Something bulkref could not do, said in one plain sentence."""

    exit_code = 2


class UnusableFile(BulkrefError):
    """The input cannot be read as a spreadsheet at all (exit 2)."""
