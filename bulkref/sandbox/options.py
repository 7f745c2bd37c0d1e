"""How a sandbox is configured: one value shared by the CLI, the test fixture and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The partner organisation the sandbox acts as. A fixed GUID, so that ids in
# test expectations and in a --db file stay meaningful across runs.
SANDBOX_ORGANIZATION_ID = "5f8b4e36-0d2a-4c71-9e3b-1a6c2d7f9e40"
SANDBOX_ORGANIZATION_NAME = "Sandbox Partner"

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class SandboxOptions:
    """Settings of one sandbox; the field names follow ``bulkref sandbox``'s flags.

    ``port=0`` binds a free port (the server reports the one it got).
    ``seed=None`` draws faults from an unseeded generator; give a number for
    reproducible runs. ``faults`` is the ``--faults`` text (see
    ``bulkref.sandbox.faults``). ``rate_limit`` is requests per second per
    tenant, None for no limit.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    db: Path | None = None
    seed: int | None = None
    faults: str = ""
    rate_limit: float | None = None
    page_size: int = 100
    organization_id: str = SANDBOX_ORGANIZATION_ID
    organization_name: str = SANDBOX_ORGANIZATION_NAME

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page size must be at least 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate limit must be a positive number of requests per second")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is out of range")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")
