"""What a review reads, without a browser: whether a saved plan is current, a run's
summary counted as it goes, a new deal as fields, and the review index's pages and filters."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from helpers import row, write_csv

import bulkref
from bulkref.plan.model import Action, Change
from bulkref.web import reviewing


def _plan(tmp_path: Path, n: int = 3) -> bulkref.Plan:
    sheet = write_csv(
        tmp_path / "deals.csv",
        [row(External_Reference_ID=f"R-{i}", Referral_Name=f"Deal {i}") for i in range(n)],
    )
    return bulkref.make_plan(sheet, offline=True)


def test_a_saved_plan_is_stale_once_its_input_changes(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert bulkref.why_stale(plan) is None
    Path(plan.source).write_text(Path(plan.source).read_text() + "\n", encoding="utf-8")
    assert "the input" in (bulkref.why_stale(plan) or "") and "changed since the plan was made" in (
        bulkref.why_stale(plan) or ""
    )
    Path(plan.source).unlink()
    assert "(or is gone)" in (bulkref.why_stale(plan) or "")


def test_a_tally_counts_as_the_summary_does() -> None:
    outcomes = [
        bulkref.Outcome.CREATED,
        bulkref.Outcome.ADOPTED,
        bulkref.Outcome.CONFLICT,
        bulkref.Outcome.SKIPPED,
    ]
    results = [bulkref.RowResult("S", i + 2, f"E-{i}", "create", o) for i, o in enumerate(outcomes)]
    tally = bulkref.Tally()
    for r in results:
        tally.add(r)
    assert tally.counts == bulkref.summarize(results)
    assert tally.rows == 4
    # Adopted rows count as unchanged (and as adopted), a conflict as failed: none drops out.
    assert tally.counts["unchanged"] == 1 and tally.counts["adopted"] == 1
    assert tally.counts["failed"] == 1 and tally.counts["conflict"] == 1


def test_a_new_deal_reads_as_the_sheets_fields(tmp_path: Path) -> None:
    plan = _plan(tmp_path, 1)
    fields = dict(bulkref.deal_fields(plan.rows[0]))
    assert fields["Referral Name"] == "Deal 0" and fields["Customer Name"] == "Contoso Ltd"
    assert fields["Closing Date"] == "2027-03-31" and fields["Share With Microsoft Sellers"] == "Yes"
    headers = [h for h, _ in bulkref.deal_fields(plan.rows[0])]
    assert headers.index("External Reference ID") < headers.index("Customer Name") < headers.index("Currency")
    unchanged = dataclasses.replace(plan.rows[0], action=Action.UNCHANGED, steps=())
    assert bulkref.deal_fields(unchanged) == []


def test_the_review_index_pages_and_filters_as_the_plan_page(tmp_path: Path) -> None:
    small = _plan(tmp_path, 1)
    first = small.rows[0]
    rows = []
    for i in range(250):
        action = (Action.CREATE, Action.UPDATE, Action.UNCHANGED, Action.UNCHANGED, Action.BLOCKED)[i % 5]
        rows.append(
            dataclasses.replace(
                first,
                row=i + 2,
                external_id=f"X-{i:03}",
                action=action,
                changes=(Change.of("Deal Value", 1, 2),) if action is Action.UPDATE else (),
                reason="Closed" if action is Action.BLOCKED else None,
            )
        )
    plan = dataclasses.replace(small, rows=tuple(rows))
    index = tmp_path / "review.sqlite"
    reviewing.build(plan, index, "print-1")
    assert reviewing.load(index, "another plan") is None  # made from another plan.json: read again
    loaded, sheets = reviewing.load(index, "print-1") or (None, 0)
    assert loaded is not None and sheets == 1
    assert loaded.summary == plan.summary and len(loaded.rows) == 250
    assert loaded.rows[7].external_id == "X-007" and bulkref.why_stale(loaded) is None

    everything = reviewing.page(index, reviewing.Filter(), sheets)  # unchanged folded by default
    assert (everything.matched, everything.folded, everything.pages) == (150, 100, 2)
    assert [r["external_id"] for r in everything.rows[:3]] == ["X-000", "X-001", "X-004"]
    second = reviewing.page(index, reviewing.Filter(page=2), sheets)
    assert second.first == 101 and len(second.rows) == 50
    shown = reviewing.page(index, reviewing.Filter(unchanged="shown", page=9), sheets)
    assert shown.matched == 250 and shown.page == 3  # past the end: the last page
    blocked = reviewing.page(index, reviewing.Filter(action="blocked"), sheets)
    assert blocked.matched == 50 and {r["action"] for r in blocked.rows} == {"blocked"}
    text = reviewing.page(index, reviewing.Filter(text="x-24"), sheets)  # any case
    assert [r["external_id"] for r in text.rows] == ["X-240", "X-241", "X-244", "X-245", "X-246", "X-249"]
    assert text.folded == 4
    update = reviewing.page(index, reviewing.Filter(action="update", text="deal value"), sheets)
    assert update.matched == 50 and update.rows[0]["changes"][0]["new"] == "2"
    assert reviewing.Filter.of({"action": "evil", "page": "x", "q": " a  b "}, "hidden") == reviewing.Filter(
        "all", "a b", "hidden", 1
    )
