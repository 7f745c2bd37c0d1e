"""``bulkref sandbox``: the click command, run as a user would."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from bulkref.sandbox.command import sandbox as sandbox_command

LINE = re.compile(
    r"^Sandbox listening on (http://127\.0\.0\.1:(\d+)/v1\.0/engagements/referrals) "
    r"\(state: (.+)\)$"
)


@contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[str], re.Match[str]]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkref.sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        match = LINE.match(line)
        assert match, (line, process.stderr.read() if process.poll() is not None and process.stderr else "")
        yield process, match
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_starts_serves_logs_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with running() as (process, match):
        url = match.group(1)
        assert match.group(3) == "memory"
        token = "super-secret-token-value"
        response = httpx.post(
            url, headers={"Authorization": f"Bearer {token}"}, json={"type": "Shared"}, timeout=10
        )
        assert response.status_code == 400
        request_id = response.headers["request-id"]
        listed = httpx.get(
            url,
            params={"$filter": "team/any(t:t/email eq 'r2d2@contoso.com')"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert listed.status_code == 200
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
        assert process.returncode == 0
    log = [line for line in stderr.splitlines() if request_id in line]
    assert len(log) == 1
    assert "POST /v1.0/engagements/referrals 400" in log[0]
    assert token not in stderr and "Shared" not in stderr  # never tokens, never bodies
    assert "r2d2" not in stderr and "GET /v1.0/engagements/referrals?... 200" in stderr  # nor filters
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_db_state_is_named_on_start(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    with running(
        "--db", str(db), "--seed", "3", "--faults", "500=0.5", "--rate-limit", "50", "--page-size", "5"
    ) as (process, match):
        assert match.group(3) == str(db)
        process.terminate()
        process.wait(timeout=15)
    assert db.exists()


def test_bad_faults_are_a_usage_error() -> None:
    result = CliRunner().invoke(sandbox_command, ["--faults", "429=lots"])
    assert result.exit_code == 2
    assert "--faults" in result.output and "probability" in result.output


def test_port_in_use_is_one_sentence_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(sandbox_command, ["--port", str(port)])
    assert result.exit_code == 2
    assert f"Port {port} on 127.0.0.1 is in use" in result.output
    assert "Traceback" not in result.output


def test_help_lists_every_option() -> None:
    result = CliRunner().invoke(sandbox_command, ["--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--db", "--seed", "--faults", "--rate-limit", "--page-size"):
        assert option in result.output


def test_a_non_loopback_host_needs_allow_remote_and_is_warned_about() -> None:
    from bulkref.sandbox.options import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert is_loopback("127.4.5.6") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.10")
    assert not is_loopback("127.0.0.1.evil.example") and not is_loopback("localhost.evil.example")
    # Refused, in one sentence, before anything is bound.
    refused = CliRunner().invoke(sandbox_command, ["--host", "0.0.0.0", "--port", "0"], env={**os.environ})
    assert refused.exit_code == 2 and "--allow-remote" in refused.output
    assert refused.output.count(". ") == 0 and "Traceback" not in refused.output
    # Allowed: an address this machine does not have fails to bind, after the warning, without a traceback.
    result = CliRunner().invoke(
        sandbox_command, ["--host", "192.0.2.10", "--allow-remote", "--port", "0"], env={**os.environ}
    )
    assert "Warning: listening on 192.0.2.10" in result.output
    assert result.exit_code == 2 and "Cannot listen on 192.0.2.10" in result.output
