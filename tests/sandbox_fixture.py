"""pytest fixtures that run the Partner Center sandbox on a free loopback port.

Import them from ``tests/conftest.py``::

    from sandbox_fixture import sandbox, sandbox_factory, sandbox_server  # noqa: F401

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

Every sandbox binds 127.0.0.1 on a port the OS picks, and the tests talk to it
over real HTTP, as the product talks to Partner Center.

tests/conftest.py imports these fixtures for the whole suite, and test modules
import its helpers; PYTEST_DONT_REWRITE keeps pytest from warning that it was
imported before it could rewrite its (helper-only) asserts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest

from bulkref.sandbox import SandboxOptions, SandboxServer

TOKEN = "sandbox-test-token"

#: One client for the whole run: creating an httpx client (its TLS context) costs
#: tens of milliseconds, which ``httpx.get()`` and friends pay on every call.
http = httpx.Client(timeout=10)


@dataclass
class Admin:
    """The sandbox's own routes under /_sandbox/ (not part of the emulated API)."""

    root: str
    #: Sent when the sandbox requires issued tokens (the admin routes then do too).
    token: str | None = None

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        response = http.request(method, f"{self.root}/_sandbox/{path}", json=body, headers=headers)
        response.raise_for_status()
        return response

    def reset(self) -> None:
        self._call("POST", "reset")

    def seed(self, docs: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """Store referrals as given (Incoming, Closed, old ones...), bypassing the rules."""
        payload = self._call("POST", "referrals", docs).json()
        return payload["value"] if isinstance(docs, list) else payload

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats").json()  # type: ignore[no-any-return]

    def set_faults(self, spec: str, seed: int | None = None) -> None:
        self._call("POST", "faults", {"faults": spec, "seed": seed})


@dataclass
class RunningSandbox:
    server: SandboxServer
    token: str = TOKEN
    admin: Admin = field(init=False)

    def __post_init__(self) -> None:
        self.admin = _admin(self.server)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/v1.0/engagements/referrals``."""
        return self.server.url

    @property
    def root(self) -> str:
        return self.server.root

    @property
    def options(self) -> SandboxOptions:
        return self.server.options

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 10)
        return httpx.Client(headers=self.headers, **kwargs)

    def restart(self) -> RunningSandbox:
        """Stop this sandbox and start a new one with the same options (and so the same --db)."""
        self.server.stop()
        options = replace(self.server.options, port=0)
        self.server = SandboxServer(options).start()
        self.admin = _admin(self.server)
        return self


def _admin(server: SandboxServer) -> Admin:
    token = server.admin_token if server.options.require_issued_tokens else None
    return Admin(server.root, token)


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


def referral_body(**changes: Any) -> dict[str, Any]:
    """A small valid body for POST /referrals; keyword arguments replace top-level fields."""
    body: dict[str, Any] = {
        "name": "Contoso ERP",
        "externalReferenceId": "CRM-1",
        "type": "Shared",
        "qualification": "SalesQualified",
        "customerProfile": {
            "name": "Contoso Ltd",
            "address": {"addressLine1": "1 Main St", "city": "Seattle", "country": "US"},
            "size": "51to500employees",
            "team": [{"firstName": "Sue", "lastName": "Smith", "email": "sue@contoso.com"}],
        },
        "consent": {
            "consentToToShareInfoWithOthers": True,
            "consentToContact": True,
            "consentToShareReferralWithMicrosoftSellers": True,
        },
        "details": {
            "notes": "",
            "dealValue": 50000,
            "currency": "USD",
            "closingDateTime": "2027-03-31T00:00:00Z",
        },
        "team": [{"firstName": "John", "lastName": "Doe", "email": "john@partner.example"}],
    }
    body.update(changes)
    return body
