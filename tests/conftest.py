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

from helpers import CHROMEDRIVER, Hostile, RunningSandbox, serve_hostile, write_xlsx  # noqa: E402

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


# -- a browser (Debian's headless Chromium), for the tests that drive the web app in one --


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"  # Debian's: nothing downloads a browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1360,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
