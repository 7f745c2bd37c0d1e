"""bulkref export and get against the local sandbox, over real loopback HTTP.

One sandbox for the module, with pages of 3 referrals and every kind of
referral in it (private, partner-led, co-sell with its Microsoft referral,
shared with another partner with its connected referral, incoming leads and
invitations, a Microsoft referral on its own, old and recent ones). The tests
only read from it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from click.testing import CliRunner
from helpers import RunningSandbox, referral_body

from bulkref.api.client import RetryPolicy
from bulkref.cli.main import cli
from bulkref.cli.progress import ExportDisplay
from bulkref.export.referrals import (
    ExportResult,
    compose_filter,
    export_referrals,
    fit_deal_type,
    odata_datetime,
)
from bulkref.plan.make import make_plan
from bulkref.plan.payload import connected_referral
from bulkref.sandbox import SandboxOptions, SandboxServer
from bulkref.sandbox.odata import compile_filter
from bulkref.validation.check import check_file

Doc = dict[str, Any]
PAGE = 3
HTTP = httpx.Client(timeout=10)
FORMULA_NAME = '=HYPERLINK("http://evil.example","Click me")'
ENGAGEMENT = "65edc0b5-3485-41b7-a17e-dfa9ef4706e2"  # seed 002's example engagement


def _time(days_ago: float) -> str:
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.0000000Z"


class World:
    """The populated sandbox, and every referral in it as Partner Center returns it."""

    def __init__(self, server: SandboxServer) -> None:
        self.sandbox = RunningSandbox(server)
        self.url = self.sandbox.url
        self.docs: dict[str, Doc] = {}
        self.cosell_engagements: list[str] = []

    def post(self, body: Doc) -> Doc:
        response = HTTP.post(self.url, json=body, headers=self.sandbox.headers)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def patch(self, doc: Doc, **fields: Any) -> None:
        ops = [{"op": "replace", "path": f"/{k}", "value": v} for k, v in fields.items()]
        response = HTTP.patch(f"{self.url}/{doc['id']}", json=ops, headers=self.sandbox.headers)
        assert response.status_code in (200, 204), response.text

    def populate(self) -> None:
        private = {
            "type": "Independent",
            "consent": {
                "consentToToShareInfoWithOthers": False,
                "consentToContact": True,
                "consentToShareReferralWithMicrosoftSellers": False,
            },
        }
        for i in range(3):
            self.post(referral_body(name=f"Private {i}", externalReferenceId=f"PRIV-{i}", **private))
        for i in range(3):
            led = self.post(
                referral_body(
                    name=f"Partner-led {i}",
                    externalReferenceId=f"LED-{i}",
                    team=[{"firstName": "R2", "email": "r2d2@contoso.com"}],
                )
            )
            if i == 0:
                self.patch(led, status="Active", substatus="Accepted")
        for i in range(3):
            partner = self.post(referral_body(name=f"Co-sell {i}", externalReferenceId=f"CO-{i}"))
            self.post(
                {
                    "engagementId": partner["engagementId"],
                    "organizationId": "msft",
                    "type": "Shared",
                    "name": partner["name"],
                    "customerProfile": partner["customerProfile"],
                    "consent": partner["consent"],
                    "details": {k: v for k, v in partner["details"].items() if k != "requirements"},
                    "target": [{"type": "BusinessProfileLocation", "id": "msft"}],
                    "inviteContext": {
                        "notes": f"Please help with {i}",
                        "assistanceRequestCode": "ProofOfConceptOrDemo",
                    },
                }
            )
            self.cosell_engagements.append(partner["engagementId"])
        for i in range(2):
            shared = self.post(
                referral_body(
                    name=f"Shared with a partner {i}",
                    externalReferenceId=f"SHR-{i}",
                    consent={**private["consent"], "consentToToShareInfoWithOthers": True},
                    target=[{"type": "SolutionProfile", "id": f"SOL-{i}"}],
                )
            )
            self.post(connected_referral(shared))
        # A bigger deal: three contacts (a third numbered group), text that starts like a formula.
        big = referral_body(name=FORMULA_NAME, externalReferenceId="BIG-1")
        big["customerProfile"]["team"] = [
            {"firstName": "Ann", "email": "ann@contoso.com", "phoneNumber": "+1 425 555 0100"},
            {"firstName": "Bob", "email": "bob@contoso.com"},
            {"firstName": "Cy", "email": "cy@contoso.com", "title": "-CFO-"},
        ]
        big["details"]["notes"] = "@mention and +1 and -2"
        closed = self.post(big)
        self.patch(closed, status="Closed", substatus="Won")
        self.sandbox.admin.seed(
            [
                # Incoming leads and invitations, as Partner Center hands them out: no External Reference ID.
                {
                    **referral_body(name="Incoming lead US", type="Independent", qualification="Direct"),
                    "externalReferenceId": None,
                    "consent": None,
                    "createdDateTime": _time(1),
                },
                {
                    **referral_body(name="Incoming invitation", type="Shared"),
                    "externalReferenceId": None,
                    "engagementId": ENGAGEMENT,
                    "status": "New",
                    "substatus": "Received",
                    "createdDateTime": _time(2),
                    "inviteContext": {
                        "notes": "Join us",
                        "assistanceRequestCode": "GeneralOrOther",
                        "invitedBy": {"organizationId": "msft", "organizationName": "Microsoft"},
                    },
                },
                {
                    **referral_body(name="Incoming shared DE", type="Shared"),
                    "externalReferenceId": None,
                    "createdDateTime": _time(3),
                    "customerProfile": {
                        **referral_body()["customerProfile"],
                        "address": {"addressLine1": "x", "city": "Berlin", "country": "DE"},
                    },
                },
                # Microsoft's referral with no partner referral beside it.
                {
                    **referral_body(name="Microsoft alone", type="Shared"),
                    "externalReferenceId": None,
                    "organizationId": "msft",
                    "organizationName": "Microsoft",
                    "direction": "Outgoing",
                    "inviteContext": {"notes": "From Microsoft", "assistanceRequestCode": "GeneralOrOther"},
                },
                # Old ones, for --since.
                {
                    **referral_body(name="Old deal", externalReferenceId="OLD-1"),
                    "direction": "Outgoing",
                    "createdDateTime": "2024-03-01T10:00:00.0000000Z",
                },
                {
                    **referral_body(name="Older deal", externalReferenceId="OLD-2"),
                    "direction": "Outgoing",
                    "createdDateTime": "2023-06-01T10:00:00.0000000Z",
                    "status": "Closed",
                    "substatus": "Lost",
                },
            ]
        )
        listed = HTTP.get(self.url, params={"$top": 1000}, headers=self.sandbox.headers).json()
        ids = [d["id"] for d in listed["value"]]
        while "@odata.nextLink" in listed:
            listed = HTTP.get(listed["@odata.nextLink"], headers=self.sandbox.headers).json()
            ids += [d["id"] for d in listed["value"]]
        for rid in ids:
            self.docs[rid] = HTTP.get(f"{self.url}/{rid}", headers=self.sandbox.headers).json()

    # -- the oracle --------------------------------------------------------------------------------
    def expected_rows(self, matches: Callable[[Doc], bool] = lambda d: True) -> tuple[set[str], set[str]]:
        """(referral ids that are rows, connected referral ids folded into a row) of an export
        of the referrals ``matches`` selects: Microsoft's beside a partner referral, and a
        partner referral without an External Reference ID beside one with."""
        chosen = [d for d in self.docs.values() if matches(d)]
        partner_engagements = {d["engagementId"] for d in chosen if d["organizationId"] != "msft"}
        with_external = {
            d["engagementId"]
            for d in chosen
            if d["organizationId"] != "msft" and d.get("externalReferenceId")
        }
        folded = {
            d["id"]
            for d in chosen
            if (d["organizationId"] == "msft" and d["engagementId"] in partner_engagements)
            or (
                d["organizationId"] != "msft"
                and not d.get("externalReferenceId")
                and d["engagementId"] in with_external
            )
        }
        return {d["id"] for d in chosen} - folded, folded


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    # as-sent: the world's statuses are set on purpose (one Partner-led referral made
    # Active, the rest New), which the filters' oracles count on.
    server = SandboxServer(SandboxOptions(port=0, page_size=PAGE, create_status="as-sent")).start()
    try:
        populated = World(server)
        populated.populate()
        yield populated
    finally:
        server.stop()


@pytest.fixture
def api(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", world.sandbox.token)
    return world


def rows_of(path: Path) -> list[dict[str, Any]]:
    """The file's rows as the validator types them, with no error allowed."""
    checked = check_file(path)
    assert checked.report.errors == [], [(p.row, p.column, p.message) for p in checked.report.errors]
    values = checked.values
    return [dict(values.loc[r].items()) for r in values.index]


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


# --- everything, once, and back as unchanged ---------------------------------------------------------


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_every_referral_once_across_pages_and_planned_back_unchanged(
    api: World, tmp_path: Path, suffix: str
) -> None:
    before = api.sandbox.admin.stats()["methods"].get("GET", 0)
    out = tmp_path / f"all{suffix}"
    result = export_referrals(out, api_url=api.url)
    expected, folded = api.expected_rows()
    assert result == ExportResult(
        out, len(expected), len(api.docs), len(folded), len(api.docs), None, result.seconds, 2
    )
    # Three co-sells' Microsoft referrals and two shared deals' connected referrals.
    assert len(folded) == 5 and len(expected) == len(api.docs) - 5
    # Every page was read: at least len/PAGE listing calls.
    assert api.sandbox.admin.stats()["methods"]["GET"] - before >= len(api.docs) // PAGE

    rows = rows_of(out)
    ids = [r["referral_id"] for r in rows]
    assert len(ids) == len(set(ids)) and set(ids) == expected
    by_name = {r["name"]: r for r in rows}
    assert by_name["Co-sell 1"]["deal_type"] == "Co-sell"
    assert by_name["Co-sell 1"]["help_needed"] == "ProofOfConceptOrDemo"
    assert by_name["Co-sell 1"]["invite_notes"] == "Please help with 1"
    assert by_name["Private 0"]["deal_type"] == "Private"
    assert by_name["Partner-led 2"]["deal_type"] == "Partner-led"
    assert by_name["Incoming lead US"]["external_id"] is None  # a row all the same, found by its id
    # Partner Center's data fits no deal type there: blank, i.e. "leave as it is".
    assert by_name["Incoming invitation"]["deal_type"] is None
    assert by_name["Microsoft alone"]["deal_type"] is None
    assert by_name[FORMULA_NAME]["contact.3.title"] == "-CFO-"
    assert by_name[FORMULA_NAME]["contact.1.phone"] == "+1 425 555 0100"
    assert by_name[FORMULA_NAME]["notes"] == "@mention and +1 and -2"
    assert by_name["Private 0"]["closing_date"] == dt.date(2027, 3, 31)
    # A deal shared with another partner is one row: the partner's referral, with its target.
    shared = [r for r in rows if r["name"] == "Shared with a partner 1"]
    assert len(shared) == 1 and shared[0]["external_id"] == "SHR-1"
    assert shared[0]["deal_type"] == "Private" and shared[0]["target.1.id"] == "SOL-1"
    assert by_name["Private 0"]["deal_value"] == 50000.0

    plan = make_plan(out, api_url=api.url)
    assert {str(r.action) for r in plan.rows} == {"unchanged"}, [
        (r.row, r.external_id, r.action, r.reason, r.changes) for r in plan.rows if r.action != "unchanged"
    ]
    assert len(plan.rows) == len(expected)


def test_the_workbook_has_the_templates_shape_and_read_only_columns(api: World, tmp_path: Path) -> None:
    out = export_referrals(tmp_path / "all.xlsx", api_url=api.url).path
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Instructions", "Referrals", "Lists"]
    ws = wb["Referrals"]
    headers = [c.value for c in ws[1]]
    assert headers[:4] == ["External Reference ID *", "Referral ID", "Engagement ID", "Referral Name *"]
    assert headers[-4:] == ["Direction", "Created", "Updated", "ETag"]
    assert "Customer Contact 3 Email" in headers and "Customer Contact 4 Email" not in headers
    assert "Target 1 ID" in headers  # at least the template's groups, even where nothing fills them
    grey = {ws.cell(1, headers.index(h) + 1).fill.fgColor.rgb[-6:] for h in ("Direction", "ETag")}
    assert grey == {"D9D9D9"}
    # The drop-downs and input messages reach the data rows.
    sqrefs = {str(dv.sqref) for dv in ws.data_validations.dataValidation}
    assert "E2:E5001" in sqrefs
    assert ws.auto_filter.ref == f"A1:{ws.cell(1, len(headers)).column_letter}{ws.max_row}"
    names = {ws.cell(r, 4).value: r for r in range(2, ws.max_row + 1)}
    cell = ws.cell(names[FORMULA_NAME], 4)
    assert cell.data_type == "s" and cell.quotePrefix, "a formula-looking name must stay text"
    created = ws.cell(names["Old deal"], headers.index("Created") + 1)
    assert created.value == dt.datetime(2024, 3, 1, 10, 0) and created.number_format == "yyyy-mm-dd hh:mm:ss"
    closing = ws.cell(names["Old deal"], headers.index("Closing Date *") + 1)
    assert closing.is_date and closing.number_format == "yyyy-mm-dd"
    assert ws.cell(names["Old deal"], headers.index("Referral ID") + 1).number_format == "@"  # ids stay text
    assert not any(c.data_type == "f" for row in ws.iter_rows(min_row=2) for c in row)


def test_csv_is_the_templates_csv(api: World, tmp_path: Path) -> None:
    out = export_referrals(tmp_path / "all.csv", api_url=api.url).path
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert lines[0][:2] == ["External Reference ID *", "Referral ID"]
    # Formula-looking text carries Excel's "this is text" apostrophe, and reads back as written.
    assert any("'" + FORMULA_NAME in line for line in lines[1:])
    assert FORMULA_NAME in set(check_file(out).values["name"])


def test_two_edited_cells_plan_as_updates_with_exactly_those_changes(api: World, tmp_path: Path) -> None:
    out = export_referrals(tmp_path / "edit.xlsx", api_url=api.url).path
    wb = openpyxl.load_workbook(out)
    ws = wb["Referrals"]
    headers = [c.value for c in ws[1]]
    names = {ws.cell(r, 4).value: r for r in range(2, ws.max_row + 1)}
    ws.cell(names["Partner-led 1"], headers.index("City *") + 1).value = "Tacoma"
    ws.cell(names["Co-sell 2"], headers.index("Deal Value *") + 1).value = 75000
    wb.save(out)
    plan = make_plan(out, api_url=api.url)
    changed = {r.name: r for r in plan.rows if str(r.action) != "unchanged"}
    assert set(changed) == {"Partner-led 1", "Co-sell 2"}
    assert {str(r.action) for r in changed.values()} == {"update"}
    assert [(c.field, c.old, c.new) for c in changed["Partner-led 1"].changes] == [
        ("City", "Seattle", "Tacoma")
    ]
    assert [(c.field, c.old, c.new) for c in changed["Co-sell 2"].changes] == [
        ("Deal Value", 50000.0, 75000.0)
    ]


# --- filtered exports ------------------------------------------------------------------------------

# The filters of seed 002 and referrals-api.md, with an oracle in Python.
SEED_FILTERS: list[tuple[str, Callable[[Doc], bool]]] = [
    (f"engagementId eq '{ENGAGEMENT}'", lambda d: d["engagementId"] == ENGAGEMENT),
    (
        "status eq 'New' and qualification eq 'SalesQualified'",
        lambda d: d["status"] == "New" and d["qualification"] == "SalesQualified",
    ),
    (
        "customerProfile/address/country eq 'US' and direction eq 'Incoming'",
        lambda d: d["customerProfile"]["address"]["country"] == "US" and d["direction"] == "Incoming",
    ),
    (
        "(type eq 'Shared' and direction eq 'Incoming')",
        lambda d: d["type"] == "Shared" and d["direction"] == "Incoming",
    ),
    (
        "(direction eq 'Incoming' and substatus eq 'Pending')",
        lambda d: d["direction"] == "Incoming" and d["substatus"] == "Pending",
    ),
    (
        "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' and "
        "team/any(t:t/email eq 'r2d2@contoso.com')",
        lambda d: (
            d["status"] == "Active"
            and d["direction"] == "Outgoing"
            and d["type"] == "Shared"
            and any(m.get("email") == "r2d2@contoso.com" for m in d["team"] or [])
        ),
    ),
    ("organizationId eq 'msft'", lambda d: d["organizationId"] == "msft"),
    (
        "createdDateTime ge 2024-01-01T00:00:00Z and createdDateTime lt 2025-01-01",
        lambda d: "2024-01-01" <= d["createdDateTime"] < "2025-01-01",
    ),
]


@pytest.mark.parametrize(("text", "oracle"), SEED_FILTERS, ids=[f for f, _ in SEED_FILTERS])
def test_a_filtered_export_holds_exactly_the_matching_referrals(
    api: World, tmp_path: Path, text: str, oracle: Callable[[Doc], bool]
) -> None:
    expected, folded = api.expected_rows(oracle)
    assert expected, "each filter should match something in the data set"
    result = export_referrals(tmp_path / "f.csv", api_url=api.url, filter=text)
    assert (result.referrals, result.folded, result.total) == (
        len(expected) + len(folded),
        len(folded),
        len(expected) + len(folded),
    )
    with result.path.open(encoding="utf-8-sig", newline="") as f:
        ids = [line["Referral ID"] for line in csv.DictReader(f)]
    assert len(ids) == len(set(ids)) and set(ids) == expected


def test_a_filtered_co_sell_row_still_says_co_sell(api: World, tmp_path: Path) -> None:
    # The Microsoft referrals are outside the filter: the export reads their engagements.
    out = export_referrals(tmp_path / "cosell.xlsx", api_url=api.url, filter="organizationId ne 'msft'").path
    rows = {r["name"]: r for r in rows_of(out)}
    assert rows["Co-sell 0"]["deal_type"] == "Co-sell" and rows["Co-sell 0"]["help_needed"]
    assert {str(r.action) for r in make_plan(out, api_url=api.url).rows} == {"unchanged"}


def test_seed_example_with_top_and_orderby(api: World, tmp_path: Path) -> None:
    incoming = sorted(
        (d for d in api.docs.values() if d["direction"] == "Incoming"),
        key=lambda d: d["createdDateTime"],
        reverse=True,
    )
    result = export_referrals(
        tmp_path / "top.csv",
        api_url=api.url,
        top=2,
        orderby="createdDateTime desc",
        filter="direction eq 'Incoming'",
    )
    with result.path.open(encoding="utf-8-sig", newline="") as f:
        names = [line["Referral Name *"] for line in csv.DictReader(f)]
    assert names == [d["name"] for d in incoming[:2]] and result.total == 2


# --- the convenience flags -------------------------------------------------------------------------


def test_compose_filter() -> None:
    assert compose_filter() is None
    assert compose_filter(filter="status eq 'New'") == "status eq 'New'"
    assert compose_filter(
        status="Active", direction="Outgoing", type="Shared", team_email="r2d2@contoso.com"
    ) == (
        "status eq 'Active' and direction eq 'Outgoing' and type eq 'Shared' and "
        "team/any(t:t/email eq 'r2d2@contoso.com')"
    )
    assert compose_filter(status=["New", "Active"], substatus="Pending") == (
        "(status eq 'New' or status eq 'Active') and substatus eq 'Pending'"
    )
    assert compose_filter(team_email="o'brien@contoso.com") == "team/any(t:t/email eq 'o''brien@contoso.com')"
    assert compose_filter(engagement="e1", filter="a eq 1 or b eq 2") == (
        "engagementId eq 'e1' and (a eq 1 or b eq 2)"
    )
    assert compose_filter(since=dt.date(2026, 1, 31)) == "createdDateTime ge 2026-01-31T00:00:00Z"
    assert compose_filter(since="2026-01-31T10:30:00+02:00") == "createdDateTime ge 2026-01-31T08:30:00Z"
    assert odata_datetime(dt.datetime(2026, 1, 1, 0, 0, 0, 5)) == "2026-01-01T00:00:00.000005Z"
    with pytest.raises(ValueError, match="not a date"):
        odata_datetime("yesterday")
    # What the flags compose, the sandbox reads.
    for text in (
        compose_filter(
            status=["New", "Active"],
            since="2026-01-01",
            team_email="o'brien@x.com",
            engagement="e",
            direction="Incoming",
            type="Shared",
            filter="name ne 'x'",
        ),
    ):
        assert text is not None and compile_filter(text)({}) is False


def test_the_flags_select_what_the_seed_filter_does(api: World, tmp_path: Path) -> None:
    expected, _ = api.expected_rows(SEED_FILTERS[5][1])
    out = tmp_path / "flags.csv"
    done = invoke(
        "export",
        "--api-url",
        api.url,
        "-o",
        str(out),
        "--status",
        "active",
        "--direction",
        "Outgoing",
        "--type",
        "shared",
        "--team-email",
        "r2d2@contoso.com",
        "--format",
        "json",
    )
    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    assert printed["filter"] == SEED_FILTERS[5][0] and printed["rows"] == len(expected) == 1
    since = invoke(
        "export",
        "--api-url",
        api.url,
        "-o",
        str(tmp_path / "since.csv"),
        "--since",
        "2024-01-01",
        "--format",
        "json",
    )
    assert since.exit_code == 0, since.output
    recent = [d for d in api.docs.values() if d["createdDateTime"] >= "2024-01-01"]
    assert json.loads(since.stdout)["referrals"] == len(recent) == len(api.docs) - 1


def test_export_of_one_engagement(api: World, tmp_path: Path) -> None:
    engagement = api.cosell_engagements[0]
    out = tmp_path / "one.xlsx"
    done = invoke("export", "--api-url", api.url, "--engagement", engagement, "-o", str(out))
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == (
        f"Exported 2 referrals as 1 row (1 Microsoft referral of co-sell deals in their deal's row): {out}"
    )
    assert "Reading referrals from" in done.stderr and "Writing 1 row to" in done.stderr
    (row,) = rows_of(out)
    assert row["engagement_id"] == engagement and row["deal_type"] == "Co-sell"


# --- safety ----------------------------------------------------------------------------------------


def test_an_existing_file_is_not_replaced_without_force(api: World, tmp_path: Path) -> None:
    out = tmp_path / "mine.xlsx"
    out.write_bytes(b"the sheet I am editing")
    before = api.sandbox.admin.stats()["methods"].get("GET", 0)
    done = invoke("export", "--api-url", api.url, "-o", str(out))
    assert done.exit_code == 2 and "already exists" in done.stderr and "--force" in done.stderr
    assert out.read_bytes() == b"the sheet I am editing"
    assert api.sandbox.admin.stats()["methods"].get("GET", 0) == before, "refused before reading anything"
    forced = invoke("export", "--api-url", api.url, "-o", str(out), "--force", "--top", "1")
    assert forced.exit_code == 0, forced.output
    assert out.read_bytes()[:2] == b"PK" and [p.name for p in tmp_path.iterdir()] == ["mine.xlsx"]
    bad = invoke("export", "--api-url", api.url, "-o", str(tmp_path / "out.json"))
    assert bad.exit_code == 2 and ".xlsx or .csv" in bad.stderr


def test_an_unreachable_api_is_exit_2_in_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt, error=None: 0.0)
    out = tmp_path / "x.xlsx"
    done = invoke(
        "export",
        "--api-url",
        "http://127.0.0.1:9/v1.0/engagements/referrals",
        "-o",
        str(out),
        env={"BULKREF_ACCESS_TOKEN": "t", "BULKREF_HOME": str(tmp_path)},
    )
    assert done.exit_code == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("bulkref:")]
    assert len(lines) == 1 and "Could not reach" in lines[0] and "Traceback" not in done.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_bad_filter_is_exit_2_in_one_sentence_before_reading(api: World, tmp_path: Path) -> None:
    done = invoke("export", "--api-url", api.url, "-o", str(tmp_path / "x.xlsx"), "--filter", "status eq")
    assert done.exit_code == 2 and done.stderr.count("\n") == 1 and "$filter" in done.stderr
    assert list(tmp_path.iterdir()) == []


# --- get -------------------------------------------------------------------------------------------


def test_get_prints_one_referral(api: World) -> None:
    partner = next(d for d in api.docs.values() if d["name"] == "Co-sell 0")
    as_json = invoke("get", partner["id"], "--api-url", api.url, "--format", "json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == partner
    text = invoke("get", partner["id"], "--api-url", api.url)
    assert text.exit_code == 0
    out = text.stdout
    assert out.splitlines()[0] == "Co-sell 0"
    for expected in (
        partner["id"],
        partner["engagementId"],
        "CO-0",
        "New / Pending",
        "Co-sell (help needed: ProofOfConceptOrDemo)",
        "Contoso Ltd, Seattle, US",
        "50,000.00 USD, closing 2027-03-31",
        "2 referrals:",
        "Microsoft",
    ):
        assert expected in out, (expected, out)


def test_get_of_an_unknown_id_is_exit_1_in_one_sentence(api: World) -> None:
    done = invoke("get", "00000000-0000-0000-0000-000000000000", "--api-url", api.url)
    assert done.exit_code == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "No referral has the id 00000000-" in done.stderr


# --- pieces ----------------------------------------------------------------------------------------


def test_fit_deal_type_blanks_what_the_validator_would_refuse() -> None:
    ok = {"deal_type": "Partner-led", "share_with_microsoft": True, "referral_type": "Shared"}
    assert fit_deal_type(dict(ok))["deal_type"] == "Partner-led"
    assert fit_deal_type({**ok, "help_needed": "GeneralOrOther"})["deal_type"] is None
    assert fit_deal_type({**ok, "deal_type": "Co-sell"})["deal_type"] is None  # no help needed
    assert fit_deal_type({**ok, "deal_type": "Co-sell", "help_needed": "X"})["deal_type"] == "Co-sell"
    private = {"deal_type": "Private", "share_with_microsoft": False, "referral_type": "Independent"}
    assert fit_deal_type(dict(private))["deal_type"] == "Private"
    assert fit_deal_type({**private, "share_with_microsoft": True})["deal_type"] is None
    # Blank, a plan would fill it in from the deal type: a change nobody asked for.
    assert fit_deal_type({**private, "share_with_microsoft": None})["deal_type"] is None
    assert fit_deal_type({**private, "referral_type": "Shared"})["deal_type"] is None
    assert fit_deal_type({**private, "referral_type": "Shared", "target.1.id": "S"})["deal_type"] == "Private"
    assert fit_deal_type({**ok, "partner_role": "Transact"})["deal_type"] is None


def test_the_sandbox_compares_date_times() -> None:
    doc = {"createdDateTime": "2026-01-31T10:00:00.1234567Z", "updatedDateTime": None}
    assert compile_filter("createdDateTime ge 2026-01-31T10:00:00Z")(doc)
    assert not compile_filter("createdDateTime gt 2026-01-31T11:00:00+00:00")(doc)
    assert compile_filter("2026-02-01 gt createdDateTime and createdDateTime le 2026-01-31T10:00:01Z")(doc)
    assert not compile_filter("updatedDateTime lt 2030-01-01")(doc)  # no time, no match
    for refused in ("details/dealValue gt 5", "name ge 2026-01-01", "createdDateTime gt '2026-01-01'"):
        with pytest.raises(Exception, match=r"ge|gt"):
            compile_filter(refused)


def test_progress_display(tmp_path: Path) -> None:
    log = io.StringIO()
    display = ExportDisplay(tmp_path / "x.xlsx", "the sandbox", stream=log, interactive=False)
    for n in range(5):
        display("read", n, 4)
    for n in range(3):
        display("write", n, 2)
    display.close()
    text = log.getvalue()
    assert "Reading referrals from the sandbox (4 to read)" in text and "done: 4/4 referrals" in text
    assert f"Writing 2 rows to {tmp_path / 'x.xlsx'}" in text and "done: 2/2 rows" in text
    screen = io.StringIO()
    display = ExportDisplay(tmp_path / "x.xlsx", "the sandbox", stream=screen, interactive=True)
    display("read", 0, None)
    display("read", 7, None)
    display.close()
    assert "7 referrals" in screen.getvalue() and "/0" not in screen.getvalue()


OFFICE = shutil.which("libreoffice") or shutil.which("soffice")


@pytest.mark.slow
@pytest.mark.skipif(OFFICE is None, reason="LibreOffice is not installed")
def test_libreoffice_reads_the_export(api: World, tmp_path: Path) -> None:
    out = export_referrals(tmp_path / "lo.xlsx", api_url=api.url).path
    assert OFFICE is not None
    done = subprocess.run(
        [
            OFFICE,
            f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1",
            "--outdir",
            str(tmp_path / "lo"),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = list(csv.reader((tmp_path / "lo" / "lo-Referrals.csv").open(encoding="utf-8", newline="")))
    at = {h: i for i, h in enumerate(lines[0])}
    old = next(line for line in lines if line[at["Referral Name *"]] == "Old deal")
    assert old[at["Created"]] == "2024-03-01 10:00:00" and old[at["Closing Date *"]] == "2027-03-31"
    assert any(line[at["Referral Name *"]] == FORMULA_NAME for line in lines)


def test_spool_folders_of_killed_exports_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    import os
    import time

    import filelock

    from bulkref.export.referrals import SPOOL_LOCK, SPOOL_PREFIX, sweep_spools

    dead = tmp_path / f"{SPOOL_PREFIX}dead"
    dead.mkdir()
    (dead / "spool.sqlite").write_bytes(b"full referral records")
    live = tmp_path / f"{SPOOL_PREFIX}live"
    live.mkdir()
    young = tmp_path / f"{SPOOL_PREFIX}young"  # may not have taken its lock yet
    young.mkdir()
    old = time.time() - 3600
    for folder in (dead, live):
        os.utime(folder, (old, old))
    held = filelock.FileLock(live / SPOOL_LOCK)
    held.acquire()
    try:
        assert sweep_spools(tmp_path) == 1
    finally:
        held.release()
    assert not dead.exists() and live.exists() and young.exists()


# --- the write pass in two processes ---------------------------------------------------------------


def _parts(path: Path) -> dict[str, bytes]:
    """A file's bytes, or a workbook's parts but its timestamps (docProps/core.xml)."""
    if path.suffix == ".csv":
        return {"csv": path.read_bytes()}
    import zipfile

    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if n != "docProps/core.xml"}


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_two_writing_processes_write_the_file_one_writes(
    api: World, tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulkref import second_process

    monkeypatch.setattr(second_process, "MIN_ROWS", 10**9)
    one = export_referrals(tmp_path / f"one{suffix}", api_url=api.url)
    monkeypatch.setattr(second_process, "MIN_ROWS", 1)
    started: list[bool] = []
    real_result = second_process.SecondProcess.result

    def result(self: Any) -> int | None:
        started.append(self.process is not None)
        answer = real_result(self)
        assert answer is not None, "the child process wrote no rows"
        return answer

    monkeypatch.setattr(second_process.SecondProcess, "result", result)
    two = export_referrals(tmp_path / f"two{suffix}", api_url=api.url)
    assert started == [True]
    assert (two.rows, two.referrals, two.folded) == (one.rows, one.referrals, one.folded)
    assert _parts(two.path) == _parts(one.path)
    if suffix == ".xlsx":
        # The rows the child wrote read back in openpyxl and calamine as the first ones do.
        from python_calamine import CalamineWorkbook

        ws = openpyxl.load_workbook(two.path)["Referrals"]
        names = [ws.cell(r, 4).value for r in range(2, ws.max_row + 1)]
        grid = CalamineWorkbook.from_path(str(two.path)).get_sheet_by_name("Referrals").to_python()
        assert [row[3] for row in grid[1:]] == names
        assert len(names) == one.rows and FORMULA_NAME in names
        assert not any(c.data_type == "f" for row in ws.iter_rows(min_row=2) for c in row)
    assert rows_of(two.path) == rows_of(one.path)


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_rows_a_failed_child_did_not_write_are_written_by_the_export_itself(
    api: World, tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulkref import second_process

    monkeypatch.setattr(second_process, "MIN_ROWS", 10**9)
    one = export_referrals(tmp_path / f"one{suffix}", api_url=api.url)
    monkeypatch.setattr(second_process, "MIN_ROWS", 1)
    asked: list[bool] = []
    monkeypatch.setattr(second_process.SecondProcess, "result", lambda self: asked.append(True))
    two = export_referrals(tmp_path / f"two{suffix}", api_url=api.url)
    assert asked == [True]  # the child was asked for its rows, and had none
    assert two.rows == one.rows and _parts(two.path) == _parts(one.path)


def test_a_child_that_fails_says_so_instead_of_a_count(tmp_path: Path) -> None:
    import multiprocessing

    from bulkref import second_process
    from bulkref.export import parallel

    theirs, ours = multiprocessing.Pipe(duplex=False)
    work = (str(tmp_path / "none.sqlite"), {}, 1, 2, True, str(tmp_path / "p.csv"), None)
    second_process.run_part(parallel._write_part, work, ours)
    done, answer = theirs.recv()
    assert done is False and isinstance(answer, str) and "Error" in answer


def test_the_rules_see_the_same_row_through_the_target_keys() -> None:
    ok = {"deal_type": "Private", "share_with_microsoft": False, "referral_type": "Shared"}
    for row in (ok, {**ok, "target.2.id": "S"}, {**ok, "target.1.id": "S"}, {**ok, "partner_role": "T"}):
        full = fit_deal_type(dict(row))["deal_type"]
        assert fit_deal_type(dict(row), ("target.1.id", "target.2.id"))["deal_type"] == full, row
    assert fit_deal_type({**ok, "target.1.id": "S"}, ("target.1.id",))["deal_type"] == "Private"
    assert fit_deal_type(dict(ok), ("target.1.id",))["deal_type"] is None


def test_cells_kept_by_value_tell_true_from_one_and_take_unhashable_lists() -> None:
    from bulkref.export.referrals import _CellWriters
    from bulkref.spec.columns import SPEC

    columns = SPEC.columns()
    cells = _CellWriters(columns, [(0, 0)] * len(columns))
    letter = {c.key: cells.columns[i][5] for i, c in enumerate(columns)}
    row = {"share_with_microsoft": True, "consent_contact": 1, "industries": ("A", {"x": 1})}
    for n in (2, 3):  # the second row's cells come from what the first kept
        got = cells.row(n, row)
        assert f'<c r="{letter["share_with_microsoft"]}{n}" t="inlineStr"><is><t>Yes</t></is></c>' in got
        assert f'<c r="{letter["consent_contact"]}{n}" t="inlineStr"><is><t>1</t></is></c>' in got
        assert any(c.startswith(f'<c r="{letter["industries"]}{n}"') and "<t>A; " in c for c in got)


def test_the_second_process_is_forked_only_on_linux_where_no_other_thread_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    import threading

    from bulkref.second_process import start_method

    monkeypatch.setattr(threading, "active_count", lambda: 2)  # e.g. the web app's server thread
    assert start_method(spawn=True) == "spawn"
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    expected = "fork" if sys.platform.startswith("linux") else "spawn"
    assert start_method(spawn=True) == expected
