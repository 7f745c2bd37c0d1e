"""Every command the guide shows with its output runs, and prints what the guide says.

A ``console`` block in ``docs/*.md`` (or the README) holds ``$ command`` lines, each
followed by the output it prints. The comment ``<!-- example: NAME -->`` just above
it names the situation it runs in: a function below that lays out the files and the
sandbox's state in a fresh folder. The test runs each command there, as a user's
shell would (the installed ``bulkref`` on PATH, its own data directory), and
compares what it prints, stdout and stderr together, with the block. What differs
from one run to the next (ids, times, fingerprints, ports, the data directory) is
put in the same words on both sides first. The README's main job is checked the
same way, from its own command line.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openpyxl
import pytest
from helpers import referral_body

import bulkref
from bulkref.sandbox import SandboxOptions, SandboxServer

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
BIN = Path(sys.executable).parent
#: What the guide shows as the data directory (Linux's default) and a bench's paths.
SHOWN_HOMES = ("/home/you/.local/share/bulkref", "/home/ann/.local/share/bulkref")

EXAMPLE = re.compile(r"<!-- example: ([a-z0-9-]+) -->\n```console\n(.*?)```", re.S)
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```", re.S | re.M)


@dataclass
class Situation:
    """Where a block's commands run, and what its text says differently from this run."""

    cwd: Path
    env: dict[str, str]
    #: Text of the page -> text of this run, in the commands (an id, a port).
    replace: dict[str, str] = field(default_factory=dict)


def _env(tmp: Path) -> dict[str, str]:
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "BULKREF_HOME": str(tmp / "home"),
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "SYSTEMROOT": os.environ.get("SYSTEMROOT", ""),
    }


def _applied(situation: Situation, sheet: str, results: str | None = None) -> None:
    """``bulkref apply SHEET --sandbox --yes`` done beforehand, through the library: a command's
    start-up costs seconds, and the state it leaves is the same."""
    saved = os.environ.get("BULKREF_HOME")
    os.environ["BULKREF_HOME"] = situation.env["BULKREF_HOME"]
    try:
        run = bulkref.apply_input(
            situation.cwd / sheet,
            sandbox=True,
            results=situation.cwd / results if results else None,
            confirm=lambda plan, resumed: True,
        )
    finally:
        if saved is None:
            del os.environ["BULKREF_HOME"]
        else:
            os.environ["BULKREF_HOME"] = saved
    assert run.summary["failed"] == 0, run.summary


def _sheet(tmp: Path, name: str, edit: Callable[[openpyxl.worksheet.worksheet.Worksheet], None]) -> None:
    """The example workbook, changed by ``edit`` (its headers by name), saved as ``name``."""
    book = openpyxl.load_workbook(ROOT / "examples" / "referrals.xlsx")
    edit(book["Referrals"])
    book.save(tmp / name)


def _column(sheet: openpyxl.worksheet.worksheet.Worksheet, header: str) -> int:
    return next(c.column for c in sheet[1] if c.value == header)


def _set(sheet: openpyxl.worksheet.worksheet.Worksheet, row: int, header: str, value: object) -> None:
    sheet.cell(row, _column(sheet, header)).value = value


@contextmanager
def _stored_sandbox(situation: Situation) -> Iterator[SandboxServer]:
    """The embedded sandbox's stored state, served for a moment to read or change it between
    two commands."""
    db = Path(situation.env["BULKREF_HOME"]) / "sandbox.db"
    server = SandboxServer(SandboxOptions(host="127.0.0.1", port=0, db=db)).start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- the situations


def main_job(tmp: Path) -> Iterator[Situation]:
    (tmp / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "referrals.xlsx", tmp / "examples")
    yield Situation(tmp, _env(tmp))


def main_job_again(tmp: Path) -> Iterator[Situation]:
    for situation in main_job(tmp):
        (tmp / "out").mkdir()
        results = "out/referrals.results.xlsx"
        _applied(situation, "examples/referrals.xlsx", results)
        yield situation


def broken(tmp: Path) -> Iterator[Situation]:
    def edit(sheet: openpyxl.worksheet.worksheet.Worksheet) -> None:
        extra = sheet.max_column + 1
        sheet.cell(1, extra).value = "Favourite colour"
        sheet.cell(2, extra).value = "teal"
        _set(sheet, 2, "Substatus", "Won")
        _set(sheet, 3, "Country *", "Germny")
        _set(sheet, 5, "Customer Contact 1 Email", "bob@@x")

    _sheet(tmp, "broken.xlsx", edit)
    yield Situation(tmp, _env(tmp))


def plan_review(tmp: Path) -> Iterator[Situation]:
    """Three of the example's deals in Partner Center; the sheet then moves a customer, changes
    a deal value and withdraws a co-sell, and brings two new deals."""
    situation = Situation(tmp, _env(tmp))
    _sheet(tmp, "first.xlsx", lambda sheet: sheet.delete_rows(5, 2))
    _applied(situation, "first.xlsx")

    def edit(sheet: openpyxl.worksheet.worksheet.Worksheet) -> None:
        _set(sheet, 3, "City *", "Tacoma")
        _set(sheet, 3, "Deal Value *", 75000)
        _set(sheet, 4, "Deal Type *", "Partner-led")
        _set(sheet, 4, "Help Needed", None)

    _sheet(tmp, "deals.xlsx", edit)
    yield situation


def exported(tmp: Path) -> Iterator[Situation]:
    """The example's five deals (eight referrals) in the embedded sandbox."""
    situation = Situation(tmp, _env(tmp))
    shutil.copy(ROOT / "examples" / "referrals.xlsx", tmp)
    _applied(situation, "referrals.xlsx")
    (tmp / "referrals.xlsx").unlink()
    (tmp / "referrals.results.xlsx").unlink()
    # The export is named after the day it is made.
    situation.replace["referrals-export-2026-11-21"] = f"referrals-export-{dt.date.today().isoformat()}"
    yield situation


def get_one(tmp: Path) -> Iterator[Situation]:
    for situation in exported(tmp):
        with _stored_sandbox(situation) as server:
            query = {"$filter": "externalReferenceId eq 'CRM-000103'"}
            found = httpx.get(server.url, params=query, headers={"Authorization": "Bearer docs"}).json()
        situation.replace["2907754b-999f-480c-8ff5-682324133d3e"] = found["value"][0]["id"]
        yield situation


def legacy(tmp: Path) -> Iterator[Situation]:
    shutil.copytree(ROOT / "examples" / "legacy", tmp / "examples" / "legacy")
    yield Situation(tmp, _env(tmp))


def salesforce_unmapped(tmp: Path) -> Iterator[Situation]:
    """The Salesforce example's mapping before 'Closed Lost' was added to its stages."""
    legacy_dir = ROOT / "examples" / "legacy"
    shutil.copy(legacy_dir / "salesforce-opportunities.xlsx", tmp)
    text = (legacy_dir / "salesforce-opportunities.mapping.toml").read_text(encoding="utf-8")
    unmapped = re.sub(r',?\s*"Closed Lost" = "[^"]*"', "", text)
    assert unmapped != text
    (tmp / "salesforce.mapping.toml").write_text(unmapped, encoding="utf-8")
    yield Situation(tmp, _env(tmp))


def salesforce_typo(tmp: Path) -> Iterator[Situation]:
    legacy_dir = ROOT / "examples" / "legacy"
    shutil.copy(legacy_dir / "salesforce-opportunities.xlsx", tmp)
    text = (legacy_dir / "salesforce-opportunities.mapping.toml").read_text(encoding="utf-8")
    typo = text.replace('"Close Date"', '"Close Dte"', 1)
    assert typo != text
    (tmp / "sf.toml").write_text(typo, encoding="utf-8")
    yield Situation(tmp, _env(tmp))


def partner_center_csv(tmp: Path) -> Iterator[Situation]:
    """Partner Center's own co-sell CSV, as its bulk upload's template lays it out."""
    shutil.copy(ROOT / "tests" / "data" / "partner-center-cosell.csv", tmp / "cosell-deals.csv")
    yield Situation(tmp, _env(tmp))


def _jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


def doctor_documented(tmp: Path) -> Iterator[Situation]:
    """A sandbox as strict as the documentation, holding 60 referrals, and a token for Ann."""
    server = SandboxServer(
        SandboxOptions(host="127.0.0.1", port=0, profile="documented", page_size=25)
    ).start()
    try:
        body = [referral_body(externalReferenceId=f"CRM-{i}") for i in range(60)]
        httpx.post(f"{server.root}/_sandbox/referrals", json=body, timeout=10).raise_for_status()
        claims = {
            "aud": "https://api.partner.microsoft.com",
            "exp": int(time.time()) + 3600,
            "upn": "ann@contoso.example",
            "roles": ["Referrals Admin"],
        }
        env = {**_env(tmp), "BULKREF_ACCESS_TOKEN": _jwt(claims)}
        yield Situation(tmp, env, {"http://127.0.0.1:8791": server.root})
    finally:
        server.stop()


def sandbox_server(tmp: Path) -> Iterator[Situation]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield Situation(tmp, _env(tmp), {"--port 8765": f"--port {port}"})


SITUATIONS: dict[str, Callable[[Path], Iterator[Situation]]] = {
    "main-job": main_job,
    "main-job-again": main_job_again,
    "broken": broken,
    "plan-review": plan_review,
    "export": exported,
    "get": get_one,
    "legacy": legacy,
    "salesforce-unmapped": salesforce_unmapped,
    "salesforce-typo": salesforce_typo,
    "doctor-documented": doctor_documented,
    "sandbox-server": sandbox_server,
    "partner-center-csv": partner_center_csv,
}
#: Commands that serve until stopped: their first lines are read, then they are stopped.
SERVES = ("bulkref sandbox",)


# --------------------------------------------------------------------------- reading and comparing


def _same_words(text: str, home: str) -> str:
    """What differs between runs, in the same words on both sides."""
    for shown in (home, *SHOWN_HOMES):
        text = text.replace(shown, "<data>")
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?", "<time>", text)
    text = re.sub(r"\d{4}-\d\d-\d\d", "<date>", text)
    text = re.sub(r"<date>_\d{6}", "<date>_<time>", text)
    text = re.sub(r"sha256 [0-9a-f]{12}", "sha256 <hash>", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    text = re.sub(r"\bin \d+(\.\d+)?s\b", "in <n>s", text)
    text = re.sub(r"\(\d+(\.\d+)? (rows|referrals)/s\)", r"(<n> \2/s)", text)
    # How fast the sandbox's listing showed this run's creates: said only when it was measured.
    text = re.sub(r"(?m)^Partner Center's listing showed new referrals within .*\n?", "", text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _commands(block: str) -> list[tuple[str, str]]:
    """The block's ``$`` commands, each with the output shown under it."""
    steps: list[tuple[str, str]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], ""))
        elif steps:
            steps[-1] = (steps[-1][0], steps[-1][1] + line + "\n")
        else:
            pytest.fail(f"output before the first $ command: {line!r}")
    return [(command, output.strip("\n")) for command, output in steps]


def _run(command: str, situation: Situation, shown: str) -> str:
    for page_text, run_text in situation.replace.items():
        command = command.replace(page_text, run_text)
    if command.startswith(SERVES):
        return _first_lines(command, situation, len(shown.splitlines()))
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=situation.cwd,
        env=situation.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=180,
    )
    return done.stdout.decode("utf-8")


def _first_lines(command: str, situation: Situation, count: int) -> str:
    server = subprocess.Popen(
        command.split(),
        cwd=situation.cwd,
        env=situation.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert server.stdout is not None
        return "".join(server.stdout.readline().decode("utf-8") for _ in range(count))
    finally:
        # Only what it printed is the example's: tests/test_sandbox_cli.py checks how it stops.
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _examples() -> list[tuple[str, str, str]]:
    found = []
    for page in PAGES:
        for number, (name, block) in enumerate(EXAMPLE.findall(page.read_text(encoding="utf-8")), 1):
            found.append((f"{page.name}#{number}:{name}", name, block))
    return found


EXAMPLES = _examples()


@pytest.mark.parametrize(("name", "block"), [e[1:] for e in EXAMPLES], ids=[e[0] for e in EXAMPLES])
def test_the_example_prints_what_the_guide_shows(name: str, block: str, tmp_path: Path) -> None:
    assert name in SITUATIONS, f"no situation named {name!r} in {__file__}"
    for situation in SITUATIONS[name](tmp_path):
        home = situation.env["BULKREF_HOME"]
        for command, shown in _commands(block):
            if command.startswith("cd "):
                situation.cwd = situation.cwd / command[3:]
                continue
            printed = _run(command, situation, shown)
            assert _same_words(printed, home) == _same_words(shown, home), f"$ {command}\n{printed}"


def test_every_command_shown_with_output_is_an_example() -> None:
    """A ``$ bulkref`` line outside a checked block would be output nobody checks."""
    unchecked = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        checked = {block for _, block in EXAMPLE.findall(text)}
        for kind, block in FENCE.findall(text):
            shows = any(line.startswith(("$ bulkref", "$ cd")) for line in block.splitlines())
            if shows and (kind != "console" or block not in checked):
                unchecked.append(f"{page.name}: {block.splitlines()[0]}")
    assert unchecked == []
    assert {name for _, name, _ in EXAMPLES} == set(SITUATIONS), "situations no example uses, or the reverse"


def test_the_readme_s_main_job_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """The README's one-line main job, less its set-up (this venv is set up), run as it is."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("**Run the main job**", 1)[1]
    (_, line), (_, shown) = FENCE.findall(section)[:2]
    setup = "python3 -m venv .venv && .venv/bin/pip install -q -e . && "
    assert line.startswith(setup)
    command = line.strip()[len(setup) :].replace(".venv/bin/", "")
    situation = next(main_job(tmp_path))
    printed = _run(command, situation, shown)
    home = situation.env["BULKREF_HOME"]
    assert _same_words(printed, home) == _same_words(shown, home), printed
    assert (tmp_path / "out" / "referrals.results.xlsx").is_file()


def test_the_readme_s_test_command_is_the_one_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("**Run the tests**", 1)[1]
    line = FENCE.findall(section)[0][1].strip()
    assert line == "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest -q"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test" in ci
    assert "\n.venv/bin/pytest -q" in ci
