"""The column spec: every template column, where it lives in the Referral JSON,
its type, when it is required, what it may hold and how to fill it.

The template, the validator, the payload builder, the export and the results
sheet all read this one list. Adding a column is one entry here plus tests.

Paths are ``/``-separated JSON names inside the Referral resource, with two
additions for lists:

* ``name[key=value]/field``: the item of list ``name`` whose ``key`` is
  ``value`` (``customerProfile/ids[profileType=Duns]/id``);
* ``name[]/id``: the cell is a ``;``-separated list, one ``{"id": ...}`` item
  each (``details/requirements/products[]/id``).

One-to-many records (contacts, team members, solutions, targets) are numbered
column groups, ``Customer Contact 1 Email``, ``Customer Contact 2 Email``, ...,
so that one row stays one deal in both Excel and CSV. A group field's path is
relative to one item of the group's list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property

from bulkref.spec.enums import fold


class Kind(StrEnum):
    TEXT = "text"
    CHOICE = "choice"
    BOOL = "yes/no"
    DECIMAL = "number"
    DATE = "date"
    EMAIL = "email"
    PHONE = "phone"
    COUNTRY = "country code"
    CURRENCY = "currency code"
    DUNS = "DUNS number"
    LIST = "list"
    TIMESTAMP = "date and time"


class Need(StrEnum):
    ALWAYS = "always"  # every row, new or update
    NEW = "new"  # rows that create a referral (no Referral ID)
    OPTIONAL = "optional"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    path: str | None
    kind: Kind
    help: str
    example: str = ""
    section: str = ""
    need: Need = Need.OPTIONAL
    choices: str | None = None  # a list name in data/enums.toml (or the taxonomy's)
    when: str = ""  # a conditional requirement in plain words; enforced in validate
    read_only: bool = False
    width: int = 18
    aliases: tuple[str, ...] = ()
    group: str | None = None  # the Group key, on the columns of a group
    index: int | None = None  # 1-based item number within the group
    field: str | None = None  # the field key within the group

    @property
    def required(self) -> bool:
        return self.need is not Need.OPTIONAL

    @property
    def label(self) -> str:
        """The header as the template writes it: required columns carry ``*``."""
        return f"{self.header} *" if self.required else self.header


@dataclass(frozen=True)
class Group:
    """A numbered group of columns for one list in the Referral."""

    key: str
    label: str
    path: str
    fields: tuple[Column, ...]
    in_template: int  # how many numbered groups the template shows
    help: str
    section: str
    aliases: tuple[str, ...] = ()

    def column(self, n: int, f: Column) -> Column:
        return replace(
            f,
            key=f"{self.key}.{n}.{f.key}",
            header=f"{self.label} {n} {f.header}",
            group=self.key,
            index=n,
            field=f.key,
            section=self.section,
            help=f"{self.help} {f.help}".strip(),
        )

    def columns(self, n: int) -> list[Column]:
        return [self.column(n, f) for f in self.fields]


def _c(
    key: str, header: str, path: str | None, kind: Kind, help: str, example: str = "", **kw: object
) -> Column:
    # kw: Column's other fields by name, each of its own type (one annotation cannot say which).
    return Column(key=key, header=header, path=path, kind=kind, help=help, example=example, **kw)  # type: ignore[arg-type]


def _person_fields(email_help: str) -> tuple[Column, ...]:
    return (
        _c("first_name", "First Name", "firstName", Kind.TEXT, "Given name.", "Sue"),
        _c("last_name", "Last Name", "lastName", Kind.TEXT, "Family name.", "Smith"),
        _c("email", "Email", "email", Kind.EMAIL, email_help, "sue.smith@contoso.com", width=26),
        _c(
            "phone",
            "Phone",
            "phoneNumber",
            Kind.PHONE,
            "Phone number, digits with an optional leading + and spaces.",
            "+1 425 555 0100",
        ),
        _c("title", "Title", "title", Kind.TEXT, "Job title.", "IT Director"),
    )


S_ID, S_DEAL, S_CUST, S_CONS, S_DET, S_COSELL, S_SVC, S_OTHER, S_RO = (
    "Identity",
    "Deal",
    "Customer",
    "Consent",
    "Deal details",
    "Co-sell",
    "Services co-sell",
    "Other",
    "Read-only (filled by Partner Center)",
)

CONTACTS = Group(
    key="contact",
    label="Customer Contact",
    path="customerProfile/team",
    fields=_person_fields("Email address of the customer contact."),
    in_template=2,
    help="A person at the customer. Every new referral needs at least one contact with an email or a phone.",
    section=S_CUST,
    aliases=("Contact",),
)

TEAM = Group(
    key="team",
    label="Team Member",
    path="team",
    fields=_person_fields("Email address of your colleague working on the deal."),
    in_template=2,
    help="One of your own people working on the deal.",
    section=S_DET,
    aliases=("Partner Team Member",),
)

SOLUTIONS = Group(
    key="solution",
    label="Solution",
    path="details/requirements/solutions",
    fields=(
        _c(
            "id",
            "ID",
            "id",
            Kind.TEXT,
            "The solution's id, e.g. the SOL-... id of a published solution.",
            "SOL-8163-XCJ",
        ),
        _c("name", "Name", "name", Kind.TEXT, "The solution's name.", "Contoso Solution"),
        _c(
            "type",
            "Type",
            "type",
            Kind.CHOICE,
            "Category (a solution category) or Name (a named solution).",
            "Name",
            choices="solution_type",
        ),
        _c(
            "publisher", "Publisher", "publisherName", Kind.TEXT, "Who publishes the solution.", "Contoso-ISV"
        ),
        _c(
            "solution_type",
            "Solution Type",
            "solutionType",
            Kind.TEXT,
            "Whose solution it is, e.g. 3P for a partner's.",
            "3P",
        ),
    ),
    in_template=2,
    help="A solution the customer needs.",
    section=S_DET,
)

TARGETS = Group(
    key="target",
    label="Target",
    path="target",
    fields=(
        _c(
            "type",
            "Type",
            "type",
            Kind.CHOICE,
            "SolutionProfile (another partner's solution) or BusinessProfileLocation (an organisation; msft is Microsoft).",
            "SolutionProfile",
            choices="target_type",
        ),
        _c(
            "id",
            "ID",
            "id",
            Kind.TEXT,
            "The SOL-... id of the other partner's solution, or msft.",
            "SOL-34104-EBB",
        ),
    ),
    in_template=1,
    help="Who you share it with; needed when a Private deal is Shared with another partner.",
    section=S_COSELL,
)

LAYOUT: tuple[Column | Group, ...] = (
    _c(
        "external_id",
        "External Reference ID",
        "externalReferenceId",
        Kind.TEXT,
        "Your own id for the deal (CRM opportunity id). bulkref uses it to find the referral again, so a re-run updates instead of creating a second one. Unique in the file; may stay blank on a row with a Referral ID.",
        "CRM-000123",
        section=S_ID,
        need=Need.ALWAYS,
        width=20,
        aliases=("External ID", "ExternalReferenceID"),
    ),
    _c(
        "referral_id",
        "Referral ID",
        "id",
        Kind.TEXT,
        "Partner Center's id of an existing referral, to update it. Leave blank for a new deal; bulkref export fills it.",
        "",
        section=S_ID,
        width=38,
    ),
    _c(
        "engagement_id",
        "Engagement ID",
        "engagementId",
        Kind.TEXT,
        "To join an existing engagement (a connected referral), its id. Leave blank otherwise.",
        "",
        section=S_ID,
        width=38,
    ),
    _c(
        "name",
        "Referral Name",
        "name",
        Kind.TEXT,
        "A short name for the deal.",
        "Contoso supply chain modernisation",
        section=S_DEAL,
        need=Need.NEW,
        width=30,
    ),
    _c(
        "deal_type",
        "Deal Type",
        None,
        Kind.CHOICE,
        "Private: not shared with Microsoft sellers. Partner-led: shared with Microsoft sellers, no help needed. Co-sell: shared, and you ask Microsoft for help (Help Needed); bulkref then creates the connected Microsoft referral too.",
        "Partner-led",
        section=S_DEAL,
        need=Need.NEW,
        choices="deal_type",
    ),
    _c(
        "referral_type",
        "Referral Type",
        "type",
        Kind.CHOICE,
        "Independent (only you see it) or Shared (two parties work on it). Leave blank to follow the deal type: Private -> Independent, Partner-led and Co-sell -> Shared.",
        "",
        section=S_DEAL,
        choices="referral_type",
    ),
    _c(
        "status",
        "Status",
        "status",
        Kind.CHOICE,
        "New, Active or Closed. New may move to Active or Closed, Active to Closed; nothing changes once Closed. Blank on a new deal means New.",
        "New",
        section=S_DEAL,
        choices="referral_status",
    ),
    _c(
        "substatus",
        "Substatus",
        "substatus",
        Kind.CHOICE,
        "Must fit the status: New -> Pending or Received; Active -> Accepted; Closed -> Won, Lost, Declined or Expired.",
        "Pending",
        section=S_DEAL,
        choices="referral_substatus",
    ),
    _c(
        "status_reason",
        "Status Reason",
        "statusReason",
        Kind.TEXT,
        "Why the status is what it is, e.g. why the deal was lost.",
        "",
        section=S_DEAL,
        width=24,
    ),
    _c(
        "qualification",
        "Qualification",
        "qualification",
        Kind.CHOICE,
        "How qualified the lead is: None, Direct, MarketingQualified or SalesQualified.",
        "SalesQualified",
        section=S_DEAL,
        choices="qualification",
    ),
    _c(
        "customer_name",
        "Customer Name",
        "customerProfile/name",
        Kind.TEXT,
        "The customer organisation's legal name.",
        "Contoso Customer Inc",
        section=S_CUST,
        need=Need.NEW,
        width=26,
    ),
    _c(
        "address_line1",
        "Address Line 1",
        "customerProfile/address/addressLine1",
        Kind.TEXT,
        "Street and number.",
        "One Microsoft Way",
        section=S_CUST,
        need=Need.NEW,
        width=24,
    ),
    _c(
        "address_line2",
        "Address Line 2",
        "customerProfile/address/addressLine2",
        Kind.TEXT,
        "Building, floor, suite.",
        "Building 34",
        section=S_CUST,
    ),
    _c(
        "city",
        "City",
        "customerProfile/address/city",
        Kind.TEXT,
        "City.",
        "Redmond",
        section=S_CUST,
        need=Need.NEW,
    ),
    _c(
        "state",
        "State",
        "customerProfile/address/state",
        Kind.TEXT,
        "State or province, e.g. WA.",
        "WA",
        section=S_CUST,
        aliases=("State or Province", "Province"),
    ),
    _c(
        "postal_code",
        "Postal Code",
        "customerProfile/address/postalCode",
        Kind.TEXT,
        "Postal or ZIP code, kept as text so leading zeros stay.",
        "98052",
        section=S_CUST,
        aliases=("ZIP", "ZIP Code"),
    ),
    _c(
        "country",
        "Country",
        "customerProfile/address/country",
        Kind.COUNTRY,
        "Two-letter ISO 3166 country code (US, DE, GB). Three-letter codes and English country names are converted.",
        "US",
        section=S_CUST,
        need=Need.NEW,
    ),
    _c(
        "region",
        "Region",
        "customerProfile/address/region",
        Kind.TEXT,
        "Sales region, if your organisation uses one.",
        "",
        section=S_CUST,
    ),
    _c(
        "customer_size",
        "Customer Size",
        "customerProfile/size",
        Kind.CHOICE,
        "Number of employees at the customer, from the list.",
        "10to50employees",
        section=S_CUST,
        choices="customer_size",
        width=22,
    ),
    _c(
        "customer_external_id",
        "Customer External ID",
        "customerProfile/ids[profileType=External]/id",
        Kind.TEXT,
        "Your own id for the customer (CRM account id).",
        "9-XIPFFGUQI",
        section=S_CUST,
    ),
    _c(
        "customer_duns",
        "Customer DUNS",
        "customerProfile/ids[profileType=Duns]/id",
        Kind.DUNS,
        "The customer's 9-digit D-U-N-S number.",
        "081466849",
        section=S_CUST,
    ),
    CONTACTS,
    _c(
        "consent_share_info",
        "Consent To Share Info With Others",
        "consent/consentToToShareInfoWithOthers",
        Kind.BOOL,
        "Yes if the customer agreed that their details may be shared with other parties of the deal.",
        "Yes",
        section=S_CONS,
        width=20,
    ),
    _c(
        "consent_contact",
        "Consent To Contact",
        "consent/consentToContact",
        Kind.BOOL,
        "Yes if the customer agreed to be contacted.",
        "Yes",
        section=S_CONS,
    ),
    _c(
        "consent_msft_contact_partners",
        "Consent For Microsoft To Contact Partners",
        "consent/consentToMicrosoftToContactSpecificPartners",
        Kind.BOOL,
        "Yes if Microsoft may put specific partners in touch about this deal.",
        "No",
        section=S_CONS,
        width=20,
    ),
    _c(
        "share_with_microsoft",
        "Share With Microsoft Sellers",
        "consent/consentToShareReferralWithMicrosoftSellers",
        Kind.BOOL,
        "Yes to share the deal with Microsoft sellers. Must be No for Private deals and Yes for Partner-led and Co-sell; blank follows the deal type.",
        "Yes",
        section=S_CONS,
        width=20,
    ),
    _c(
        "deal_value",
        "Deal Value",
        "details/dealValue",
        Kind.DECIMAL,
        "Estimated value of the deal, a number of 0 or more, without the currency sign.",
        "50000",
        section=S_DET,
        need=Need.NEW,
    ),
    _c(
        "currency",
        "Currency",
        "details/currency",
        Kind.CURRENCY,
        "Three-letter ISO 4217 currency code of the deal value (USD, EUR).",
        "USD",
        section=S_DET,
        need=Need.NEW,
    ),
    _c(
        "closing_date",
        "Closing Date",
        "details/closingDateTime",
        Kind.DATE,
        "Expected close date (an Excel date, or YYYY-MM-DD). Sent as midnight UTC.",
        "2026-12-31",
        section=S_DET,
        need=Need.NEW,
        aliases=("Estimated Close Date", "Close Date"),
    ),
    _c(
        "notes",
        "Notes",
        "details/notes",
        Kind.TEXT,
        "What the customer needs, in a few sentences.",
        "Customer wants Dynamics 365 to manage their supply chain.",
        section=S_DET,
        width=40,
    ),
    _c(
        "industries",
        "Industries",
        "details/requirements/industries[]/id",
        Kind.LIST,
        "Industry ids, separated by ; (Manufacturing; Retail).",
        "Manufacturing",
        section=S_DET,
    ),
    _c(
        "products",
        "Products",
        "details/requirements/products[]/id",
        Kind.LIST,
        "Product ids, separated by ; .",
        "Dynamics365Enterprise",
        section=S_DET,
        width=22,
    ),
    _c(
        "services",
        "Services",
        "details/requirements/services[]/id",
        Kind.LIST,
        "Service ids, separated by ; .",
        "DeploymentOrMigration",
        section=S_DET,
        width=22,
    ),
    SOLUTIONS,
    _c(
        "marketplace_intent",
        "Marketplace Purchase Intent",
        "details/requirements/additionalRequirements/attributes[type=CustomerMarketplaceIntent]/id",
        Kind.CHOICE,
        "Will the customer buy through the Microsoft commercial marketplace? Yes, No or HaveNotDecided.",
        "HaveNotDecided",
        section=S_DET,
        choices="marketplace_intent",
        width=20,
    ),
    TEAM,
    _c(
        "help_needed",
        "Help Needed",
        "inviteContext/assistanceRequestCode",
        Kind.CHOICE,
        "What you ask Microsoft for (the assistance request code). Required for Co-sell deals, blank otherwise.",
        "ProofOfConceptOrDemo",
        section=S_COSELL,
        choices="assistance_request_code",
        when="Deal Type is Co-sell",
        width=26,
    ),
    _c(
        "invite_notes",
        "Invite Notes",
        "inviteContext/notes",
        Kind.TEXT,
        "A message to Microsoft with the co-sell invitation.",
        "Proof of concept / Demo, please help with the demo.",
        section=S_COSELL,
        width=30,
    ),
    TARGETS,
    _c(
        "partner_role",
        "Partner Role",
        "partnerRole",
        Kind.CHOICE,
        "Services co-sell only: your role in the deal. Fill Partner Role, Solution Area and Solution Play together.",
        "Deployment services",
        section=S_SVC,
        choices="partner_role",
        when="any Services co-sell column is filled",
        width=24,
    ),
    _c(
        "solution_area",
        "Solution Area",
        "solutionArea",
        Kind.CHOICE,
        "Services co-sell only: the customer's solution area. The drop-down lists the fiscal year's table bulkref has (bulkref taxonomy); a newer name is taken with a warning and sent as written.",
        "Infrastructure",
        section=S_SVC,
        choices="solution_area",
        when="any Services co-sell column is filled",
        width=22,
    ),
    _c(
        "solution_play",
        "Solution Play",
        "solutionPlay",
        Kind.CHOICE,
        "Services co-sell only: a solution play of the chosen solution area (the Instructions sheet lists them by area); a newer name is taken with a warning and sent as written.",
        "Migrate SAP",
        section=S_SVC,
        choices="solution_play",
        when="any Services co-sell column is filled",
        width=30,
    ),
    _c(
        "deal_sensitivity",
        "Deal Sensitivity",
        "dealSensitivity",
        Kind.TEXT,
        "How sensitive the deal is; None unless your organisation says otherwise.",
        "None",
        section=S_OTHER,
    ),
    _c(
        "campaign_id",
        "Campaign ID",
        "campaignId",
        Kind.TEXT,
        "The marketing campaign the deal came from.",
        "",
        section=S_OTHER,
    ),
    _c(
        "mpn_id",
        "MPN ID",
        "mpnId",
        Kind.TEXT,
        "Your Partner ID (MPN id) for this deal, if it is not your main one.",
        "",
        section=S_OTHER,
    ),
    _c(
        "direction",
        "Direction",
        "direction",
        Kind.CHOICE,
        "Incoming or Outgoing. Filled by bulkref export; ignored on input.",
        "",
        section=S_RO,
        read_only=True,
        choices="direction",
    ),
    _c(
        "created",
        "Created",
        "createdDateTime",
        Kind.TIMESTAMP,
        "When Partner Center created it. Filled by bulkref export; ignored on input.",
        "",
        section=S_RO,
        read_only=True,
        width=22,
    ),
    _c(
        "updated",
        "Updated",
        "updatedDateTime",
        Kind.TIMESTAMP,
        "When Partner Center last changed it. Filled by bulkref export; ignored on input.",
        "",
        section=S_RO,
        read_only=True,
        width=22,
    ),
    _c(
        "etag",
        "ETag",
        "eTag",
        Kind.TEXT,
        "Partner Center's version stamp. Filled by bulkref export; ignored on input.",
        "",
        section=S_RO,
        read_only=True,
        width=30,
    ),
)


@dataclass(frozen=True)
class Spec:
    layout: tuple[Column | Group, ...] = field(default=LAYOUT)

    @property
    def groups(self) -> tuple[Group, ...]:
        return tuple(x for x in self.layout if isinstance(x, Group))

    def group(self, key: str) -> Group:
        return self._groups[key]

    @cached_property
    def _groups(self) -> dict[str, Group]:
        return {g.key: g for g in self.groups}

    @property
    def singles(self) -> tuple[Column, ...]:
        """The columns that are not part of a numbered group."""
        return tuple(x for x in self.layout if isinstance(x, Column))

    def columns(self, counts: dict[str, int] | None = None) -> list[Column]:
        """Every column in template order, with ``counts[group]`` numbered
        groups each (the template's own number by default)."""
        counts = counts or {}
        wanted = tuple(counts.get(g.key, g.in_template) for g in self.groups)
        found = self._layouts.get(wanted)
        if found is None:
            # Built once per distinct set of counts: payloads, diffs and the
            # export ask for every row's columns, 100,000 times in a large run.
            found = self._layouts[wanted] = tuple(self._build_columns(counts))
        return list(found)

    @cached_property
    def _layouts(self) -> dict[tuple[int, ...], tuple[Column, ...]]:
        return {}

    def _build_columns(self, counts: dict[str, int]) -> list[Column]:
        out: list[Column] = []
        for item in self.layout:
            if isinstance(item, Group):
                for n in range(1, counts.get(item.key, item.in_template) + 1):
                    out.extend(self.column(f"{item.key}.{n}.{f.key}") for f in item.fields)
            else:
                out.append(item)
        return out

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns())

    def single(self, key: str) -> Column:
        return self._by_key[key]

    def column(self, key: str) -> Column:
        """The column of any key, single (``city``) or numbered (``contact.3.email``)."""
        found = self._columns.get(key)
        if found is None:
            group, n, f = key.split(".")
            g = self.group(group)
            # Built once per key: payloads and diffs ask for every cell of every row.
            found = self._columns[key] = g.column(int(n), next(x for x in g.fields if x.key == f))
        return found

    @cached_property
    def _columns(self) -> dict[str, Column]:
        return dict(self._by_key)

    @cached_property
    def _by_key(self) -> dict[str, Column]:
        return {c.key: c for c in self.singles}

    @cached_property
    def _names(self) -> dict[str, Column]:
        """Every accepted spelling of a single column, folded."""
        names: dict[str, Column] = {}
        leaves: dict[str, list[Column]] = {}
        for c in self.singles:
            for name in (c.header, c.key, *c.aliases):
                names[fold(name)] = c
            if c.path:
                names[fold(c.path)] = c
                leaves.setdefault(fold(_leaf(c.path)), []).append(c)
        # A bare JSON name ("city") is accepted where it names one column only.
        for leaf, cols in leaves.items():
            if len(cols) == 1:
                names.setdefault(leaf, cols[0])
        return names

    @cached_property
    def _group_patterns(self) -> list[tuple[re.Pattern[str], Group, dict[str, Column]]]:
        out = []
        for g in self.groups:
            labels = "|".join(re.escape(fold(x)) for x in (g.label, g.key, *g.aliases))
            fields: dict[str, Column] = {}
            for f in g.fields:
                for name in (f.header, f.key, f.path or ""):
                    if name:
                        fields[fold(name)] = f
            out.append((re.compile(rf"^(?:{labels})(\d+)(.+)$"), g, fields))
        return out

    def resolve(self, header: str) -> Column | None:
        """The column a sheet's header means, or None. Tolerant of case,
        spaces, underscores and hyphens, a trailing ``*``, and the JSON name."""
        text = str(header).strip().rstrip("*").strip()
        if not text:
            return None
        folded = fold(text)
        if folded in self._names:
            return self._names[folded]
        for pattern, group, fields in self._group_patterns:
            m = pattern.match(folded)
            if m and (f := fields.get(m.group(2))) is not None and int(m.group(1)) >= 1:
                return group.column(int(m.group(1)), f)
        return None


def _leaf(path: str) -> str:
    return re.sub(r"\[.*?\]", "", path.rsplit("/", 1)[-1])


SPEC = Spec()
