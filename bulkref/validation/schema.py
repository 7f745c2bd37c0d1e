"""Validation: a pandera schema built from the column spec, run over a read table.

Every cell is parsed once (``values``); each rule is then a pandera check on
the column a person has to fix, so every problem comes back with the sheet,
the Excel row and the header, and pandera's lazy mode collects all of them in
one pass instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from bulkref.problems import Problem, ProblemCode, Report, Severity
from bulkref.sheets.options import Locale, current
from bulkref.sheets.table import Table
from bulkref.sheets.values import (
    ambiguous_date,
    as_text,
    date_order,
    parse_comma_decimal,
    parse_numeric_date,
    parser,
)
from bulkref.spec.columns import SPEC, Column, Kind, Need
from bulkref.spec.deals import DEAL_TYPE_RULES, SERVICES_KEYS, DealFacts
from bulkref.spec.enums import closest, load

# What a cell that cannot be read as its column's kind is called.
_UNREADABLE = {
    Kind.CHOICE: ProblemCode.INVALID_CHOICE,
    Kind.BOOL: ProblemCode.NOT_YES_NO,
    Kind.DECIMAL: ProblemCode.NOT_A_NUMBER,
    Kind.DATE: ProblemCode.NOT_A_DATE,
    Kind.EMAIL: ProblemCode.INVALID_EMAIL,
    Kind.PHONE: ProblemCode.INVALID_PHONE,
    Kind.COUNTRY: ProblemCode.INVALID_COUNTRY,
    Kind.CURRENCY: ProblemCode.INVALID_CURRENCY,
    Kind.DUNS: ProblemCode.INVALID_DUNS,
}

Message = Callable[[str | None], str]  # the cell's text -> the sentence shown


@dataclass
class Validated:
    """A table after validation: the report, and the typed value of every
    cell (None for blank or unreadable), indexed by Excel row."""

    table: Table
    report: Report
    values: pd.DataFrame
    invalid_rows: frozenset[int] = field(default_factory=frozenset)

    @property
    def valid(self) -> bool:
        return self.report.valid


def _says(message: str) -> Callable[[int, str | None], str]:
    """A rule's message that names no cell: one sentence, whatever the row."""
    return lambda _r, _v: message


@dataclass
class _Rule:
    key: str  # the column the problem is reported on
    code: str
    ok: pd.Series  # True where the row passes
    message: Callable[[int, str | None], str]  # (row, cell text) -> sentence
    severity: Severity = Severity.ERROR


# Kinds whose unreadable cells are kept as written, with a warning: Partner
# Center holds them as free text and would take them.
_LENIENT = frozenset({Kind.PHONE})


def validate(table: Table) -> Validated:
    raw = table.frame
    values: dict[str, pd.Series] = {}
    rules: list[_Rule] = []
    notes: list[Problem] = []
    locale = current().locale
    for key, column in table.columns.items():
        if column.read_only:
            values[key] = raw[key]
            continue
        typed, bad, extra = _parse_column(table, key, column, locale, notes)
        values[key] = typed
        rules += extra
        if column.kind in _UNREADABLE:
            severity = Severity.WARNING if column.kind in _LENIENT else Severity.ERROR
            rules.append(_Rule(key, _UNREADABLE[column.kind], ~bad, _unreadable_message(column), severity))
    typed = pd.DataFrame(values, index=raw.index)
    ctx = _Context(table, typed)
    rules += _required_rules(ctx) + _uniqueness_rules(ctx) + _cross_field_rules(ctx)
    problems = list(table.problems) + notes + _formula_problems(table, _run(table, rules))
    if table.rows == 0:
        problems.append(
            Problem(
                table.sheet,
                None,
                None,
                ProblemCode.NO_ROWS,
                f"The sheet has a header but no data rows{table.others()}.",
                None,
                Severity.WARNING,
            )
        )
    invalid = frozenset(p.row for p in problems if p.severity is Severity.ERROR and p.row is not None)
    return Validated(table, Report(rows=table.rows, problems=problems), typed, invalid)


def _parse_column(
    table: Table, key: str, column: Column, locale: Locale | None, notes: list[Problem]
) -> tuple[pd.Series, pd.Series, list[_Rule]]:
    """The column parsed; a number or date column of text that the ISO and
    English forms do not read may be in a locale's form (1.234,50; 15.01.2027):
    read so when --locale says it, or when every value reads so unambiguously
    (with a warning in ``notes``). Numeric dates that read either way are
    reported apart (``ambiguous_date``), saying what to do."""
    s = table.frame[key]
    typed, bad = parser(column)(s)
    if column.kind not in (Kind.DECIMAL, Kind.DATE) or not bad.any():
        return typed, bad, []
    failing = [str(v) for v in s[bad]]
    h = column.header
    if column.kind is Kind.DECIMAL:
        comma, comma_bad = parser_none(parse_comma_decimal)(s)
        if locale is not None and locale.decimal_comma:
            return comma, comma_bad, []
        if locale is None and not comma_bad.any():
            notes.append(
                _assumed(
                    table,
                    key,
                    f"{h} was read with a decimal comma ('{failing[0]}' is {comma[bad].iloc[0]!r})",
                )
            )
            return comma, comma_bad, []
        return typed, bad, []
    order = ("day" if locale.day_first else "month") if locale is not None else date_order(failing)
    if order in ("day", "month"):
        dated, dated_bad = parser_none(parse_numeric_date(order == "day"))(s)
        if locale is not None or not dated_bad.any():
            if locale is None:
                first = "day" if order == "day" else "month"
                notes.append(
                    _assumed(
                        table,
                        key,
                        f"{h} was read {first} first ('{failing[0]}' is {dated[bad].iloc[0].isoformat()})",
                    )
                )
            return dated, dated_bad, []
    if order != "ambiguous":
        return typed, bad, []
    unclear = bad & s.map(ambiguous_date, na_action="ignore").eq(True)
    rule = _Rule(
        key,
        ProblemCode.AMBIGUOUS_DATE,
        ~unclear,
        lambda _r, v: (
            f"{h} '{v}' reads as day/month and as month/day alike: pass --locale de-DE (day first) or "
            "--locale en-US (month first), write it as YYYY-MM-DD, or read the file through a "
            "mapping from `bulkref map suggest`."
        ),
    )
    return typed, bad & ~unclear, [rule]


def parser_none(
    parse: Callable[[pd.Series], tuple[pd.Series, pd.Series]],
) -> Callable[[pd.Series], tuple[pd.Series, pd.Series]]:
    """As ``values.parser`` gives them: None, not NaN, for blank or unreadable cells."""

    def parse_none(s: pd.Series) -> tuple[pd.Series, pd.Series]:
        typed, bad = parse(s)
        return typed.astype(object).where(typed.notna(), None), bad.astype(bool)

    return parse_none


def _assumed(table: Table, key: str, what: str) -> Problem:
    return Problem(
        table.sheet,
        None,
        table.headers.get(key),
        ProblemCode.FORMAT_ASSUMED,
        f"{what}, as every value of the column reads so: check the values, or pass --locale "
        "(de-DE, en-US, ...) to say how the file writes numbers and dates.",
        severity=Severity.WARNING,
    )


def _formula_problems(table: Table, problems: list[Problem]) -> list[Problem]:
    """Formula cells never calculated read as blank: one problem each saying so,
    instead of what their blankness caused at that cell (``required``)."""
    if not table.uncalculated:
        return problems
    cells = {(row, table.headers[key]) for row, key in table.uncalculated}
    kept = [p for p in problems if (p.row, p.column) not in cells]
    for row, key in table.uncalculated:
        kept.append(
            Problem(
                table.sheet,
                row,
                table.headers[key],
                ProblemCode.FORMULA_NOT_CALCULATED,
                "The cell holds a formula that was never calculated: open and save the file in "
                "Excel or LibreOffice, so that its value is saved with it.",
            )
        )
    order = {h: i for i, h in enumerate(table.headers.values())}
    kept.sort(key=lambda p: (p.row is not None, p.row or 0, order.get(p.column or "", -1)))
    return kept


class _Context:
    """Per-row facts several rules share, computed once."""

    def __init__(self, table: Table, typed: pd.DataFrame) -> None:
        self.table = table
        self.typed = typed
        self.index = typed.index
        self.enums = load()
        self.is_new = self.blank("referral_id")
        self.deal = self.get("deal_type")
        self.share = self.get("share_with_microsoft")
        self.deal_facts = _deal_facts(self)

    def has(self, key: str) -> bool:
        return key in self.typed.columns

    def get(self, key: str) -> pd.Series:
        if key in self.typed.columns:
            return self.typed[key]
        # Built from a list: pd.Series(None, dtype=object) would hold NaN, not None.
        return pd.Series([None] * len(self.index), index=self.index, dtype=object)

    def filled(self, key: str) -> pd.Series:
        """The cell holds something, readable or not."""
        if key in self.table.frame.columns:
            return self.table.frame[key].notna()
        return pd.Series(False, index=self.index)

    def blank(self, key: str) -> pd.Series:
        return ~self.filled(key)

    def header(self, key: str) -> str:
        """The column's name for a sentence: the spec's, without the sheet's ``*``."""
        return (self.table.columns.get(key) or SPEC.column(key)).header

    def group_numbers(self, group: str) -> list[int]:
        return sorted({c.index for c in self.table.columns.values() if c.group == group and c.index})


def _choices_hint(column: Column, value: str | None) -> str:
    assert column.choices is not None
    allowed = load().values(column.choices)
    guess = closest(value or "", allowed)
    listed = (
        f"Choose one of: {', '.join(allowed)}."
        if len(allowed) <= 8
        else "Pick a value from the drop-down (the Lists sheet of the template has them all)."
    )
    return f"Did you mean '{guess}'? {listed}" if guess else listed


def _country_hint(value: str | None) -> str:
    import pycountry

    names = {c.name: c.alpha_2 for c in pycountry.countries}
    close = closest(value or "", names)
    return f" Did you mean {names[close]} ({close})?" if close else ""


def _unreadable_message(column: Column) -> Callable[[int, str | None], str]:
    h = column.header

    def message(_row: int, v: str | None) -> str:
        match column.kind:
            case Kind.CHOICE:
                return f"'{v}' is not a valid {h}. {_choices_hint(column, v)}"
            case Kind.BOOL:
                return f"{h} must be Yes or No, not '{v}'."
            case Kind.DECIMAL:
                return (
                    f"{h} must be a number (like 50000 or 1234.50), not '{v}'; for numbers "
                    "written 1.234,50 pass --locale de-DE (or your locale)."
                )
            case Kind.DATE:
                return (
                    f"{h} must be a date: an Excel date or text like 2026-12-31, not '{v}'; for "
                    "dates written 31.12.2026 or 12/31/2026 pass --locale (de-DE, en-US, ...)."
                )
            case Kind.EMAIL:
                return f"'{v}' is not an email address (name@example.com)."
            case Kind.PHONE:
                return f"'{v}' cannot be a phone number (it has no digit); it is sent as written."
            case Kind.COUNTRY:
                return (
                    f"'{v}' is not a country: use the two-letter ISO code, like US, DE or GB."
                    + _country_hint(v)
                )
            case Kind.CURRENCY:
                return f"'{v}' is not a currency: use the three-letter ISO code, like USD or EUR."
            case Kind.DUNS:
                return f"'{v}' is not a DUNS number: it has exactly 9 digits."
            case _:
                return f"'{v}' is not a valid {h}."

    return message


def _required_rules(ctx: _Context) -> list[_Rule]:
    rules = []
    for key, column in ctx.table.columns.items():
        if column.group or column.read_only or column.need is Need.OPTIONAL:
            continue
        h = column.header
        if column.need is Need.ALWAYS:
            # A row with a Referral ID is found by it: a referral made in Partner
            # Center (an incoming lead, one typed in the UI) may have no External Reference ID.
            rules.append(
                _Rule(
                    key,
                    ProblemCode.REQUIRED,
                    ctx.filled(key) | ~ctx.is_new,
                    _says(f"{h} is required on every row without a Referral ID."),
                )
            )
        else:
            rules.append(
                _Rule(
                    key,
                    ProblemCode.REQUIRED,
                    ctx.filled(key) | ~ctx.is_new,
                    _says(f"{h} is required for a new referral (a row without a Referral ID)."),
                )
            )
    return rules


def _uniqueness_rules(ctx: _Context) -> list[_Rule]:
    rules = []
    for key, code, what in (
        ("external_id", ProblemCode.DUPLICATE_EXTERNAL_ID, "deal"),
        ("referral_id", ProblemCode.DUPLICATE_REFERRAL_ID, "referral"),
    ):
        if not ctx.has(key):
            continue
        ids = ctx.get(key)
        dup = ids.notna() & ids.duplicated(keep=False)
        rows_of = ids[dup].groupby(ids[dup]).groups if dup.any() else {}
        h = ctx.header(key)

        def message(row: int, v: str | None, rows_of: dict = rows_of, h: str = h, what: str = what) -> str:
            others = [str(r) for r in rows_of.get(v, []) if r != row]
            return f"{h} '{v}' is also on row {', '.join(others)}: each {what} needs one row of its own."

        rules.append(_Rule(key, code, ~dup, message))
    return rules


def _cross_field_rules(ctx: _Context) -> list[_Rule]:
    return (
        _status_rules(ctx)
        + _deal_type_rules(ctx)
        + _services_rules(ctx)
        + _group_rules(ctx)
        + _value_rules(ctx)
    )


def _status_rules(ctx: _Context) -> list[_Rule]:
    pairs = ctx.enums.status_substatus
    # A new referral with no status is created New.
    status = ctx.get("status").where(ctx.get("status").notna() | ~ctx.is_new, "New")
    sub = ctx.get("substatus")
    fits = pd.Series(
        [s is None or u is None or u in pairs.get(s, ()) for s, u in zip(status, sub, strict=True)],
        index=ctx.index,
    )

    def message(row: int, v: str | None) -> str:
        s = status.loc[row]
        return f"Substatus '{v}' does not go with status '{s}': {s} allows {' or '.join(pairs[s])}."

    return [_Rule("substatus", ProblemCode.SUBSTATUS_MISMATCH, fits, message)]


def _deal_facts(ctx: _Context) -> DealFacts:
    deal, share, rtype = ctx.deal, ctx.share, ctx.get("referral_type")
    has_target = pd.Series(False, index=ctx.index)
    for n in ctx.group_numbers("target"):
        has_target |= ctx.filled(f"target.{n}.id")
    services = pd.Series(False, index=ctx.index)
    for key in SERVICES_KEYS:
        services |= ctx.filled(key)
    return DealFacts(
        private=deal == "Private",
        shared_deal=deal.isin(["Partner-led", "Co-sell"]),
        cosell=deal == "Co-sell",
        deal_known=deal.notna(),
        share_yes=share.eq(True),
        share_no=share.eq(False),
        help=ctx.filled("help_needed"),
        independent=rtype == "Independent",
        shared_type=rtype == "Shared",
        targeted=has_target,
        services=services,
    )


def _deal_type_rules(ctx: _Context) -> list[_Rule]:
    deal = ctx.deal
    facts = ctx.deal_facts

    def kept(code: ProblemCode) -> pd.Series:  # where the row keeps the rule
        return ~DEAL_TYPE_RULES[code](facts)

    sh = ctx.header("share_with_microsoft")
    return [
        _Rule(
            "share_with_microsoft",
            ProblemCode.PRIVATE_SHARED_WITH_MICROSOFT,
            kept(ProblemCode.PRIVATE_SHARED_WITH_MICROSOFT),
            lambda r, v: (
                f"A Private deal is not shared with Microsoft sellers: set {sh} to No, "
                "or choose Deal Type Partner-led or Co-sell."
            ),
        ),
        _Rule(
            "share_with_microsoft",
            ProblemCode.NEEDS_SHARE_WITH_MICROSOFT,
            kept(ProblemCode.NEEDS_SHARE_WITH_MICROSOFT),
            lambda r, v: (
                f"A {deal.loc[r]} deal is shared with Microsoft sellers: set {sh} to "
                "Yes, or choose Deal Type Private."
            ),
        ),
        _Rule(
            "help_needed",
            ProblemCode.COSELL_NEEDS_HELP,
            kept(ProblemCode.COSELL_NEEDS_HELP),
            lambda r, v: (
                f"A Co-sell deal asks Microsoft for help: choose what in {ctx.header('help_needed')}."
            ),
        ),
        _Rule(
            "help_needed",
            ProblemCode.HELP_WITHOUT_COSELL,
            kept(ProblemCode.HELP_WITHOUT_COSELL),
            lambda r, v: (
                f"{ctx.header('help_needed')} is only for Co-sell deals: choose Deal "
                f"Type Co-sell to ask Microsoft for help, or clear it (this row is {deal.loc[r]})."
            ),
        ),
        _Rule(
            "referral_type",
            ProblemCode.REFERRAL_TYPE_MISMATCH,
            kept(ProblemCode.REFERRAL_TYPE_MISMATCH),
            lambda r, v: (
                f"A {deal.loc[r]} deal is a Shared referral, not Independent: "
                "set Referral Type to Shared or leave it blank."
            ),
        ),
        _Rule(
            "referral_type",
            ProblemCode.SHARED_NEEDS_TARGET,
            kept(ProblemCode.SHARED_NEEDS_TARGET),
            lambda r, v: (
                "A Private deal of Referral Type Shared is shared with another partner: "
                "fill Target 1 Type (SolutionProfile) and Target 1 ID (their SOL-... id), "
                "or set Referral Type to Independent."
            ),
        ),
    ]


def _services_rules(ctx: _Context) -> list[_Rule]:
    keys = SERVICES_KEYS
    any_set = ctx.filled(keys[0]) | ctx.filled(keys[1]) | ctx.filled(keys[2])
    names = ", ".join(ctx.header(k) for k in keys)
    rules = [
        _Rule(
            k,
            ProblemCode.SERVICES_COSELL_INCOMPLETE,
            ~(any_set & ctx.blank(k)),
            _says(f"A Services co-sell deal needs {names} all filled: {ctx.header(k)} is blank."),
        )
        for k in keys
    ]
    rules.append(
        _Rule(
            "deal_type",
            ProblemCode.SERVICES_COSELL_NOT_COSELL,
            ~DEAL_TYPE_RULES[ProblemCode.SERVICES_COSELL_NOT_COSELL](ctx.deal_facts),
            lambda r, v: f"{names} are for Services co-sell deals: set Deal Type to Co-sell, or clear them.",
        )
    )
    return rules + _taxonomy_rules(ctx)


def _taxonomy_rules(ctx: _Context) -> list[_Rule]:
    """Solution Area and Solution Play against the taxonomy in force, as warnings:
    Partner Center changes the table every fiscal year without publishing it, so a
    value bulkref does not know may be one it accepts. The row stays valid and is
    sent as written; each cell gets one warning at most."""
    taxonomy = ctx.enums.taxonomy
    plays = taxonomy.solution_plays
    fy, known_by = taxonomy.fiscal_year, taxonomy.known_by()
    area, play = ctx.get("solution_area"), ctx.get("solution_play")
    listed_plays = set(taxonomy.plays)
    area_unlisted = area.map(lambda a: a not in plays, na_action="ignore").eq(True)
    play_unlisted = play.map(lambda p: p not in listed_plays, na_action="ignore").eq(True)
    # A listed play under a listed area it does not belong to; under an unlisted
    # area nothing can be said of it.
    elsewhere = pd.Series(
        [a in plays and p in listed_plays and p not in plays[a] for a, p in zip(area, play, strict=True)],
        index=ctx.index,
    )
    how = "Partner Center decides: it is sent as written (a newer table: see bulkref taxonomy)"

    def unlisted(kind: str, options: tuple[str, ...]) -> Callable[[int, str | None], str]:
        def message(_r: int, v: str | None) -> str:
            # Only a near-typo is guessed at: a new fiscal year's names often share
            # words with old ones ("AI Business Solutions", "Business Applications").
            guess = closest(v or "", options, cutoff=_TYPO)
            hint = f" Did you mean '{guess}'?" if guess else ""
            return f"'{v}' is not in the {fy} solution {kind} {known_by}; {how}.{hint}"

        return message

    return [
        _Rule(
            "solution_area",
            ProblemCode.UNLISTED_CHOICE,
            ~area_unlisted,
            unlisted("areas", taxonomy.areas),
            Severity.WARNING,
        ),
        _Rule(
            "solution_play",
            ProblemCode.UNLISTED_CHOICE,
            ~play_unlisted,
            unlisted("plays", taxonomy.plays),
            Severity.WARNING,
        ),
        _Rule(
            "solution_play",
            ProblemCode.SOLUTION_PLAY_MISMATCH,
            ~elsewhere,
            lambda r, v: (
                f"'{v}' is not a solution play of '{area.loc[r]}' in the {fy} table {known_by}; {how}. "
                f"Its plays there are: {'; '.join(plays.get(area.loc[r], ()))}."
            ),
            Severity.WARNING,
        ),
    ]


# How alike an unlisted area or play must be to a listed one to be offered as a
# typo of it: closer than the usual "did you mean" (see _taxonomy_rules).
_TYPO = 0.85


def _any_filled(ctx: _Context, group: str, n: int) -> pd.Series:
    out = pd.Series(False, index=ctx.index)
    for f in SPEC.group(group).fields:
        out |= ctx.filled(f"{group}.{n}.{f.key}")
    return out


def _group_rules(ctx: _Context) -> list[_Rule]:
    rules: list[_Rule] = []
    contact_numbers = ctx.group_numbers("contact")
    anyone = pd.Series(False, index=ctx.index)
    for n in contact_numbers:
        used = _any_filled(ctx, "contact", n)
        anyone |= used
        reachable = ctx.filled(f"contact.{n}.email") | ctx.filled(f"contact.{n}.phone")
        rules.append(
            _Rule(
                f"contact.{n}.email",
                ProblemCode.CONTACT_NEEDS_EMAIL_OR_PHONE,
                ~(used & ~reachable),
                _says(
                    f"Customer Contact {n} needs an email or a phone number so the customer can be reached."
                ),
            )
        )
    first = f"contact.{contact_numbers[0]}.email" if contact_numbers else "contact.1.email"
    rules.append(
        _Rule(
            first,
            ProblemCode.NO_CUSTOMER_CONTACT,
            ~(ctx.is_new & ~anyone),
            lambda r, v: (
                "A new referral needs at least one customer contact with an "
                "email or phone: fill Customer Contact 1 First Name, Last Name and Email."
            ),
        )
    )
    for n in ctx.group_numbers("team"):
        used = _any_filled(ctx, "team", n)
        rules.append(
            _Rule(
                f"team.{n}.email",
                ProblemCode.TEAM_MEMBER_NEEDS_EMAIL,
                ~(used & ctx.blank(f"team.{n}.email")),
                _says(f"Team Member {n} needs an email address."),
            )
        )
    for n in ctx.group_numbers("solution"):
        used = _any_filled(ctx, "solution", n)
        rules.append(
            _Rule(
                f"solution.{n}.id",
                ProblemCode.SOLUTION_NEEDS_ID,
                ~(used & ctx.blank(f"solution.{n}.id")),
                _says(f"Solution {n} needs its ID."),
            )
        )
    for n in ctx.group_numbers("target"):
        t, i = f"target.{n}.type", f"target.{n}.id"
        rules.append(
            _Rule(
                t,
                ProblemCode.INCOMPLETE_TARGET,
                ~(ctx.filled(i) & ctx.blank(t)),
                _says(f"Target {n} ID is set: choose Target {n} Type too."),
            )
        )
        rules.append(
            _Rule(
                i,
                ProblemCode.INCOMPLETE_TARGET,
                ~(ctx.filled(t) & ctx.blank(i)),
                _says(f"Target {n} Type is set: fill Target {n} ID too."),
            )
        )
    return rules


def _value_rules(ctx: _Context) -> list[_Rule]:
    value = ctx.get("deal_value")
    negative = value.map(lambda x: x < 0, na_action="ignore").eq(True)
    return [
        _Rule(
            "deal_value",
            ProblemCode.NEGATIVE_VALUE,
            ~negative,
            lambda r, v: f"{ctx.header('deal_value')} cannot be negative ('{v}').",
        )
    ]


def _run(table: Table, rules: list[_Rule]) -> list[Problem]:
    """Run the rules as one lazy pandera schema and turn its failure cases into problems."""
    # Imported here, after the sheet is read: the read's peak memory (the
    # workbook's cells, twice, inside the xlsx reader) is the run's peak, and
    # modules loaded before it count towards it.
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

    frame = table.frame
    extra = {r.key for r in rules} - set(frame.columns)
    if extra:
        # A rule may blame a column the sheet does not have (no Help Needed
        # column on a Co-sell row): give pandera an empty one to report on.
        frame = frame.assign(**{k: pd.Series(None, index=frame.index, dtype=object) for k in extra})
    checks: dict[str, list[pa.Check]] = {}
    messages: dict[tuple[str, str], Callable[[int, str | None], str]] = {}
    severities: dict[tuple[str, str], Severity] = {}
    for rule in rules:
        ok = rule.ok.reindex(frame.index, fill_value=True).astype(bool)
        checks.setdefault(rule.key, []).append(
            pa.Check(lambda _s, ok=ok: ok, name=rule.code, ignore_na=False)
        )
        messages[(rule.key, rule.code)] = rule.message
        severities[(rule.key, rule.code)] = rule.severity
    schema = pa.DataFrameSchema(
        {k: pa.Column(None, checks=cs, nullable=True, required=False) for k, cs in checks.items()},
        strict=False,
    )
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as err:
        return _problems(table, err.failure_cases, messages, severities)
    return []


def _problems(
    table: Table,
    cases: pd.DataFrame,
    messages: dict[tuple[str, str], Callable[[int, str | None], str]],
    severities: dict[tuple[str, str], Severity],
) -> list[Problem]:
    order = {k: i for i, k in enumerate(table.frame.columns)}
    out = []
    for key, code, row in zip(cases["column"], cases["check"], cases["index"], strict=True):
        row = int(row)
        raw = table.frame.at[row, key] if key in table.frame.columns else None
        text = None if raw is None or (isinstance(raw, float) and pd.isna(raw)) else as_text(raw)
        out.append(
            (
                row,
                order.get(key, len(order)),
                Problem(
                    sheet=table.sheet,
                    row=row,
                    column=table.headers.get(key),
                    code=code,
                    message=messages[(key, code)](row, text),
                    value=text,
                    severity=severities[(key, code)],
                ),
            )
        )
    out.sort(key=lambda t: (t[0], t[1]))
    return [p for _, _, p in out]
