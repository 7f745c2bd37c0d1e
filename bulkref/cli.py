"""The ``bulkref`` command: a thin click layer over the library.

Exit codes (shared/docs/cli.md): 0 all good; 1 the input was read but some
rows are invalid or some calls failed; 2 the command could not do its job.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from bulkref import __version__
from bulkref.errors import BulkrefError


class _Group(click.Group):
    """Turns bulkref's errors into one sentence on stderr and the contract's exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BulkrefError as e:
            if ctx.meta.get("debug"):
                raise
            click.echo(f"bulkref: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("bulkref: interrupted.", err=True)
            sys.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as e:
            if ctx.meta.get("debug"):
                raise
            click.echo(f"bulkref: unexpected error ({type(e).__name__}: {e}). "
                       "Run again with --debug for details and report it.", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bulkref")
@click.option("--debug", is_flag=True, help="Show Python tracebacks (for bug reports).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Bulk-import referrals (leads, co-sell opportunities) into Partner Center
    from a spreadsheet: template -> validate -> plan -> apply."""
    ctx.meta["debug"] = debug


@cli.command()
@click.argument("out", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default=None,
              help="xlsx (guided workbook, the default) or csv (header row only).")
@click.option("--examples", is_flag=True, help="Fill a few example rows (Private, Partner-led, "
              "Co-sell, Services co-sell, shared with a partner).")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
def template(out: Path | None, fmt: str | None, examples: bool, force: bool) -> None:
    """Write the fill-in template (default ./referrals-template.xlsx)."""
    from bulkref.template import write_template

    if fmt is None:
        fmt = "csv" if out is not None and out.suffix.lower() == ".csv" else "xlsx"
    out = out or Path(f"referrals-template.{fmt}")
    if out.exists() and not force:
        raise BulkrefError(f"{out} already exists: choose another name, or add --force to replace it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    written = write_template(out, fmt=fmt, examples=examples)
    click.echo(f"Wrote {written}")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="text for people, json for scripts.")
@click.option("--annotate", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a copy of the sheet with bad cells highlighted and commented.")
@click.option("--sheet", default=None, help="The sheet to read (default: Referrals, or the first).")
def validate(file: Path, fmt: str, annotate: Path | None, sheet: str | None) -> None:
    """Check every row of FILE and report each problem by sheet, row and column.

    Nothing is sent anywhere. Exit 0 when valid, 1 when some rows are invalid,
    2 when the file cannot be read."""
    from bulkref.check import check_file
    from bulkref.render import validation_text

    result = check_file(file, sheet=sheet)
    annotated = None
    if annotate is not None:
        from bulkref.annotate import annotate as write_annotated

        annotated = write_annotated(result, annotate)
    if fmt == "json":
        doc = result.report.as_json()
        if annotated is not None:
            doc["annotated"] = str(annotated)
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(validation_text(result.report, str(file), result.table.sheet))
        if annotated is not None:
            click.echo(f"Annotated copy: {annotated}")
    sys.exit(0 if result.valid else 1)


def _target_options(f: Callable[..., None]) -> Callable[..., None]:
    f = click.option("--api-url", envvar="BULKREF_API_URL", default=None, metavar="URL",
                     help="The Referrals API (default: Partner Center; env BULKREF_API_URL).")(f)
    return click.option("--sandbox", "use_sandbox", is_flag=True,
                        help="Use the embedded local sandbox (state kept in your data directory).")(f)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@_target_options
@click.option("--offline", is_flag=True, help="Do not read Partner Center: plan every row as new.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the plan (with the eTags read and the input's fingerprint) for apply.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text",
              help="text (a review), json (for scripts) or html (one page for a reviewer).")
@click.option("--sheet", default=None, help="The sheet to read (default: Referrals, or the first).")
def plan(file: Path, api_url: str | None, use_sandbox: bool, offline: bool, out: Path | None, fmt: str,
         sheet: str | None) -> None:
    """Dry run: what apply would do for each row of FILE. Reads Partner Center,
    writes nothing there. Exit 0 when every row can be applied, 1 when some
    rows are invalid or blocked, 2 when the file or the API cannot be used."""
    from bulkref.planning import make_plan

    result = make_plan(file, api_url=api_url, sandbox=use_sandbox, offline=offline, sheet=sheet)
    if out is not None:
        result.save(out)
    if fmt == "json":
        click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2, default=str))
    elif fmt == "html":
        from bulkref.review import plan_html

        click.echo(plan_html(result))
    else:
        from bulkref.review import plan_text

        click.echo(plan_text(result, color=sys.stdout.isatty()))
        if out is not None:
            click.echo(f"Plan saved to {out}.")
    summary = result.summary
    sys.exit(1 if summary["invalid"] or summary["blocked"] else 0)


def _sandbox_command() -> click.Command:
    from bulkref.sandbox.command import sandbox

    return sandbox


cli.add_command(_sandbox_command())


def main() -> None:
    cli(prog_name="bulkref")
