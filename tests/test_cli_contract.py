"""docs/cli.md is the contract: every command and option that --help shows is on it,
and every command has a readable one-line summary and every option a help text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from bulkref.cli.main import cli

DOC = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")


def _commands(
    cmd: click.Command = cli, path: tuple[str, ...] = ("bulkref",)
) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), cmd
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd, info_name=path[-1])
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None
            yield from _commands(sub, (*path, name))


def _section(name: str) -> str:
    """The text under ``### <name>`` up to the next heading; the top of the page for ``bulkref``."""
    if name == "bulkref":
        return DOC.split("## Commands", 1)[0]
    match = re.search(rf"^### {re.escape(name)}\n(.*?)(?=^#{{1,3}} |\Z)", DOC, re.M | re.S)
    return match.group(1) if match else ""


COMMANDS = [(name, cmd) for name, cmd in _commands() if not isinstance(cmd, click.Group) or name == "bulkref"]


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_and_option_is_in_docs_cli_md(name: str, command: click.Command) -> None:
    section = _section(name)
    assert section, f"docs/cli.md has no '### {name}' section"
    missing = [
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in param.opts + param.secondary_opts
        if opt.startswith("--") and not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", section)
    ]
    assert missing == [], f"options of {name} missing from its section of docs/cli.md"


@pytest.mark.parametrize(("name", "command"), list(_commands()), ids=[n for n, _ in _commands()])
def test_every_command_has_a_summary_and_every_option_a_help_text(name: str, command: click.Command) -> None:
    summary = command.get_short_help_str(limit=80)
    assert name == "bulkref" or (summary and not summary.endswith("...")), (
        f"{name}: the one-line summary is cut: {summary!r}"
    )
    undocumented = [
        p.opts[0] for p in command.params if isinstance(p, click.Option) and not p.help and p.name != "help"
    ]
    assert undocumented == []


def test_the_top_level_help_lists_readable_summaries() -> None:
    text = cli.get_help(click.Context(cli, info_name="bulkref"))
    commands = text.split("Commands:", 1)[1]
    assert "..." not in commands
