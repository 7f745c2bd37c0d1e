"""Mappings for exports that are not one clean row per deal: rows grouped by deal,
cells cut by patterns, rows skipped, rules over several columns, amounts with
their currency, and names in either order."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from bulkref.mapping.file import MappingError, parse_mapping
from bulkref.validation.check import check_file
from bulkref.validation.report import validation_text
from bulkref.validation.schema import Validated

HEADER = ["Deal", "Name", "Account", "Street", "City", "Country", "Amount", "Currency", "Close", "Email"]
BASE = """[fields]
"External Reference ID" = "Deal"
"Referral Name" = "Name"
"Customer Name" = "Account"
"Address Line 1" = "Street"
"City" = "City"
"Country" = "Country"
"Deal Value" = "Amount"
"Currency" = "Currency"
"Closing Date" = "Close"
"Customer Contact {n} Email" = "Email"
"Deal Type" = { value = "Partner-led" }
"""


def row(**cells: Any) -> dict[str, Any]:
    base = {
        "Deal": "D-1",
        "Name": "Contoso ERP",
        "Account": "Contoso Ltd",
        "Street": "1 Main St",
        "City": "Seattle",
        "Country": "US",
        "Amount": "50000",
        "Currency": "USD",
        "Close": "2027-03-31",
        "Email": "sue@contoso.example",
    }
    return {**base, **{k.replace("_", " "): v for k, v in cells.items()}}


class Export:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    def check(self, rows: list[dict[str, Any]], mapping: str) -> Validated:
        headers = list(dict.fromkeys([*HEADER, *(k for r in rows for k in r)]))
        path = self.tmp / "export.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(headers)
            for r in rows:
                w.writerow(["" if r.get(h) is None else r.get(h) for h in headers])
        (self.tmp / "m.toml").write_text(mapping, encoding="utf-8")
        return check_file(path, mapping=self.tmp / "m.toml")


@pytest.fixture
def export(tmp_path: Path) -> Export:
    return Export(tmp_path)


def errors(v: Validated) -> list[tuple[int | None, str]]:
    return [(p.row, p.code) for p in v.report.errors]


def source(text: str) -> str:
    """BASE with lines added to a [source] table put first."""
    return f"[source]\n{text}\n\n{BASE}"


# --------------------------------------------------------------------------- grouping


def test_rows_of_one_deal_make_one_referral_with_a_contact_per_row(export: Export) -> None:
    rows = [
        row(Email="sue@contoso.example", First="Sue"),
        row(Email="raj@contoso.example", First="Raj"),
        row(Deal="D-2", Name="Fabrikam", Email="ann@fabrikam.example", First="Ann"),
        row(Email="sue@contoso.example", First="Sue"),  # the same contact again, under another role
    ]
    text = source('group_by = "Deal"') + '"Customer Contact {n} First Name" = "First"\n'
    v = export.check(rows, text)
    assert v.valid, v.report.as_json()
    assert list(v.values.index) == [2, 4]  # each referral is known by its first row
    assert v.values.loc[2, "contact.1.email"] == "sue@contoso.example"
    assert v.values.loc[2, "contact.2.email"] == "raj@contoso.example"
    assert v.values.loc[2, "contact.2.first_name"] == "Raj"
    assert "contact.3.email" not in v.values  # the repeated contact is not a third one
    assert v.values.loc[4, "contact.1.first_name"] == "Ann"
    assert v.report.as_json()["groups"] == [{"row": 2, "rows": [2, 3, 5]}]
    assert "2 rows (referrals, from 4 rows of the export: group_by)" in validation_text(v.report, "x")


def test_deal_fields_that_differ_within_a_deal_are_an_error_naming_the_rows(export: Export) -> None:
    rows = [row(), row(Amount="60000", Email="b@contoso.example"), row(Amount="70000", Email="c@c.example")]
    v = export.check(rows, source('group_by = "Deal"'))
    [problem] = v.report.errors
    assert (problem.row, problem.code, problem.mapping_line) == (2, "group_conflict", 11)
    assert problem.column == "Amount -> Deal Value"
    assert "'50000' (row 2); '60000' (row 3); '70000' (row 4)" in problem.message
    assert "Deal 'D-1'" in problem.message and 'rows = "first"' in problem.message
    # Declared, the rows give the field by the rule.
    for rule, expected in (("first", 50000.0), ("last", 70000.0), ("max", 70000.0), ("sum", 180000.0)):
        text = source('group_by = "Deal"').replace(
            '"Deal Value" = "Amount"', f'"Deal Value" = {{ column = "Amount", rows = "{rule}" }}'
        )
        v = export.check(rows, text)
        assert v.valid and v.values.loc[2, "deal_value"] == expected, rule


def test_a_row_s_item_that_fails_is_reported_as_the_numbered_field_it_became(export: Export) -> None:
    rows = [row(Role="Buyer"), row(Email="raj@contoso.example", Role="Sponsor")]
    text = (
        source('group_by = "Deal"')
        + '"Customer Contact {n} Title" = { column = "Role", values = { "Buyer" = "CFO" } }\n'
    )
    [problem] = export.check(rows, text).report.errors
    assert (problem.row, problem.code, problem.column) == (
        3,
        "unmapped_value",
        "Role -> Customer Contact 2 Title",
    )
    assert problem.field == "Customer Contact 2 Title" and problem.mapping_line == 16


def test_products_of_a_deal_s_rows_are_one_list(export: Export) -> None:
    rows = [row(Product="Azure Migrate"), row(Product="Azure Arc"), row(Product="Azure Migrate")]
    v = export.check(rows, source('group_by = "Deal"') + '"Products" = "Product"\n')
    assert v.valid, v.report.as_json()
    assert v.values.loc[2, "products"] == ("Azure Migrate", "Azure Arc")


# --------------------------------------------------------------------------- patterns


ADDRESS = r"^(?P<street>[^,]+),\s*(?P<postal>\d{4,5})\s+(?P<city>[^,]+),\s*(?P<country>.+)$"
CHINA = r"^(?P<country>中国)(?P<city>\w+?市)(?P<street>\S+?)\s*邮政编码[:：]\s*(?P<postal>\d{6})$"


def test_one_address_string_is_cut_by_named_groups_of_a_pattern(export: Export) -> None:
    text = (
        source("")
        .replace('"City" = "City"\n', "")
        .replace('"Address Line 1" = "Street"\n', "")
        .replace('"Country" = "Country"\n', "")
        .replace("[fields]", f"[patterns]\neurope = '{ADDRESS}'\nchina = '{CHINA}'\n\n[fields]")
        + """"Address Line 1" = { column = "Address", pattern = "europe", part = "street" }
"Postal Code" = { column = "Address", pattern = "europe", part = "postal" }
"City" = { column = "Address", pattern = "europe", part = "city" }
"Country" = { column = "Address", pattern = "europe", part = "country", values = { "Deutschland" = "DE" }, \
other = "keep" }
"""
    )
    v = export.check([row(Address="Leopoldstraße 12, 80802 München, Germany")], text)
    assert v.valid, v.report.as_json()
    got = v.values.loc[2, ["address_line1", "postal_code", "city", "country"]].tolist()
    assert got == ["Leopoldstraße 12", "80802", "München", "DE"]
    chinese = text.replace('"europe"', '"china"').replace('"Deutschland" = "DE"', '"中国" = "CN"')
    v = export.check([row(Address="中国北京市建国路88号 邮政编码: 100022")], chinese)
    assert v.valid, v.report.as_json()
    got = v.values.loc[2, ["address_line1", "postal_code", "city", "country"]].tolist()
    assert got == ["建国路88号", "100022", "北京市", "CN"]
    # A cell the pattern does not match: one error per field read from it, on the cell.
    v = export.check([row(Address="somewhere in Bavaria")], text)
    assert {p.code for p in v.report.errors} == {"pattern_mismatch"}
    problem = next(p for p in v.report.errors if p.field == "City")
    assert (problem.row, problem.column, problem.source_column) == (2, "Address -> City", "Address")
    assert "'somewhere in Bavaria' does not match the pattern europe of m.toml line 19" in problem.message


def test_a_part_that_is_no_group_of_the_pattern_is_a_mapping_error() -> None:
    text = BASE.replace(
        '"City" = "City"', '"City" = { column = "A", pattern = \'(?P<town>.+)\', part = "city" }'
    )
    with pytest.raises(
        MappingError, match=r'line 6: .*part must name a group of the pattern .* \(its named groups: "town"'
    ):
        parse_mapping(text, "m.toml")
    with pytest.raises(MappingError, match=r"line 6: .*not a regular expression"):
        parse_mapping(text.replace("(?P<town>.+)", "(unclosed"), "m.toml")


def test_a_pathological_pattern_on_long_cells_returns_at_once(export: Export) -> None:
    """Python's re takes minutes on '^(a+)+$' and thirty a's and a b (and holds the GIL
    meanwhile); the mapping's patterns run on RE2, in time linear in the cell."""
    mapping = "[[skip]]\ncolumn = \"Account\"\npattern = '^(a+)+$'\n\n" + BASE.replace(
        '"City" = "City"', '"City" = { column = "City", pattern = \'(x+x+)+y\', part = 0 }'
    )
    rows = [row(Deal=f"D-{i}", Account="a" * 30 + "b", City="x" * 5000) for i in range(50)]
    started = time.monotonic()
    v = export.check(rows, mapping)
    assert time.monotonic() - started < 5
    assert v.report.rows == 50 and {p.code for p in v.report.errors} == {"pattern_mismatch"}


@pytest.mark.parametrize(
    ("pattern", "said"),
    [
        (r"(a)\1", r"uses a backreference (\1)"),
        (r"(?P<x>a)(?P=x)", "uses a backreference (?P=name)"),
        (r"Total(?= row)", "uses a lookahead (?=...)"),
        (r"(?!Sub)Total", "uses a negative lookahead (?!...)"),
        (r"(?<=Grand )Total", "uses a lookbehind (?<=...)"),
        (r"(?<!Sub)Total", "uses a negative lookbehind (?<!...)"),
        (r"(?>a+)b", "uses an atomic group (?>...)"),
        (r"a++b", "uses a possessive quantifier (++)"),
        (r"[\W_]+", r"uses \W inside brackets"),
    ],
)
def test_a_pattern_with_a_feature_re2_lacks_is_refused_naming_the_line(pattern: str, said: str) -> None:
    # The second rule: its message names its own [[skip]] line, not the first one's.
    text = (
        f'[[skip]]\ncolumn = "Deal"\nblank = true\n\n[[skip]]\ncolumn = "Account"\npattern = \'{pattern}\'\n'
    )
    with pytest.raises(MappingError) as info:
        parse_mapping(text + "\n" + BASE, "m.toml")
    message = str(info.value)
    assert message.startswith(f"m.toml line 5: [[skip]] pattern {said}"), message
    assert "linear in the cell" in message or "[^...]" in message


@pytest.mark.parametrize(
    ("pattern", "texts"),
    [
        (r"(?P<city>\w+?市)(?P<rest>\S+)", ["北京市建国路88号", "München", "a_1市x"]),
        (r"\d{3}", ["١٢٣", "１２３", "123", "12a"]),  # Unicode digits, as Python's \d
        (r"a\sb", ["a\u3000b", "a\xa0b", "a\tb", "a-b"]),
        (r"[\w-]+", ["Zürich-Öst", "naïve", "--"]),
        (r"\D+|\W+|\S+", ["x", "é", " "]),
        (r"(?i)straße", ["STRASSE", "Straße", "STRAßE"]),
        (r"^(Sub)?[Tt]otal", ["Total", "Subtotal", "total", "grand total"]),
        (r"a{,2}b", ["b", "aab", "aaab", "a{,2}b"]),
        (r"x\Z", ["x", "x\n"]),
        (r"(?#a comment)\u00e9\N{EM DASH}", ["é—"]),
        (r"[]x]+", ["]x]", "y"]),
        (r"[[:alpha:]]+", ["[:", "abc", "ph:"]),
        (r"(a)|(b)", ["a", "b"]),
    ],
)
def test_patterns_mean_what_they_mean_in_python(pattern: str, texts: list[str]) -> None:
    from bulkref.mapping.patterns import Pattern

    ours, python = Pattern(pattern), re.compile(pattern)
    assert ours.groups == python.groups and ours.groupindex == dict(python.groupindex)
    for text in texts:
        for how in ("search", "fullmatch"):
            got, want = getattr(ours, how)(text), getattr(python, how)(text)
            assert (got is None) == (want is None), (pattern, text, how)
            if got is not None and want is not None:
                groups = range(python.groups + 1)
                assert [got.group(g) for g in groups] == [want.group(g) for g in groups], (pattern, text)


def test_word_digit_and_space_classes_are_python_s_across_the_basic_plane() -> None:
    import unicodedata

    from bulkref.mapping.patterns import Pattern

    # Every character Python's Unicode tables know (RE2's may be newer, and know more).
    chars = "".join(c for c in map(chr, range(0x10000)) if unicodedata.category(c) not in ("Cn", "Cs"))
    for cls in (r"\w", r"\d", r"\s", r"\W", r"\D", r"\S"):
        ours, python = Pattern(cls), re.compile(cls)
        assert [c for c in chars if ours.fullmatch(c)] == python.findall(chars), cls


# --------------------------------------------------------------------------- skipping rows


def test_skip_rules_leave_out_totals_blank_ids_and_footers_and_say_so(export: Export) -> None:
    rows = [
        row(),
        row(Deal=None, Name="(no id yet)"),
        row(Deal="D-2", Account="Total"),
        row(Deal="D-3"),
        row(Deal="Grand Totals (3 records)", Name=None),
        row(Deal="Confidential Information - Do Not Distribute", Name=None),
    ]
    text = (
        """[[skip]]
column = "Deal"
blank = true

[[skip]]
column = "Account"
pattern = '^Total'
reason = "a subtotal row"

[[skip]]
column = "Deal"
pattern = '^Grand Totals'
and_below = true

"""
        + BASE
    )
    v = export.check(rows, text)
    assert v.valid, v.report.as_json()
    assert list(v.values.index) == [2, 5]
    skipped = v.report.as_json()["skipped"]
    assert skipped == [
        {"row": 3, "reason": "Deal is blank", "mappingLine": 1},
        {"row": 4, "reason": "a subtotal row", "mappingLine": 5},
        {"row": 6, "reason": "Deal 'Grand Totals (3 records)' matches '^Grand Totals'", "mappingLine": 10},
        {
            "row": 7,
            "reason": "below row 6: Deal 'Grand Totals (3 records)' matches '^Grand Totals'",
            "mappingLine": 10,
        },
    ]
    shown = validation_text(v.report, "export.csv")
    assert "skipped 4 rows ([[skip]] in the mapping):" in shown
    assert "    row 4: a subtotal row (line 5)" in shown
    # Without a mapping nothing is skipped, and the JSON has no such key.
    assert (
        "skipped" not in check_file(Path(__file__).parents[1] / "examples" / "referrals.csv").report.as_json()
    )


def test_a_skip_rule_needs_one_condition_and_a_known_column(export: Export) -> None:
    with pytest.raises(MappingError, match=r"line 1: \[\[skip\]\] needs one condition"):
        parse_mapping('[[skip]]\ncolumn = "Deal"\n\n' + BASE, "m.toml")
    with pytest.raises(
        BulkrefErrorLike, match=r"line 1: \[\[skip\]\] reads column 'Dael'.*Did you mean 'Deal'"
    ):
        export.check([row()], '[[skip]]\ncolumn = "Dael"\nblank = true\n\n' + BASE)


BulkrefErrorLike = MappingError


# --------------------------------------------------------------------------- rules


STATUS = """
"Status" = { columns = ["Stage", "State"], rules = [
    ["*", "Won", "Closed"],
    ["*", "Lost", "Closed"],
    ["Prospect*", "Open", "New"],
    ["*", "Open", "Active"],
] }
"Substatus" = { columns = ["State", "Reason"], rules = [
    ["Won", "*", "Won"],
    ["Lost", "Out-Sold", "Lost"],
    ["Lost", "*", "Declined"],
    ["Open", "", "Pending"],
    ["*", "*", "Accepted"],
] }
"""


def test_rules_over_several_columns_first_match_wins_with_wildcards_and_a_fallback(export: Export) -> None:
    rows = [
        row(Stage="Prospecting", State="Open", Reason=None),
        row(Deal="2", Stage="Develop", State="open", Reason="On Hold"),
        row(Deal="3", Stage="Propose", State="Lost", Reason="Out-Sold"),
        row(Deal="4", Stage="Close", State="Lost", Reason="Canceled"),
        row(Deal="5", Stage="Close", State="Won", Reason="Won"),
    ]
    v = export.check(rows, BASE + STATUS)
    assert v.valid, v.report.as_json()
    assert v.values[["status", "substatus"]].values.tolist() == [
        ["New", "Pending"],
        ["Active", "Accepted"],  # "On Hold" has no Partner Center equivalent: the fallback decides
        ["Closed", "Lost"],
        ["Closed", "Declined"],
        ["Closed", "Won"],
    ]
    # other = "blank" leaves a row no rule matches blank.
    blank = BASE + STATUS.replace(
        '["*", "Open", "Active"],\n] }', '["*", "Open", "Active"],\n], other = "blank" }'
    )
    v = export.check([row(Stage="Develop", State="Suspended", Reason="On Hold")], blank)
    assert v.values.loc[2, "status"] is None
    assert "no_rule_matched" not in [p.code for p in v.report.errors]
    # No rule matches and there is no fallback: an error on the row, naming both cells.
    v = export.check([row(Stage="Develop", State="Suspended", Reason=None)], BASE + STATUS)
    [problem] = [p for p in v.report.errors if p.field == "Status"]
    assert problem.code == "no_rule_matched" and problem.column == "Stage + State -> Status"
    assert problem.message.startswith(
        "Stage 'Develop', State 'Suspended' matches none of the rules of m.toml"
    )


def test_a_rule_of_the_wrong_shape_or_into_a_value_the_field_does_not_take_is_a_mapping_error() -> None:
    bad = (
        BASE
        + '"Status" = { columns = ["Stage", "State"], rules = [["Won", "Closed"], ["*", "*", "Done"]] }\n'
    )
    with pytest.raises(MappingError) as e:
        parse_mapping(bad, "m.toml")
    assert 'rule 1 is ["Won", "Closed"]; each rule is ["Stage", "State", "value"]' in str(e.value)
    assert 'rule 2 gives "Done", which is not a Status' in str(e.value)


# --------------------------------------------------------------------------- amounts and names


@pytest.mark.parametrize(
    ("amount", "value", "currency"),
    [
        ("USD 310,000.00", 310000.0, "USD"),
        ("310,000.00 USD", 310000.0, "USD"),
        ("€1,234.50", 1234.5, "EUR"),
        ("$ 99", 99.0, "USD"),  # "$" is mapped by the entry
    ],
)
def test_an_amount_with_its_currency_gives_both(
    export: Export, amount: str, value: float, currency: str
) -> None:
    text = BASE.replace(
        '"Currency" = "Currency"',
        '"Currency" = { column = "Amount", from_amount = true, values = { "$" = "USD" } }',
    )
    v = export.check([row(Amount=amount)], text)
    assert v.valid, v.report.as_json()
    assert (v.values.loc[2, "deal_value"], v.values.loc[2, "currency"]) == (value, currency)


def test_european_amounts_and_amounts_without_a_currency(export: Export) -> None:
    text = '[source]\ndecimal = ","\n\n' + BASE.replace(
        '"Currency" = "Currency"', '"Currency" = { column = "Amount", from_amount = true }'
    )
    v = export.check([row(Amount="€1.234,50")], text)
    assert v.valid and (v.values.loc[2, "deal_value"], v.values.loc[2, "currency"]) == (1234.5, "EUR")
    v = export.check([row(Amount="$ 1.234,50"), row(Deal="2", Amount="1.234,50")], text)
    got = [(p.row, p.code, p.column) for p in v.report.errors]
    assert got == [
        (2, "no_amount_currency", "Amount -> Currency"),
        (3, "no_amount_currency", "Amount -> Currency"),
    ]
    assert 'add values = { "$" = "USD" }' in v.report.errors[0].message


NAMES = """
"Customer Contact 1 First Name" = { column = "Contact", name = "first", name_order = "ORDER" }
"Customer Contact 1 Last Name" = { column = "Contact", name = "last", name_order = "ORDER" }
"""


@pytest.mark.parametrize(
    ("order", "full", "first", "last"),
    [
        ("given_family", "Anna von Schäfer", "Anna", "von Schäfer"),
        ("family_given", "Kim Min-jun", "Min-jun", "Kim"),
        ("family_given", "王伟", "伟", "王"),
        ("family_given", "欧阳娜娜", "娜娜", "欧阳"),
        ("given_family", "Lopez, Maria", "Maria", "Lopez"),
        ("whole", "Pham Thi Lan Anh", None, "Pham Thi Lan Anh"),
        ("given_family", "Madonna", None, "Madonna"),
    ],
)
def test_full_names_split_in_their_declared_order(
    export: Export, order: str, full: str, first: str | None, last: str | None
) -> None:
    v = export.check([row(Contact=full)], BASE + NAMES.replace("ORDER", order))
    assert v.valid, v.report.as_json()
    assert (v.values.loc[2, "contact.1.first_name"], v.values.loc[2, "contact.1.last_name"]) == (first, last)


def test_a_source_wide_name_order_and_a_bad_one() -> None:
    text = '[source]\nname_order = "family_given"\n\n' + BASE + NAMES.replace(', name_order = "ORDER"', "")
    mapping = parse_mapping(text, "m.toml")
    assert {f.name_order for f in mapping.fields if f.name_part} == {"family_given"}
    with pytest.raises(MappingError, match=r'line 2: \[source\] name_order must be "given_family"'):
        parse_mapping(text.replace("family_given", "surname_first"), "m.toml")


def test_json_of_a_mapped_validation_has_skipped_and_groups(export: Export) -> None:
    v = export.check([row()], BASE)
    doc = json.loads(json.dumps(v.report.as_json()))
    assert doc["skipped"] == [] and "groups" not in doc


# --------------------------------------------------------------------------- the guide


def _guide_blocks() -> list[str]:
    """The TOML examples of docs/mapping.md's section on exports that are not one row per deal."""
    guide = (Path(__file__).resolve().parents[1] / "docs" / "mapping.md").read_text(encoding="utf-8")
    section = guide.split("\n## Exports that are not one clean row per deal\n", 1)[1]
    part = section.split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in part.split("```toml\n")[1:]]


def test_every_example_of_the_guide_s_row_options_is_a_whole_mapping() -> None:
    blocks = _guide_blocks()
    assert len(blocks) == 6
    options = ("group_by", "rows", "pattern", "[patterns]", "[[skip]]", "and_below", "rules", "from_amount")
    assert [o for o in options if not any(o in b for b in blocks)] == []
    for block in blocks:
        parse_mapping(block, "mapping.md.toml")


def test_the_guide_s_grouping_example_reads_its_own_rows(tmp_path: Path) -> None:
    from bulkref.mapping.source import read_mapped

    block = _guide_blocks()[0]
    rows = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    (tmp_path / "report.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "m.toml").write_text(block, encoding="utf-8")
    mapped = read_mapped(tmp_path / "report.csv", tmp_path / "m.toml")
    frame = mapped.table.frame
    assert list(frame.index) == [2]
    assert frame.loc[2, ["contact.1.first_name", "contact.2.first_name", "contact.2.email"]].tolist() == [
        "Nadia",
        "Tom",
        "tom@fourthcoffee.example",
    ]
    assert frame.loc[2, "products"] == "Microsoft 365 Copilot; Microsoft 365 E5"


@pytest.mark.parametrize(
    ("text", "split", "number"),
    [
        ("USD 310,000.00", ("USD", "310,000.00"), 310000.0),
        ("310 000,00 EUR", ("EUR", "310 000,00"), None),  # "," is no decimal mark by default
        ("€1.234,50", ("€", "1.234,50"), None),
        ("US$ 5", ("US$", "5"), 5.0),
        ("1,234.5", (None, "1,234.5"), 1234.5),
        ("EUR 5 USD", None, None),  # a currency on both sides is no amount
        ("12 Main St", None, None),
    ],
)
def test_amounts_split_into_currency_and_number(
    text: str, split: tuple[str | None, str] | None, number: float | None
) -> None:
    from bulkref.sheets.values import parse_number, split_amount

    assert split_amount(text) == split
    assert parse_number(text, currency=True) == number
    # Without currency=True (the validator's numbers), a currency is no number.
    assert parse_number(text) == (number if split is not None and split[0] is None else None)
