"""The suite's fixtures: the sandbox on a free loopback port, a misbehaving server, workbooks.

- ``sandbox`` (per test): the shared sandbox, emptied for this test. Use
  ``sandbox.url`` (the referrals collection), ``sandbox.headers`` (bearer token
  and JSON content type), ``sandbox.client()`` (an ``httpx.Client`` with those
  headers) and ``sandbox.admin`` (``reset()``, ``seed(doc_or_docs)``,
  ``stats()``, ``set_faults(spec, seed)``).
- ``sandbox_factory(**options)``: start another sandbox with other
  ``SandboxOptions`` (faults, seed, rate_limit, db, page_size); each is stopped
  when the test ends. ``restart()`` on what it returns stops that sandbox and
  starts a new one on the same options (same ``db``), for persistence tests.
- ``sandbox_server`` (per session): the server behind ``sandbox``.
- ``sandbox_as_sent`` (per test): like ``sandbox``, but a create keeps the status
  it was sent with (``create_status="as-sent"``) instead of coming back
  Active/Accepted as documented: for tests about something else (planning,
  applying, exporting) that expect a sheet's New/Pending to read back as sent.
- ``hostile``: a referrals server that echoes tokens, loses answers and lags.

Every server binds 127.0.0.1 on a port the OS picks, and the tests talk to it over
real HTTP, as the product talks to Partner Center. What the fixtures are built from,
and the helpers test modules import, is in helpers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

# Before the import: a failed assert inside a helper then reads as well as one in a test.
pytest.register_assert_rewrite("helpers")

from helpers import Hostile, RunningSandbox, serve_hostile, write_xlsx  # noqa: E402

from bulkref.sandbox import SandboxOptions, SandboxServer  # noqa: E402


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxOptions(port=0)).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> RunningSandbox:
    running = RunningSandbox(sandbox_server)
    running.admin.reset()
    return running


@pytest.fixture(scope="session")
def sandbox_as_sent_server() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxOptions(port=0, create_status="as-sent")).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox_as_sent(sandbox_as_sent_server: SandboxServer) -> RunningSandbox:
    running = RunningSandbox(sandbox_as_sent_server)
    running.admin.reset()
    return running


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., RunningSandbox]]:
    started: list[RunningSandbox] = []

    def start(**options: Any) -> RunningSandbox:
        options.setdefault("port", 0)
        running = RunningSandbox(SandboxServer(SandboxOptions(**options)).start())
        started.append(running)
        return running

    yield start
    for running in started:
        running.server.stop()


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    with serve_hostile() as state:
        yield state


@pytest.fixture(autouse=True)
def _shipped_taxonomy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the solution areas and plays bulkref ships, whatever the shell
    sets (the committed template is compared with a generated one)."""
    monkeypatch.delenv("BULKREF_TAXONOMY", raising=False)


@pytest.fixture
def xlsx(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(10_000))

    def make(rows: Sequence[dict[str, object]], **kw: object) -> Path:
        return write_xlsx(tmp_path / f"sheet{next(counter)}.xlsx", rows, **kw)  # type: ignore[arg-type]

    return make
