"""bulkref doctor: a read-only preflight, over loopback against the sandbox."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import RunningSandbox, referral_body

from bulkref.cli.main import cli
from bulkref.plan.doctor import describe_token, token_claims

Factory = Callable[..., RunningSandbox]


def jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.signature-s3cr3t"


def doctor(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["doctor", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return {"BULKREF_HOME": str(tmp_path / "home")}


ADMIN = {
    "aud": "https://api.partner.microsoft.com",
    "exp": int(time.time()) + 3600,
    "upn": "ann@contoso.example",
    "tid": "tenant-1",
    "roles": ["Referrals Admin"],
}


def test_the_documented_service_is_scanned_and_said_so(
    sandbox_factory: Factory, home: dict[str, str]
) -> None:
    running = sandbox_factory(profile="documented", page_size=25)
    running.admin.seed([referral_body(externalReferenceId=f"CRM-{i}") for i in range(60)])
    token = jwt(ADMIN)
    code, out, _ = doctor(
        {**home, "BULKREF_ACCESS_TOKEN": token}, "--api-url", running.url, "--format", "json"
    )
    found = json.loads(out)
    assert code == 1  # it works, but every look-up is a scan
    assert found["listing"] == {"works": True, "error": None, "status": 200, "visible": 60, "pageSize": 25}
    assert found["filters"] == {
        "externalReferenceId": "refused",
        "id": "refused",
        "engagementId": "accepted",
        "or": "refused",
    }
    assert found["orderby"] == "accepted" and found["strategy"]["auto"] == "scan"
    assert found["token"]["account"] == "ann@contoso.example" and found["token"]["roles"] == [
        "Referrals Admin"
    ]
    assert any("one paged listing" in w for w in found["warnings"]) and found["problems"] == []
    assert token not in out and "s3cr3t" not in out


def test_a_filtering_sandbox_works_without_warnings_and_names_the_limit(
    sandbox_factory: Factory, home: dict[str, str]
) -> None:
    running = sandbox_factory(page_size=10)
    running.admin.seed([referral_body(externalReferenceId=f"CRM-{i}") for i in range(95)])
    code, out, _ = doctor({**home, "BULKREF_ACCESS_TOKEN": jwt(ADMIN)}, "--api-url", running.url)
    assert code == 0, out
    assert "95 referrals visible, pages of 10" in out
    assert "Filter or: accepted" in out
    # 10 pages: up to 450 ids (225 rows, each with a Referral ID and an External Reference ID) filtered.
    assert "filtered look-ups for sheets of up to 225 rows" in out


def test_the_embedded_sandbox_is_fine(home: dict[str, str]) -> None:
    code, out, _ = doctor(home, "--sandbox", "--format", "json")
    found = json.loads(out)
    assert code == 0 and found["exitCode"] == 0 and found["target"]["kind"] == "sandbox"
    assert found["token"]["kind"] == "sandbox" and found["listing"]["works"] is True


def test_a_referrals_user_or_an_unreadable_token_is_warned_about(
    sandbox_factory: Factory, home: dict[str, str]
) -> None:
    running = sandbox_factory()
    user = jwt({**ADMIN, "roles": ["Referrals User"]})
    code, out, _ = doctor({**home, "BULKREF_ACCESS_TOKEN": user}, "--api-url", running.url)
    assert code == 1 and "Referrals User" in out and "see only referrals whose team includes them" in out
    code, out, _ = doctor({**home, "BULKREF_ACCESS_TOKEN": "opaque-token"}, "--api-url", running.url)
    assert code == 1 and "cannot be told" in out and "opaque-token" not in out


def test_a_service_that_cannot_be_reached_or_no_token_exits_2(home: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    url = f"http://127.0.0.1:{port}/v1.0/engagements/referrals"
    code, out, err = doctor(
        {**home, "BULKREF_ACCESS_TOKEN": jwt(ADMIN)}, "--api-url", url, "--format", "json"
    )
    assert code == 2 and json.loads(out)["problems"] and "Traceback" not in err
    code, out, err = doctor({**home, "BULKREF_ACCESS_TOKEN": ""}, "--api-url", url)
    assert code == 2 and "Problem:" in out


def test_token_claims_are_read_without_verifying_and_an_expired_token_warns() -> None:
    assert token_claims("not-a-jwt") is None and token_claims("a.%%%.c") is None
    info, warnings = describe_token(
        jwt({**ADMIN, "exp": 1, "aud": "https://graph.microsoft.com"}), sandbox=False
    )
    assert info["expires"] == "1970-01-01T00:00:01Z" and info["audience"] == "https://graph.microsoft.com"
    assert any("expired" in w for w in warnings) and any("not Partner Center" in w for w in warnings)
