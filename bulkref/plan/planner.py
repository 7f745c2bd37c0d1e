"""Planning: validated rows + what Partner Center holds -> a Plan.

Pure: no network, no files, no clock, one process. The remote state is a
snapshot (``Remote``) read beforehand by ``bulkref.plan.remote``: mappings,
whatever holds them (a scan's index reads them from its file; the planner
only looks them up). Planning with that plumbing around it (the index told
which referrals the next rows need, the later rows of a large sheet in a
second process) is ``bulkref.plan.parallel``'s. Per row the planner
decides create / update / unchanged / blocked / invalid:

- A row finds its referral by Referral ID, else by External Reference ID
  (among the partner's own referrals, not Microsoft's).
- Blank cells mean "leave as it is". A numbered group (contacts, team,
  solutions, targets) that has any cell filled replaces the whole list.
- An update is the JSON Patch ``replace``/``add`` operations of the changed
  fields, sent with the eTag that was read.
- Blocked: any change to a Closed referral, a status move the transition
  table forbids, a status/substatus pair that would not fit, moving a
  referral to another engagement, un-sharing (Shared -> Independent) or
  withdrawing a co-sell, two rows claiming one referral.
- Newer in Partner Center: a row that carries an ETag (or an Updated time)
  other than Partner Center's was made from an older version of the
  referral. Applying its changes would revert what someone did since, so it
  is blocked, its changes shown, unless ``overwrite_newer`` lets the sheet win.
  A row without either (a sheet not made by ``bulkref export``) is compared
  as before.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, islice, repeat
from operator import is_not
from typing import Any

from bulkref.plan.model import Action, Change, Plan, RowPlan, Step
from bulkref.plan.payload import (
    CONNECTED_FILL,
    INVITE_KEYS,
    MICROSOFT_FILL,
    connected_referral,
    deal_defaults,
    is_microsoft,
    microsoft_referral,
    referral_doc,
    row_of,
)
from bulkref.problems import Severity
from bulkref.spec.columns import SPEC
from bulkref.spec.enums import load
from bulkref.spec.jsonpaths import at_pointer, pointer
from bulkref.validation.schema import Validated

Row = Mapping[str, Any]


@dataclass
class Remote:
    """What Partner Center holds, as far as the sheet's rows are concerned.

    The mappings may read from a local index (``bulkref.plan.index``); ``release``
    frees it once planned. ``strategy`` names how they were read (``filtered`` or
    ``scan``; bulkref.plan.remote)."""

    by_external_id: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    by_id: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    by_engagement: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    offline: bool = False
    release: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    strategy: str | None = None
    # The scan's index the mappings read from (bulkref.plan.index.ReferralIndex), if any.
    index: Any = field(default=None, repr=False, compare=False)


Planned = tuple[list[RowPlan], list[tuple[int, str | None]]]
"""Plans of rows, and for each row its number and the id of the referral it describes."""


def plan(
    validated: Validated,
    remote: Remote,
    *,
    source: str,
    fingerprint: str,
    api_url: str | None,
    created: str = "",
    overwrite_newer: bool = False,
) -> Plan:
    errors = errors_by_row(validated)
    planned = plan_rows(validated, errors, remote, overwrite_newer)
    return plan_of(
        validated,
        remote,
        planned,
        source=source,
        fingerprint=fingerprint,
        api_url=api_url,
        created=created,
        overwrite_newer=overwrite_newer,
    )


def plan_of(
    validated: Validated,
    remote: Remote,
    planned: Planned,
    *,
    source: str,
    fingerprint: str,
    api_url: str | None,
    created: str = "",
    overwrite_newer: bool = False,
) -> Plan:
    """The plan of every row, from ``plan_rows``' plans of all of them (in the sheet's order):
    rows claiming one referral are blocked, which is known only once all are planned."""
    out, claims = planned
    sheet = validated.table.sheet
    claimed: dict[str, list[int]] = defaultdict(list)
    at: dict[int, int] = {}
    for k, (r, rid) in enumerate(claims):
        if rid is not None:
            claimed[rid].append(r)
            at[r] = k
    shared = {r: rows for rows in claimed.values() if len(rows) > 1 for r in rows}
    if shared:
        for r, row in _rows(validated, sorted(shared)):
            existing, _ = _find(row, remote)
            assert existing is not None
            others = ", ".join(str(x) for x in shared[r] if x != r)
            problem = f"Row {others} also describes referral {existing['id']}: keep one row per referral."
            out[at[r]] = _plan_row(sheet, r, row, existing, remote, problem, overwrite_newer)
    return Plan(
        source=source,
        fingerprint=fingerprint,
        api_url=api_url,
        rows=tuple(out),
        created=created,
        overwrite_newer=overwrite_newer,
    )


_AHEAD = 500  # rows whose referrals are read at once


def plan_rows(
    validated: Validated,
    errors: Mapping[int, str],
    remote: Remote,
    overwrite_newer: bool,
    only: Sequence[int] | None = None,
    ahead: Callable[[list[str]], None] | None = None,
) -> Planned:
    """The plan of each row (or of the rows ``only``), in order, and for each its number and
    the id of the referral it describes (None: none found), to find rows claiming one.
    ``errors``: ``errors_by_row``'s. ``ahead`` is told the Referral IDs the next rows will
    look up, before they do (whatever holds the look-ups may read them at once)."""
    sheet = validated.table.sheet
    out: list[RowPlan] = []
    claims: list[tuple[int, str | None]] = []
    for r, row in _rows_ahead(validated, errors, ahead, only):
        if r in errors:
            out.append(
                RowPlan(
                    sheet,
                    r,
                    row.get("external_id"),
                    Action.INVALID,
                    reason=errors[r],
                    deal_type=row.get("deal_type"),
                    name=row.get("name"),
                )
            )
            claims.append((r, None))
            continue
        existing, problem = _find(row, remote)
        claims.append((r, None if existing is None else existing["id"]))
        out.append(_plan_row(sheet, r, row, existing, remote, problem, overwrite_newer))
    return out, claims


def _rows_ahead(
    validated: Validated,
    errors: Mapping[int, str],
    ahead: Callable[[list[str]], None] | None,
    only: Sequence[int] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``_rows``, telling ``ahead`` the Referral IDs of each next ``_AHEAD`` valid rows first."""
    rows = _rows(validated, only)
    if ahead is None:
        yield from rows
        return
    while chunk := list(islice(rows, _AHEAD)):
        ahead([row["referral_id"] for r, row in chunk if r not in errors and "referral_id" in row])
        yield from chunk


def _rows(validated: Validated, only: Sequence[int] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each row (or each of the rows ``only``) as its number and its values."""
    frame = validated.values if only is None else validated.values.loc[list(only)]
    columns = list(frame.columns)
    numbers = [int(r) for r in frame.index]
    arrays = [frame.iloc[:, k].to_numpy(dtype=object) for k in range(len(columns))]
    # A few hundred rows at a time, column by column (a third cheaper than itertuples).
    for start in range(0, len(numbers), _AHEAD):
        cells = [a[start : start + _AHEAD].tolist() for a in arrays]
        each = zip(*cells, strict=True) if cells else repeat((), len(numbers[start : start + _AHEAD]))
        # Blank cells are left out: every reader of a row takes a missing key for a blank.
        for r, values in zip(numbers[start : start + _AHEAD], each, strict=True):
            yield r, dict(compress(zip(columns, values, strict=True), map(is_not, values, repeat(None))))


def errors_by_row(validated: Validated) -> dict[int, str]:
    """Row -> why it is invalid, for every row validation refused (all of them when the sheet's
    columns are wrong)."""
    by_row: dict[int, list[str]] = defaultdict(list)
    # Errors with no row, or on the header row (missing or duplicate columns), are the whole sheet's.
    header = validated.table.header_row
    sheet_errors = [p for p in validated.report.errors if p.row is None or p.row == header]
    for p in validated.report.problems:
        if p.severity is Severity.ERROR and p.row is not None and p.row != header:
            by_row[p.row].append(f"{p.column}: {p.message}" if p.column else p.message)
    out = {r: "; ".join(msgs) for r, msgs in by_row.items()}
    if sheet_errors:  # missing columns make every row invalid
        reason = "; ".join(p.message for p in sheet_errors)
        out.update({int(r): out.get(int(r), reason) for r in validated.values.index})
    return out


def _find(row: Row, remote: Remote) -> tuple[dict[str, Any] | None, str | None]:
    """The referral the row describes (or None for a new one), or why it cannot be told."""
    ext, rid = row.get("external_id"), row.get("referral_id")
    if remote.offline:
        return None, None
    if rid is not None:
        doc = remote.by_id.get(rid)
        if doc is None:
            return None, f"Referral ID {rid} was not found in Partner Center."
        if doc.get("externalReferenceId") not in (None, "", ext):
            return None, (
                f"Referral {rid} has External Reference ID '{doc['externalReferenceId']}', "
                f"not '{ext}': fix one of them."
            )
        return doc, None
    found = remote.by_external_id.get(ext, []) if ext is not None else []
    own = [d for d in found if not is_microsoft(d)]
    if len(own) > 1:
        ids = ", ".join(d["id"] for d in own)
        return None, (
            f"{len(own)} referrals in Partner Center have External Reference ID '{ext}' "
            f"({ids}): add the Referral ID column to say which one this row is."
        )
    return (own[0] if own else None), None


def _plan_row(
    sheet: str,
    r: int,
    row: Row,
    existing: dict[str, Any] | None,
    remote: Remote,
    problem: str | None,
    overwrite_newer: bool = False,
) -> RowPlan:
    ext, deal = row.get("external_id"), row.get("deal_type")
    if problem is not None:
        return RowPlan(
            sheet,
            r,
            ext,
            Action.BLOCKED,
            reason=problem,
            deal_type=deal,
            name=row.get("name"),
            referral_id=existing["id"] if existing else row.get("referral_id"),
            engagement_id=existing.get("engagementId") if existing else None,
            linked_referral_id=_linked_id(existing, remote) if existing else None,
        )
    if existing is None:
        if row.get("referral_id") is not None:  # offline: cannot compare, send what the row says
            return _offline_update(sheet, r, row)
        return RowPlan(
            sheet,
            r,
            ext,
            Action.CREATE,
            steps=_create_steps(row),
            deal_type=deal,
            name=row.get("name"),
            engagement_id=row.get("engagement_id"),
        )
    return _update(sheet, r, row, existing, remote, overwrite_newer)


def _create_steps(row: Row) -> tuple[Step, ...]:
    doc = referral_doc(row)
    if row.get("engagement_id") is not None:
        return (
            Step(
                "referral",
                "POST",
                "/referrals",
                doc,
                what=f"a referral joining engagement {row['engagement_id']}",
            ),
        )
    first = Step("referral", "POST", "/referrals", doc, what=_what(row))
    if row.get("deal_type") == "Co-sell":
        return (
            first,
            Step(
                "connected",
                "POST",
                "/referrals",
                microsoft_referral(row, doc),
                depends_on="referral",
                fill=dict(MICROSOFT_FILL),
                what="the Microsoft referral, carrying step 1's engagementId",
            ),
        )
    if doc.get("type") == "Shared" and row.get("deal_type") == "Private":
        return (
            first,
            Step(
                "connected",
                "POST",
                "/referrals",
                connected_referral(doc),
                depends_on="referral",
                fill=dict(CONNECTED_FILL),
                what="the connected referral for the other party, in step 1's engagement",
            ),
        )
    return (first,)


def _what(row: Row) -> str:
    deal = row.get("deal_type")
    return {
        "Private": "the private referral",
        "Partner-led": "the partner-led referral, shared with Microsoft sellers",
        "Co-sell": "the partner-led referral",
    }.get(deal or "", "the referral")


def _offline_update(sheet: str, r: int, row: Row) -> RowPlan:
    rid = row["referral_id"]
    skip = ("external_id", "referral_id", "deal_type", *INVITE_KEYS)
    keys = [
        k
        for k, v in row.items()
        if v is not None and k not in skip and SPEC.column(k).path and not SPEC.column(k).read_only
    ]
    doc = referral_doc(row)
    ops = [
        {"op": "add", "path": ptr, "value": at_pointer(doc, ptr)[1]}
        for ptr in dict.fromkeys(_pointer(k) for k in keys)
    ]
    changes = tuple(Change.of(SPEC.column(k).header, None, row[k]) for k in keys)
    return RowPlan(
        sheet,
        r,
        row.get("external_id"),
        Action.UPDATE,
        steps=(Step("update", "PATCH", f"/referrals/{rid}", ops, what="offline: not compared"),),
        changes=changes,
        referral_id=rid,
        name=row.get("name"),
        deal_type=row.get("deal_type"),
        reason="Planned offline: not compared with Partner Center.",
    )


def _linked_id(existing: Mapping[str, Any], remote: Remote) -> str | None:
    """The engagement's other referral: Microsoft's (a co-sell) first, else the other party's."""
    others = [
        d
        for d in remote.by_engagement.get(existing.get("engagementId") or "", [])
        if d.get("id") != existing.get("id")
    ]
    linked = next((d for d in others if is_microsoft(d)), None) or next(iter(others), None)
    return None if linked is None else linked.get("id")


def _update(
    sheet: str, r: int, row: Row, existing: dict[str, Any], remote: Remote, overwrite_newer: bool = False
) -> RowPlan:
    rid, ext = existing["id"], row.get("external_id")
    engagement = remote.by_engagement.get(existing.get("engagementId") or "", [])
    old = row_of(existing, engagement)
    new = dict(compress(row.items(), map(is_not, row.values(), repeat(None))))
    new.update(deal_defaults(row))
    accepted = _accepted_on_creation(existing, new)
    if accepted is not None:
        new.pop("status", None)
        new.pop("substatus", None)
    changes = _changes(old, new)
    base = {
        "sheet": sheet,
        "row": r,
        "external_id": ext,
        "deal_type": row.get("deal_type") or old["deal_type"],
        "name": row.get("name") or existing.get("name"),
        "referral_id": rid,
        "engagement_id": existing.get("engagementId"),
        "linked_referral_id": _linked_id(existing, remote),
    }
    blocked = _why_blocked(existing, old, new, changes)
    if blocked:
        return RowPlan(**base, action=Action.BLOCKED, changes=tuple(changes.values()), reason=blocked)
    since = _changed_since(row, existing) if changes else None
    if since is not None:
        base["changed_since"] = since
        if not overwrite_newer:
            return RowPlan(
                **base, action=Action.BLOCKED, changes=tuple(changes.values()), reason=_newer_reason(changes)
            )
        base["reason"] = (
            "Changed in Partner Center since this sheet was made: --overwrite-newer lets the sheet win."
        )
    steps: list[Step] = []
    fields = [k for k in changes if k not in (*INVITE_KEYS, "deal_type")]
    if fields:
        ops = _patch(existing, new, fields)
        expect = {op["path"]: at_pointer(existing, op["path"])[1] for op in ops}
        steps.append(
            Step(
                "update",
                "PATCH",
                f"/referrals/{rid}",
                ops,
                if_match=existing.get("eTag"),
                what=f"change {len(fields)} field{'s' if len(fields) != 1 else ''}",
                expect=expect,
            )
        )
    if old["deal_type"] != "Co-sell" and new.get("deal_type") == "Co-sell":
        # Upgrading to co-sell is adding step 2 to the existing deal (seed 000):
        # the engagement and the inviting organisation are known already.
        partner = {**existing, **referral_doc(row)}
        partner.update({k: existing.get(k) for k in ("engagementId", "organizationId", "organizationName")})
        steps.append(
            Step(
                "connected",
                "POST",
                "/referrals",
                microsoft_referral(row, partner),
                depends_on="update" if steps else None,
                what="the Microsoft referral, joining the existing engagement (upgrade to Co-sell)",
            )
        )
    if accepted is not None:
        base["reason"] = f"{base['reason']} {accepted}" if base.get("reason") else accepted
    if steps and existing.get("status") == "Closed":
        closed = (
            f"Referral {rid} is Closed: Partner Center may refuse changes to a Closed referral "
            "(its own bulk upload does); if it does, this row fails and says so."
        )
        base["reason"] = f"{base['reason']} {closed}" if base.get("reason") else closed
    if not steps:
        return RowPlan(**{**base, "reason": accepted}, action=Action.UNCHANGED)
    return RowPlan(**base, action=Action.UPDATE, steps=tuple(steps), changes=tuple(changes.values()))


#: What a sheet may still say of such a referral: New, with any substatus New allows.
_STATUS_AS_SENT = {("New", None), ("New", "Pending"), ("New", "Received")}


def _accepted_on_creation(existing: Mapping[str, Any], new: Row) -> str | None:
    """A note when Partner Center moved the partner's own outgoing referral to Active/Accepted
    by itself on creation (as the create example answers) and the row still says New/Pending:
    not a conflict, the status is left as it is. None otherwise."""
    if (existing.get("status"), existing.get("substatus")) != ("Active", "Accepted"):
        return None
    if existing.get("direction") != "Outgoing" or is_microsoft(existing):
        return None
    if (new.get("status"), new.get("substatus")) not in _STATUS_AS_SENT:
        return None
    # Documented: an outgoing referral's acceptedDateTime is its creation time. Accepted at
    # any other moment (a PATCH, a person), the sheet's New is a real move back: blocked.
    created, accepted = moment(existing.get("createdDateTime")), moment(existing.get("acceptedDateTime"))
    if created is None or accepted is None or accepted != created:
        return None
    said = "/".join(v for v in (new.get("status"), new.get("substatus")) if v)
    return (
        f"Partner Center accepted this outgoing referral when it was created (Active/Accepted): "
        f"the sheet's {said} is left as it is."
    )


# An Updated time read back from an exported workbook keeps its milliseconds (an Excel
# serial number holds microseconds; the export rounds to milliseconds): closer than
# this is the same moment. An edit is rarely less than a second after the last one,
# but a colleague's can be, so the margin is no wider than the rounding needs.
_SAME_MOMENT = dt.timedelta(milliseconds=2)


def _changed_since(row: Row, existing: Mapping[str, Any]) -> dict[str, Any] | None:
    """Both versions when the row was made from an older one than Partner Center holds, else None.

    The ETag decides when the sheet has one; else the Updated time, when it has that."""
    sheet_etag, now_etag = _text(row.get("etag")), _text(existing.get("eTag"))
    sheet_time, now_time = moment(row.get("updated")), moment(existing.get("updatedDateTime"))
    if sheet_etag is not None and now_etag is not None:
        newer = sheet_etag.strip('"') != now_etag.strip('"')
    elif sheet_time is not None and now_time is not None:
        newer = now_time - sheet_time > _SAME_MOMENT
    else:
        return None
    if not newer:
        return None
    return {
        "sheet": {"eTag": sheet_etag, "updated": _iso(sheet_time)},
        "partnerCenter": {"eTag": now_etag, "updated": _iso(now_time)},
    }


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def moment(value: Any) -> dt.datetime | None:
    """An Updated cell (a datetime from a workbook, ISO text from a CSV) or the service's
    updatedDateTime, as an aware UTC datetime; None when it is neither."""
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        # The service writes seven decimals; fromisoformat takes at most six.
        head, dot, rest = text.partition(".")
        if dot:
            digits = "".join(c for c in rest if c.isdigit())
            text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return None


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds").replace("+00:00", "Z")


NEWER_FIELDS_SHOWN = 5


def _newer_reason(changes: Mapping[str, Change]) -> str:
    shown = [
        f"{c.field} is {_said(c.old)} in Partner Center, {_said(c.new)} in the sheet"
        for c in list(changes.values())[:NEWER_FIELDS_SHOWN]
    ]
    more = len(changes) - len(shown)
    fields = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
    return (
        f"Changed in Partner Center since this sheet was made: {fields}. Export again to start from "
        "what Partner Center holds, or add --overwrite-newer to let the sheet win."
    )


def _said(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "blank"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, list):
        return "; ".join(map(str, value))
    return str(value)


def _changes(old: Row, new: Row) -> dict[str, Change]:
    """Column key -> the change, for every column the row fills with another value."""
    if _unchanged(old, new):
        return {}
    changes: dict[str, Change] = {}
    filled: set[str] = set()
    for key, value in new.items():
        compared, group = _KEYS.get(key) or _key_facts(key)
        if group is not None and value is not None:
            filled.add(group)
        if not compared:
            continue
        before = old.get(key)
        # Most cells of a sheet made by export equal what Partner Center holds, and equal
        # values are the same for ``_same``: no need to ask it.
        if before == value:
            continue
        if not _same(before, value):
            changes[key] = Change.of(SPEC.column(key).header, before, value)
    # A group that the row fills replaces the whole list: items beyond the row's go.
    if filled:
        for key, value in old.items():
            if value is not None and key.partition(".")[0] in filled and new.get(key) is None:
                changes[key] = Change.of(SPEC.column(key).header, value, None)
    return changes


def _unchanged(old: Row, new: Row) -> bool:
    """True only when ``_changes`` finds nothing: what an exported sheet's rows mostly are,
    told by comparing the compared cells all at once (tuples, in C) instead of one by one.
    The columns compared and the cells a filled group would drop are worked out once per
    shape of row (its keys, and those of Partner Center's row)."""
    if None in new.values():
        return False  # a blank that is a key: the slow path says what it means
    shape = (tuple(old), tuple(new))
    facts = _SHAPES.get(shape)
    if facts is None:
        if len(_SHAPES) >= 256:
            _SHAPES.clear()
        facts = _SHAPES[shape] = _shape_facts(*shape)
    compared, dropped = facts
    after = tuple(map(new.__getitem__, compared))
    # Equal tuples hold equal items, which ``_same`` calls the same. (Tuples also take an
    # item identical to itself as equal, which differs from == only for a NaN, and a
    # sheet's row and Partner Center's never share one.)
    if tuple(map(old.get, compared)) != after:
        return False
    return tuple(map(old.__getitem__, dropped)).count(None) == len(dropped)


def _shape_facts(old_keys: tuple[str, ...], new_keys: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The keys ``_changes`` compares for rows of these keys (all filled), and the keys of
    Partner Center's row that a group the sheet's row fills would drop."""
    compared = tuple(k for k in new_keys if (_KEYS.get(k) or _key_facts(k))[0])
    filled = {g for k in new_keys if (g := (_KEYS.get(k) or _key_facts(k))[1]) is not None}
    present = set(new_keys)
    dropped = tuple(k for k in old_keys if k.partition(".")[0] in filled and k not in present)
    return compared, dropped


_SHAPES: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[tuple[str, ...], ...]] = {}


def _key_facts(key: str) -> tuple[bool, str | None]:
    """Whether ``_changes`` compares column ``key``, and the group it belongs to
    (``group.n.field`` keys: the part before the first dot), worked out once per key."""
    column = SPEC.column(key)
    compared = not (column.read_only or key in ("referral_id", "external_id")) and (
        column.path is not None or key == "deal_type"
    )
    head = key.partition(".")[0] if "." in key else None
    facts = _KEYS[key] = (compared, head if head in _GROUP_KEYS else None)
    return facts


_GROUP_KEYS = frozenset(g.key for g in SPEC.groups)
_KEYS: dict[str, tuple[bool, str | None]] = {}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    if isinstance(a, tuple) and isinstance(b, tuple):
        return sorted(a) == sorted(b)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) < 0.005
    return bool(a == b)


def _why_blocked(
    existing: Mapping[str, Any], old: Row, new: Row, changes: Mapping[str, Change]
) -> str | None:
    rid = existing["id"]
    enums = load()
    status_before = existing.get("status")
    # A Closed referral is not blocked: the API pages do not say it takes no change (the
    # transition table allows Closed -> Closed with another substatus; "no change after a
    # terminal state" is the UI's bulk upload). Planned with a note; a refusal is the row's.
    status_after = new.get("status", status_before)
    if status_before and status_after not in enums.status_transitions.get(status_before, (status_after,)):
        allowed = " or ".join(s for s in enums.status_transitions[status_before] if s != status_before)
        # Closed moves nowhere else (it may only change its closed substatus).
        move = f"can only move to {allowed}" if allowed else "can only stay so (another closed substatus)"
        return (
            f"{status_before} {move}: referral {rid} is {status_before} in Partner "
            f"Center and cannot go back to {status_after}."
        )
    sub_after = new.get("substatus", existing.get("substatus"))
    if status_after and sub_after and sub_after not in enums.status_substatus.get(status_after, (sub_after,)):
        fits = " or ".join(enums.status_substatus[status_after])
        return (
            f"Status {status_after} needs substatus {fits}, but the referral would keep "
            f"{sub_after}: fill Substatus."
        )
    if new.get("engagement_id") and new["engagement_id"] != existing.get("engagementId"):
        return (
            f"Referral {rid} belongs to engagement {existing.get('engagementId')}: a referral cannot "
            "move to another engagement."
        )
    if existing.get("type") == "Shared" and new.get("referral_type") == "Independent":
        return f"Referral {rid} is Shared: a shared referral cannot become Independent again."
    if old["deal_type"] == "Co-sell" and new.get("deal_type") not in (None, "Co-sell"):
        return f"Referral {rid} is a Co-sell deal: Microsoft's referral cannot be withdrawn from a sheet."
    if old["deal_type"] == "Co-sell" and any(k in changes for k in INVITE_KEYS):
        return (
            f"Referral {rid} is a Co-sell deal already: Help Needed and Invite Notes went to Microsoft "
            "with the invitation and cannot change."
        )
    return None


def _patch(existing: Mapping[str, Any], new: Row, keys: Sequence[str]) -> list[dict[str, Any]]:
    """JSON Patch ``replace``/``add`` operations that write the changed columns ``keys``."""
    desired = referral_doc(new)
    ops = []
    for ptr in dict.fromkeys(_pointer(k) for k in keys):
        value = at_pointer(desired, ptr)[1]
        exists, current = at_pointer(existing, ptr)
        if isinstance(value, list) and isinstance(current, list) and ptr in _GROUP_POINTERS:
            # Keep what the service holds on each contact/solution beyond the
            # sheet's columns (contactPreference, validation statuses).
            value = [
                {**(current[i] if i < len(current) and isinstance(current[i], dict) else {}), **item}
                for i, item in enumerate(value)
            ]
        parent = ptr.rsplit("/", 1)[0] or "/"
        if exists or parent == "/" or at_pointer(existing, parent)[0]:
            ops.append({"op": "replace" if exists else "add", "path": ptr, "value": value})
            continue
        # The parent object is missing too: add it whole, with the new value in it.
        top, built = _missing_ancestor(existing, ptr, value)
        ops.append({"op": "add", "path": top, "value": built})
    return _merge_ops(ops)


_GROUP_POINTERS = frozenset(pointer(g.path) for g in SPEC.groups)


def _pointer(key: str) -> str:
    column = SPEC.column(key)
    return pointer(SPEC.group(column.group).path if column.group else column.path or "")


def _missing_ancestor(doc: Mapping[str, Any], ptr: str, value: Any) -> tuple[str, Any]:
    parts = ptr.lstrip("/").split("/")
    for depth in range(1, len(parts)):
        top = "/" + "/".join(parts[:depth])
        if not at_pointer(doc, top)[0]:
            built: Any = value
            for part in reversed(parts[depth:]):
                built = {part: built}
            return top, built
    return ptr, value


def _merge_ops(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two ``add``s of the same missing parent become one."""
    merged: dict[str, dict[str, Any]] = {}
    for op in ops:
        prev = merged.get(op["path"])
        if prev and prev["op"] == "add" == op["op"] and isinstance(prev["value"], dict):
            _deep_merge(prev["value"], op["value"])
        else:
            merged[op["path"]] = op
    return list(merged.values())


def _deep_merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for k, v in other.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _deep_merge(into[k], v)
        else:
            into[k] = v
