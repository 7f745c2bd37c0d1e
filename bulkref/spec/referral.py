"""The Referral resource as pydantic models, serialising to exactly the documented JSON.

camelCase names come from the field names (so ``consent_to_to_share_info_with_others``
is the documented, doubled ``consentToToShareInfoWithOthers``); unset fields are
left out rather than sent as null, which the service may reject.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_serializer
from pydantic.alias_generators import to_camel


class _Model(BaseModel):
    # extra="forbid": a misspelt key in bulkref's own builder is a bug to catch
    # here, not a field the service silently ignores.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ContactPreference(_Model):
    locale: str | None = None
    disable_notifications: bool | None = None


class Member(_Model):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    title: str | None = None
    contact_preference: ContactPreference | None = None


class Address(_Model):
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    region: str | None = None


class CustomerId(_Model):
    profile_type: str
    id: str


class CustomerProfile(_Model):
    name: str | None = None
    address: Address | None = None
    size: str | None = None
    team: list[Member] | None = None
    ids: list[CustomerId] | None = None
    is_matching_complete: bool | None = None


class Consent(_Model):
    consent_to_to_share_info_with_others: bool | None = None
    consent_to_contact: bool | None = None
    consent_to_microsoft_to_contact_specific_partners: bool | None = None
    consent_to_share_referral_with_microsoft_sellers: bool | None = None


class IdRef(_Model):
    id: str


class Solution(_Model):
    id: str | None = None
    name: str | None = None
    type: str | None = None
    publisher_name: str | None = None
    solution_type: str | None = None


class Attribute(_Model):
    type: str
    id: str


class AdditionalRequirements(_Model):
    attributes: list[Attribute] | None = None


class Requirements(_Model):
    industries: list[IdRef] | None = None
    products: list[IdRef] | None = None
    services: list[IdRef] | None = None
    solutions: list[Solution] | None = None
    additional_requirements: AdditionalRequirements | None = None


class Details(_Model):
    notes: str | None = None
    deal_value: float | None = None
    currency: str | None = None
    closing_date_time: str | None = None
    requirements: Requirements | None = None

    @field_serializer("deal_value")
    def _whole_numbers_without_point(self, v: float | None) -> float | int | None:
        # 50000, as the documented examples write it, not 50000.0.
        return int(v) if v is not None and float(v).is_integer() else v


class Organization(_Model):
    organization_id: str | None = None
    organization_name: str | None = None


class InviteContext(_Model):
    notes: str | None = None
    invited_by: Organization | None = None
    assistance_request_code: str | None = None


class Target(_Model):
    type: str
    id: str


class Referral(_Model):
    """The writable part of a Referral (the service sets id, eTag, times, links)."""

    name: str | None = None
    external_reference_id: str | None = None
    engagement_id: str | None = None
    organization_id: str | None = None
    organization_name: str | None = None
    status: str | None = None
    substatus: str | None = None
    status_reason: str | None = None
    type: str | None = None
    qualification: str | None = None
    customer_profile: CustomerProfile | None = None
    consent: Consent | None = None
    details: Details | None = None
    team: list[Member] | None = None
    invite_context: InviteContext | None = None
    target: list[Target] | None = None
    deal_sensitivity: str | None = None
    campaign_id: str | None = None
    mpn_id: str | None = None
    # Services co-sell only; the seed lists them beside the other properties.
    partner_role: str | None = None
    solution_area: str | None = None
    solution_play: str | None = None
