"""Rows <-> Referral JSON, through the column spec's paths.

A row is a mapping of column key -> typed value (``Validated.values``), None
for a blank cell. Building a payload writes every filled cell at its column's
path, then fills in what the deal type implies; reading a referral back into
a row (for the diff and the export) is the same walk the other way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bulkref.spec.columns import SPEC, Column, Kind
from bulkref.spec.jsonpaths import getter, setter

Row = Mapping[str, Any]

MICROSOFT = "msft"
MICROSOFT_NAME = "Microsoft"
MICROSOFT_TARGET = {"type": "BusinessProfileLocation", "id": MICROSOFT}

# What each deal type means for the fields a person may leave blank.
DEFAULT_TYPE = {"Private": "Independent", "Partner-led": "Shared", "Co-sell": "Shared"}

# Columns that describe the deal rather than the partner's referral: the
# Microsoft referral of a co-sell carries them (seed 000, step 2).
INVITE_KEYS = ("help_needed", "invite_notes")


def _filled(row: Row) -> Iterable[tuple[Column, Any]]:
    for key, value in row.items():
        if value is None or key in ("deal_type", "referral_id"):
            continue
        column = SPEC.column(key)
        if column.read_only or column.path is None or key in INVITE_KEYS:
            continue
        yield column, value


def _to_json(column: Column, value: Any) -> Any:
    if column.kind is Kind.DATE and isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00Z"  # closing dates are sent as midnight UTC
    return value


def deal_defaults(row: Row) -> dict[str, Any]:
    """What the deal type implies for blank cells: referral type and sharing with Microsoft."""
    deal = row.get("deal_type")
    if deal is None:
        return {}
    return {
        "referral_type": row.get("referral_type") or DEFAULT_TYPE[deal],
        "share_with_microsoft": (
            row["share_with_microsoft"] if row.get("share_with_microsoft") is not None else deal != "Private"
        ),
    }


def referral_doc(row: Row) -> dict[str, Any]:
    """The partner's own referral for ``row``: every filled cell at its path,
    plus what the deal type implies. Only what the row says is in it."""
    doc: dict[str, Any] = {}
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    values = {**dict(row), **deal_defaults(row)}
    for column, value in _filled(values):
        if column.group is not None:
            assert column.index is not None
            item = groups.setdefault(column.group, {}).setdefault(column.index, {})
            setter(column.path or "")(item, value)
        else:
            setter(column.path or "")(doc, _to_json(column, value))
    for key, items in groups.items():
        setter(SPEC.group(key).path)(doc, [items[n] for n in sorted(items)])
    return _validated(doc)


def microsoft_referral(row: Row, partner: Mapping[str, Any]) -> dict[str, Any]:
    """Step 2 of a co-sell (seed 000): the Microsoft referral joining the
    partner's engagement. ``partner`` is the partner's referral as built or as
    read; the engagement id and the inviting organisation come from Partner
    Center's answer to step 1 (see ``MICROSOFT_FILL``) when it is a new deal."""
    doc: dict[str, Any] = {
        "engagementId": partner.get("engagementId"),
        "organizationId": MICROSOFT,
        "organizationName": MICROSOFT_NAME,
        "type": "Shared",
        "target": [MICROSOFT_TARGET],
        "team": [],
        "inviteContext": {
            "notes": row.get("invite_notes"),
            "invitedBy": {
                "organizationId": partner.get("organizationId"),
                "organizationName": partner.get("organizationName"),
            },
            "assistanceRequestCode": row.get("help_needed"),
        },
    }
    for key in (
        "name",
        "customerProfile",
        "consent",
        "qualification",
        "partnerRole",
        "solutionArea",
        "solutionPlay",
    ):
        if partner.get(key) is not None:
            doc[key] = partner[key]
    # As seed 000's step 2: the deal's size and date, the note to Microsoft as
    # its notes, none of the partner's own requirements (its solutions).
    details = dict(partner.get("details") or {})
    details.pop("requirements", None)
    if row.get("invite_notes"):
        details["notes"] = row["invite_notes"]
    doc["details"] = details
    doc["dealSensitivity"] = partner.get("dealSensitivity") or "None"
    return _validated(doc)


# Step 2 takes these from step 1's answer (JSON pointer in step 2 -> field of step 1).
MICROSOFT_FILL = {
    "/engagementId": "engagementId",
    "/inviteContext/invitedBy/organizationId": "organizationId",
    "/inviteContext/invitedBy/organizationName": "organizationName",
}


def connected_referral(partner: Mapping[str, Any]) -> dict[str, Any]:
    """Step 2 of a deal shared with another partner: the connected referral for
    the other party, in the same engagement, with the same target."""
    doc = {
        key: partner[key]
        for key in (
            "name",
            "customerProfile",
            "consent",
            "details",
            "qualification",
            "target",
            "dealSensitivity",
        )
        if partner.get(key) is not None
    }
    doc["type"] = "Shared"
    doc["engagementId"] = partner.get("engagementId")
    return _validated(doc)


CONNECTED_FILL = {"/engagementId": "engagementId"}


def _validated(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as the Referral model reads it and writes it back."""
    # Imported here: pydantic and the model take a third of a second to load, and
    # the export, which reads referrals into rows, never builds one.
    from bulkref.spec.referral import Referral

    return Referral.model_validate(doc).to_json()


def is_microsoft(doc: Mapping[str, Any]) -> bool:
    return str(doc.get("organizationId", "")).casefold() == MICROSOFT


def _from_json(column: Column, value: Any) -> Any:
    """A JSON value as the validator types the column's cells; None for a blank."""
    return _converted(value, _converter(column))


def deal_type_of(doc: Mapping[str, Any], engagement: Iterable[Mapping[str, Any]] = ()) -> str:
    """The deal type an existing referral is: Co-sell when its engagement has a
    Microsoft referral, Partner-led when shared with Microsoft sellers, else Private."""
    if any(is_microsoft(d) for d in engagement if d.get("id") != doc.get("id")):
        return "Co-sell"
    if doc.get("type") == "Shared" and _SHARED_WITH_SELLERS(doc) is not False:
        return "Partner-led"
    return "Private"


def row_of(
    doc: Mapping[str, Any],
    engagement: Iterable[Mapping[str, Any]] = (),
    counts: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The row that describes ``doc`` (the partner's referral), typed as the
    validator types cells; ``engagement`` holds the referrals of its engagement,
    whose Microsoft referral carries Help Needed and Invite Notes."""
    engagement = list(engagement)
    counts = counts or {}
    wanted = []
    for key, items_of in _GROUP_LISTS:
        items = items_of(doc)
        wanted.append(max(counts.get(key, 0), len(items) if isinstance(items, list) else 0))
    row = row_plan(tuple(wanted)).row(doc)
    row["deal_type"] = deal_type_of(doc, engagement)
    msft = next((d for d in engagement if is_microsoft(d) and d.get("id") != doc.get("id")), None)
    if msft is not None:
        for key, get, convert in _INVITE_READERS:
            row[key] = _converted(get(msft), convert)
    return row


# --- reading a referral into a row: the columns worked out once ------------------------------------

Convert = Callable[[Any], Any] | None


def _to_date(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return _date_of(value)


@lru_cache(maxsize=4096)  # closing dates repeat: a few hundred distinct ones in 100,000 deals
def _date_of(value: str) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC).date()
    except ValueError:
        return None


def _to_float(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _converter(column: Column) -> Convert:
    """``_from_json`` for one column, decided once: None where a value is kept as it is."""
    if column.kind is Kind.DATE:
        return _to_date
    if column.kind is Kind.DECIMAL:
        return _to_float
    return None


def _converted(value: Any, convert: Convert) -> Any:
    if value is None or value == "":
        return None
    return value if convert is None else convert(value)


Field = tuple[str, str, Convert]  # column key, JSON name in its parent object, conversion


@dataclass(frozen=True)
class _Readers:
    """How to read some columns out of one object (a referral, or an item of a group's list).

    Plain paths are grouped by their parent object, which is found once for all
    its columns (the address's eight, the consent's four); a path that picks a
    list's item (``ids[profileType=Duns]/id``) has a compiled getter of its own."""

    nested: tuple[tuple[Callable[[Any], Any], tuple[Field, ...]], ...]
    selected: tuple[tuple[str, Callable[[Any], Any], Convert], ...]

    @classmethod
    def of(cls, columns: Iterable[Column]) -> _Readers:
        parents: dict[str, list[Field]] = {}
        selected: list[tuple[str, Callable[[Any], Any], Convert]] = []
        for c in columns:
            path = c.path or ""
            if "[" in path:
                selected.append((c.key, getter(path), _converter(c)))
                continue
            parent, _, leaf = path.rpartition("/")
            parents.setdefault(parent, []).append((c.key, leaf, _converter(c)))
        nested = tuple((getter(parent) if parent else _itself, tuple(f)) for parent, f in parents.items())
        return cls(nested, tuple(selected))

    def read(self, node: Any, row: dict[str, Any]) -> None:
        """Set in ``row`` every column that ``node`` holds a value for (``_from_json``'s)."""
        for parent_of, fields in self.nested:
            parent = parent_of(node)
            if not isinstance(parent, dict):
                continue
            for key, name, convert in fields:
                value = parent.get(name)
                if value is not None and value != "":
                    row[key] = value if convert is None else convert(value)
        for key, get, convert in self.selected:
            value = get(node)
            if value is not None and value != "":
                row[key] = value if convert is None else convert(value)


def _itself(node: Any) -> Any:
    return node


class RowPlan:
    """How to read every column of a row out of a referral, for one set of group
    counts: each column's compiled path and conversion (``_from_json``), worked
    out once instead of for every referral. ``row`` gives what ``row_of`` gives
    before the deal type and the Microsoft referral's columns are added;
    ``filled`` the same without its blank columns."""

    def __init__(self, counts: Mapping[str, int]) -> None:
        columns = SPEC.columns(dict(counts))
        # Every key the row holds, in column order, blank until a value is found.
        self.blank = dict.fromkeys(c.key for c in columns if c.group is not None or c.path is not None)
        self.singles = _Readers.of(c for c in columns if c.group is None and c.path is not None)
        self.groups: list[tuple[Callable[[Any], Any], list[_Readers]]] = []
        for g in SPEC.groups:
            numbered = [c for c in columns if c.group == g.key]
            items = max((c.index or 0 for c in numbered), default=0)
            each = [_Readers.of(c for c in numbered if c.index == n) for n in range(1, items + 1)]
            self.groups.append((getter(g.path), each))

    def row(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        row = self.blank.copy()
        self._fill(doc, row)
        return row

    def filled(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """``row`` without its blank columns: only the keys ``doc`` holds a value for
        (what an export keeps of a referral while the rest of the listing is read)."""
        row: dict[str, Any] = {}
        self._fill(doc, row)
        return row

    def _fill(self, doc: Mapping[str, Any], row: dict[str, Any]) -> None:
        self.singles.read(doc, row)
        for items_of, numbered in self.groups:
            items = items_of(doc)
            if isinstance(items, list):
                for item, readers in zip(items, numbered, strict=False):
                    readers.read(item, row)


@lru_cache(maxsize=64)
def row_plan(counts: tuple[int, ...]) -> RowPlan:
    """The plan for ``counts``, one number per ``SPEC.groups`` in order; kept, since an
    export or a plan asks for the same few again and again."""
    return RowPlan({g.key: n for g, n in zip(SPEC.groups, counts, strict=True)})


_GROUP_LISTS = tuple((g.key, getter(g.path)) for g in SPEC.groups)
_SHARED_WITH_SELLERS = getter("consent/consentToShareReferralWithMicrosoftSellers")
_INVITE_READERS = tuple(
    (key, getter(SPEC.single(key).path or ""), _converter(SPEC.single(key))) for key in INVITE_KEYS
)
