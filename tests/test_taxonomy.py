"""The Services co-sell taxonomy (solution area -> solution plays) of one fiscal year:
a value outside the table in force is a warning and is sent as written; a taxonomy
file replaces the table for the template and the check; `bulkref taxonomy` prints it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from helpers import row
from openpyxl.utils.cell import range_to_tuple

from bulkref.errors import TaxonomyError
from bulkref.mapping.file import parse_mapping
from bulkref.mapping.suggest import suggest_mapping
from bulkref.sheets.template import SHEET_INSTRUCTIONS, SHEET_LISTS, SHEET_REFERRALS, build_workbook
from bulkref.spec import enums
from bulkref.spec.columns import SPEC
from bulkref.validation.check import check_file

Make = Callable[..., Path]

AREA, PLAY = "AI Business Solutions", "Agentic Workflows"
FY26 = f"""fiscal_year = "FY26"

[solution_plays]
"{AREA}" = ["{PLAY}", "Copilot and agents at work"]
"Cloud and AI Platforms" = [ "Migrate and modernize your estate",
  "Unify your data platform" ]
"""
# A Services co-sell deal in FY26 terms: valid in every other respect.
SERVICES_ROW = row(
    External_Reference_ID="CRM-FY26",
    Deal_Type="Co-sell",
    Help_Needed="GeneralOrOther",
    Partner_Role="Deployment services",
    Solution_Area=AREA,
    Solution_Play=PLAY,
)


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != enums.TAXONOMY_ENV}
    return subprocess.run(
        [sys.executable, "-m", "bulkref", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**environ, **(env or {})},
    )


@pytest.fixture
def fy26(tmp_path: Path) -> Path:
    path = tmp_path / "fy26.toml"
    path.write_text(FY26, encoding="utf-8")
    return path


# --- the check ----------------------------------------------------------------


@pytest.mark.slow
def test_an_fy26_area_and_play_validate_with_a_warning_each(xlsx: Make) -> None:
    done = run("validate", xlsx([SERVICES_ROW]), "--format", "json")
    assert done.returncode == 0, done.stdout  # warnings leave the file valid: exit 0
    doc = json.loads(done.stdout)
    assert doc["valid"] is True and doc["errors"] == []
    found = [(w["row"], w["column"], w["code"], w["value"]) for w in doc["warnings"]]
    assert found == [
        (2, "Solution Area", "unlisted_choice", AREA),
        (2, "Solution Play", "unlisted_choice", PLAY),
    ]
    assert doc["warnings"][0]["message"].startswith(
        f"'{AREA}' is not in the FY24 solution areas bulkref knows; Partner Center decides"
    )
    # No "did you mean" towards an old name that merely shares a word.
    assert "Did you mean" not in doc["warnings"][0]["message"]


@pytest.mark.slow
def test_an_fy26_row_plans_as_a_create_with_its_values_in_both_referrals(xlsx: Make) -> None:
    done = run("plan", xlsx([SERVICES_ROW]), "--offline", "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["summary"]["create"] == 1 and doc["summary"]["invalid"] == 0
    (planned,) = doc["rows"]
    assert planned["action"] == "create"
    # A Co-sell: the partner's referral, then Microsoft's, each carrying the trio as written.
    assert len(planned["steps"]) == 2
    for step in planned["steps"]:
        body = step["body"]
        assert (body["partnerRole"], body["solutionArea"], body["solutionPlay"]) == (
            "Deployment services",
            AREA,
            PLAY,
        )


def test_an_fy26_row_applies_to_the_documented_sandbox(
    xlsx: Make, sandbox_factory: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resources page asks for the FY26 areas and plays and no page lists them: the
    documented sandbox takes any, and bulkref sends the row as written."""
    from bulkref.apply.outcome import Outcome
    from bulkref.apply.run import apply_input

    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", "t")
    server = sandbox_factory(profile="documented")
    run = apply_input(xlsx([SERVICES_ROW]), api_url=server.url)
    assert [r.outcome for r in run.results] == [Outcome.CREATED], [r.error_message for r in run.results]
    held = httpx.get(f"{server.url}/{run.results[0].referral_id}", headers={"Authorization": "Bearer t"})
    assert (held.json().get("solutionArea"), held.json().get("solutionPlay")) == (AREA, PLAY)


def test_a_listed_play_under_another_area_is_a_warning_too(xlsx: Make) -> None:
    result = check_file(xlsx([row(**{**_underscored(SERVICES_ROW), "Solution_Area": "Security"})]))
    assert result.valid
    result = check_file(
        xlsx(
            [
                row(
                    **{
                        **_underscored(SERVICES_ROW),
                        "Solution_Area": "Security",
                        "Solution_Play": "Migrate SAP",
                    }
                )
            ]
        )
    )
    assert result.valid
    (warning,) = result.report.warnings
    assert (warning.column, warning.code) == ("Solution Play", "solution_play_mismatch")
    assert "Its plays there are: Threat protection with XDR and SIEM" in warning.message


def test_a_near_typo_is_kept_with_a_guess_and_a_known_name_is_spelt_as_listed(xlsx: Make) -> None:
    result = check_file(
        xlsx(
            [
                row(
                    **{
                        **_underscored(SERVICES_ROW),
                        "Solution_Area": "Infrastucture",
                        "Solution_Play": "migrate sap",
                    }
                ),
            ]
        )
    )
    assert result.valid
    (warning,) = result.report.warnings
    assert warning.code == "unlisted_choice" and warning.message.endswith("Did you mean 'Infrastructure'?")
    typed = result.values.loc[2]
    assert (typed["solution_area"], typed["solution_play"]) == ("Infrastucture", "Migrate SAP")


def test_partner_role_stays_checked_against_its_documented_list(xlsx: Make) -> None:
    result = check_file(xlsx([row(**{**_underscored(SERVICES_ROW), "Partner_Role": "Agent builder"})]))
    assert [(p.column, p.code) for p in result.report.errors] == [("Partner Role", "invalid_choice")]


def test_a_mapping_may_write_a_newer_area(tmp_path: Path) -> None:
    mapping = parse_mapping(f'[fields]\n"Solution Area" = {{ value = "{AREA}" }}\n')
    assert [f.name for f in mapping.fields] == ["Solution Area"]


def test_map_suggest_reads_newer_areas_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(f"Opportunity ID,Solution Area\n1,{AREA}\n2,Security\n", encoding="utf-8")
    text = suggest_mapping(path).toml()
    assert tomllib.loads(text)["fields"]["Solution Area"] == "Solution Area"  # an entry, not a comment
    assert f'holds "{AREA}", not in the FY24 table bulkref has: sent as written' in text


def _underscored(r: dict[str, object]) -> dict[str, object]:
    return {k.replace(" ", "_"): v for k, v in r.items()}


# --- a taxonomy file ------------------------------------------------------------


@pytest.mark.slow
def test_a_taxonomy_file_turns_the_warnings_off(xlsx: Make, fy26: Path) -> None:
    path = xlsx([SERVICES_ROW])
    for args, env in (
        (("--taxonomy", fy26), None),
        ((), {enums.TAXONOMY_ENV: str(fy26)}),
    ):
        done = run("validate", path, "--format", "json", *args, env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["warnings"] == [], args
    # An FY24 area is now the one outside the table.
    with enums.using_taxonomy(fy26):
        result = check_file(xlsx([row(**{**_underscored(SERVICES_ROW), "Solution_Area": "Security"})]))
    (warning,) = result.report.warnings
    assert warning.message.startswith("'Security' is not in the FY26 solution areas of fy26.toml;")


@pytest.mark.slow
def test_the_option_wins_over_the_environment(xlsx: Make, fy26: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("fiscal_year = \n", encoding="utf-8")
    done = run("validate", xlsx([SERVICES_ROW]), "--taxonomy", fy26, env={enums.TAXONOMY_ENV: str(broken)})
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_taxonomy_file_sets_the_template_drop_downs(tmp_path: Path, fy26: Path) -> None:
    out = tmp_path / "t.xlsx"
    done = run("template", out, "--taxonomy", fy26)
    assert done.returncode == 0, done.stderr
    wb = openpyxl.load_workbook(out)
    columns = SPEC.columns()
    letters = {c.key: openpyxl.utils.get_column_letter(i) for i, c in enumerate(columns, start=1)}
    validations = {
        openpyxl.utils.get_column_letter(r.min_col): dv
        for dv in wb[SHEET_REFERRALS].data_validations.dataValidation
        for r in dv.sqref.ranges
    }
    for key, expected in (
        ("solution_area", (AREA, "Cloud and AI Platforms")),
        (
            "solution_play",
            (
                PLAY,
                "Copilot and agents at work",
                "Migrate and modernize your estate",
                "Unify your data platform",
            ),
        ),
    ):
        dv = validations[letters[key]]
        sheet, (col, first, _, last) = range_to_tuple(dv.formula1)
        assert sheet == SHEET_LISTS
        lists = wb[SHEET_LISTS]
        assert lists.cell(1, col).value == key
        assert tuple(lists.cell(r, col).value for r in range(first, last + 1)) == expected
        assert lists.cell(last + 1, col).value is None
        # Excel warns about a typed name but keeps it: a newer one must get through.
        assert dv.type == "list" and dv.errorStyle == "warning"
        assert dv.errorTitle == "Not in the FY26 list" and "Keep a newer name" in dv.error
    instructions = [c.value for c in wb[SHEET_INSTRUCTIONS]["A"] if c.value]
    assert "Solution Area and Solution Play (FY26)" in instructions
    assert AREA in instructions and "Security" not in instructions


def test_without_a_file_the_template_offers_the_shipped_fy24_table() -> None:
    wb = build_workbook()
    heads = [c.value for c in wb[SHEET_LISTS][1]]
    col = heads.index("solution_area") + 1
    areas = [wb[SHEET_LISTS].cell(r, col).value for r in range(2, 9)]
    assert areas == list(enums.load().taxonomy.areas) and "Security" in areas
    assert enums.load().taxonomy.fiscal_year == "FY24"


# --- bulkref taxonomy -------------------------------------------------------------


@pytest.mark.slow
def test_bulkref_taxonomy_prints_the_shipped_table_and_round_trips(tmp_path: Path) -> None:
    first = run("taxonomy")
    assert first.returncode == 0, first.stderr
    assert 'fiscal_year = "FY24"' in first.stdout and '"Data & AI" = [' in first.stdout
    printed = tmp_path / "fy24.toml"
    printed.write_text(first.stdout, encoding="utf-8")
    again = run("taxonomy", "--taxonomy", printed)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    shipped = enums.load().taxonomy
    read = enums.read_taxonomy(printed)
    assert (read.fiscal_year, read.solution_plays) == (shipped.fiscal_year, shipped.solution_plays)


@pytest.mark.slow
def test_a_hand_written_file_prints_in_the_canonical_shape_and_round_trips(tmp_path: Path) -> None:
    hand = tmp_path / "hand.toml"
    hand.write_text(
        '\ufefffiscal_year = " FY27 "\n[solution_plays]\n'
        '"  Sécurité \\"Zero\\" Trust " = [ "Défense", "Play\\\\two" ]\n'
        "'Literal area' = ['One']\n",
        encoding="utf-8",
    )
    printed = run("taxonomy", env={enums.TAXONOMY_ENV: str(hand)})
    assert printed.returncode == 0, printed.stderr
    assert 'fiscal_year = "FY27"' in printed.stdout
    assert '"Sécurité \\"Zero\\" Trust" = [\n    "Défense",\n    "Play\\\\two",\n]' in printed.stdout
    canonical = tmp_path / "canonical.toml"
    canonical.write_bytes(printed.stdout.encode("utf-8"))
    assert run("taxonomy", "--taxonomy", canonical).stdout == printed.stdout
    read = enums.read_taxonomy(canonical)
    assert read.solution_plays == {
        'Sécurité "Zero" Trust': ("Défense", "Play\\two"),
        "Literal area": ("One",),
    }
    assert read.toml() == printed.stdout


# --- a file that cannot be used -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ('fiscal_year = "FY26"\n[solution_plays]\n"A" = ["x"\n', 3, "is not valid TOML (unclosed array"),
        ('fiscal_year = FY26\n[solution_plays]\n"A" = ["x"]\n', 1, "is not valid TOML (invalid value"),
        ('[solution_plays]\n"A" = ["x"]\n', 1, "fiscal_year is missing"),
        (
            '[solution_plays]\nfiscal_year = "FY26"\n"A" = ["x"]\n',
            2,
            "fiscal_year belongs above [solution_plays]",
        ),
        ('fiscal_year = "FY26"\n[solution_play]\n"A" = ["x"]\n', 2, "(did you mean solution_plays?)"),
        (
            'fiscal_year = "FY26"\n[solution_plays]\n"A" = ["x"]\n"B" = "y"\n',
            4,
            "the plays of 'B' must be a list",
        ),
        (
            'fiscal_year = "FY26"\n[solution_plays]\n"A" = [\n  "x",\n  "y",\n  "X",\n]\n',
            6,
            "'X' is listed twice",
        ),
        (
            'fiscal_year = "FY26"\n[solution_plays]\n"A" = ["x"]\n"a" = ["y"]\n',
            4,
            "'a' is the area 'A' again",
        ),
        ('fiscal_year = "FY26"\n[solution_plays]\n"A" = ["x"]\n"A" = ["y"]\n', 4, "a name is given twice"),
        ('fiscal_year = "FY26"\n[solution_plays]\n"A" = []\n', 3, "the plays of 'A' must be a list"),
        (
            'fiscal_year = "FY26"\n[solution_plays]\n"A" = ["x", 3]\n',
            3,
            "3 in the plays of 'A' is not a play",
        ),
    ],
)
def test_a_bad_taxonomy_file_is_one_sentence_naming_its_line(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    path = tmp_path / "fy26.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TaxonomyError) as caught:
        enums.read_taxonomy(path)
    message = str(caught.value)
    assert message.startswith(f"The taxonomy file {path}, line {line}: "), message
    assert expected in message and message.endswith(".") and "\n" not in message


@pytest.mark.slow
def test_a_bad_taxonomy_file_is_exit_2_before_anything_is_read(tmp_path: Path, xlsx: Make) -> None:
    bad = tmp_path / "fy26.toml"
    bad.write_text('fiscal_year = "FY26"\n[solution_plays]\n"A" = "x"\n', encoding="utf-8")
    sheet = xlsx([SERVICES_ROW])
    for args, env, named in (
        (("validate", sheet, "--taxonomy", bad), None, f"{bad}, line 3"),
        (("plan", sheet, "--offline"), {enums.TAXONOMY_ENV: str(bad)}, f"{bad} (BULKREF_TAXONOMY), line 3"),
        (("template", tmp_path / "t.xlsx", "--taxonomy", tmp_path / "missing.toml"), None, "does not exist"),
        (("taxonomy", "--taxonomy", tmp_path), None, "is a folder"),
    ):
        done = run(*args, env=env)
        assert done.returncode == 2, (args, done.stdout)
        assert done.stdout == "" and "Traceback" not in done.stderr
        (sentence,) = done.stderr.splitlines()
        assert sentence.startswith("bulkref: The taxonomy") and named in sentence, sentence
    assert not (tmp_path / "t.xlsx").exists()


def test_using_a_taxonomy_ends_with_its_block(fy26: Path) -> None:
    before = enums.load()
    with enums.using_taxonomy(fy26) as taxonomy:
        assert taxonomy.fiscal_year == "FY26"
        assert enums.load().values("solution_area") == (AREA, "Cloud and AI Platforms")
        assert enums.load().canonical("solution_play", "agentic workflows") == PLAY
    assert enums.load() is before
