"""The planner's fast paths plan exactly what the slow ones do.

An exported sheet is compared with what Partner Center holds all cells at once
(``planner._unchanged``) before any per-column diff, and a scan's referrals are
read from the local index (``bulkref.plan.index``: a query for the next rows at
once, an engagement of one referral answered from the referral just read). Each
test plans the same sheet both ways, a row edited in one field of each kind,
and wants the same plan."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest

import bulkref.plan.parallel as parallel
import bulkref.plan.planner as planner
import bulkref.second_process as second_process
from bulkref.plan.index import ById, Groups, ReferralIndex
from bulkref.plan.model import Action, Plan
from bulkref.plan.parallel import plan
from bulkref.plan.payload import referral_doc, row_of
from bulkref.plan.planner import Remote
from bulkref.problems import Report
from bulkref.sheets.examples import EXAMPLES
from bulkref.sheets.template import build_workbook, save_workbook
from bulkref.validation.check import check_file

_ids = itertools.count(1)


def _served(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    n = next(_ids)
    return {
        "id": f"ref-{n:04d}",
        "engagementId": f"eng-{n:04d}",
        "eTag": f'"etag-{n}"',
        "organizationId": "org-partner",
        "organizationName": "A. Datum",
        "direction": "Outgoing",
        "status": "New",
        **doc,
        **fields,
    }


def _deals(tmp_path: Path, count: int) -> list[dict[str, Any]]:
    """``count`` deals made from the template's examples (co-sell ones with Microsoft's
    referral), as Partner Center holds them."""
    source = tmp_path / "examples.xlsx"
    save_workbook(build_workbook(EXAMPLES), source)
    examples = [dict(v) for _, v in check_file(source).values.iterrows()]
    docs = []
    for n in range(count):
        values = {**examples[n % len(examples)], "external_id": f"CRM-{n:04d}"}
        doc = _served(referral_doc(values))
        docs.append(doc)
        if values["deal_type"] == "Co-sell":
            invite = {"assistanceRequestCode": values["help_needed"], "notes": values["invite_notes"]}
            microsoft = {"organizationId": "msft", "type": "Shared", "inviteContext": invite}
            docs.append(_served(microsoft, engagementId=doc["engagementId"]))
    return docs


def _in_memory(docs: list[dict[str, Any]]) -> Remote:
    remote = Remote()
    for d in docs:
        if d.get("externalReferenceId"):
            remote.by_external_id.setdefault(d["externalReferenceId"], []).append(d)  # type: ignore[attr-defined]
        remote.by_id[d["id"]] = d  # type: ignore[index]
        remote.by_engagement.setdefault(d["engagementId"], []).append(d)  # type: ignore[attr-defined]
    return remote


def _indexed(docs: list[dict[str, Any]]) -> Remote:
    """What a scan hands the planner (bulkref.plan.remote.fetch): look-ups from the index."""
    index = ReferralIndex()
    for d in docs:
        index.add(d)
    index.finish()
    exts = [d["externalReferenceId"] for d in docs if d.get("externalReferenceId")]
    return Remote(
        by_external_id=Groups(index, "ext", exts, {}),
        by_id=ById(index, [d["id"] for d in docs], {}),
        by_engagement=Groups(index, "engagement", None, {}),
        release=index.close,
        strategy="scan",
        index=index,
    )


def _exported(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows ``bulkref export`` writes for ``docs``: one per partner referral."""
    engagements: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        engagements.setdefault(d["engagementId"], []).append(d)
    return [row_of(d, engagements[d["engagementId"]]) for d in docs if d["organizationId"] != "msft"]


def _sheet(path: Path, rows: list[dict[str, Any]]) -> Path:
    save_workbook(build_workbook([{k: v for k, v in r.items() if v is not None} for r in rows]), path)
    return path


def _plans(
    path: Path,
    docs: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    *,
    checked: bool = True,
    **kw: Any,
) -> list[Plan]:
    """The plan of ``path`` six ways: fast or slow comparison, in-memory or indexed look-ups,
    each in this process; the pure planner on the index without its read-ahead; then
    indexed, the later rows planned by a forked child (bulkref.plan.parallel), which must
    have answered. ``checked`` False: as if validation
    had let every row through."""
    validated = check_file(path)
    if not checked:
        validated.report = Report(rows=validated.report.rows)
    made = []
    for fast, make_remote in itertools.product((True, False), (_in_memory, _indexed)):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(planner, "_unchanged", lambda old, new: False)
            m.setattr(second_process, "MIN_ROWS", 10**9)  # one process
            remote = make_remote(docs)
            try:
                made.append(plan(validated, remote, source="s", fingerprint="f", api_url="u", **kw))
            finally:
                if remote.release is not None:
                    remote.release()
    # The pure planner alone, reading the index a referral at a time: the same plan.
    remote = _indexed(docs)
    try:
        made.append(planner.plan(validated, remote, source="s", fingerprint="f", api_url="u", **kw))
    finally:
        assert remote.release is not None
        remote.release()
    with monkeypatch.context() as m:
        answers = _two_processes(m)
        remote = _indexed(docs)
        try:
            made.append(plan(validated, remote, source="s", fingerprint="f", api_url="u", **kw))
        finally:
            assert remote.release is not None
            remote.release()
        assert answers and answers[0] is not None  # the child planned the later rows
    return made


def _two_processes(m: pytest.MonkeyPatch) -> list[Any]:
    """Plan in two processes from two rows on; the answers the child gave, as they come."""
    m.setattr(second_process, "MIN_ROWS", 2)
    # The test runner may keep threads of its own (the sandbox's); the child only plans.
    m.setattr(second_process.threading, "active_count", lambda: 1)
    answers: list[Any] = []
    real = second_process.SecondProcess.result

    def result(self: second_process.SecondProcess) -> Any:
        answers.append(real(self))
        return answers[-1]

    m.setattr(second_process.SecondProcess, "result", result)
    return answers


# One edit of each kind of cell: column key -> the new value, from the exported value.
EDITS: dict[str, Any] = {
    "name": lambda v: "Renamed deal",  # text
    "customer_name": lambda v: f"  {v}  ",  # padded: the same text
    "qualification": lambda v: "MarketingQualified" if v != "MarketingQualified" else "SalesQualified",
    "deal_value": lambda v: v + 1000.0,  # decimal
    "currency": lambda v: "EUR" if v != "EUR" else "USD",
    "closing_date": lambda v: v + dt.timedelta(days=30),  # date
    "industries": lambda v: ("Retail",) if v != ("Retail",) else ("Manufacturing",),  # list
    "consent_contact": lambda v: not v,  # bool
    "contact.1.email": lambda v: "someone.else@contoso.com",  # a group's cell
    "contact.2.first_name": lambda v: "Ann",  # a group's second item
    "team.1.email": lambda v: "new.seller@adatum.com",
    "notes": lambda v: "Other notes",  # a text inside an object
    "etag": lambda v: '"an-older-version"',  # alone: read-only, nothing to change
}


def test_every_edit_plans_the_same_fast_and_slow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _deals(tmp_path, len(EDITS) + 3)
    rows = _exported(docs)
    for r, (key, edit) in zip(rows, EDITS.items(), strict=False):
        r[key] = edit(r.get(key))
    # Two more: an edit from an older version (blocked, changed since), and a tiny
    # difference in an amount (within the comparison's tolerance: unchanged).
    rows[len(EDITS)]["etag"] = '"an-older-version"'
    rows[len(EDITS)]["name"] = "Renamed from an old sheet"
    rows[len(EDITS) + 1]["deal_value"] = rows[len(EDITS) + 1]["deal_value"] + 0.001
    path = _sheet(tmp_path / "edited.xlsx", rows)
    for overwrite_newer in (False, True):
        fast, *others = _plans(path, docs, monkeypatch, overwrite_newer=overwrite_newer)
        for other in others:
            assert other == fast
        actions = {r.row: r.action for r in fast.rows}
        assert set(actions.values()) >= {Action.UPDATE, Action.UNCHANGED}, actions
        changed = {r.row: {c.field for c in r.changes} for r in fast.rows}
        # Each edit is the one field its row changes (the padded name and the etag alone change none).
        assert changed[2] == {"Referral Name"} and actions[2] is Action.UPDATE
        assert changed[3] == set() and actions[3] is Action.UNCHANGED
        assert changed[5] == {"Deal Value"}
        assert changed[7] == {"Closing Date"}
        assert changed[8] == {"Industries"} and changed[9] == {"Consent To Contact"}
        assert changed[10] == {"Customer Contact 1 Email"} and changed[12] == {"Team Member 1 Email"}
        assert actions[11] is Action.INVALID  # a second contact with a name only
        assert changed[13] == {"Notes"}
        assert actions[14] is Action.UNCHANGED  # the ETag alone
        assert actions[16] is Action.UNCHANGED  # within the tolerance
        assert actions[15] is (Action.UPDATE if overwrite_newer else Action.BLOCKED)


def test_an_unchanged_export_plans_unchanged_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _deals(tmp_path, 12)
    path = _sheet(tmp_path / "export.xlsx", _exported(docs))
    made = _plans(path, docs, monkeypatch)
    assert all(p == made[0] for p in made)
    assert [r.action for r in made[0].rows] == [Action.UNCHANGED] * 12
    # The co-sell deals name Microsoft's referral, read from a shared engagement.
    linked = [r.linked_referral_id for r in made[0].rows if r.deal_type == "Co-sell"]
    assert linked and all(linked)


def test_rows_claiming_one_referral_are_blocked_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _deals(tmp_path, 6)
    rows = _exported(docs)
    rows[4] = {**rows[1], "name": "A second row for the same referral"}  # same Referral ID
    path = _sheet(tmp_path / "twice.xlsx", rows)
    # Validation says so first (the same IDs on two rows); the planner, planning what it
    # is given, blocks both rows all the same, once it has seen them all.
    made = _plans(path, docs, monkeypatch, checked=False)
    assert all(p == made[0] for p in made)
    by_row = {r.row: r for r in made[0].rows}
    assert by_row[3].action is Action.BLOCKED and by_row[6].action is Action.BLOCKED
    assert "Row 6 also describes referral" in (by_row[3].reason or "")
    assert "Row 3 also describes referral" in (by_row[6].reason or "")
    assert [by_row[n].action for n in (2, 4, 5, 7)] == [Action.UNCHANGED] * 4


def test_more_rows_than_one_read_ahead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planner, "_AHEAD", 4)  # the rows' referrals read in several queries
    docs = _deals(tmp_path, 11)
    rows = _exported(docs)
    rows[9]["name"] = "Renamed in the third batch"
    path = _sheet(tmp_path / "batches.xlsx", rows)
    made = _plans(path, docs, monkeypatch)
    assert all(p == made[0] for p in made)
    actions = [r.action for r in made[0].rows]
    assert actions == [Action.UNCHANGED] * 9 + [Action.UPDATE] + [Action.UNCHANGED]


def test_the_comparison_at_once_agrees_with_the_diff() -> None:
    old = {"name": "A", "deal_value": 10.0, "contact.1.email": "a@b.c", "contact.2.email": "x@y.z"}
    same = {"name": "A", "deal_value": 10.0, "contact.1.email": "a@b.c", "contact.2.email": "x@y.z"}
    assert planner._unchanged(old, same) and planner._changes(old, same) == {}
    # A group the row fills drops the items it leaves out: not unchanged.
    fewer = {"name": "A", "deal_value": 10.0, "contact.1.email": "a@b.c"}
    assert not planner._unchanged(old, fewer)
    assert set(planner._changes(old, fewer)) == {"contact.2.email"}
    for key, value in (("name", "B"), ("deal_value", 11.0), ("contact.1.email", "d@e.f")):
        edited = {**same, key: value}
        assert not planner._unchanged(old, edited)
        assert set(planner._changes(old, edited)) == {key}
    # Within the amount's tolerance, and padded text: the same both ways.
    close = {**same, "deal_value": 10.001, "name": " A "}
    assert planner._changes(old, close) == {}


def test_a_child_that_fails_leaves_its_rows_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _deals(tmp_path, 9)
    rows = _exported(docs)
    rows[7]["name"] = "Renamed in the child's half"
    validated = check_file(_sheet(tmp_path / "export.xlsx", rows))
    answers = _two_processes(monkeypatch)

    def broken(self: ReferralIndex) -> None:
        raise OSError("the index could not be opened")

    monkeypatch.setattr(ReferralIndex, "reopen", broken)  # in the child only: the parent never reopens
    remote = _indexed(docs)
    try:
        made = plan(validated, remote, source="s", fingerprint="f", api_url="u")
    finally:
        remote.release()  # type: ignore[misc]
    assert answers == [None]  # the child said it failed
    assert [r.row for r in made.rows] == list(range(2, 11))
    assert [r.action for r in made.rows] == [Action.UNCHANGED] * 7 + [Action.UPDATE, Action.UNCHANGED]


def test_a_second_planning_process_only_on_linux_and_only_beside_no_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = _deals(tmp_path, 6)
    validated = check_file(_sheet(tmp_path / "export.xlsx", _exported(docs)))
    monkeypatch.setattr(second_process, "MIN_ROWS", 2)
    remote = _indexed(docs)
    try:
        for platform, threads in (("darwin", 1), ("win32", 1), ("linux", 2)):
            monkeypatch.setattr(second_process.sys, "platform", platform)
            monkeypatch.setattr(second_process.threading, "active_count", lambda n=threads: n)
            assert parallel.later_rows(validated, {}, remote, False) is None
    finally:
        remote.release()  # type: ignore[misc]


def test_a_plan_that_fails_here_ends_the_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    docs = _deals(tmp_path, 9)
    validated = check_file(_sheet(tmp_path / "export.xlsx", _exported(docs)))
    _two_processes(monkeypatch)
    helpers: list[parallel.LaterRows | None] = []
    real_later = parallel.later_rows

    def later(*args: Any) -> parallel.LaterRows | None:
        helpers.append(real_later(*args))  # type: ignore[arg-type]
        return helpers[-1]

    monkeypatch.setattr(parallel, "later_rows", later)
    here, real_find = os.getpid(), planner._find

    def find(row: Any, remote: Remote) -> Any:
        if os.getpid() == here:  # this process only: the child plans its rows as ever
            raise RuntimeError("the planner failed here")
        return real_find(row, remote)

    monkeypatch.setattr(planner, "_find", find)
    remote = _indexed(docs)
    try:
        with pytest.raises(RuntimeError):
            plan(validated, remote, source="s", fingerprint="f", api_url="u")
    finally:
        remote.release()  # type: ignore[misc]
    assert helpers and helpers[0] is not None
    assert not helpers[0].child.process.is_alive()  # ended and reaped, not left running
