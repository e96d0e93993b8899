"""Request and response models: the API's contract, as shown at ``/docs``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.agencies import SLUG, AgencyKind, Role
from domain.agreements import AgreementStatus, AgreementTerms
from domain.categories import DataCategory
from domain.identity import Identity, checked_nhs_number
from domain.inputs import AwareIsoDatetime, IsoDate, Name, Text
from domain.reviews import ReviewOutcome, ReviewStatus
from domain.vocabulary import ConsentObtained, Purpose


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorField(BaseModel):
    field: str = Field(description="where the problem is, e.g. `data.substances.0`")
    message: str


class ErrorBody(BaseModel):
    """Every error answer: what went wrong, in words (never a stack trace)."""

    detail: str = Field(description="what went wrong, in plain words")
    errors: list[ErrorField] | None = Field(
        None, description="for 400 and 422: each invalid field (`body` for the body as a whole)")


class InvalidInputBody(BaseModel):
    """A 422: the request was read, and the fields listed are invalid. Nothing changed."""

    detail: str = Field(description="what is invalid, in words, e.g. `invalid input: purpose`")
    errors: list[ErrorField] = Field(min_length=1, description="each invalid field")


class ClientExistsBody(ErrorBody):
    """A 409 on registration: the agency already registered this NHS number."""

    client_id: UUID = Field(description="the client the agency registered before")


class AgencyIn(Strict):
    id: str = Field(pattern=SLUG.pattern, description="a short slug, e.g. `police`")
    name: Name = Field(min_length=1, max_length=200)
    kind: AgencyKind
    contact: Name | None = Field(None, min_length=1, max_length=200,
                                 description="how partners reach the agency about a client, "
                                             "e.g. a team's phone number or address")


class AgencyOut(BaseModel):
    id: str
    name: str
    kind: AgencyKind
    contact: str | None = Field(None, description="how partners reach the agency")


class PrincipalIn(Strict):
    agency: str = Field(pattern=SLUG.pattern)
    role: Role
    name: Name = Field(min_length=1, max_length=200)


class RecordedByOut(BaseModel):
    """Who did something: a principal, or the CLI operator."""

    id: str = Field(description="the principal id as recorded, or `operator:cli`")
    name: str
    agency: str | None = Field(description="the principal's agency (none for the operator)")
    role: Role | None = Field(description="the principal's role (none for the operator)")


class PrincipalOut(BaseModel):
    principal_id: UUID
    agency: str
    role: Role
    name: str
    revoked: bool
    added_at: datetime
    added_by: RecordedByOut
    revoked_at: datetime | None = None
    revoked_by: RecordedByOut | None = None
    revoked_reason: str | None = None


class IssuedTokenOut(BaseModel):
    principal_id: UUID
    token: str = Field(description="the bearer token; shown once and never stored")


class RevokeIn(Strict):
    reason: Text = Field(min_length=1, max_length=500)


class ClientIn(Strict):
    identity: Identity


class ClientCreated(BaseModel):
    client_id: UUID
    position: int = Field(description="the log position of the registration")


class EventIn(Strict):
    type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$",
                      description="a name from GET /v1/event-types")
    occurred_at: AwareIsoDatetime = Field(description="when it happened, ISO 8601 with a "
                                          "time zone")
    data: dict[str, Any] = Field(description="the payload, validated against the type's schema")


class EventRecorded(BaseModel):
    position: int = Field(description="the fact's position in the log")


class CorrectionOut(BaseModel):
    """An amendment or retraction of a fact by the agency that recorded it."""

    position: int | None = Field(description="the correction's log position")
    at: datetime = Field(description="when it was made")
    by: str | None = Field(description="the principal who made it (shown to the fact's "
                           "controller only)")
    reason: str | None = Field(description="why the record was corrected (shown to the "
                               "fact's controller only)")


class FactAmendIn(Strict):
    data: dict[str, Any] = Field(description="the whole payload as it should have been "
                                 "recorded, validated against the fact's type (which does "
                                 "not change)")
    occurred_at: AwareIsoDatetime | None = Field(
        None, description="when it really happened, ISO 8601 with a time zone; omitted: "
                          "as recorded")
    reason: Text = Field(min_length=10, max_length=1000,
                        description="why the record is corrected, for the record")


class FactRetractIn(Strict):
    reason: Text = Field(min_length=10, max_length=1000,
                        description="why the fact should never have been recorded")


class FactOut(BaseModel):
    sequence: int = Field(description="the fact's place in the client's own stream")
    position: int | None = Field(None, description="the fact's log position (name it to "
                                 "amend or retract the fact)")
    type: str
    category: str
    occurred_at: datetime
    recorded_at: datetime
    controller: str = Field(description="the agency that recorded the fact and answers for it")
    recorded_by: str
    data: dict[str, Any] = Field(description="as recorded, or as last amended")
    amendments: list[CorrectionOut] = Field(
        default_factory=list, description="each amendment, oldest first")
    retraction: CorrectionOut | None = Field(
        None, description="set once retracted: nobody else sees the fact any more")


class IdentityOut(BaseModel):
    given_name: str
    family_name: str
    date_of_birth: date
    nhs_number: str
    postcode: str


class ClientRecordOut(BaseModel):
    client_id: UUID
    controller: str
    registered_at: datetime
    identity: IdentityOut | None
    identity_erased: bool
    facts: list[FactOut]
    legal_hold: bool = Field(False, description="a legal hold keeps the record from erasure")
    restricted: bool = Field(False, description="processing is restricted (UK GDPR Art. 18): "
                             "partners see nothing, and reads state a legal claim")


class EventTypeOut(BaseModel):
    type: str
    category: str
    description: str
    fields: list[str]
    schema_: dict[str, Any] = Field(alias="schema", description="JSON Schema of the payload")

    model_config = ConfigDict(populate_by_name=True)


# -- agreements, consent, views (consent-scoped sharing) ----------------------------------


class AgreementOut(BaseModel):
    agreement_id: UUID
    controller: str
    recipient: str
    status: AgreementStatus = Field(description="approved: in force from its valid_from; "
                                    "out_of_date: past its valid_to")
    amendment_proposed: bool = Field(description="newer terms await approval; the terms in "
                                     "force stay until both parties approve them")
    version: int = Field(description="the latest version of the terms")
    version_in_force: int | None
    approvals: dict[str, str] = Field(description="agency -> approving principal, latest version")
    terms: AgreementTerms = Field(description="the latest version of the terms")
    terms_in_force: AgreementTerms | None
    revoked_reason: str | None
    versions: list[AgreementTerms] = Field(
        default_factory=list, description="every version of the terms, oldest first "
                                          "(version n is the n-th): none is ever lost")


class ConsentIn(Strict):
    recipient_agency: str | None = Field(None, pattern=SLUG.pattern)
    recipient_kind: AgencyKind | None = None
    categories: list[DataCategory] = Field(min_length=1)
    purposes: list[Purpose] = Field(min_length=1)
    data_from: IsoDate | None = Field(None, description="earliest date of data covered")
    data_to: IsoDate | None = Field(None, description="latest date of data covered")
    expires_at: AwareIsoDatetime | None = None
    obtained: ConsentObtained


class ConsentCreated(BaseModel):
    consent_id: UUID
    position: int


class WithdrawIn(Strict):
    reason: Text = Field(min_length=1, max_length=500)


class PositionOut(BaseModel):
    position: int


class StatedReasonIn(Strict):
    """Why the IG lead erases the record, places or lifts a legal hold, or restricts
    processing or lifts the restriction. Kept out of the log for an erasure (only its
    keyed fingerprint is recorded); sealed with the client's data key otherwise."""

    reason: Text = Field(min_length=10, max_length=1000)


class RecordRightsOut(BaseModel):
    client_id: UUID
    legal_hold: bool = Field(description="a legal hold keeps the record from erasure")
    restricted: bool = Field(description="processing is restricted (UK GDPR Art. 18)")


class ErasureOut(BaseModel):
    position: int = Field(description="the erasure's log position")
    reason_fingerprint: str = Field(
        description="the keyed fingerprint of the reason, as the log records it (the "
                    "reason itself is not kept: file it with this in your case file)")


class ConsentOut(BaseModel):
    consent_id: UUID
    controller: str
    recipient_agency: str | None
    recipient_kind: str | None
    categories: list[str]
    purposes: list[str]
    data_from: date | None
    data_to: date | None
    expires_at: datetime | None
    obtained: str
    recorded_by: str
    given_at: datetime
    withdrawn_at: datetime | None
    withdrawal_reason: str | None
    active: bool


class ViewFactOut(BaseModel):
    position: int
    type: str
    category: str
    controller: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any] = Field(description="only the fields the basis shares")
    basis: dict[str, Any] = Field(description="the rule, agreement, consent or duty")
    reason: str
    amended: int | None = Field(None, description="the log position of the latest "
                                "amendment by the fact's controller (null: as recorded); "
                                "what is shown is the fact as amended")


class ClientViewOut(BaseModel):
    client_id: UUID
    agency: str
    purpose: Purpose
    position: int = Field(description="the log position this view is current to")
    identity: dict[str, Any] | None = Field(
        None, description="only the identity fields an agreement shares"
    )
    facts: list[ViewFactOut]


class MatchIn(Strict):
    purpose: Purpose | None = Field(None, description="why the caller needs to know; "
                                    "required, except for an IG lead finding a client "
                                    "of its own agency (a subject access request)")
    nhs_number: str | None = Field(None, description="ten digits; spaces or hyphens allowed")
    family_name: Name | None = Field(None, min_length=1, max_length=100)
    date_of_birth: IsoDate | None = None

    @field_validator("nhs_number")
    @classmethod
    def _check_nhs_number(cls, value: str | None) -> str | None:
        # A malformed number is a typing error to report, not a person to look for.
        return None if value is None else checked_nhs_number(value)


class MatchOut(BaseModel):
    client_id: UUID


# -- accountability: access records, disclosures, replay --------------------------------


class ReturnedItemOut(BaseModel):
    position: int | None = Field(description="log position of the fact (None: a whole record)")
    category: str
    controller: str
    basis: dict[str, Any]
    client_id: UUID | None = Field(None, description="the client the item is about, where "
                                   "one access concerned several (an alert read)")


class AccessOut(BaseModel):
    position: int = Field(description="log position of the access record")
    access_id: UUID
    at: datetime
    principal: str
    principal_name: str
    agency: str
    role: str
    action: str = Field(description="a read (record, view, match, consents, disclosures, "
                        "replay, alerts) or a refused write (record_fact, amend_fact, "
                        "retract_fact, give_consent, withdraw_consent, link_household, "
                        "add_household_member, emergency_access)")
    purpose: str | None
    client_id: UUID | None = Field(description="the client, where the access concerned one")
    client_ids: list[UUID] = Field(description="every client the access concerned that you "
                                   "may know of (an alert read names each alert's client)")
    subject_agency: str | None = Field(description="for a replay: whose view it rebuilt")
    outcome: str = Field(description="returned, not_found, refused or no_match; "
                         "not_found and refused are attempts that disclosed nothing, "
                         "shown to the client's controllers whoever made them")
    detail: str | None
    returned: list[ReturnedItemOut] = Field(
        description="what was shown and on which basis (only items of data your agency "
                    "controls, unless your own staff made the read)")


class DisclosureOut(BaseModel):
    at: datetime
    recipient: str = Field(description="the agency the data was disclosed to")
    principal_name: str
    role: str
    action: str
    purpose: str | None
    items: list[ReturnedItemOut]


# -- emergency (break-glass) access and its IG review ---------------------------------------


class EmergencyAccessIn(Strict):
    purpose: Purpose = Field(description="why the caller needs to see the client now "
                             "(not commissioning)")
    justification: Text = Field(min_length=10, max_length=1000,
                               description="the emergency, in words the IG lead will review")
    minutes: int = Field(ge=1, le=1440, description="how long the access lasts: at most 24 hours")


class EmergencyAccessCreated(BaseModel):
    grant_id: UUID
    expires_at: datetime
    position: int = Field(description="the grant's log position (for min_position)")
    review_id: UUID = Field(description="the IG review opened for the client's controller")


class EmergencyAccessEndIn(Strict):
    reason: Text = Field(min_length=1, max_length=500,
                        description="why the access ends before it expires, for the record")


class ReviewCloseIn(Strict):
    outcome: ReviewOutcome
    note: Text = Field(min_length=1, max_length=2000)


class ReviewOut(BaseModel):
    review_id: UUID
    status: ReviewStatus
    controller: str = Field(description="the client's registering controller, whose IG lead "
                            "closes the review")
    client_id: UUID
    grant_id: UUID
    granted_to: str = Field(description="the agency that broke glass")
    principal: str = Field(description="the principal who broke glass")
    principal_name: str
    role: str
    purpose: str
    justification: str
    clinical_notes: bool = Field(description="whether the grant covered clinical notes")
    granted_at: datetime
    expires_at: datetime
    position: int = Field(description="the log position at which the review was opened")
    outcome: ReviewOutcome | None
    note: str | None
    closed_by: str | None
    closed_at: datetime | None
    grant_ended_at: datetime | None = Field(
        description="when the grant was ended before it expired (by the controller's IG lead, "
                    "or by closing this review as not_justified); null if it ran its course")
    grant_ended_by: str | None = Field(description="the principal who ended the grant")
    grant_end_cause: str | None = Field(
        description="`review_not_justified` or `ended_by_ig_lead`")


class ReviewClosedOut(BaseModel):
    review_id: UUID
    status: ReviewStatus
    outcome: ReviewOutcome
    position: int


class ReplayFactOut(BaseModel):
    position: int
    type: str
    category: str
    controller: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any] = Field(description="only the fields the basis shared")
    basis: dict[str, Any]
    reasons: list[str]
    amendments: list[CorrectionOut] = Field(
        default_factory=list, description="the controller's amendments up to the moment, "
                                          "oldest first: the fact is shown as amended")


class WithheldFactOut(BaseModel):
    position: int
    type: str
    category: str
    controller: str
    occurred_at: datetime
    reasons: list[str] = Field(description="which rule withheld it, and why")
    amendments: list[CorrectionOut] = Field(default_factory=list)
    retraction: CorrectionOut | None = Field(
        None, description="set if the controller had retracted it by the moment")


class ReplayOut(BaseModel):
    agency: str = Field(description="whose view was rebuilt")
    client_id: UUID
    purpose: Purpose
    position: int = Field(description="the last log position the replay includes")
    at: datetime = Field(description="the moment the decisions were taken at")
    permitted: list[ReplayFactOut]
    withheld: list[WithheldFactOut] = Field(
        description="facts of your own agency that were withheld (controller's IG lead only)")


class ReplayChangeOut(BaseModel):
    position: int = Field(description="from this log position on, the replay answers "
                          "differently from before: replay here to see how")
    at: datetime = Field(description="when the event at that position was recorded")
    permitted: int = Field(description="how many facts the answer from here permits")
    withheld: int = Field(description="how many of your facts the answer from here withholds")


class ReplayChangesOut(BaseModel):
    agency: str = Field(description="whose view was rebuilt")
    client_id: UUID
    purpose: Purpose
    head: int = Field(description="the last log position walked")
    changes: list[ReplayChangeOut] = Field(description="oldest first")


# -- flagged clients (api/routers/flags.py) -------------------------------------------------


class FlagIn(Strict):
    reason: Text = Field(min_length=10, max_length=300, description=(
        "why your agency wants to hear of other agencies' interest in the client (e.g. "
        "a child protection plan in the household); your own record, never shown to "
        "another agency"))


class FlagRemoveIn(Strict):
    reason: Text = Field(min_length=10, max_length=300,
                         description="why the flag is taken off, for the record")


class FlagCreated(BaseModel):
    flag_id: UUID
    position: int


class FlagOut(BaseModel):
    flag_id: UUID
    reason: str
    flagged_by: str = Field(description="a principal id (or operator:cli)")
    flagged_at: datetime
    active: bool = Field(description="whether other agencies' interest is still told")
    removed_by: str | None
    removed_at: datetime | None
    removal_reason: str | None
