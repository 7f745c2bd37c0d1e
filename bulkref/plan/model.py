"""The plan: what bulkref will do for each row, as a plain serialisable value.

``bulkref plan`` writes it, a reviewer reads it, ``bulkref apply PLAN.json``
executes exactly it. A deal that takes two calls (co-sell, or shared with
another partner) is a chain of explicit steps: the second names the step it
depends on and which fields of that step's answer it carries, so the
executor never has to infer anything.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bulkref.problems import Skipped

PLAN_FORMAT = 1


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    BLOCKED = "blocked"
    INVALID = "invalid"


@dataclass(frozen=True)
class Step:
    """One API call.

    ``fill`` maps a JSON pointer in ``body`` to a field of the answer of step
    ``depends_on`` (``{"/engagementId": "engagementId"}``): the executor copies
    it in before sending. ``if_match`` is the eTag the planner read (PATCH).
    """

    key: str  # "referral", "update", "connected": unique within the row
    method: str  # POST | PATCH
    path: str  # relative to the API root: /referrals or /referrals/{id}
    body: Any  # the Referral JSON (POST) or the JSON Patch operations (PATCH)
    depends_on: str | None = None
    fill: dict[str, str] = field(default_factory=dict)
    if_match: str | None = None
    what: str = ""  # one line for the reviewer
    # PATCH: what each patched pointer held when the plan was made (None:
    # absent). After a 412 the executor re-reads the referral and applies an
    # operation only where Partner Center still holds this; else it is a conflict.
    expect: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"key": self.key, "method": self.method, "path": self.path, "body": self.body}
        if self.depends_on:
            d["dependsOn"] = self.depends_on
        if self.fill:
            d["fill"] = self.fill
        if self.if_match:
            d["ifMatch"] = self.if_match
        if self.what:
            d["what"] = self.what
        if self.expect:
            d["expect"] = self.expect
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Step:
        return cls(
            key=d["key"],
            method=d["method"],
            path=d["path"],
            body=d["body"],
            depends_on=d.get("dependsOn"),
            fill=d.get("fill", {}),
            if_match=d.get("ifMatch"),
            what=d.get("what", ""),
            expect=d.get("expect", {}),
        )


@dataclass(frozen=True)
class Change:
    """One field that differs: the column header, what Partner Center has, what
    the row says. Values are JSON's (dates as ISO text, lists as lists), so a
    saved plan reads back equal."""

    field: str
    old: Any
    new: Any

    @classmethod
    def of(cls, field: str, old: Any, new: Any) -> Change:
        return cls(field, _plain(old), _plain(new))


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass(frozen=True)
class RowPlan:
    sheet: str
    row: int
    external_id: str | None
    action: Action
    steps: tuple[Step, ...] = ()
    changes: tuple[Change, ...] = ()
    reason: str | None = None
    deal_type: str | None = None
    name: str | None = None  # the deal's name, for the reviewer
    referral_id: str | None = None  # the existing referral, for updates
    engagement_id: str | None = None  # the existing engagement, where known
    # The engagement's other referral (Microsoft's of a co-sell, the other party's of a
    # shared deal), as read: the results keep every id Partner Center holds for the row.
    linked_referral_id: str | None = None
    # The sheet was made from an older version of the referral than Partner Center
    # holds now: {"sheet": {"eTag", "updated"}, "partnerCenter": {"eTag", "updated"}}.
    changed_since: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "row": self.row,
            "externalReferenceId": self.external_id,
            "action": str(self.action),
            "steps": [s.as_json() for s in self.steps],
            "changes": [asdict(c) for c in self.changes],
            "reason": self.reason,
            "dealType": self.deal_type,
            "name": self.name,
            "referralId": self.referral_id,
            "engagementId": self.engagement_id,
            "linkedReferralId": self.linked_referral_id,
            "changedInPartnerCenter": self.changed_since,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RowPlan:
        return cls(
            sheet=d["sheet"],
            row=d["row"],
            external_id=d.get("externalReferenceId"),
            action=Action(d["action"]),
            steps=tuple(Step.from_json(s) for s in d.get("steps", [])),
            changes=tuple(Change(**c) for c in d.get("changes", [])),
            reason=d.get("reason"),
            deal_type=d.get("dealType"),
            name=d.get("name"),
            referral_id=d.get("referralId"),
            engagement_id=d.get("engagementId"),
            linked_referral_id=d.get("linkedReferralId"),
            changed_since=d["changedInPartnerCenter"]
            if isinstance(d.get("changedInPartnerCenter"), dict)
            else None,
        )


@dataclass(frozen=True)
class Plan:
    source: str  # the input file as given
    fingerprint: str  # sha256 of the input file's bytes: apply refuses a changed input
    api_url: str | None  # where remote state was read (None: --offline)
    # A tuple, or a journal's rows read as they are used (bulkref.apply.journal.PlanRows).
    rows: Sequence[RowPlan]
    created: str = ""  # ISO time the plan was made (set by the caller; the core has no clock)
    # An export read through a mapping file: apply refuses the plan when either file changed.
    mapping: str | None = None
    mapping_fingerprint: str | None = None
    # Where it was planned against, named (bulkref.api.destination.Destination.as_json); None offline.
    target: dict[str, Any] | None = None
    # Rows changed in Partner Center since the sheet was made were planned as the sheet says.
    overwrite_newer: bool = False
    skipped: tuple[Skipped, ...] = ()  # export rows the mapping's [[skip]] rules left out
    # How Partner Center was read: "filtered" or "scan" (bulkref.plan.remote); None offline.
    lookup: str | None = None
    # Creates an earlier run sent whose answer was lost, not found yet (bulkref.plan.doubts):
    # {"row", "externalId", "sentAt", "decidableAfter"}; apply looks each up before sending it.
    in_doubt: tuple[dict[str, Any], ...] = ()
    # A layout bulkref read the sheet as ("partner-center": Partner Center's co-sell CSV);
    # apply then writes results in that layout too (bulkref.apply.partner_center_results).
    layout: str | None = None

    @property
    def summary(self) -> dict[str, int]:
        counts = {str(a): 0 for a in Action}
        counted = getattr(self.rows, "counts", None)  # rows kept elsewhere count themselves
        if counted is not None:
            return {**counts, **counted()}
        for r in self.rows:
            counts[str(r.action)] += 1
        return counts

    def as_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "rows": [r.as_json() for r in self.rows],
            "source": self.source,
            "fingerprint": self.fingerprint,
            "apiUrl": self.api_url,
            "created": self.created,
            "format": PLAN_FORMAT,
            "target": self.target,
            "overwriteNewer": self.overwrite_newer,
            "lookup": self.lookup,
            # Only when there are some, so that other plans read exactly as before.
            **({"inDoubt": list(self.in_doubt)} if self.in_doubt else {}),
            **({"layout": self.layout} if self.layout is not None else {}),
            **({"skipped": [s.as_json() for s in self.skipped]} if self.layout and self.skipped else {}),
            # Only for mapped input, so that other plans read exactly as before.
            **(
                {
                    "mapping": self.mapping,
                    "mappingFingerprint": self.mapping_fingerprint,
                    "skipped": [s.as_json() for s in self.skipped],
                }
                if self.mapping is not None
                else {}
            ),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Plan:
        if d.get("format", PLAN_FORMAT) != PLAN_FORMAT:
            raise ValueError(
                f"plan format {d.get('format')} is not {PLAN_FORMAT}: plan again with this version of bulkref"
            )
        return cls(
            source=d["source"],
            fingerprint=d["fingerprint"],
            api_url=d.get("apiUrl"),
            rows=tuple(RowPlan.from_json(r) for r in d["rows"]),
            created=d.get("created", ""),
            mapping=d.get("mapping"),
            mapping_fingerprint=d.get("mappingFingerprint"),
            target=d["target"] if isinstance(d.get("target"), dict) else None,
            overwrite_newer=bool(d.get("overwriteNewer", False)),
            lookup=d.get("lookup") if isinstance(d.get("lookup"), str) else None,
            in_doubt=tuple(x for x in d.get("inDoubt", []) if isinstance(x, dict)),
            skipped=tuple(Skipped(s["row"], s["reason"], s.get("mappingLine")) for s in d.get("skipped", [])),
            layout=d.get("layout") if isinstance(d.get("layout"), str) else None,
        )

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(self.as_json(), ensure_ascii=False, indent=2), encoding="utf-8")
        return path
