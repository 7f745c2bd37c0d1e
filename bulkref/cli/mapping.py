"""``bulkref map ...``: commands about mapping files (a thin click layer over
``bulkref.mapping.suggest``), loaded only when they run."""

from __future__ import annotations

from pathlib import Path

import click

from bulkref.errors import UnwritableOutput


@click.group(name="map")
def map_group() -> None:
    """Mapping files: read a legacy CRM export with validate, plan and apply
    (--mapping FILE). See the README, "Migrating from a CRM export"."""


@map_group.command(short_help="A starter mapping file for a CRM export.")
@click.argument("export", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the mapping here (default: print it).",
)
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.option("--sheet", default=None, help="The sheet to read (default: the first).")
def suggest(export: Path, out: Path | None, force: bool, sheet: str | None) -> None:
    """A starter mapping for EXPORT: its columns matched to template fields,
    the unmapped ones listed as comments. Review it before use."""
    from bulkref import suggest_mapping

    if out is not None and out.exists() and not force:
        raise UnwritableOutput(f"{out} already exists: choose another name, or add --force to replace it.")
    found = suggest_mapping(export, sheet=sheet)
    text = found.toml()
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UnwritableOutput(f"Cannot write {out} ({e.strerror or e}): choose another place.") from None
    todos = len(found.open_questions)
    click.echo(
        f"Wrote {out}: {len(found.mapped)} fields mapped, {len(found.unmapped)} columns of the "
        f"export left as comments"
        + (f", {todos} TODO{'s' if todos != 1 else ''} listed at its top" if todos else "")
        + f". Review it, then: bulkref validate {export} --mapping {out}"
    )
