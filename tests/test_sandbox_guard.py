"""The sandbox guards itself: admin routes refuse other origins and foreign Host names
and need an issued token under require_issued_tokens; fault settings round-trip; its
temporary folders go when it stops."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from helpers import RunningSandbox, http, referral_body

from bulkref.sandbox import SandboxOptions, SandboxServer
from bulkref.sandbox.options import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_TENANT_ID

Factory = Callable[..., RunningSandbox]


def referrals(running: RunningSandbox) -> int:
    return int(running.admin.stats()["referrals"])


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Host": "evil.example"},
        {"Host": "127.0.0.1.evil.example:8765"},
    ],
)
def test_admin_routes_refuse_other_origins_and_foreign_hosts(
    sandbox: RunningSandbox, headers: dict[str, str]
) -> None:
    sandbox.admin.seed(referral_body())
    for method, path in (("POST", "reset"), ("POST", "referrals"), ("GET", "stats"), ("POST", "faults")):
        body = referral_body() if path == "referrals" else {"faults": "500=1"} if path == "faults" else None
        response = http.request(method, f"{sandbox.root}/_sandbox/{path}", json=body, headers=headers)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "accessDenied"
    assert referrals(sandbox) == 1  # nothing reset, nothing seeded
    assert http.get(sandbox.url, headers=sandbox.headers).status_code == 200  # no fault was set


def test_admin_routes_answer_their_own_origin_and_loopback_names(sandbox: RunningSandbox) -> None:
    port = httpx.URL(sandbox.root).port
    own = {"Origin": sandbox.root, "Sec-Fetch-Site": "same-origin"}
    assert (
        http.post(f"{sandbox.root}/_sandbox/referrals", json=referral_body(), headers=own).status_code == 201
    )
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert http.get(f"{sandbox.root}/_sandbox/stats", headers={"Host": host}).status_code == 200
    assert http.post(f"{sandbox.root}/_sandbox/reset", headers=own).status_code == 204
    assert referrals(sandbox) == 0


def test_admin_routes_need_an_issued_token_when_tokens_are_required(sandbox_factory: Factory) -> None:
    strict = sandbox_factory(require_issued_tokens=True)
    stats = f"{strict.root}/_sandbox/stats"
    refused = http.get(stats)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthenticated"
    assert http.get(stats, headers={"Authorization": "Bearer forged"}).status_code == 401
    assert (
        http.post(f"{strict.root}/_sandbox/reset", headers={"Authorization": "Bearer x"}).status_code == 401
    )
    assert http.get(f"{strict.root}/_sandbox/health").status_code == 200  # the readiness probe stays open
    issued = http.post(
        f"{strict.root}/{SANDBOX_TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
            "scope": "https://api.partner.microsoft.com/.default",
        },
    )
    assert issued.status_code == 200, issued.text
    token = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert http.get(stats, headers=token).status_code == 200
    assert http.post(f"{strict.root}/_sandbox/reset", headers=token).status_code == 204


def test_fault_settings_round_trip(sandbox_factory: Factory) -> None:
    running = sandbox_factory()
    faults = f"{running.root}/_sandbox/faults"
    spec = "429=0.25,503=0.1,reset=0.05,commit-then-500=0.2,latency=5ms,retry-after=7"
    set_answer = http.post(faults, json={"faults": spec, "seed": 3}).json()
    shown = http.get(faults).json()
    assert shown == set_answer and shown["seed"] == 3 and "retry-after=7" in shown["faults"]
    assert http.post(faults, json=shown).json() == shown  # posting back what GET shows changes nothing
    assert http.get(faults).json() == shown
    # retry-after is in force, not only shown.
    http.post(faults, json={"faults": "429=1,retry-after=7", "seed": 1})
    assert http.get(running.url, headers=running.headers).headers["retry-after"] == "7"
    http.post(faults, json=http.get(faults).json())
    assert http.get(running.url, headers=running.headers).headers["retry-after"] == "7"
    # No faults round-trips too.
    http.post(faults, json={"faults": "", "seed": None})
    none = http.get(faults).json()
    assert http.post(faults, json=none).status_code == 200 and http.get(faults).json() == none
    assert http.get(running.url, headers=running.headers).status_code == 200


def test_a_non_loopback_host_needs_allow_remote() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        SandboxOptions(host="0.0.0.0")
    with pytest.raises(ValueError, match="allow_remote"):
        SandboxOptions(host="127.0.0.1.evil.example")
    assert SandboxOptions(host="0.0.0.0", allow_remote=True).allow_remote


def test_the_tls_folder_is_removed_when_the_server_stops() -> None:
    server = SandboxServer(SandboxOptions(port=0, tls=True)).start()
    assert server.ca_file is not None
    folder = Path(server.ca_file).parent
    assert folder.is_dir()
    server.stop()
    assert not folder.exists()


@pytest.mark.slow
def test_the_tls_folder_is_removed_when_the_process_exits_without_stopping() -> None:
    script = (
        "from bulkref.sandbox import SandboxOptions, SandboxServer\n"
        "server = SandboxServer(SandboxOptions(port=0, tls=True)).start()\n"
        "print(server.ca_file, flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ca_file = Path(done.stdout.strip())
    assert ca_file.name == "sandbox-ca.pem" and not ca_file.parent.exists()


@pytest.mark.slow
def test_the_command_removes_its_tls_folder_on_exit() -> None:
    flags = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt" else {}
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkref.sandbox", "--port", "0", "--tls"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **flags,  # type: ignore[call-overload]
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        found = re.search(r"TLS certificate authority: (\S+sandbox-ca\.pem)", "".join(lines))
        assert found, lines
        folder = Path(found.group(1)).parent
        assert folder.is_dir()
        process.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGTERM)  # type: ignore[attr-defined]
        process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not folder.exists()
