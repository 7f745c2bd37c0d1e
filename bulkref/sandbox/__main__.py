"""``python -m bulkref.sandbox``: the ``bulkref sandbox`` command without the rest of the CLI."""

from bulkref.sandbox.command import sandbox

sandbox(prog_name="python -m bulkref.sandbox")
