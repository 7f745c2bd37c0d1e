"""A plan as a second person reads it before anything is written: terminal text and one HTML page.

Both views are pure functions of a :class:`~bulkref.plan.model.Plan`; the CLI decides where they go.
Every value in a plan comes from a spreadsheet or from Partner Center, so both views treat it as
untrusted: the text view neutralises control characters (a cell must not be able to move the
cursor or recolour a terminal), the HTML view escapes everything and forbids any script or style
it did not ship itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from html import escape
from importlib import resources
from typing import Any

from bulkref.plan.model import Action, Change, Plan, RowPlan, Step
from bulkref.problems import Skipped

SYMBOL: dict[Action, str] = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.UNCHANGED: "=",
    Action.BLOCKED: "!",
    Action.INVALID: "x",
}
LEGEND = "+ create   ~ update   = unchanged   ! blocked   x invalid"

_SGR: dict[Action, str] = {
    Action.CREATE: "32",  # green
    Action.UPDATE: "33",  # yellow
    Action.UNCHANGED: "2",  # dim
    Action.BLOCKED: "31",  # red
    Action.INVALID: "31",
}
_CHANGE_SGR = {"+": "32", "~": "33", "-": "31"}

Paint = Callable[[str, str], str]  # (SGR code, text) -> text, coloured or not

BLANK = "(blank)"
MAX_VALUE = 60  # characters of one value in a terminal diff line before it is cut with …
INDENT = "    "

# C0/C1 controls and DEL, all of them: a tab or newline inside a value would break the
# one-line-per-change layout, and an ESC would let a cell drive the reviewer's terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# ---------------------------------------------------------------------------- values


def format_value(value: Any, limit: int | None = MAX_VALUE) -> str:
    """One value as a reviewer reads it: blanks named, lists joined, long text cut, controls shown."""
    text = _clean(_plain(value))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _plain(value: Any) -> str:
    if value is None or value == "" or value == [] or value == ():
        return BLANK
    if isinstance(value, bool):  # before int: bool is an int
        return "Yes" if value else "No"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 48000.0 from Partner Center is 48000 in the sheet
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return "; ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return str(value)


def _control_name(ch: str) -> str:
    if ch == "\n":
        return "⏎"
    return f"\\x{ord(ch):02x}"


def _change_symbol(change: Change) -> str:
    """+ a value appears, - a value is cleared, ~ a value changes."""
    if _plain(change.old) == BLANK:
        return "+"
    if _plain(change.new) == BLANK:
        return "-"
    return "~"


def referral_name(row: RowPlan) -> str | None:
    """The deal's name: the plan's, else the first step body that carries one."""
    if row.name:
        return row.name
    for step in row.steps:
        name = step.body.get("name") if isinstance(step.body, dict) else None
        if isinstance(name, str):
            return name
    return None


def _step_numbers(steps: Sequence[Step]) -> dict[str, int]:
    return {s.key: i for i, s in enumerate(steps, 1)}


def _after(step: Step, numbers: dict[str, int]) -> str:
    if not step.depends_on:
        return ""
    return str(numbers.get(step.depends_on, step.depends_on))


def _counts_line(plan: Plan) -> str:
    n = plan.summary
    return (
        f"Plan: {n['create']} to create, {n['update']} to update, {n['unchanged']} unchanged, "
        f"{n['blocked']} blocked, {n['invalid']} invalid."
    )


def _multi_sheet(plan: Plan) -> bool:
    return len({r.sheet for r in plan.rows}) > 1


def _where(row: RowPlan, with_sheet: bool) -> str:
    return f"{row.sheet} row {row.row}" if with_sheet else f"row {row.row}"


# ---------------------------------------------------------------------------- text


def skipped_by(skipped: Sequence[Skipped]) -> str:
    """Whose rule left rows out: a mapping's [[skip]] (each names its line), or the layout
    bulkref read the sheet as (Partner Center's, where consent No means no deal)."""
    if any(s.mapping_line is not None for s in skipped):
        return "export ([[skip]] in the mapping)"
    return f"sheet ({skipped[0].reason})"


def plan_text(plan: Plan, color: bool = False, verbose: bool = False) -> str:
    """Terraform-style review: a legend, one block per row in plan order, then the counts.

    ``color`` adds ANSI colours (the CLI passes ``sys.stdout.isatty()``); ``verbose`` prints each
    step's body and the fields it takes from an earlier step.
    """
    paint = _painter(color)
    with_sheet = _multi_sheet(plan)
    lines = [_clean(_title(plan))]
    if plan.target is not None:
        lines.append(paint("1", _clean(f"Target: {target_text(plan)}")))
    if plan.lookup is not None:
        lines.append(_clean(f"Read by: {LOOKUP_TEXT.get(plan.lookup, plan.lookup)}"))
    if plan.skipped:  # never silently: rows of the export that are in no plan row
        rows = ", ".join(str(s.row) for s in plan.skipped[:10]) + (", ..." if len(plan.skipped) > 10 else "")
        lines.append(_clean(f"skipped {len(plan.skipped)} rows of the {skipped_by(plan.skipped)}: {rows}"))
    if plan.in_doubt:
        lines.append(paint("33", _clean(in_doubt_text(plan))))
    lines += [paint("2", LEGEND), ""]
    for row in plan.rows:
        lines.extend(_row_lines(row, paint, with_sheet, verbose))
    if plan.rows:
        lines.append("")
    lines.append(paint("1", _counts_line(plan) + " Nothing has been sent."))
    return "\n".join(lines)


def in_doubt_text(plan: Plan) -> str:
    """What a reviewer is told of the creates an earlier run left in doubt."""
    first = plan.in_doubt[:10]
    rows = ", ".join(f"{d.get('externalId')} (row {d.get('row')})" for d in first)
    more = f" and {len(plan.in_doubt) - len(first)} more" if len(plan.in_doubt) > len(first) else ""
    times = [str(d["decidableAfter"]) for d in plan.in_doubt if d.get("decidableAfter")]
    when = (
        f"only once a listing read after its time (the latest {max(times)}) leaves it out"
        if len(times) == len(plan.in_doubt)
        else "only once Partner Center shows it absent (no run has measured its listing's lag yet) "
        "or you say so (apply --resend-in-doubt)"
    )
    return (
        f"In doubt: {len(plan.in_doubt)} of the creates were sent by an earlier run whose answer was "
        f"lost, and Partner Center has not shown them yet: {rows}{more}. Apply looks each up first "
        f"and sends it {when}."
    )


def _painter(color: bool) -> Paint:
    def paint(sgr: str, text: str) -> str:
        return f"\x1b[{sgr}m{text}\x1b[0m" if color and sgr else text

    return paint


def _clean(text: str) -> str:
    return _CONTROL.sub(lambda m: _control_name(m.group()), text)


def _title(plan: Plan) -> str:
    state = f"remote state from {plan.api_url}" if plan.api_url else "offline: remote state not read"
    made = f", made {plan.created}" if plan.created else ""
    return f"bulkref plan for {plan.source} (sha256 {plan.fingerprint[:12]}, {state}{made})"


LOOKUP_TEXT = {
    "filtered": "filtered look-ups (by External Reference ID and id)",
    "scan": "one paged listing of every referral (Partner Center does not filter, or the sheet is large)",
}


def target_text(plan: Plan) -> str:
    """Where the plan was read from and will be written to, in words (``Destination.text``)."""
    from bulkref.api.destination import Destination

    if plan.target is None:
        return "none (planned offline)"
    return Destination.from_json(plan.target).text()


def _row_lines(row: RowPlan, paint: Paint, with_sheet: bool, verbose: bool) -> list[str]:
    head = paint(_SGR[row.action], _row_head(row, with_sheet))
    if row.action is Action.BLOCKED and row.changed_since:
        # Blocked because Partner Center changed since the sheet was made: both sides, field by field.
        return [head, *(_change_line(c, paint) for c in row.changes)]
    if row.action in (Action.UNCHANGED, Action.BLOCKED, Action.INVALID):
        return [head]  # nothing will be sent for these rows; the reason is on the line
    lines = [head]
    if row.changed_since:
        note = "! changed in Partner Center since the sheet was made: the sheet wins"
        lines.append(INDENT + paint("31", note))
    lines.extend(_change_line(c, paint) for c in row.changes)
    lines.extend(_step_lines(row.steps, verbose))
    return lines


def _row_head(row: RowPlan, with_sheet: bool) -> str:
    parts = [f"{SYMBOL[row.action]} {_where(row, with_sheet)}", format_value(row.external_id or "(no id)")]
    if row.action in (Action.BLOCKED, Action.INVALID):
        parts.append(f"{row.action}: {format_value(row.reason or 'no reason given', limit=None)}")
        return "  ".join(parts)
    parts.append(str(row.action))
    if row.action is Action.CREATE:
        parts.extend(p for p in (row.deal_type, _quoted_name(row)) if p)
    elif row.action is Action.UPDATE and row.referral_id:
        parts.append(f"referral {format_value(row.referral_id, limit=None)}")
    return "  ".join(parts)


def _quoted_name(row: RowPlan) -> str | None:
    name = referral_name(row)
    return f'"{format_value(name)}"' if name else None


def _change_line(change: Change, paint: Paint) -> str:
    sym = _change_symbol(change)
    text = f"{sym} {format_value(change.field)}: {format_value(change.old)} -> {format_value(change.new)}"
    return INDENT + paint(_CHANGE_SGR[sym], text)


def _step_lines(steps: Sequence[Step], verbose: bool) -> list[str]:
    if not steps:
        return []
    if len(steps) == 1:
        # One call needs no numbering; its line reads like the HTTP request it is.
        lines = [INDENT + _call(steps[0], "")]
        return lines + (_step_detail(steps[0], {}) if verbose else [])
    numbers = _step_numbers(steps)
    calls = [f"{i}. " + _call(s, _after(s, numbers)) for i, s in enumerate(steps, 1)]
    width = max(len(c) for c in calls)
    lines = []
    for call, step in zip(calls, steps, strict=True):
        what = f"   {format_value(step.what, limit=None)}" if step.what else ""
        lines.append((INDENT + call.ljust(width) + what).rstrip())
        if verbose:
            lines.extend(_step_detail(step, numbers))
    return lines


def _call(step: Step, after: str) -> str:
    text = f"{step.method} {_clean(step.path)}"
    if step.if_match:
        # An eTag is a quoted string already ("\"0000...\""): shown as the header carries it.
        text += f" (If-Match {_clean(step.if_match)})"
    if after:
        text += f"  (after {_clean(after)})"
    return text


def _step_detail(step: Step, numbers: dict[str, int]) -> list[str]:
    pad = INDENT * 2
    lines = []
    for pointer, source in step.fill.items():
        lines.append(f"{pad}{_clean(pointer)} <- step {_after(step, numbers)}'s {_clean(source)}")
    body = json.dumps(step.body, ensure_ascii=False, indent=2, sort_keys=False, default=str)
    lines.extend(pad + _clean(line) for line in body.splitlines())
    return lines


# ---------------------------------------------------------------------------- HTML


def plan_html(plan: Plan) -> str:
    """One self-contained page: header, counts as filter chips, a filterable table, per-row details.

    No external resources: the CSS and JS are inline, and a Content-Security-Policy admits only
    those two blocks (by hash), so even a value that slipped past escaping could not run or load.
    Without JS every row is visible; the script only adds filtering, from the chips, a text box,
    or the address (``#filter=blocked``, ``?action=blocked``, ``&q=text``).
    """
    css, js = _asset("review.css"), _asset("review.js")
    csp = (
        f"default-src 'none'; img-src data:; style-src '{_sha256(css)}'; script-src '{_sha256(js)}'; "
        "base-uri 'none'; form-action 'none'"
    )
    title = f"bulkref plan: {plan.source}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{css}</style>",
            "</head>",
            f'<body data-unchanged="{"hidden" if hides_unchanged(plan) else "shown"}">',
            _html_header(plan),
            "<main>",
            _html_toolbar(plan),
            _html_table(plan),
            "</main>",
            f"<script>{js}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


@cache
def _asset(name: str) -> str:
    return resources.files("bulkref").joinpath("data", name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _html_header(plan: Plan) -> str:
    api = _e(plan.api_url) if plan.api_url else '<span class="muted">offline: remote state not read</span>'
    fields = [
        ("Target", _html_target(plan)),
        ("Source", f"<code>{_e(plan.source)}</code>"),
        ("Fingerprint", f'<code title="sha256 {_e(plan.fingerprint)}">{_e(plan.fingerprint[:12])}</code>'),
        ("API", api),
        ("Created", _e(plan.created) if plan.created else '<span class="muted">unknown</span>'),
    ]
    meta = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in fields)
    return (
        f'<header><div class="wrap"><h1>bulkref plan <span class="note">Nothing has been sent.</span>'
        f'</h1><dl class="meta">{meta}</dl></div></header>'
    )


def _html_target(plan: Plan) -> str:
    if plan.target is None:
        return '<span class="muted">none: planned offline</span>'
    kind = str(plan.target.get("kind") or "api-url")
    # A sandbox and the real service must not look alike: the latter is drawn as a warning.
    live = "sandbox" if kind in ("sandbox", "sandbox-url") else "live"
    return f'<span class="target {live}" data-kind="{_e(kind)}">{_e(target_text(plan))}</span>'


_CHIP_LABEL = {
    Action.CREATE: "to create",
    Action.UPDATE: "to update",
    Action.UNCHANGED: "unchanged",
    Action.BLOCKED: "blocked",
    Action.INVALID: "invalid",
}


def _html_toolbar(plan: Plan) -> str:
    counts, total = plan.summary, len(plan.rows)
    chips = [
        f'<a class="chip all" href="#filter=all" data-filter="all"><b id="count-all">{total}</b> all</a>'
    ]
    for action in Action:
        chips.append(
            f'<a class="chip {action}" href="#filter={action}" data-filter="{action}">'
            f'<span class="sym">{_e(SYMBOL[action])}</span><b id="count-{action}">'
            f"{counts[str(action)]}</b> {_CHIP_LABEL[action]}</a>"
        )
    rows_word = "row" if total == 1 else "rows"
    return (
        f'<section class="toolbar" aria-label="Summary and filters">'
        f'<nav class="chips" aria-label="Filter by action">{"".join(chips)}</nav>'
        # Controls that need the script stay hidden until it runs, so no dead buttons.
        f'<div class="controls" id="controls" hidden>'
        f'<input type="search" id="q" placeholder="Filter by id, name, reason, field…" '
        f'aria-label="Filter rows by text" autocomplete="off">'
        f'<button type="button" id="unchanged" data-count="{counts["unchanged"]}"'
        f"{'' if counts['unchanged'] else ' hidden'}>Show {counts['unchanged']} unchanged</button>"
        f'<button type="button" id="expand">Expand all</button>'
        f'<button type="button" id="collapse">Collapse all</button></div>'
        f'<p class="shown" id="shown" aria-live="polite">Showing all {total} {rows_word}</p>'
        f"</section>"
    )


def hides_unchanged(plan: Plan) -> bool:
    """Whether the page starts with the unchanged rows hidden (the script does the hiding):
    always when there are some, since in a re-run they are most of the page and none of
    the decision; one click shows them."""
    return plan.summary["unchanged"] > 0


def _html_table(plan: Plan) -> str:
    with_sheet = _multi_sheet(plan)
    head = (
        '<thead><tr><th class="c-act">Action</th><th class="c-row">Row</th>'
        "<th>External ID</th><th>Deal</th><th>Detail</th></tr></thead>"
    )
    body = "".join(_html_row(r, with_sheet) for r in plan.rows)
    empty = (
        '<tbody id="none" hidden><tr><td colspan="5" class="empty">No rows match the filter.</td>'
        "</tr></tbody>"
    )
    if not plan.rows:
        empty = '<tbody id="none"><tr><td colspan="5" class="empty">The plan has no rows.</td></tr></tbody>'
    return f'<table class="plan">{head}{body}{empty}</table>'


def _search_text(row: RowPlan) -> str:
    """What the text box matches: ids, name, reason, field names (lower-cased once, here)."""
    parts: Iterable[Any] = (
        row.external_id,
        referral_name(row),
        row.reason,
        row.referral_id,
        row.deal_type,
        row.sheet,
        f"row {row.row}",
        *(c.field for c in row.changes),
    )
    return " ".join(str(p) for p in parts if p).casefold()


def _html_row(row: RowPlan, with_sheet: bool) -> str:
    action = str(row.action)
    name = referral_name(row)
    deal = " ".join(
        filter(
            None,
            [
                f'<span class="type">{_e(row.deal_type)}</span>' if row.deal_type else "",
                f'<span class="name">{_e(name)}</span>' if name else "",
                f'<code class="rid">{_e(row.referral_id)}</code>' if row.referral_id and not name else "",
            ],
        )
    )
    main = (
        f'<tr class="main"><td class="c-act"><span class="badge {action}">'
        f'<span class="sym">{_e(SYMBOL[row.action])}</span> {action}</span></td>'
        f'<td class="c-row">{_e(f"{row.sheet} {row.row}" if with_sheet else row.row)}</td>'
        f"<td><code>{_e(row.external_id or '(no id)')}</code></td>"
        f"<td>{deal}</td><td>{_html_gist(row)}</td></tr>"
    )
    detail = _html_detail(row)
    return (
        f'<tbody class="r {action}" data-action="{action}" data-search="{_e(_search_text(row))}">'
        f"{main}{detail}</tbody>"
    )


def _html_gist(row: RowPlan) -> str:
    """The Detail column: why nothing happens, or which fields change, or which calls go out."""
    if row.reason:
        return f'<span class="reason">{_e(row.reason)}</span>'
    if row.changes:
        names = [c.field for c in row.changes]
        more = f" +{len(names) - 3} more" if len(names) > 3 else ""
        return f'<span class="fields">{_e(", ".join(names[:3]) + more)}</span>'
    if len(row.steps) == 1:
        return f"{_html_method(row.steps[0])} <code>{_e(row.steps[0].path)}</code>"
    if row.steps:
        return ' <span class="muted">→</span> '.join(_html_method(s) for s in row.steps)
    return '<span class="muted">nothing to send</span>'


def _html_method(step: Step) -> str:
    return f'<span class="method {_e(step.method.lower())}">{_e(step.method)}</span>'


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _html_detail(row: RowPlan) -> str:
    if not row.changes and not row.steps:
        return ""
    # Updates open by default: their field diff is the heart of the review.
    is_open = " open" if row.action is Action.UPDATE or row.changed_since else ""
    summary = " · ".join(
        filter(
            None,
            [
                _plural(len(row.changes), "change") if row.changes else "",
                _plural(len(row.steps), "call") if row.steps else "",
            ],
        )
    )
    parts = [
        _html_diff(row.changes, newer=row.action is Action.BLOCKED and bool(row.changed_since))
        if row.changes
        else "",
        _html_steps(row.steps) if row.steps else "",
    ]
    return (
        f'<tr class="detail"><td colspan="5"><details{is_open}><summary>Show {_e(summary)}</summary>'
        f'<div class="body">{"".join(parts)}</div></details></td></tr>'
    )


def _html_value(value: Any) -> str:
    text = format_value(value, limit=None)
    return '<span class="blank">(blank)</span>' if text == BLANK else _e(text)


def _html_diff(changes: Sequence[Change], newer: bool = False) -> str:
    rows = []
    for c in changes:
        kind = {"+": "add", "-": "del", "~": "mod"}[_change_symbol(c)]
        rows.append(
            f'<tr class="{kind}"><th scope="row">{_e(c.field)}</th>'
            f'<td class="old">{_html_value(c.old)}</td><td class="arrow">→</td>'
            f'<td class="new">{_html_value(c.new)}</td></tr>'
        )
    return (
        f'<table class="diff{" newer" if newer else ""}"><thead><tr><th>Field</th><th>Partner Center now</th>'
        f"<th></th><th>{'In the sheet' if newer else 'After apply'}</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _html_steps(steps: Sequence[Step]) -> str:
    numbers = _step_numbers(steps)
    items = [_html_step(s, _after(s, numbers)) for s in steps]
    return f'<ol class="steps">{"".join(items)}</ol>'


def _html_step(step: Step, after: str) -> str:
    meta = []
    if after:
        meta.append(f'<span class="dep">after step {_e(after)}</span>')
    if step.if_match:
        meta.append(f'<span class="etag">If-Match <code>{_e(step.if_match)}</code></span>')
    fill = "".join(
        f"<li><code>{_e(ptr)}</code> ← step {_e(after)}’s <code>{_e(src)}</code></li>"
        for ptr, src in step.fill.items()
    )
    body = json.dumps(step.body, ensure_ascii=False, indent=2, default=str)
    return (
        f'<li class="step"><div class="call">{_html_method(step)} <code>{_e(step.path)}</code>'
        f"{' '.join(meta)}</div>"
        + (f'<p class="what">{_e(step.what)}</p>' if step.what else "")
        + (f'<ul class="fill">{fill}</ul>' if fill else "")
        + f"<pre>{_e(body)}</pre></li>"
    )


# ---------------------------------------------------------------------------- one row, as data


def deal_fields(row: RowPlan) -> list[tuple[str, str]]:
    """What a create sends, as the sheet's columns: (header, value as a reviewer reads it)
    in the template's order, blanks left out. A reviewer approves a deal, not its request
    JSON; the bodies themselves stay in the plan (``step.body``). Empty for other rows."""
    from bulkref.plan.payload import row_of
    from bulkref.spec.columns import SPEC

    bodies = [s.body for s in row.steps if s.method == "POST" and isinstance(s.body, dict)]
    if row.action is not Action.CREATE or not bodies:
        return []
    cells = row_of(bodies[0], bodies[1:])
    if row.deal_type:
        cells["deal_type"] = row.deal_type  # the plan's word for it, as the sheet said
    fields = []
    for key, value in cells.items():
        text = format_value(value, limit=None)
        if text != BLANK:
            fields.append((SPEC.column(key).header, text))
    return fields


def review_row(row: RowPlan, with_sheet: bool = False) -> dict[str, Any]:
    """One row of a plan as a review page shows it, as plain data (every value text, to be
    escaped by whoever renders it): what ``plan_html`` draws for the row, for a page that
    draws rows a page at a time (``bulkref serve``)."""
    numbers = _step_numbers(row.steps)
    return {
        "action": str(row.action),
        "symbol": SYMBOL[row.action],
        "where": f"{row.sheet} {row.row}" if with_sheet else str(row.row),
        "external_id": row.external_id,
        "deal_type": row.deal_type,
        "name": referral_name(row),
        "referral_id": row.referral_id,
        "reason": row.reason,
        "changed_since": bool(row.changed_since),
        # Updates open: their field diff is the heart of the review.
        "open": row.action is Action.UPDATE or bool(row.changed_since),
        "changes": [
            {
                "field": c.field,
                "old": format_value(c.old, limit=None),
                "new": format_value(c.new, limit=None),
                "kind": {"+": "add", "-": "del", "~": "mod"}[_change_symbol(c)],
            }
            for c in row.changes
        ],
        "fields": deal_fields(row),
        "steps": [
            {
                "method": s.method,
                "path": s.path,
                "what": s.what,
                "if_match": s.if_match,
                "after": _after(s, numbers),
                "fill": list(s.fill.items()),
                "body": json.dumps(s.body, ensure_ascii=False, indent=2, default=str),
            }
            for s in row.steps
        ],
    }


def row_search_text(row: RowPlan) -> str:
    """What a review page's text filter matches in a row (lower-cased once, here)."""
    return _search_text(row)
