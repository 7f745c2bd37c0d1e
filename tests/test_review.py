"""The reviewer's views of a plan: terminal text and the HTML page (also run in headless Chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest

from bulkref.plan.model import Action, Change, Plan, RowPlan, Step
from bulkref.plan.review import LEGEND, format_value, plan_html, plan_text

RID = "4111fffc-0b6a-4e5f-9d1e-3c2a1b0c9d8e"
ETAG = '"00006d10-0000-0000-0000-5c70aa630000"'  # quotes included, as the service sends it
LONG = "A very long description " * 10
INJECTED = "<script>alert(1)</script>"
ANSI = re.compile(r"\x1b\[")


def _create_step(name: str) -> Step:
    return Step(
        key="referral",
        method="POST",
        path="/referrals",
        body={"name": name, "type": "Independent", "details": {"dealValue": 50000}},
    )


def sample_plan() -> Plan:
    """Every action, a co-sell chain, a long value, None values, lists and an injection attempt."""
    rows = (
        RowPlan(
            "Referrals",
            2,
            "CRM-000101",
            Action.CREATE,
            deal_type="Partner-led",
            steps=(_create_step("Contoso warehouse analytics"),),
        ),
        RowPlan(
            "Referrals",
            3,
            "CRM-000102",
            Action.UPDATE,
            referral_id=RID,
            changes=(
                Change("Deal Value", 48000.0, 52000),
                Change("Status", "New", "Active"),
                Change("Customer Contact 2 Email", None, "joe@contoso.com"),
                Change("Notes", "short", LONG),
                Change("Solution Play", ["Data", "AI"], ["Data", "AI", "Security"]),
                Change("Help Needed", "Technical", None),
            ),
            steps=(
                Step(
                    key="update",
                    method="PATCH",
                    path=f"/referrals/{RID}",
                    if_match=ETAG,
                    body=[{"op": "replace", "path": "/details/dealValue", "value": 52000}],
                ),
            ),
        ),
        RowPlan("Referrals", 4, "CRM-000103", Action.UNCHANGED, referral_id="aaaa-1111"),
        RowPlan(
            "Referrals",
            5,
            "CRM-000104",
            Action.BLOCKED,
            reason="Referral 9f0e is Closed: nothing can change on a Closed referral.",
        ),
        RowPlan("Referrals", 6, "CRM-000105", Action.INVALID, reason="Deal Value: not a number ('lots')"),
        RowPlan(
            "Referrals",
            7,
            "CRM-000106",
            Action.CREATE,
            deal_type="Co-sell",
            steps=(
                Step(
                    key="referral",
                    method="POST",
                    path="/referrals",
                    what="the partner-led referral",
                    body={"name": "Fabrikam migration", "type": "Independent"},
                ),
                Step(
                    key="microsoft",
                    method="POST",
                    path="/referrals",
                    depends_on="referral",
                    fill={"/engagementId": "engagementId"},
                    what="the Microsoft referral, carrying 1's engagementId",
                    body={"name": "Fabrikam migration", "engagementId": None},
                ),
            ),
        ),
        RowPlan(
            "Referrals",
            8,
            "CRM-000107",
            Action.CREATE,
            deal_type="Partner-led",
            steps=(_create_step(INJECTED),),
        ),
    )
    return Plan(
        source="deals.xlsx",
        fingerprint="ab12cd34ef56" + "0" * 52,
        api_url="http://127.0.0.1:8765/v1.0/engagements",
        rows=rows,
        created="2025-01-31T12:00:00+00:00",
    )


# ---------------------------------------------------------------------------- text


def _block(text: str, row: int) -> list[str]:
    """The lines of one row's block: its head line and the indented lines under it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^. row {row}\b", line))
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        block.append(line)
    return block


def test_text_one_head_line_per_row_with_its_symbol_in_plan_order() -> None:
    text = plan_text(sample_plan())
    heads = [line for line in text.splitlines() if re.match(r"^. row \d+ ", line)]
    assert [h[:8] for h in heads] == [
        "+ row 2 ",
        "~ row 3 ",
        "= row 4 ",
        "! row 5 ",
        "x row 6 ",
        "+ row 7 ",
        "+ row 8 ",
    ]
    assert LEGEND in text.splitlines()[1]


def test_text_create_names_the_deal_and_the_call() -> None:
    block = _block(plan_text(sample_plan()), 2)
    assert block == [
        '+ row 2  CRM-000101  create  Partner-led  "Contoso warehouse analytics"',
        "    POST /referrals",
    ]


def test_text_update_shows_each_change_and_the_conditional_patch() -> None:
    block = _block(plan_text(sample_plan()), 3)
    assert block[0] == f"~ row 3  CRM-000102  update  referral {RID}"
    assert "    ~ Deal Value: 48000 -> 52000" in block
    assert "    ~ Status: New -> Active" in block
    assert "    + Customer Contact 2 Email: (blank) -> joe@contoso.com" in block
    assert "    ~ Solution Play: Data; AI -> Data; AI; Security" in block
    assert "    - Help Needed: Technical -> (blank)" in block
    assert block[-1] == f"    PATCH /referrals/{RID} (If-Match {ETAG})"


def test_text_long_values_are_cut() -> None:
    notes = next(line for line in _block(plan_text(sample_plan()), 3) if "Notes" in line)
    new = notes.split(" -> ")[1]
    assert new.endswith("…") and len(new) == 60
    assert LONG.strip() not in notes


def test_text_unchanged_blocked_invalid_take_one_line_each() -> None:
    text = plan_text(sample_plan())
    assert _block(text, 4) == ["= row 4  CRM-000103  unchanged"]
    assert _block(text, 5) == [
        "! row 5  CRM-000104  blocked: Referral 9f0e is Closed: nothing can change on a Closed referral."
    ]
    assert _block(text, 6) == ["x row 6  CRM-000105  invalid: Deal Value: not a number ('lots')"]


def test_text_cosell_chain_numbers_steps_and_names_the_dependency() -> None:
    block = _block(plan_text(sample_plan()), 7)
    assert block[0] == '+ row 7  CRM-000106  create  Co-sell  "Fabrikam migration"'
    assert re.fullmatch(r"    1\. POST /referrals +the partner-led referral", block[1])
    assert re.fullmatch(
        r"    2\. POST /referrals  \(after 1\) +the Microsoft referral, carrying 1's "
        r"engagementId",
        block[2],
    )


def test_text_summary_line_is_exact() -> None:
    assert plan_text(sample_plan()).splitlines()[-1] == (
        "Plan: 3 to create, 1 to update, 1 unchanged, 1 blocked, 1 invalid. Nothing has been sent."
    )


def test_text_has_no_ansi_without_color_and_colours_with_it() -> None:
    plain, coloured = plan_text(sample_plan()), plan_text(sample_plan(), color=True)
    assert not ANSI.search(plain)
    assert "\x1b[32m+ row 2" in coloured  # green create
    assert "\x1b[33m~ row 3" in coloured  # yellow update
    assert "\x1b[2m= row 4" in coloured  # dim unchanged
    assert "\x1b[31m! row 5" in coloured and "\x1b[31mx row 6" in coloured  # red
    assert ANSI.sub("", re.sub(r"\x1b\[[0-9;]*m", "", coloured)) == plain


def test_text_neutralises_control_characters_from_cells() -> None:
    row = RowPlan(
        "S",
        2,
        "CRM-\x1b[31mX",
        Action.UPDATE,
        referral_id="r1",
        changes=(Change("Notes", "line one\nline two", "\x1b]0;pwned\x07"),),
    )
    text = plan_text(Plan("in.csv", "f" * 64, None, (row,)))
    assert "\x1b" not in text and "\x07" not in text
    assert "line one⏎line two -> \\x1b]0;pwned\\x07" in text
    assert "offline" in text.splitlines()[0]


def test_text_verbose_prints_bodies_and_fills() -> None:
    block = _block(plan_text(sample_plan(), verbose=True), 7)
    assert "        /engagementId <- step 1's engagementId" in block
    assert '          "name": "Fabrikam migration",' in block


def test_text_names_the_sheet_only_when_there_are_several() -> None:
    rows = (RowPlan("A", 2, "X-1", Action.UNCHANGED), RowPlan("B", 2, "X-2", Action.UNCHANGED))
    assert "= A row 2  X-1  unchanged" in plan_text(Plan("in.xlsx", "0" * 64, None, rows)).splitlines()


def test_text_empty_plan() -> None:
    text = plan_text(Plan("in.xlsx", "0" * 64, None, ()))
    assert text.splitlines()[-1].startswith("Plan: 0 to create, 0 to update, 0 unchanged")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "(blank)"),
        ("", "(blank)"),
        ([], "(blank)"),
        (True, "Yes"),
        (False, "No"),
        (3.0, "3"),
        (2.5, "2.5"),
        (["a", None, 1], "a; (blank); 1"),
        ({"b": 1, "a": 2}, '{"a": 2, "b": 1}'),
    ],
)
def test_format_value(value: object, shown: str) -> None:
    assert format_value(value) == shown


# ---------------------------------------------------------------------------- HTML


class _Page(HTMLParser):
    """Collects what the HTML tests look at; fails on a close tag that closes nothing open."""

    VOID: ClassVar[set[str]] = {"meta", "link", "br", "hr", "img", "input", "col", "wbr", "source"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "action", "srcset", "poster")]
        self._in_script = tag == "script"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], f"unclosed: {parser.stack}"
    return parser


def test_html_is_well_formed_and_self_contained() -> None:
    page = plan_html(sample_plan())
    parsed = _parse(page)
    assert all(u.startswith(("#", "data:")) for u in parsed.urls), parsed.urls
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", "".join(parsed.scripts), re.I)
    assert "@import" not in page and "url(" not in page
    assert sum(1 for tag, _ in parsed.tags if tag == "script") == 1
    assert not any("src" in attrs for tag, attrs in parsed.tags if tag in ("script", "link", "img"))
    csp = next(
        a["content"]
        for t, a in parsed.tags
        if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    )
    assert csp and "default-src 'none'" in csp and "'unsafe-inline'" not in csp


def test_html_escapes_every_value_from_the_plan() -> None:
    page = plan_html(sample_plan())
    assert INJECTED not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert INJECTED in " ".join(_parse(page).text)  # shown to the reviewer, as text
    evil = RowPlan("S", 2, '"><img src=x onerror=alert(1)>', Action.BLOCKED, reason="</td></table><marquee>")
    page = plan_html(Plan("<marquee>in</marquee>.xlsx", "0" * 64, "javascript:alert(1)", (evil,)))
    parsed = _parse(page)
    assert not any(tag in ("img", "marquee") for tag, _ in parsed.tags)
    assert all(u.startswith(("#", "data:")) for u in parsed.urls)


def test_html_header_summary_rows_and_details() -> None:
    plan = sample_plan()
    parsed = _parse(plan_html(plan))
    by_id = {a["id"]: t for t, a in parsed.tags if a.get("id")}
    assert {"count-all", "count-create", "count-blocked", "q", "shown"} <= set(by_id)
    text = " ".join(parsed.text)
    for needle in (
        "deals.xlsx",
        "ab12cd34ef56",
        "http://127.0.0.1:8765/v1.0/engagements",
        "2025-01-31T12:00:00+00:00",
        "Nothing has been sent.",
    ):
        assert needle in text
    rows = [a for t, a in parsed.tags if t == "tbody" and "r" in (a.get("class") or "").split()]
    assert [(r["data-action"]) for r in rows] == [str(r.action) for r in plan.rows]
    assert "crm-000104" in rows[3]["data-search"] and "closed" in rows[3]["data-search"]
    assert "deal value" in rows[1]["data-search"]
    details = [a for t, a in parsed.tags if t == "details"]
    assert len(details) == 4  # unchanged, blocked and invalid rows have nothing to expand
    assert "(blank)" in text and "joe@contoso.com" in text and LONG.strip() in text  # full text in HTML
    assert "Data; AI; Security" in text and "after step 1" in text and ETAG in text


def test_html_controls_that_need_js_start_hidden() -> None:
    parsed = _parse(plan_html(sample_plan()))
    controls = next(a for _, a in parsed.tags if a.get("id") == "controls")
    assert "hidden" in controls
    assert not any("hidden" in a for t, a in parsed.tags if t == "tbody" and a.get("data-action"))


# ---------------------------------------------------------------------------- headless Chromium

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)"
)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)


@pytest.fixture
def page_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.html"
    path.write_text(plan_html(sample_plan()), encoding="utf-8")
    return path


def _row_visibility(dom: str) -> dict[str, list[bool]]:
    """action -> [visible?] per row, read from the tbody tags as the page's script left them."""
    seen: dict[str, list[bool]] = {}
    for tag in re.findall(r"<tbody [^>]*data-action=[^>]*>", dom):
        action = re.search(r'data-action="(\w+)"', tag).group(1)  # type: ignore[union-attr]
        seen.setdefault(action, []).append(not re.search(r"\shidden(=|\s|>)", tag))
    return seen


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize("address", ["#filter=blocked", "?action=blocked"])
def test_chromium_filter_from_the_address(tmp_path: Path, page_file: Path, address: str) -> None:
    dom = _chromium(tmp_path, "--dump-dom", page_file.as_uri() + address).stdout
    assert 'data-filter="blocked"' in dom.split("<body", 1)[1].split(">", 1)[0]  # the script ran
    seen = _row_visibility(dom)
    assert seen == {
        "create": [False] * 3,
        "update": [False],
        "unchanged": [False],
        "blocked": [True],
        "invalid": [False],
    }
    assert re.search(r'id="count-create">3<', dom) and re.search(r'id="count-blocked">1<', dom)
    assert "Showing 1 of 7 rows" in dom
    assert re.search(r'<div class="controls" id="controls">', dom)  # revealed by the script
    assert "<script>alert(1)</script>" not in dom.split("<script>", 1)[0]


@pytest.mark.slow
@needs_chromium
def test_chromium_text_filter_and_no_filter(tmp_path: Path, page_file: Path) -> None:
    dom = _chromium(tmp_path, "--dump-dom", page_file.as_uri() + "#q=fabrikam").stdout
    assert _row_visibility(dom)["create"] == [False, True, False]
    dom = _chromium(tmp_path, "--dump-dom", page_file.as_uri()).stdout
    seen = _row_visibility(dom)
    assert seen.pop("unchanged") == [False]  # hidden by default, one click away
    assert all(all(v) for v in seen.values())
    assert "Showing 6 of 7 rows · 1 unchanged hidden" in dom and ">Show 1 unchanged</button>" in dom
    dom = _chromium(tmp_path, "--dump-dom", page_file.as_uri() + "#unchanged=shown").stdout
    assert all(all(v) for v in _row_visibility(dom).values())
    assert "Showing all 7 rows" in dom


@pytest.mark.slow
@needs_chromium
def test_chromium_screenshot(tmp_path: Path, page_file: Path) -> None:
    shot = tmp_path / "plan.png"
    _chromium(
        tmp_path, f"--screenshot={shot}", "--window-size=1280,900", "--hide-scrollbars", page_file.as_uri()
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a blank page is a few kB


@pytest.mark.slow
@needs_chromium
def test_chromium_csp_runs_only_the_shipped_script(tmp_path: Path) -> None:
    """Defence in depth: were a value ever to slip past escaping, the page's CSP would not run it."""
    page = plan_html(sample_plan()).replace(
        "<main>", '<main><script>document.body.setAttribute("data-pwned", "1")</script>', 1
    )
    path = tmp_path / "plan.html"
    path.write_text(page, encoding="utf-8")
    dom = _chromium(tmp_path, "--dump-dom", path.as_uri() + "#filter=invalid").stdout
    body = dom.split("<body", 1)[1].split(">", 1)[0]
    assert 'data-filter="invalid"' in body and "data-pwned" not in body
