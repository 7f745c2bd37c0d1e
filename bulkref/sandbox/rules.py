"""What the service accepts: the shape of a referral body, its enumerations,
status/substatus pairs and transitions, and the write rules of PUT and PATCH.

Every refusal is a 400 ``invalidRequest`` whose ``target`` is the JSON path of
the offending field (``customerProfile.address.country``, ``team[0].email``).

Choices the documentation leaves open (see also the package docstring):

- Property names are matched without regard to case, as the service's .NET
  deserialiser does (seed 000 step 1 sends ``ConsentToToShareInfoWithOthers``);
  the stored document uses the documented spelling. Enumeration values are
  matched the same way and stored in their documented spelling.
- Properties the documentation does not list (``trackingInfo``,
  ``phoneValidationStatus``, ...) are kept and returned unchecked.
- Besides the four required objects, the values without which a deal makes no
  sense are required: ``customerProfile.name``, ``customerProfile.address.country``,
  ``details.dealValue``, ``details.currency`` and ``details.closingDateTime``.
- An empty string in an optional enumeration (seed 000 sends ``"size": ""``)
  means "not given".
- A PATCH value may give a number as its decimal text: the PATCH page's
  example sends ``{"op": "replace", "path": "/details/dealValue", "value":
  "10000"}``. It is stored as the number the resource holds (``10000``). Only
  plain decimal text (``10000``, ``10000.50``), not exponents or ``NaN``. POST and
  PUT bodies take numbers only: every create and update example sends them so.
- A Closed referral (``closed``): ``frozen`` refuses every PUT and PATCH, even
  one that changes nothing (Partner Center's bulk-upload page: no change after a
  terminal state); ``open`` lets it change, its status only to Closed with a
  closed substatus, as the API's transition table allows. The API pages do not
  say which.
- Services co-sell ``solutionArea`` / ``solutionPlay`` (``solution_areas``):
  ``fy24`` checks them against the FY24 table of the create page; ``any``
  takes any text, as the resources page says the taxonomy was updated for FY26
  and no public page gives the new list.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import pycountry

from bulkref.sandbox.document import READ_ONLY, Doc, is_timestamp
from bulkref.sandbox.errors import invalid
from bulkref.sandbox.service import load as load_service

MARKETPLACE_INTENT_TYPE = "CustomerMarketplaceIntent"

#: Read-only fields that a PUT body may repeat (it is usually what the client
#: read) but not change. eTag, updatedDateTime, expirationDateTime and
#: acceptedDateTime are the service's bookkeeping and are ignored in a body.
UNCHANGEABLE = ("id", "engagementId", "organizationId", "organizationName", "createdDateTime", "direction")
#: The ids among them: the same id in another case is the same id (GUIDs, and
#: ``msft``), as a GET or a filter finds it.
IDS = frozenset({"id", "engagementId", "organizationId"})


Path = tuple[str | int, ...]
Checker = Callable[[Any, Path], Any]


@dataclass(frozen=True)
class Shape:
    """The expected form of one JSON value."""

    kind: str  # any | str | bool | number | time | enum | country | currency | object | array
    values: tuple[str, ...] = ()
    fields: Mapping[str, Shape] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    item: Shape | None = None
    #: casefolded name or value -> documented spelling (property names of an
    #: object, values of an enumeration)
    folded: Mapping[str, str] = field(default_factory=dict, compare=False)
    check: Checker = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = self.fields if self.kind == "object" else self.values
        object.__setattr__(self, "folded", {name.casefold(): name for name in names})
        object.__setattr__(self, "check", _checker(self))

    def child(self, name: str) -> Shape | None:
        return self.fields.get(name)


@cache
def _countries() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


@cache
def _currencies() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def path_text(path: Path) -> str:
    """``("team", 0, "email")`` -> ``team[0].email``: the error target."""
    out = ""
    for part in path:
        out = f"{out}[{part}]" if isinstance(part, int) else f"{out}.{part}" if out else part
    return out


def _describe(value: object) -> str:
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def _refuse(path: Path, problem: str) -> Exception:
    # Paths are built only for a refusal: a body has hundreds of values to check.
    where = path_text(path)
    return invalid(f"{where or 'The body'} {problem}", where or None)


def normalize(value: Any, shape: Shape, path: Path = ()) -> Any:
    """``value`` checked against ``shape``, with property names and enumeration
    values in their documented spelling. Null is accepted for any optional value."""
    return shape.check(value, path)


def _checker(shape: Shape) -> Checker:
    """A function checking values of ``shape``, built once per shape: the
    creates/s goal leaves no room for re-reading the shape for every value."""
    kind = shape.kind
    if kind == "object":
        return _object_checker(shape)
    if kind == "array":
        assert shape.item is not None
        item_check = shape.item.check

        def check_array(value: Any, path: Path) -> Any:
            if value is None:
                return None
            if not isinstance(value, list):
                raise _refuse(path, "must be a JSON array.")
            return [item_check(v, (*path, i)) for i, v in enumerate(value)]

        return check_array
    if kind == "any":  # known to the service, shape not documented: kept as sent
        return lambda value, path: value
    if kind == "bool":

        def check_bool(value: Any, path: Path) -> Any:
            if value is None or isinstance(value, bool):
                return value
            raise _refuse(path, f"must be true or false, not {_describe(value)}.")

        return check_bool
    if kind == "number":

        def check_number(value: Any, path: Path) -> Any:
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _refuse(path, f"must be a number, not {_describe(value)}.")
            if value < 0:
                raise _refuse(path, "must be 0 or more.")
            return value

        return check_number
    return _text_checker(shape)


def _text_checker(shape: Shape) -> Checker:
    kind, folded, values = shape.kind, shape.folded, shape.values

    def check_text(value: Any, path: Path) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _refuse(path, f"must be a string, not {_describe(value)}.")
        if kind == "str" or value == "":
            return value
        if kind == "enum":
            allowed = folded.get(value.casefold())
            if allowed is None:
                raise _refuse(path, f"'{value}' is not one of: {', '.join(values)}.")
            return allowed
        if kind == "time":
            if not is_timestamp(value):
                raise _refuse(path, f"'{value}' is not an ISO 8601 date and time.")
            return value
        if kind == "country":
            if value.upper() not in _countries():
                raise _refuse(path, f"'{value}' is not a two-letter ISO 3166 country code.")
            return value.upper()
        if kind == "currency":
            if value.upper() not in _currencies():
                raise _refuse(path, f"'{value}' is not a three-letter ISO 4217 currency code.")
            return value.upper()
        return value

    return check_text


def _object_checker(shape: Shape) -> Checker:
    checks = {name: child.check for name, child in shape.fields.items()}
    folded, required = shape.folded, shape.required

    def check_object(value: Any, path: Path) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _refuse(path, "must be a JSON object.")
        out: dict[str, Any] = {}
        for key, item in value.items():
            check = checks.get(key)
            name = key
            if check is None:
                canonical = folded.get(key.casefold())
                if canonical is None or canonical in value:
                    out[key] = item  # not documented: kept as sent
                    continue
                name, check = canonical, checks[canonical]
            out[name] = None if item is None else check(item, (*path, name))
        for name in required:
            if out.get(name) is None or out.get(name) == "":
                raise _refuse((*path, name), "is required.")
        return out

    return check_object


STR = Shape("str")
BOOL = Shape("bool")
NUMBER = Shape("number")
TIME = Shape("time")
ANY = Shape("any")


def _obj(required: tuple[str, ...] = (), **fields: Shape) -> Shape:
    return Shape("object", fields=fields, required=required)


def _arr(item: Shape) -> Shape:
    return Shape("array", item=item)


def _enum(values: tuple[str, ...]) -> Shape:
    return Shape("enum", values=values)


@cache
def referral_shape(any_plays: bool = False) -> Shape:
    """The Referral resource as documented, read-only fields included (the
    filter checks paths against it). ``any_plays``: solutionArea and
    solutionPlay take any text (``solution_areas="any"``), not the FY24 table."""
    e = load_service()
    play_area = STR if any_plays else _enum(e.values("solution_area"))
    play = STR if any_plays else _enum(e.values("solution_play"))
    member = _obj(
        firstName=STR,
        lastName=STR,
        email=STR,
        phoneNumber=STR,
        title=STR,
        contactPreference=_obj(locale=STR, disableNotifications=BOOL),
    )
    address = _obj(
        ("country",),
        addressLine1=STR,
        addressLine2=STR,
        city=STR,
        state=STR,
        postalCode=STR,
        country=Shape("country"),
        region=STR,
    )
    customer = _obj(
        ("name", "address"),
        name=STR,
        address=address,
        size=_enum(e.values("customer_size")),
        team=_arr(member),
        ids=_arr(_obj(profileType=_enum(e.values("profile_type")), id=STR)),
        isMatchingComplete=BOOL,
    )
    consent = _obj(
        consentToToShareInfoWithOthers=BOOL,
        consentToContact=BOOL,
        consentToMicrosoftToContactSpecificPartners=BOOL,
        consentToShareReferralWithMicrosoftSellers=BOOL,
    )
    tag = _obj(id=STR)
    solution = _obj(
        id=STR, name=STR, type=_enum(e.values("solution_type")), publisherName=STR, solutionType=STR
    )
    requirements = _obj(
        industries=_arr(tag),
        products=_arr(tag),
        services=_arr(tag),
        solutions=_arr(solution),
        # What the service answers (its shape is not documented); accepted back as it came.
        salesPlays=ANY,
        additionalRequirements=_obj(attributes=_arr(_obj(type=STR, id=STR))),
    )
    details = _obj(
        ("dealValue", "currency", "closingDateTime"),
        notes=STR,
        dealValue=NUMBER,
        currency=Shape("currency"),
        closingDateTime=TIME,
        requirements=requirements,
    )
    invite = _obj(
        notes=STR,
        invitedBy=_obj(organizationId=STR, organizationName=STR),
        assistanceRequestCode=_enum(e.values("assistance_request_code")),
    )
    link = _obj(uri=STR, method=STR)
    return _obj(
        ("type", "customerProfile", "consent", "details"),
        id=STR,
        engagementId=STR,
        organizationId=STR,
        organizationName=STR,
        createdDateTime=TIME,
        updatedDateTime=TIME,
        expirationDateTime=TIME,
        acceptedDateTime=TIME,
        eTag=STR,
        direction=_enum(e.values("direction")),
        links=_obj(self=link, relatedReferrals=link),
        name=STR,
        externalReferenceId=STR,
        status=_enum(e.values("status")),
        substatus=_enum(e.values("substatus")),
        statusReason=STR,
        type=_enum(e.values("type")),
        qualification=_enum(e.values("qualification")),
        customerProfile=customer,
        consent=consent,
        details=details,
        team=_arr(member),
        inviteContext=invite,
        target=_arr(_obj(type=_enum(e.values("target_type")), id=STR)),
        dealSensitivity=STR,
        campaignId=STR,
        mpnId=STR,
        # Services co-sell only; JSON names as bulkref's column spec sends them.
        partnerRole=_enum(e.values("partner_role")),
        solutionArea=play_area,
        solutionPlay=play,
    )


class Rules:
    """The service's rules over referral bodies, with enumerations from ``data/service.toml``.

    ``closed``: ``frozen`` or ``open``; ``solution_areas``: ``fy24`` or ``any``
    (see the module docstring)."""

    def __init__(self, closed: str = "frozen", solution_areas: str = "fy24") -> None:
        self.service = load_service()
        self.frozen_closed = closed == "frozen"
        self.any_plays = solution_areas == "any"
        self.shape = referral_shape(self.any_plays)
        # pycountry reads its tables on first use: pay that at start, not in a request.
        _countries()
        _currencies()

    # -- the content a client may write --------------------------------------
    def canonical(self, body: Doc) -> Doc:
        """``body`` with its top-level property names in documented spelling, so
        that ``Id`` or ``EngagementId`` are recognised as what they are."""
        folded = {name.casefold(): name for name in self.shape.fields}
        out: Doc = {}
        for key, value in body.items():
            name = key if key in self.shape.fields else folded.get(key.casefold(), key)
            out[key if name in body and name != key else name] = value
        return out

    def content(self, body: Doc) -> Doc:
        """The writable part of ``body``, checked and in documented spelling."""
        writable = {k: v for k, v in body.items() if k not in READ_ONLY}
        checked: Doc = normalize(writable, self.shape)
        self._check_marketplace_intent(checked)
        self._check_solution_play(checked)
        return checked

    def new_content(self, body: Doc) -> Doc:
        """Content of a referral being created: status defaults to New/Pending."""
        checked = self.content(body)
        if not checked.get("status"):
            checked["status"] = "New"
        if not checked.get("substatus"):
            checked["substatus"] = self._default_substatus(checked["status"])
        self.check_pair(checked["status"], checked["substatus"])
        return checked

    def replaced_content(self, current: Doc, body: Doc) -> Doc:
        """Content for a PUT of ``body`` over ``current``."""
        self.check_open(current)
        if "links" in body:
            raise invalid("Remove links from the body of a PUT.", "links")
        for name in UNCHANGEABLE:
            if name in body and not _same_value(name, body[name], current.get(name)):
                raise invalid(f"{name} is set by the service and cannot be changed.", name)
        checked = self.content(body)
        # A PUT without a status keeps the current one: replacing the content is
        # not a request to move the deal back to New.
        if not checked.get("status"):
            checked["status"] = current.get("status")
            if not checked.get("substatus"):
                checked["substatus"] = current.get("substatus")
        elif not checked.get("substatus"):
            checked["substatus"] = self._default_substatus(checked["status"])
        self.check_move(current, checked)
        return checked

    def patched_content(self, current: Doc, operations: object) -> Doc:
        """Content after applying a JSON Patch (only ``replace`` and ``add``) to ``current``.

        Only what the patch changes is checked (each target path against the
        resource's shape, the status move when status or substatus changes, the
        cross-field rules of what it touches): a referral as the service answers
        it (``Unknown``, ``None``, properties it adds) can be patched as is."""
        self.check_open(current)
        if not isinstance(operations, list) or not operations:
            raise invalid("A PATCH body is a non-empty JSON array of operations.")
        doc = copy.deepcopy(current)
        touched: list[list[str]] = []
        for index, operation in enumerate(operations):
            doc, parts = _apply(doc, operation, index)
            touched.append(parts)
        for parts in touched:
            self._check_at(doc, parts)
        content = {k: v for k, v in doc.items() if k not in READ_ONLY}
        tops = {parts[0] for parts in touched}
        if tops & {"status", "substatus"}:
            self.check_move(current, content)
        if "details" in tops:
            self._check_marketplace_intent(content)
        if tops & {"solutionArea", "solutionPlay"}:
            self._check_solution_play(content)
        return content

    def _check_at(self, doc: Doc, parts: list[str]) -> None:
        """Check (and spell as documented) the value a patch put at ``parts``."""
        shape: Shape | None = self.shape
        parent: Any = None
        node: Any = doc
        path: list[str | int] = []
        key: str | int = ""
        for part in parts:
            if shape is None:
                return  # below an undocumented property: kept as sent
            parent = node
            if isinstance(node, list):
                key = len(node) - 1 if part == "-" else int(part)
                shape = shape.item
            else:
                key = part
                shape = shape.child(part) if shape.kind == "object" else None
            path.append(key)
            node = parent[key]
        if shape is None:
            return
        parent[key] = shape.check(_text_numbers(node, shape), tuple(path))
        owner = self._shape_of(parts[:-1])
        if owner is not None and key in owner.required and parent[key] in (None, ""):
            raise _refuse(tuple(path), "is required.")

    def _shape_of(self, parts: list[str]) -> Shape | None:
        shape: Shape | None = self.shape
        for part in parts:
            if shape is None:
                return None
            shape = (
                shape.item if shape.kind == "array" else shape.child(part) if shape.kind == "object" else None
            )
        return shape

    # -- status ----------------------------------------------------------------
    def check_open(self, current: Doc) -> None:
        """Refuse any change of a Closed referral when Closed is ``frozen``."""
        if self.frozen_closed and current.get("status") == "Closed":
            raise invalid(
                f"Referral {current.get('id')} is Closed ({current.get('substatus')}); "
                "nothing can be changed on a closed referral.",
                "status",
            )

    def check_pair(self, status: str, substatus: str) -> None:
        allowed = self.service.substatus_of.get(status, ())
        if substatus not in allowed:
            raise invalid(
                f"substatus '{substatus}' does not go with status '{status}' "
                f"(allowed: {', '.join(allowed)}).",
                "substatus",
            )

    def check_move(self, current: Doc, new: Doc) -> None:
        before, after = current.get("status"), new.get("status")
        if not after:
            raise invalid("status is required.", "status")
        allowed = self.service.transitions.get(str(before), (after,))
        if after not in allowed:
            raise invalid(
                f"A referral cannot move from status '{before}' to '{after}' "
                f"(allowed: {', '.join(allowed)}).",
                "status",
            )
        self.check_pair(after, new.get("substatus") or "")

    def _default_substatus(self, status: str) -> str:
        allowed = self.service.substatus_of.get(status, ())
        # Closed has no natural default: won, lost, declined and expired differ too much.
        if status == "Closed" or not allowed:
            raise invalid(f"substatus is required with status '{status}'.", "substatus")
        return allowed[0]

    # -- cross-field checks ------------------------------------------------------
    def _check_marketplace_intent(self, content: Doc) -> None:
        details = content.get("details") or {}
        requirements = details.get("requirements") or {}
        extra = requirements.get("additionalRequirements") or {}
        for i, attribute in enumerate(extra.get("attributes") or []):
            if not isinstance(attribute, dict):
                continue
            if str(attribute.get("type", "")).casefold() != MARKETPLACE_INTENT_TYPE.casefold():
                continue
            attribute["type"] = MARKETPLACE_INTENT_TYPE
            path = ("details", "requirements", "additionalRequirements", "attributes", i, "id")
            intent = _enum(self.service.values("marketplace_intent"))
            attribute["id"] = normalize(attribute.get("id"), intent, path)

    def _check_solution_play(self, content: Doc) -> None:
        if self.any_plays:
            return  # no published table to check the pair against
        area, play = content.get("solutionArea"), content.get("solutionPlay")
        if area and play and play not in self.service.solution_plays.get(area, ()):
            raise invalid(f"solutionPlay '{play}' is not a play of solution area '{area}'.", "solutionPlay")


def _same_value(name: str, sent: Any, current: Any) -> bool:
    if name in IDS and isinstance(sent, str) and isinstance(current, str):
        return sent.casefold() == current.casefold()
    return bool(sent == current)


# -- JSON Patch ------------------------------------------------------------------

_DECIMAL_TEXT = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)$")


def _text_numbers(value: Any, shape: Shape) -> Any:
    """``value`` (a PATCH value) with decimal text where ``shape`` wants a number
    turned into that number, at any depth; anything else as it was, for the
    shape's check to accept or refuse."""
    if shape.kind == "number" and isinstance(value, str) and _DECIMAL_TEXT.match(value.strip()):
        number = Decimal(value.strip())
        # JSON has one number type; the resource's decimals answer 10000, not 10000.0.
        return int(number) if number == number.to_integral_value() else float(number)
    if shape.kind == "array" and shape.item is not None and isinstance(value, list):
        return [_text_numbers(item, shape.item) for item in value]
    if shape.kind == "object" and isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            child = shape.fields.get(name) or shape.fields.get(shape.folded.get(name.casefold(), ""))
            out[name] = item if child is None else _text_numbers(item, child)
        return out
    return value


def _pointer(path: object, index: int) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise invalid(
            f"Operation {index}: path {path!r} is not a JSON pointer to a field.", f"[{index}].path"
        )
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _apply(doc: Doc, operation: object, index: int) -> tuple[Doc, list[str]]:
    """``doc`` with ``operation`` applied, and the pointer's parts."""
    if not isinstance(operation, dict):
        raise invalid(f"Operation {index} is not a JSON object.", f"[{index}]")
    op = operation.get("op")
    if op not in ("replace", "add"):
        raise invalid(
            f"Operation {index}: op {op!r} is not supported; only replace and add are.", f"[{index}].op"
        )
    if "value" not in operation:
        raise invalid(f"Operation {index} has no value.", f"[{index}].value")
    path = operation.get("path")
    parts = _pointer(path, index)
    if parts[0] in READ_ONLY:
        raise invalid(f"{parts[0]} is set by the service and cannot be changed.", str(path))
    parent: Any = doc
    for part in parts[:-1]:
        parent = _step(parent, part, str(path))
    last = parts[-1]
    value = copy.deepcopy(operation["value"])
    if isinstance(parent, dict):
        if op == "replace" and last not in parent:
            raise invalid(f"Operation {index}: {path} does not exist; use add.", str(path))
        parent[last] = value
    elif isinstance(parent, list):
        if op == "add" and last == "-":
            parent.append(value)
            return doc, parts
        position = _index(last, len(parent) + (1 if op == "add" else 0), str(path))
        if op == "add":
            parent.insert(position, value)
        else:
            parent[position] = value
    else:
        raise invalid(f"Operation {index}: {path} does not point into an object or array.", str(path))
    return doc, parts


def _step(node: Any, part: str, path: str) -> Any:
    if isinstance(node, dict) and isinstance(node.get(part), dict | list):
        return node[part]
    if isinstance(node, list):
        return node[_index(part, len(node), path)]
    raise invalid(f"{path} does not exist.", path)


def _index(part: str, size: int, path: str) -> int:
    if not part.isdigit() or int(part) >= size:
        raise invalid(f"{path}: '{part}' is not an index of the array.", path)
    return int(part)
