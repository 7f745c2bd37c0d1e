"""``bulkref doctor``: the click layer over ``bulkref.plan.doctor`` (read-only preflight)."""

from __future__ import annotations

import json
import sys

import click


@click.command("doctor")
@click.option(
    "--api-url",
    envvar="BULKREF_API_URL",
    default=None,
    metavar="URL",
    help="The Referrals API (default: Partner Center; env BULKREF_API_URL).",
)
@click.option("--sandbox", "use_sandbox", is_flag=True, help="Check the embedded local sandbox.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="text (a summary) or json (for scripts; keys in docs/cli.md).",
)
def doctor(api_url: str | None, use_sandbox: bool, fmt: str) -> None:
    """Read-only preflight: the token, listing, the filters the service accepts, the page
    size and how plan and apply will read it. Exit 0 when it works, 1 when it works with
    warnings, 2 when it cannot work."""
    from bulkref import run_doctor

    found = run_doctor(api_url=api_url, sandbox=use_sandbox)
    if fmt == "json":
        click.echo(json.dumps(found.as_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(found.text())
    sys.exit(found.exit_code)
