"""The mapping page's form: a mapping file's content as fields a person picks
from, and back to the TOML that stays the format.

A ``Draft`` is a mapping document as ``tomllib`` reads it (``[source]``,
``[[skip]]``, ``[patterns]``, ``[fields]``) plus what the suggestion left to
decide. The page shows each template field with its source column(s) and the
options the format has; options the form has no control for (``rules``,
several ``columns`` joined, per-field number formats) are carried through the
form untouched, so nothing a hand-written mapping says is lost by editing it here.
Whether the result is a usable mapping is for ``bulkref.load_mapping`` to say:
nothing here judges a pattern or a value.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import tomlkit

from bulkref.web.wording import page_todo

# Entry options the form has a control for; any other is carried as it is (``extra``).
SHOWN_OPTIONS = (
    "column",
    "value",
    "values",
    "other",
    "default",
    "split",
    "part",
    "pattern",
    "delimiter",
    "date_format",
    "name",
    "name_order",
    "rows",
)
SOURCE_OPTIONS = ("sheet", "date_format", "decimal", "thousands", "group_by", "name_order")
# What the suggestion writes for a value it cannot decide: the page's "choose" instead.
UNDECIDED = "?"
# Date formats offered by name (any other strftime pattern can be typed).
DATE_FORMATS = (
    ("", "as the cells say (Excel dates, YYYY-MM-DD)"),
    ("%m/%d/%Y", "month first: 12/31/2026"),
    ("%d/%m/%Y", "day first: 31/12/2026"),
    ("%d.%m.%Y", "31.12.2026"),
    ("%Y-%m-%d", "2026-12-31"),
    ("%Y-%m-%d %H:%M", "2026-12-31 17:00"),
    ("%m/%d/%Y %H:%M", "12/31/2026 17:00"),
    ("%d/%m/%Y %H:%M", "31/12/2026 17:00"),
    ("%d-%b-%Y", "31-Dec-2026"),
)
NAME_ORDERS = (
    ("", "given name first (Anna Schäfer)"),
    ("family_given", "family name first (Kim Min-jun)"),
    ("whole", "the whole name is the last name"),
)
ROW_RULES = ("same", "first", "last", "min", "max", "sum")
OTHERS = (
    ("", "are an error"),
    ("keep", "are kept as they are"),
    ("blank", "leave the field blank"),
)


@dataclass
class Draft:
    source: dict[str, Any] = field(default_factory=dict)
    skips: list[dict[str, Any]] = field(default_factory=list)
    patterns: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # field name -> entry (a column, or a table)
    todos: dict[str, str] = field(default_factory=dict)  # field name -> what the suggestion left to decide
    questions: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- in


def from_document(doc: Mapping[str, Any]) -> Draft:
    source = doc.get("source")
    fields = doc.get("fields")
    skips = doc.get("skip", [])
    patterns = doc.get("patterns")
    return Draft(
        source=dict(source) if isinstance(source, dict) else {},
        skips=[dict(s) for s in (skips if isinstance(skips, list) else [skips]) if isinstance(s, dict)],
        patterns={str(k): str(v) for k, v in patterns.items()} if isinstance(patterns, dict) else {},
        fields=dict(fields) if isinstance(fields, dict) else {},
    )


def from_toml(text: str) -> Draft:
    """A mapping file's draft. Raises ``tomllib.TOMLDecodeError`` for text that is not TOML."""
    return from_document(tomllib.loads(text))


def from_suggestion(suggestion: Any) -> Draft:
    """The draft ``suggest_mapping`` makes, its commented entries (those with a value
    to decide) included: their ``"?"`` values become the page's "choose"."""
    draft = from_toml(suggestion.toml())
    for entry in getattr(suggestion, "entries", ()):
        text, todo = getattr(entry, "text", ""), getattr(entry, "todo", None)
        try:
            found = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, TypeError):
            continue
        for name, value in found.items():
            if getattr(entry, "commented", False):
                draft.fields.setdefault(name, value)
            if todo:
                draft.todos[name] = page_todo(str(todo))
    draft.questions = [page_todo(str(q)) for q in getattr(suggestion, "open_questions", [])]
    return draft


# --------------------------------------------------------------------------- the rows the page shows


@dataclass
class FieldRow:
    """One template field on the page, and what its entry says."""

    index: int
    name: str
    kind: str
    choices: tuple[str, ...]
    required: bool
    help: str
    mode: str  # "" (not mapped), "column", "value", "columns" (several columns: shown, kept)
    column: str = ""
    value: str = ""
    options: dict[str, str] = field(default_factory=dict)  # the shown options, as text
    value_map: list[tuple[str, str]] = field(default_factory=list)  # (export value, bulkref value or "?")
    extra: dict[str, Any] = field(default_factory=dict)  # options carried untouched
    todo: str | None = None

    @property
    def mapped(self) -> bool:
        return bool(self.mode)

    @property
    def source(self) -> str:
        """The form's source control: "col:<header>", "value", "columns" or ""."""
        return f"col:{self.column}" if self.mode == "column" else self.mode

    @property
    def extra_json(self) -> str:
        return json.dumps(self.extra, ensure_ascii=False, default=str) if self.extra else ""

    @property
    def extra_text(self) -> str:
        """The carried options as the TOML says them, for reading."""
        if not self.extra:
            return ""
        table = tomlkit.inline_table()
        table.update(self.extra)
        return table.as_string()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return "" if value is None else str(value)


def rows(draft: Draft, fields: list[Any], profile: Any | None) -> list[FieldRow]:
    """Every mappable field (``bulkref.mapping_fields()``), then any other field the
    draft names (a numbered item written out, like Customer Contact 2 Email)."""
    known = {f.name: f for f in fields}
    names = [f.name for f in fields] + [n for n in draft.fields if n not in known]
    out = []
    for i, name in enumerate(names):
        spec = known.get(name)
        entry = draft.fields.get(name)
        if isinstance(entry, str):
            entry = {"column": entry}
        entry = dict(entry) if isinstance(entry, dict) else {}
        row = FieldRow(
            index=i,
            name=name,
            kind=spec.kind if spec else "text",
            choices=tuple(spec.choices) if spec else (),
            required=bool(spec and spec.required),
            help=spec.help if spec else "",
            mode="",
            todo=draft.todos.get(name),
        )
        if "column" in entry:
            row.mode, row.column = "column", _text(entry.pop("column"))
        elif "value" in entry:
            row.mode, row.value = "value", _text(entry.pop("value"))
        elif "columns" in entry:
            row.mode = "columns"
        values = entry.pop("values", None)
        for option in SHOWN_OPTIONS:
            if option in entry and option not in ("column", "value", "values"):
                value = entry[option]
                if isinstance(value, (str, int)) and not isinstance(value, bool):
                    text = _text(entry.pop(option))
                    row.options[option] = escape(text) if option in ("split", "delimiter") else text
        row.extra = entry
        listed: dict[str, str] = {}
        if isinstance(values, dict):
            listed = {str(k): _text(v) for k, v in values.items()}
        if row.column and profile is not None and (row.choices or listed):
            column = profile.column(row.column)
            for v in column.values if column is not None else ():
                listed.setdefault(v, UNDECIDED)
        row.value_map = list(listed.items())
        out.append(row)
    return out


# --------------------------------------------------------------------------- from the form


def from_form(form: Mapping[str, Any]) -> Draft:
    """The draft a posted mapping form says: ``f{i}.*`` per field, ``source.*``,
    ``skip{k}.*`` and ``pattern{k}.*``. Blank inputs say nothing.
    ``f{i}.field`` names the field (``f{i}.name`` is the entry's ``name`` option)."""

    def get(key: str) -> str:
        value = form.get(key)
        return value.strip() if isinstance(value, str) else ""

    draft = Draft()
    for option in SOURCE_OPTIONS:
        if get(f"source.{option}"):
            draft.source[option] = get(f"source.{option}")
    if "source.thousands" in form and get("source.decimal"):
        draft.source["thousands"] = form.get("source.thousands") or ""  # "" is "no grouping"
    k = 0
    while f"skip{k}.column" in form:
        column, how = get(f"skip{k}.column"), get(f"skip{k}.when")
        if column and how:
            rule: dict[str, Any] = {"column": column}
            if how == "blank":
                rule["blank"] = True
            else:
                rule["pattern"] = get(f"skip{k}.pattern")
            if get(f"skip{k}.and_below"):
                rule["and_below"] = True
            if get(f"skip{k}.reason"):
                rule["reason"] = get(f"skip{k}.reason")
            draft.skips.append(rule)
        k += 1
    k = 0
    while f"pattern{k}.name" in form:
        name, text = get(f"pattern{k}.name"), form.get(f"pattern{k}.text")
        if name and isinstance(text, str) and text:
            draft.patterns[name] = text
        k += 1
    i = 0
    while f"f{i}.field" in form:
        name = get(f"f{i}.field")
        entry = _entry_from_form(form, f"f{i}.")
        if name and entry is not None:
            draft.fields[name] = entry
        i += 1
    return draft


def _entry_from_form(form: Mapping[str, Any], prefix: str) -> Any:
    def get(key: str) -> str:
        value = form.get(prefix + key)
        return value.strip() if isinstance(value, str) else ""

    # One control says where the value comes from: "col:<header>", "value" (one value
    # for every row), "columns" (several, as carried in extra) or "" (not mapped).
    source = form.get(prefix + "source")
    source = source if isinstance(source, str) else ""
    extra_text = get("extra")
    try:
        extra = json.loads(extra_text) if extra_text else {}
    except ValueError:
        extra = {}
    if not isinstance(extra, dict):
        extra = {}
    entry: dict[str, Any] = {}
    if source.startswith("col:") and source[4:]:
        mode = "column"
        entry["column"] = source[4:]
        extra.pop("columns", None)
    elif source == "value":
        mode = "value"
        entry["value"] = form.get(prefix + "value") or ""
    elif source == "columns" and extra.get("columns"):
        mode = "columns"
    else:
        return None
    values: dict[str, str] = {}
    j = 0
    while f"{prefix}map{j}.from" in form:
        source, target = form.get(f"{prefix}map{j}.from"), form.get(f"{prefix}map{j}.to")
        if isinstance(source, str) and isinstance(target, str) and target != UNDECIDED:
            values[source] = target
        j += 1
    if values and mode != "value":
        entry["values"] = values
    for option in SHOWN_OPTIONS:
        if option in ("column", "value", "values"):
            continue
        text = form.get(prefix + option)
        if option in ("split", "delimiter"):
            text = unescape(text) if isinstance(text, str) else ""  # a space is a split
        else:
            text = text.strip() if isinstance(text, str) else ""
        if text:
            entry[option] = int(text) if option == "part" and _is_int(text) else text
    for key, value in extra.items():
        entry.setdefault(str(key), value)
    if mode != "value" and "values" not in entry:
        entry.pop("other", None)  # "other" speaks of a value map's values only
    if list(entry) == ["column"]:
        return entry["column"]
    return entry


# A line break or tab cannot be typed in a one-line input: the form shows them escaped.
_ESCAPES = (("\\", "\\\\"), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r"))


def escape(text: str) -> str:
    for raw, shown in _ESCAPES:
        text = text.replace(raw, shown)
    return text


def unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "\\ntr":
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


# --------------------------------------------------------------------------- out


def to_toml(draft: Draft, title: str) -> str:
    """The draft as a mapping file, in the layout the documentation shows: one
    line per field, value maps inline."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"{title}: made on bulkref serve's mapping page."))
    doc.add(tomlkit.comment("Edit it there again, or here by hand: the format is the documented one."))
    doc.add(tomlkit.nl())
    if draft.source:
        source = tomlkit.table()
        for key in SOURCE_OPTIONS:
            if key in draft.source:
                source[key] = draft.source[key]
        doc["source"] = source
    if draft.skips:
        skips = tomlkit.aot()
        for rule in draft.skips:
            skip = tomlkit.table()
            for key, value in rule.items():
                skip[key] = _literal(value) if key == "pattern" else value
            skips.append(skip)
        doc["skip"] = skips
    if draft.patterns:
        patterns = tomlkit.table()
        for name, text in draft.patterns.items():
            patterns[name] = _literal(text)
        doc["patterns"] = patterns
    fields = tomlkit.table()
    for name, entry in draft.fields.items():
        if isinstance(entry, dict):
            table = tomlkit.inline_table()
            for key, value in entry.items():
                if isinstance(value, dict):
                    inner = tomlkit.inline_table()
                    # A value still to decide is left out: its rows show the problem.
                    inner.update({k: v for k, v in value.items() if v != UNDECIDED})
                    if not inner:
                        continue
                    table[key] = inner
                else:
                    table[key] = _literal(value) if key == "pattern" else value
            fields[name] = table
        else:
            fields[name] = entry
    doc["fields"] = fields
    return tomlkit.dumps(doc)


def _literal(value: Any) -> Any:
    """A regular expression as a single-quoted TOML string (backslashes as typed),
    where it can be one."""
    if isinstance(value, str) and "'" not in value and "\n" not in value:
        return tomlkit.string(value, literal=True)
    return value
