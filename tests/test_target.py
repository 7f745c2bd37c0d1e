"""Which API a command talks to: flags, environment, credentials and the embedded sandbox."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import referral_body

from bulkref.api.client import RetryPolicy, Unreachable
from bulkref.api.target import (
    PARTNER_CENTER_URL,
    BadTarget,
    NoCredentials,
    Target,
    data_dir,
    resolve,
)

FAST = RetryPolicy(attempts=2, base=0.01, cap=0.02)


def home(tmp_path: Path) -> dict[str, str]:
    return {"BULKREF_HOME": str(tmp_path / "home")}


async def ids_of(target: Target) -> list[str]:
    async with target.client(retry=FAST) as api:
        return [r["id"] async for r in api.list()]


def test_both_sandbox_and_api_url_is_a_usage_error() -> None:
    with pytest.raises(BadTarget) as caught:
        resolve("https://example.com/v1.0/engagements/referrals", True, env={})
    assert caught.value.exit_code == 2 and "--sandbox" in str(caught.value)


def test_the_flag_then_the_environment_then_partner_center() -> None:
    env = {"BULKREF_API_URL": "https://pc.example/v1.0/engagements/referrals/"}
    assert resolve(None, False, env).url == "https://pc.example/v1.0/engagements/referrals"
    assert resolve("https://other.example/x", False, env).url == "https://other.example/x"
    assert resolve(None, False, {"BULKREF_API_URL": " "}).url == PARTNER_CENTER_URL
    default = resolve(None, False, {})
    assert (default.url, default.is_sandbox) == (PARTNER_CENTER_URL, False)
    assert default.describe() == f"Partner Center ({PARTNER_CENTER_URL})"
    # The address `bulkref sandbox` prints without its path still means the collection.
    assert (
        resolve("http://127.0.0.1:8765", False, {}).url == "http://127.0.0.1:8765/v1.0/engagements/referrals"
    )


@pytest.mark.parametrize(
    "url", ["ftp://pc.example/x", "not a url", "http://pc.example/v1.0/engagements/referrals"]
)
def test_unusable_urls_are_refused_with_the_flag_named(url: str) -> None:
    with pytest.raises(BadTarget) as caught:
        resolve(None, False, {"BULKREF_API_URL": url})
    assert caught.value.exit_code == 2 and "BULKREF_API_URL" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1.evil.example/v1.0/engagements/referrals",
        "http://localhost.evil.example:8765",
        "http://127.example",
        "http://10.0.0.1:8765",
        "http://[::ffff:8.8.8.8]:8765",
    ],
)
def test_plain_http_is_only_for_real_loopback_addresses(url: str) -> None:
    with pytest.raises(BadTarget, match="plain http"):
        resolve(url, False, {})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1",
        "http://127.9.8.7:1",
        "http://localhost:1",
        "http://[::1]:1",
        "http://LOCALHOST:1",
    ],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert resolve(url, False, {}).url.startswith("http://")


def test_no_token_for_a_real_service_is_an_exit_2_error(tmp_path: Path) -> None:
    env: dict[str, str] = home(tmp_path)  # no bulkref login there
    target = resolve(None, False, env)
    with pytest.raises(NoCredentials) as caught:
        target.token()
    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        f"No credentials for {PARTNER_CENTER_URL}: run `bulkref login` (or set "
        "BULKREF_ACCESS_TOKEN), or use --sandbox to rehearse locally."
    )
    env["BULKREF_ACCESS_TOKEN"] = "eyJ.token"  # read at each call, as a refreshed token would be
    assert target.token() == "eyJ.token"


def test_a_client_without_credentials_stops_before_sending_anything(tmp_path: Path) -> None:
    target = resolve("https://pc.example/v1.0/engagements/referrals", False, home(tmp_path))

    async def go() -> None:
        async with target.client(transport=httpx.MockTransport(lambda r: pytest.fail("sent"))) as api:
            await api.get("x")

    with pytest.raises(NoCredentials):
        asyncio.run(go())


def test_the_sandbox_keeps_its_state_in_bulkref_home_between_commands(tmp_path: Path) -> None:
    env = home(tmp_path)
    db = tmp_path / "home" / "sandbox.db"
    with resolve(None, True, env) as first:
        assert first.is_sandbox and first.describe() == f"local sandbox (state in {db})"
        assert first.token() == "sandbox"
        created = httpx.post(first.url, json=referral_body(), headers={"Authorization": "Bearer sandbox"})
        assert created.status_code == 201
        url = first.url
    assert db.exists()

    async def stopped() -> None:
        async with httpx.AsyncClient() as plain:
            await plain.get(url)

    with pytest.raises(httpx.ConnectError):  # the server ended with the command
        asyncio.run(stopped())
    with resolve(None, True, env) as second:
        assert asyncio.run(ids_of(second)) == [created.json()["id"]]


def test_two_sandbox_commands_at_once_share_one_state(tmp_path: Path) -> None:
    env = home(tmp_path)
    with resolve(None, True, env) as one, resolve(None, True, env) as other:
        assert one.url != other.url
        made = httpx.post(one.url, json=referral_body(), headers={"Authorization": "Bearer x"}).json()
        assert asyncio.run(ids_of(other)) == [made["id"]]


def test_a_sandbox_url_exists_only_while_it_runs(tmp_path: Path) -> None:
    target = resolve(None, True, home(tmp_path))
    with pytest.raises(RuntimeError):
        _ = target.url
    with target:
        url = target.url

    async def after() -> Any:
        async with Target(url, env={"BULKREF_ACCESS_TOKEN": "t"}).client(retry=FAST) as api:
            return await api.get("x")

    with pytest.raises(Unreachable):
        asyncio.run(after())


def test_the_data_directory_defaults_to_the_users_data_dir() -> None:
    assert data_dir({"BULKREF_HOME": "~/somewhere"}) == Path.home() / "somewhere"
    assert data_dir({}).name == "bulkref"


@pytest.mark.slow
def test_a_real_target_does_not_import_the_sandbox() -> None:
    code = (
        "import sys; from bulkref.api.target import resolve; t = resolve(None, False, {}); "
        "t.__enter__(); t.__exit__(); assert 'bulkref.sandbox' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
