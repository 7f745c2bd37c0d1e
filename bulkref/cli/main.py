"""The ``bulkref`` command: a thin click layer over the library.

Exit codes (shared/docs/cli.md): 0 all good; 1 the input was read but some
rows are invalid or some calls failed; 2 the command could not do its job.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import click

from bulkref import __version__
from bulkref.errors import BulkrefError, NoTerminal, UnwritableOutput

# What `bulkref --help` lists, one line each, in one place: click would cut each
# command's first sentence at 45 characters.
SUMMARIES: dict[str, str] = {
    "template": "Write the fill-in template.",
    "validate": "Check every row of a sheet; send nothing.",
    "plan": "Dry run: what apply would do, row by row.",
    "apply": "Apply a sheet or a saved plan, resumably.",
    "export": "Write Partner Center's referrals to a sheet.",
    "get": "Print one referral.",
    "map": "Mapping files for CRM exports.",
    "login": "Sign in to Partner Center.",
    "logout": "Forget the sign-in.",
    "whoami": "Show the signed-in account.",
    "sandbox": "Run a local Partner Center Referrals API.",
    "serve": "The whole import in a browser.",
    "results": "Write an apply's results again from its journal.",
    "doctor": "Check the target: token, listing, filters.",
    "taxonomy": "Print the solution areas and plays in force.",
}


class _Group(click.Group):
    """Turns bulkref's errors into one sentence on stderr and the contract's exit code,
    and loads the ``lazy`` commands (name -> "module:attribute") when they are asked for."""

    lazy: ClassVar[dict[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The list from SUMMARIES, without loading a lazy command's module to ask it
        # for its own: `bulkref --help` imported MSAL and the sandbox's server for that.
        rows = [
            (name, SUMMARIES.get(name) or self.commands[name].get_short_help_str())
            for name in self.list_commands(ctx)
            if name in SUMMARIES or not self.commands[name].hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, attribute = self.lazy[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        command = super().get_command(ctx, cmd_name)
        if command is not None and cmd_name in SUMMARIES:
            command.short_help = SUMMARIES[cmd_name]
        return command

    def invoke(self, ctx: click.Context) -> object:
        from bulkref.redact import redact
        from bulkref.stop_signals import terminate_as_interrupt

        # SIGTERM (``timeout``, CI, ``docker stop``) ends a command like Ctrl-C: its
        # ``finally`` blocks run, temporary files go, and apply stops gracefully.
        terminate_as_interrupt()
        try:
            return super().invoke(ctx)
        except BulkrefError as e:
            # --debug adds the traceback; the exit code stays the contract's.
            _traceback(ctx)
            click.echo(f"bulkref: {redact(e)}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("bulkref: interrupted.", err=True)
            sys.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as e:
            _traceback(ctx)
            click.echo(
                f"bulkref: unexpected error ({type(e).__name__}: {redact(e)}). "
                "Run again with --debug for details and report it.",
                err=True,
            )
            sys.exit(2)


def _traceback(ctx: click.Context) -> None:
    """With --debug, the traceback of the error being handled, scrubbed of secrets, on stderr."""
    if ctx.meta.get("debug"):
        import traceback

        from bulkref.redact import redact

        click.echo(redact(traceback.format_exc()).rstrip(), err=True)


def _format_option(help: str, *choices: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--format`` as every command has it: text by default, json for scripts."""
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default="text", help=help)


def _mapping_option(f: Callable[..., None]) -> Callable[..., None]:
    """``--mapping``, as validate, plan and apply take it."""
    return click.option(
        "--mapping",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        metavar="M",
        help="Read FILE, a CRM export, through this mapping file (see bulkref map suggest).",
    )(f)


def _taxonomy(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None or not value.strip():
        return
    from bulkref.spec.enums import TAXONOMY_ENV, using_taxonomy

    # Read and checked now: a bad file is one sentence before any sheet is read.
    # An error names the variable when the path came from it.
    from_env = ctx.get_parameter_source(param.name or "") is click.core.ParameterSource.ENVIRONMENT
    ctx.with_resource(using_taxonomy(value.strip(), TAXONOMY_ENV if from_env else None))


def _taxonomy_option(f: Callable[..., None]) -> Callable[..., None]:
    """``--taxonomy FILE`` (env BULKREF_TAXONOMY): the Services co-sell solution areas
    and plays that the template offers and validate checks (bulkref.spec.enums)."""
    return click.option(
        "--taxonomy",
        envvar="BULKREF_TAXONOMY",
        callback=_taxonomy,
        expose_value=False,
        metavar="FILE",
        help="The solution areas and plays to offer and check, a file as bulkref taxonomy prints it "
        "(default: the table bulkref ships; env BULKREF_TAXONOMY).",
    )(f)


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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["xlsx", "csv"]),
    default=None,
    help="xlsx (guided workbook, the default) or csv (header row only).",
)
@click.option(
    "--examples",
    is_flag=True,
    help="Fill a few example rows (Private, Partner-led, Co-sell, Services co-sell, shared with a partner).",
)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@_taxonomy_option
def template(out: Path | None, fmt: str | None, examples: bool, force: bool) -> None:
    """Write the fill-in template (default ./referrals-template.xlsx)."""
    from bulkref import write_template

    if fmt is None:
        fmt = "csv" if out is not None and out.suffix.lower() == ".csv" else "xlsx"
    out = out or Path(f"referrals-template.{fmt}")
    if out.exists() and not force:
        raise UnwritableOutput(f"{out} already exists: choose another name, or add --force to replace it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    written = write_template(out, fmt=fmt, examples=examples)
    click.echo(f"Wrote {written}")


def _max_file_size(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        from bulkref.sheets.options import parse_size, reading

        ctx.with_resource(reading(max_file_size=parse_size(value)))


def _locale(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        from bulkref.sheets.options import parse_locale, reading

        ctx.with_resource(reading(locale=parse_locale(value)))


def _reading_options(f: Callable[..., None]) -> Callable[..., None]:
    """--max-file-size and --locale: how the input is read (bulkref.sheets.options)."""
    f = click.option(
        "--locale",
        callback=_locale,
        expose_value=False,
        metavar="TAG",
        help="How the sheet writes dates and numbers as text, like de-DE (15.01.2027, 1.234,50) "
        "or en-US (01/15/2027); default: guessed where unambiguous (env BULKREF_LOCALE).",
    )(f)
    return click.option(
        "--max-file-size",
        callback=_max_file_size,
        expose_value=False,
        metavar="SIZE",
        help="Refuse inputs larger than this, like 500MB or 2GB (default 256MB; env BULKREF_MAX_FILE_SIZE).",
    )(f)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@_format_option("text for people, json for scripts.", "text", "json")
@click.option(
    "--annotate",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a copy of the sheet with bad cells highlighted and commented.",
)
@_mapping_option
@click.option("--sheet", default=None, help="The sheet to read (default: Referrals, or the first).")
@_reading_options
@_taxonomy_option
def validate(file: Path, fmt: str, annotate: Path | None, sheet: str | None, mapping: Path | None) -> None:
    """Check every row of FILE and report each problem by sheet, row and column.

    Nothing is sent anywhere. Exit 0 when valid, 1 when some rows are invalid,
    2 when the file cannot be read."""
    from bulkref import check_file, validation_text

    result = check_file(file, sheet=sheet, mapping=mapping)
    annotated = None
    if annotate is not None:
        from bulkref import annotate as write_annotated

        annotated = write_annotated(result, annotate)
    if fmt == "json":
        doc = result.report.as_json()
        if annotated is not None:
            doc["annotated"] = str(annotated)
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
    else:
        shown = str(file) if mapping is None else f"{file} through {mapping}"
        if result.report.layout is not None:
            from bulkref.mapping.partner_center import LAYOUT_NAME

            shown = f"{file} (read as {LAYOUT_NAME})"
        click.echo(validation_text(result.report, shown, result.table.sheet))
        if annotated is not None:
            click.echo(f"Annotated copy: {annotated}")
    sys.exit(0 if result.valid else 1)


def _target_options(f: Callable[..., None]) -> Callable[..., None]:
    f = click.option(
        "--api-url",
        envvar="BULKREF_API_URL",
        default=None,
        metavar="URL",
        help="The Referrals API (default: Partner Center; env BULKREF_API_URL).",
    )(f)
    return click.option(
        "--sandbox",
        "use_sandbox",
        is_flag=True,
        help="Use the embedded local sandbox (state kept in your data directory).",
    )(f)


def _lookup_option(f: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--lookup",
        type=click.Choice(["auto", "filtered", "scan"]),
        default="auto",
        show_default=True,
        help="How existing referrals are read: filtered look-ups by External Reference ID and id, "
        "one paged listing of every referral (scan), or auto (probe the service, pick by size).",
    )(f)


def _overwrite_newer_option(f: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--overwrite-newer",
        is_flag=True,
        help="Apply rows whose referral changed in Partner Center since the sheet was made "
        "(by its ETag or Updated time): the sheet wins. Without it they are blocked.",
    )(f)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@_target_options
@click.option("--offline", is_flag=True, help="Do not read Partner Center: plan every row as new.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Save the plan (with the eTags read and the input's fingerprint) for apply.",
)
@_format_option(
    "text (a review), json (for scripts) or html (one page for a reviewer).", "text", "json", "html"
)
@_mapping_option
@click.option("--sheet", default=None, help="The sheet to read (default: Referrals, or the first).")
@_overwrite_newer_option
@_reading_options
@_lookup_option
@_taxonomy_option
def plan(
    file: Path,
    api_url: str | None,
    use_sandbox: bool,
    offline: bool,
    out: Path | None,
    fmt: str,
    sheet: str | None,
    mapping: Path | None,
    overwrite_newer: bool,
    lookup: str,
) -> None:
    """Dry run: what apply would do for each row of FILE. Reads Partner Center,
    writes nothing there. Exit 0 when every row can be applied, 1 when some
    rows are invalid or blocked, 2 when the file or the API cannot be used."""
    from bulkref import make_plan

    result = make_plan(
        file,
        api_url=api_url,
        sandbox=use_sandbox,
        offline=offline,
        sheet=sheet,
        mapping=mapping,
        overwrite_newer=overwrite_newer,
        lookup=lookup,
        on_note=lambda text: click.echo(text, err=True),
    )
    if out is not None:
        result.save(out)
    if fmt == "json":
        click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2, default=str))
    elif fmt == "html":
        from bulkref import plan_html

        click.echo(plan_html(result))
    else:
        from bulkref import plan_text

        click.echo(plan_text(result, color=sys.stdout.isatty()))
        if out is not None:
            click.echo(f"Plan saved to {out}.")
    summary = result.summary
    sys.exit(1 if summary["invalid"] or summary["blocked"] else 0)


@cli.command(name="apply")
@click.argument("file", type=click.Path(path_type=Path))
@_target_options
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=8, show_default=True, help="Calls in flight at once."
)
@click.option(
    "--results",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the results (default: beside the input, or the sheet of a PLAN.json, "
    "<name>.results.xlsx or .csv). A results file already there is kept under a dated name.",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The journal that makes the run resumable (default: in your data directory).",
)
@click.option("--yes", is_flag=True, help="Apply without asking.")
@_format_option("text for people, json for scripts (the summary and the results path).", "text", "json")
@_mapping_option
@_overwrite_newer_option
@_lookup_option
@click.option(
    "--consistency-window",
    type=click.FloatRange(0, 3600),
    default=None,
    metavar="SECONDS",
    help="How long after a create's answer was lost a listing must be read before it can show the "
    "create was not stored (then it is sent again). Default: learned from the run's own creates, "
    "at least 10 s.",
)
@click.option(
    "--wait-in-doubt",
    type=click.FloatRange(0, 3600),
    default=120.0,
    show_default=True,
    metavar="SECONDS",
    help="Once every other row is done, how long to wait for creates in doubt to be found or shown "
    "absent; those still in doubt end in_doubt (exit 3).",
)
@click.option(
    "--resend-in-doubt",
    is_flag=True,
    help="Send the creates an earlier run left in doubt, without waiting to see them absent: only "
    "after checking in Partner Center that they are not there.",
)
@_reading_options
@_taxonomy_option
def apply_command(
    file: Path,
    api_url: str | None,
    use_sandbox: bool,
    concurrency: int,
    results: Path | None,
    state: Path | None,
    yes: bool,
    fmt: str,
    mapping: Path | None,
    overwrite_newer: bool,
    consistency_window: float | None,
    wait_in_doubt: float,
    resend_in_doubt: bool,
    lookup: str,
) -> None:
    """Execute FILE (a spreadsheet, planned now) or PLAN.json (exactly that plan).

    Resumable: the same command again continues where a stopped run ended and
    never repeats a finished call. Writes one result per input row. Exit 0
    when every row succeeded, 1 when some rows are invalid, blocked or failed
    (or the run was stopped), 2 when the file or the API cannot be used, 3 when
    some creates are in doubt (their answer was lost and Partner Center has not
    shown yet whether they were stored: run the same command again later)."""
    from bulkref import Plan, RowResult, apply_input
    from bulkref.api.destination import Destination, destination
    from bulkref.api.target import resolve
    from bulkref.cli.progress import Progress

    if not yes and not sys.stdin.isatty():
        raise NoTerminal(
            f"apply writes to {destination(resolve(api_url, use_sandbox)).text()} and there is no "
            "terminal to ask: add --yes to apply without a prompt (review it first with bulkref plan)."
        )
    progress: Progress | None = None

    def confirm(plan: Plan, resumed: bool) -> bool:
        nonlocal progress
        counts = plan.summary
        head = "Resuming the stopped run of" if resumed else "Plan for"
        where = Destination.from_json(plan.target or {}).text()
        click.echo(
            f"{head} {plan.source}: {counts['create']} to create, {counts['update']} to update, "
            f"{counts['unchanged']} unchanged, {counts['blocked']} blocked, "
            f"{counts['invalid']} invalid"
            + (f", {len(plan.skipped)} rows skipped by the mapping" if plan.skipped else "")
            + f".\nTarget: {where}",
            err=fmt == "json",
        )
        if plan.in_doubt:
            from bulkref.plan.review import in_doubt_text

            click.echo(in_doubt_text(plan), err=fmt == "json")
        of_action = getattr(plan.rows, "of_action", None)  # a journal's rows: ask it for the blocked
        blocked = of_action("blocked") if of_action else (r for r in plan.rows if r.action == "blocked")
        newer = sum(1 for r in blocked if r.changed_since)
        if newer:
            click.echo(
                f"{newer} of the blocked rows changed in Partner Center since the sheet was made: "
                "bulkref plan shows both sides; --overwrite-newer lets the sheet win.",
                err=fmt == "json",
            )
        work = counts["create"] + counts["update"]
        if work and not yes and not click.confirm(f"Apply it to {where}?", default=False, err=True):
            return False
        progress = Progress(total=len(plan.rows))
        return True

    def done_before(result: RowResult) -> None:
        if progress is not None:
            progress.already(result.outcome)

    def note(text: str) -> None:
        if progress is not None:
            progress.note(text)
        else:
            click.echo(text, err=True)

    def advanced(result: RowResult) -> None:
        if progress is not None:
            progress.advance(result.outcome)

    interrupted = True  # until the run returns: an error or a second Ctrl-C stops it short
    try:
        run = apply_input(
            file,
            api_url=api_url,
            sandbox=use_sandbox,
            concurrency=concurrency,
            results=results,
            state=state,
            confirm=confirm,
            on_result=advanced,
            on_note=note,
            mapping=mapping,
            overwrite_newer=overwrite_newer,
            on_done_before=done_before,
            consistency_window=consistency_window,
            lookup=lookup,
            wait_in_doubt=wait_in_doubt,
            resend_in_doubt=resend_in_doubt,
        )
        interrupted = run.interrupted
    finally:
        if progress is not None:
            progress.close(interrupted=interrupted)
    if run.declined:
        click.echo("Nothing was sent.", err=True)
        sys.exit(1)
    counts = run.summary
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "summary": counts,
                    "results": str(run.results_path),
                    "journal": str(run.journal_path),
                    "interrupted": run.interrupted,
                    "target": run.target.as_json() if run.target else None,
                    "previousResults": str(run.previous_results) if run.previous_results else None,
                    "consistency": run.consistency,
                    "skippedByMapping": len(run.plan.skipped),
                    **(
                        {"partnerCenterResults": str(run.layout_results)}
                        if run.layout_results is not None
                        else {}
                    ),
                },
                indent=2,
            )
        )
    else:
        where = run.target.text() if run.target else "Partner Center"
        left_out = len(run.plan.skipped)
        by = "the mapping" if run.plan.layout is None else "the sheet's layout"
        click.echo(
            f"Applied to {where}: {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['failed']} failed, {counts['skipped']} skipped"
            + (f", {left_out} row{'s' if left_out != 1 else ''} skipped by {by}." if left_out else ".")
            + (
                f" {counts['adopted']} of the unchanged were in Partner Center already (adopted)."
                if counts.get("adopted")
                else ""
            )
            + (" Stopped before the end: run the same command again to continue." if run.interrupted else "")
        )
        if counts.get("in_doubt"):
            click.echo(_in_doubt_sentence(counts["in_doubt"]))
        lag = _consistency_sentence(run.consistency)
        if lag:
            click.echo(lag)
        click.echo(f"Results: {run.results_path}")
        if run.layout_results is not None:
            click.echo(f"Results in Partner Center's layout (Errors filled): {run.layout_results}")
        if run.previous_results is not None:
            click.echo(f"The previous results file is kept as {run.previous_results}")
    if counts.get("in_doubt"):
        sys.exit(3)
    sys.exit(0 if not counts["failed"] and not counts["skipped"] and not run.interrupted else 1)


def _in_doubt_sentence(n: int) -> str:
    rows = f"{n} row{'s' if n != 1 else ''}"
    return (
        f"In doubt: {rows}. A create's answer was lost and Partner Center has not shown yet whether "
        "it was stored; none was sent twice. Run the same command again later (the results say "
        "after when): each is looked up first, adopted if found, sent only once a listing shows it "
        "absent. If you checked in Partner Center that they are not there, add --resend-in-doubt."
    )


def _consistency_sentence(consistency: dict[str, Any]) -> str | None:
    """The figure the run learned (or was given) for how far listings lag their writes."""
    if not consistency:
        return None
    window = consistency.get("window")
    if consistency.get("override"):
        return f"Consistency window: {window:g} s, as given."
    measured = consistency.get("measured")
    if measured is None:
        return None
    samples = consistency.get("samples") or 0
    return (
        f"Partner Center's listing showed new referrals within {measured:.1f} s "
        f"(measured on {samples} create{'s' if samples != 1 else ''}); consistency window {window:.0f} s."
    )


@cli.command(name="results")
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The journal of the run (apply --format json names it as 'journal').",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the results (default: where apply writes them, beside the input).",
)
@_format_option("text for people, json for scripts (the summary and the paths).", "text", "json")
def results_command(state: Path, out: Path | None, fmt: str) -> None:
    """Write the results file of an apply run again, from its journal: what was
    created, with every id, even when the run stopped before writing it. Exit 0
    when written, 2 when the journal or the file cannot be used."""
    from bulkref import rebuild_results

    path, counts = rebuild_results(state, out)
    if fmt == "json":
        click.echo(json.dumps({"summary": counts, "results": str(path), "journal": str(state)}, indent=2))
    else:
        click.echo(
            f"Rebuilt from {state}: {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['failed']} failed, {counts['skipped']} skipped."
        )
        click.echo(f"Results: {path}")


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from bulkref.export.query import odata_datetime

    try:
        return odata_datetime(value)
    except ValueError as e:
        raise click.BadParameter(f"{e}, e.g. 2026-01-31.") from None


class _Listed(click.ParamType):
    """A value from a list of data/enums.toml, matched as bulkref matches cells
    (any case, spaces or hyphens); the list is loaded only when the option is used,
    not at every start of bulkref."""

    def __init__(self, list_name: str, metavar: str) -> None:
        self.list_name, self.metavar, self.name = list_name, metavar, list_name

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.metavar

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from bulkref.spec.enums import load

        found = load().canonical(self.list_name, value)
        if found is None:
            self.fail(f"'{value}' is not one of {', '.join(load().values(self.list_name))}.", param, ctx)
        return found


@cli.command(name="export")
@_target_options
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The file to write, .xlsx or .csv (default: referrals-export-<date>.xlsx here).",
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists (it may be the sheet you are editing).")
@click.option(
    "--filter",
    "odata_filter",
    default=None,
    metavar="ODATA",
    help="An OData $filter, e.g. \"status eq 'New' and qualification eq 'SalesQualified'\".",
)
@click.option(
    "--orderby", default=None, metavar="F", help="createdDateTime or updatedDateTime, then asc or desc."
)
@click.option("--top", type=click.IntRange(min=1), default=None, metavar="N", help="At most N referrals.")
@click.option(
    "--status",
    multiple=True,
    type=_Listed("referral_status", "STATUS"),
    help="Only this status: New, Active or Closed (repeat for several).",
)
@click.option(
    "--substatus",
    multiple=True,
    type=_Listed("referral_substatus", "SUBSTATUS"),
    help="Only this substatus, e.g. Pending (repeat for several).",
)
@click.option(
    "--direction",
    type=_Listed("direction", "Incoming|Outgoing"),
    default=None,
    help="Incoming (leads and invitations to you) or Outgoing (yours).",
)
@click.option(
    "--type",
    "referral_type",
    type=_Listed("referral_type", "Independent|Shared"),
    default=None,
    help="Independent (only you see it) or Shared.",
)
@click.option(
    "--since",
    callback=_since,
    default=None,
    metavar="DATE",
    help="Created on or after DATE (YYYY-MM-DD, UTC) or an ISO date and time.",
)
@click.option("--team-email", default=None, metavar="EMAIL", help="A team member's email is EMAIL.")
@click.option("--engagement", default=None, metavar="ID", help="The referrals of one engagement.")
@click.option(
    "--layout",
    type=click.Choice(["template", "partner-center"]),
    default="template",
    show_default=True,
    help="The template's shape, or Partner Center's co-sell CSV (its bulk upload's columns; .csv only).",
)
@_format_option("How to report what was written: text, or json for scripts.", "text", "json")
@_taxonomy_option
def export_command(
    api_url: str | None,
    use_sandbox: bool,
    out: Path | None,
    force: bool,
    odata_filter: str | None,
    orderby: str | None,
    top: int | None,
    status: tuple[str, ...],
    substatus: tuple[str, ...],
    direction: str | None,
    referral_type: str | None,
    since: str | None,
    team_email: str | None,
    engagement: str | None,
    layout: str,
    fmt: str,
) -> None:
    """Write every referral the query matches (every page) to a sheet in the
    template's shape (or, with --layout partner-center, Partner Center's co-sell
    CSV): edit it, then plan and apply it back as updates.

    The flags narrow the listing and combine with --filter into one $filter.
    Exit 0 when written, 2 when the API or the file cannot be used."""
    from bulkref.cli.progress import ExportDisplay
    from bulkref.export.query import compose_filter
    from bulkref.export.run import check_output, default_path, export_referrals

    # Before a long read, not after.
    path = check_output(out or default_path(csv=layout != "template"), force, layout)
    query = compose_filter(
        status=status,
        substatus=substatus,
        direction=direction,
        type=referral_type,
        since=since,
        team_email=team_email,
        engagement=engagement,
        filter=odata_filter,
    )
    display = ExportDisplay(path, "the local sandbox" if use_sandbox else (api_url or "Partner Center"))
    interrupted = True
    try:
        result = export_referrals(
            path,
            api_url=api_url,
            sandbox=use_sandbox,
            filter=query,
            orderby=orderby,
            top=top,
            force=force,
            on_progress=display,
            layout=layout,
        )
        interrupted = False
    finally:
        display.close(interrupted=interrupted)
    if fmt == "json":
        click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
        return
    microsoft, connected = result.folded - result.folded_connected, result.folded_connected
    parts = []
    if microsoft:
        parts.append(f"{microsoft:,} Microsoft referral{'s' if microsoft != 1 else ''} of co-sell deals")
    if connected:
        whose = "other parties' referrals" if connected != 1 else "other party's referral"
        parts.append(f"{connected:,} {whose} of shared deals")
    folded = f" ({' and '.join(parts)} in their deal's row)" if parts else ""
    click.echo(
        f"Exported {result.referrals:,} referral{'s' if result.referrals != 1 else ''} as "
        f"{result.rows:,} row{'s' if result.rows != 1 else ''}{folded}: {result.path}"
    )


@cli.command(name="get")
@click.argument("referral_id")
@_target_options
@_format_option(
    "text (a summary, with the engagement's other referrals) or json (as returned).", "text", "json"
)
def get_command(referral_id: str, api_url: str | None, use_sandbox: bool, fmt: str) -> None:
    """Print one referral. Exit 0 when found, 1 when there is no referral with
    that id, 2 when the API cannot be used."""
    from bulkref.export.get import get_referral, referral_json, referral_text

    view = get_referral(referral_id, api_url=api_url, sandbox=use_sandbox)
    click.echo(referral_json(view) if fmt == "json" else referral_text(view))


@cli.command(name="taxonomy")
@_taxonomy_option
def taxonomy_command() -> None:
    """Print the Services co-sell solution areas and plays in force (bulkref's own
    table, or --taxonomy / BULKREF_TAXONOMY) as a taxonomy file.

    Partner Center updates the table every fiscal year and publishes it nowhere
    bulkref can read; a value outside the table is a warning, and is sent as
    written. To use a newer one: bulkref taxonomy > fy26.toml, edit it, then pass
    --taxonomy fy26.toml (or set BULKREF_TAXONOMY). Exit 0 printed, 2 the file
    cannot be used."""
    from bulkref.spec.enums import taxonomy

    # UTF-8 whatever the console's encoding: the output is a file to be read back.
    # click.echo writes bytes to the binary stream (get_binary_stream is deprecated).
    click.echo(taxonomy().toml().encode("utf-8"), nl=False)


# Commands whose modules are loaded only when the command runs: the sandbox's
# server stack and MSAL took two thirds of every bulkref start-up.
_Group.lazy.update(
    {
        "sandbox": "bulkref.sandbox.command:sandbox",
        "login": "bulkref.cli.signin:login",
        "logout": "bulkref.cli.signin:logout",
        "whoami": "bulkref.cli.signin:whoami",
        "map": "bulkref.cli.mapping:map_group",
        "serve": "bulkref.cli.serve:serve",
        "doctor": "bulkref.cli.doctor:doctor",
    }
)


def main() -> None:
    cli(prog_name="bulkref")
