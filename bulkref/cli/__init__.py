"""The ``bulkref`` command line: one module per command group, over the public library."""

from bulkref.cli.main import cli, main

__all__ = ["cli", "main"]
