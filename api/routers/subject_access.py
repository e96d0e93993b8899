"""For IG leads: answering a client's subject access request (UK GDPR Art. 15).

``GET /v1/clients/{client_id}/subject-access`` gives the IG lead of the client's
registering controller everything the partnership holds about the client
(``projections.subject_access``), each agency's part marked for redaction review where it
is not the controller's own. The answer is itself a read of the whole record, so it is
on the access record (action ``subject_access``) naming every item it lists, and each
other agency whose data it lists finds it among its disclosures. The web application's
printable page (``api.ui.routes.subject_access``) renders this route's answer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.access import returned_item
from api.deps import Access, App, Inbox, Index, ReadEngine, SubjectAccessAnswerer
from api.errors import error_responses
from api.models import DisclosureOut, IdentityOut, RecordedByOut, ReturnedItemOut
from api.routers.alerts import AlertOut, PersonOut
from domain.access import AccessAction
from domain.alerts import AlertOutcome, AlertStatus, Severity
from domain.application import Actor
from domain.reviews import ReviewStatus
from domain.sealing import open_reason
from projections.alerts import AlertItem
from projections.queries import RecordedBy
from projections.subject_access import (
    HeldCorrection,
    HeldFact,
    Safeguard,
    SubjectAccess,
    subject_access,
)

router = APIRouter(tags=["ig leads"])

#: The access record's basis for an item: the IG lead's own agency's data, or another
#: agency's, seen to answer the client's request.
OWN = {"kind": "controller"}
FOR_THE_REQUEST = {"kind": "subject_access"}


class ReviewMark(BaseModel):
    """Why an item needs the IG lead's review before release (Art. 15(4): the rights of
    others), e.g. it was recorded by another agency."""

    redaction_review: bool = Field(description="true: review before release")
    redaction_reason: str | None = Field(
        None, description="e.g. `recorded by police: check for third-party information "
                          "before release`")


class HeldCorrectionOut(BaseModel):
    position: int = Field(description="the correction's log position")
    at: datetime
    by: RecordedByOut
    reason: str
    data: dict[str, Any] | None = Field(None, description="an amendment: the payload as "
                                        "amended (null for a retraction)")
    occurred_at: datetime | None = Field(None, description="an amendment: when it happened, "
                                         "as amended")


class HeldFactOut(ReviewMark):
    position: int = Field(description="the fact's log position")
    type: str
    category: str
    controller: str = Field(description="the agency that recorded the fact and answers for it")
    recorded_by: RecordedByOut
    recorded_at: datetime
    occurred_at: datetime = Field(description="as it stands (amended, if it was)")
    data: dict[str, Any] = Field(description="as it stands: as recorded, or as last amended")
    recorded_data: dict[str, Any] = Field(description="as first recorded")
    recorded_occurred_at: datetime
    amendments: list[HeldCorrectionOut] = Field(description="each amendment, oldest first")
    retraction: HeldCorrectionOut | None = Field(
        description="set once retracted: nobody sees the fact any more, but it is held")


class HeldConsentOut(BaseModel):
    position: int
    consent_id: UUID
    controller: str = Field(description="the agency whose data the consent covers")
    recipient_agency: str | None
    recipient_kind: str | None
    categories: list[str]
    purposes: list[str]
    data_from: date | None
    data_to: date | None
    expires_at: datetime | None
    obtained: str
    given_at: datetime
    recorded_by: RecordedByOut
    withdrawn_at: datetime | None
    withdrawn_position: int | None
    withdrawn_by: RecordedByOut | None
    withdrawal_reason: str | None
    active: bool


class HeldFlagOut(ReviewMark):
    position: int
    flag_id: UUID
    agency: str = Field(description="the agency whose safeguarding team the flag alerts")
    reason: str
    flagged_at: datetime
    flagged_by: RecordedByOut
    removed_at: datetime | None
    removed_position: int | None
    removed_by: RecordedByOut | None
    removal_reason: str | None


class HeldSafeguardOut(ReviewMark):
    position: int
    kind: Safeguard = Field(description="legal_hold_placed, legal_hold_lifted, "
                            "processing_restricted or restriction_lifted")
    at: datetime
    by: RecordedByOut
    reason: str | None = Field(description="why (null once the client's data key is gone)")


class GrantReviewOut(BaseModel):
    review_id: UUID
    status: ReviewStatus
    outcome: str | None
    note: str | None
    closed_by: RecordedByOut | None
    closed_at: datetime | None


class HeldGrantOut(BaseModel):
    position: int
    grant_id: UUID
    agency: str = Field(description="the agency that broke glass")
    principal: RecordedByOut
    purpose: str
    justification: str
    clinical_notes: bool
    granted_at: datetime
    expires_at: datetime
    ended_at: datetime | None = Field(description="set if it was ended before it expired")
    ended_by: RecordedByOut | None
    end_cause: str | None
    end_reason: str | None
    review: GrantReviewOut


class HeldAlertOut(ReviewMark):
    alert: AlertOut


class HeldDisclosureOut(DisclosureOut):
    position: int = Field(description="the access record's log position")
    principal: RecordedByOut


class SubjectAccessOut(BaseModel):
    """Everything the partnership holds about the client, for the IG lead to review and
    release; items another agency recorded are marked for redaction review."""

    client_id: UUID
    controller: str = Field(description="the registering controller, answering the request")
    produced_at: datetime
    produced_by: RecordedByOut
    position: int = Field(description="the log position of this answer's access record")
    registered_at: datetime
    registered_by: RecordedByOut
    identity: IdentityOut
    agencies: list[str] = Field(description="every agency holding a part of the record, "
                                "the registering controller first")
    facts: list[HeldFactOut] = Field(description="every fact from every agency, in the "
                                     "order recorded, retracted ones included")
    consents: list[HeldConsentOut] = Field(description="every consent, with its withdrawal")
    flags: list[HeldFlagOut] = Field(description="every flag an agency set on the client, "
                                     "with its removal; each marked for review")
    holds_and_restrictions: list[HeldSafeguardOut] = Field(
        description="every legal hold and restriction of processing (Art. 18) placed or "
                    "lifted, oldest first; a legal hold placed is marked for review")
    emergency_access: list[HeldGrantOut]
    alerts: list[HeldAlertOut] = Field(description="safeguarding alerts about the client, "
                                       "whichever agency received them")
    disclosures: list[HeldDisclosureOut] = Field(
        description="every read by an agency of another agency's data about the client, "
                    "oldest first: when, who, why and on what basis")
    redaction_reviews: int = Field(description="how many items are marked for review")


@router.get("/v1/clients/{client_id}/subject-access", response_model=SubjectAccessOut,
            responses=error_responses(403, 404, 503))
def answer_subject_access(client_id: UUID, app: App, access: Access, engine: ReadEngine,
                          index: Index, inbox: Inbox,
                          ig_lead: SubjectAccessAnswerer) -> SubjectAccessOut:
    """Everything held about the client (UK GDPR Art. 15), for the IG lead of the agency
    that registered them: identity; every fact from every agency with who recorded it and
    its corrections; consents and withdrawals; flags; legal holds and restrictions;
    emergency grants and their reviews; alerts; every disclosure. Another agency's items,
    every flag and a legal hold are marked for redaction review. Any other agency's IG
    lead gets the same 404 as for an unknown client. Answering the client's own request is
    not refused while processing is restricted (Art. 18 restricts processing for others'
    purposes, not the client's access). The answer is recorded (action
    ``subject_access``) before it is returned, naming everything it lists."""
    with access.reading(ig_lead, AccessAction.SUBJECT_ACCESS, client_id=client_id,
                        purpose=None) as read:
        found = subject_access(app, client_id, ig_lead, log=engine, index=index, inbox=inbox)
        position = read.returned(_listed(found), detail="subject access request")
    # A flag's reasons are sealed with the client's data key on its stream: opened here.
    reasons = {f.position: (open_reason(app.vault, client_id, f.flagged.reason),
                            open_reason(app.vault, client_id, f.removed.reason)
                            if f.removed else None) for f in found.flags}
    return _out(found, ig_lead, position, app.clock(), reasons)


def _basis(found: SubjectAccess, agency: str) -> dict[str, str]:
    return OWN if agency == found.controller else FOR_THE_REQUEST


def _listed(found: SubjectAccess) -> list[dict[str, Any]]:
    """What the answer discloses, for its access record: the identity, each fact, consent,
    grant and alert, and each item of every disclosure it lists, with whose each is."""
    own = found.controller
    items = [returned_item(found.registration_position, "identity", own, OWN)]
    items += [returned_item(f.position, f.category, f.controller, _basis(found, f.controller))
              for f in found.facts]
    items += [returned_item(c.position, "consent", c.given.controller,
                            _basis(found, c.given.controller)) for c in found.consents]
    items += [returned_item(f.position, "flag", f.flagged.agency,
                            _basis(found, f.flagged.agency)) for f in found.flags]
    items += [returned_item(h.position, h.kind.value, own, OWN) for h in found.safeguards]
    items += [returned_item(g.position, "emergency_access", own, OWN) for g in found.grants]
    items += [returned_item(a.alert.raised_position, "alert", a.alert.recipient,
                            _basis(found, a.alert.recipient)) for a in found.alerts]
    disclosed = dict.fromkeys((d.position, str(item["controller"]))
                              for d in found.disclosures for item in d.items)
    items += [returned_item(position, "access_record", controller, _basis(found, controller))
              for position, controller in disclosed]
    return items


def _person(found: SubjectAccess, reference: str) -> RecordedByOut:
    who = found.people.get(reference) or RecordedBy(reference, reference, None, None)
    return RecordedByOut(id=who.reference, name=who.name, agency=who.agency, role=who.role)


def _correction(found: SubjectAccess, c: HeldCorrection) -> HeldCorrectionOut:
    return HeldCorrectionOut(position=c.position, at=c.at, by=_person(found, c.by),
                             reason=c.reason, data=c.data, occurred_at=c.occurred_at)


def _fact(found: SubjectAccess, f: HeldFact) -> HeldFactOut:
    return HeldFactOut(
        position=f.position, type=f.fact_type, category=f.category, controller=f.controller,
        recorded_by=_person(found, f.recorded_by), recorded_at=f.recorded_at,
        occurred_at=f.occurred_at, data=f.data, recorded_data=f.recorded_data,
        recorded_occurred_at=f.recorded_occurred_at,
        amendments=[_correction(found, c) for c in f.amendments],
        retraction=_correction(found, f.retraction) if f.retraction else None,
        redaction_review=f.redaction_review is not None, redaction_reason=f.redaction_review,
    )


def _named(found: SubjectAccess, reference: str | None) -> PersonOut | None:
    if reference is None:
        return None
    return PersonOut(principal=reference, name=_person(found, reference).name)


def _alert(found: SubjectAccess, a: AlertItem) -> AlertOut:
    """An alert as its recipient's inbox shows it (``api.routers.alerts``)."""
    return AlertOut(
        alert_id=a.alert_id, rule=a.rule, severity=Severity(a.severity),
        status=AlertStatus(a.status), recipient=a.recipient, client_id=a.client_id,
        household_id=a.household_id, reason=a.reason, basis=a.basis,
        trigger_position=a.trigger_position, triggered_at=a.triggered_at,
        raised_at=a.raised_at, acknowledge_by=a.acknowledge_by,
        acknowledged_by=_named(found, a.acknowledged_by), acknowledged_at=a.acknowledged_at,
        escalated_at=a.escalated_at, assigned_to=_named(found, a.assigned_to),
        assigned_by=_named(found, a.assigned_by), assigned_at=a.assigned_at,
        closed_by=_named(found, a.closed_by), closed_at=a.closed_at,
        outcome=AlertOutcome(a.outcome) if a.outcome else None, note=a.note,
        position=a.updated_position,
    )


def _out(found: SubjectAccess, ig_lead: Actor, position: int, produced_at: datetime,
         flag_reasons: dict[int, tuple[str | None, str | None]]) -> SubjectAccessOut:
    facts = [_fact(found, f) for f in found.facts]
    flags = [HeldFlagOut(
        position=f.position, flag_id=f.flagged.flag_id, agency=f.flagged.agency,
        reason=flag_reasons[f.position][0] or "", flagged_at=f.flagged.timestamp,
        flagged_by=_person(found, f.flagged.flagged_by),
        removed_at=f.removed.timestamp if f.removed else None,
        removed_position=f.removed_position,
        removed_by=_person(found, f.removed.removed_by) if f.removed else None,
        removal_reason=flag_reasons[f.position][1],
        redaction_review=True, redaction_reason=f.redaction_review) for f in found.flags]
    safeguards = [HeldSafeguardOut(
        position=h.position, kind=h.kind, at=h.at, by=_person(found, h.by), reason=h.reason,
        redaction_review=h.redaction_review is not None, redaction_reason=h.redaction_review)
        for h in found.safeguards]
    alerts = [HeldAlertOut(alert=_alert(found, a.alert),
                           redaction_review=a.redaction_review is not None,
                           redaction_reason=a.redaction_review) for a in found.alerts]
    return SubjectAccessOut(
        client_id=found.client_id, controller=found.controller,
        produced_at=produced_at,
        produced_by=RecordedByOut(id=ig_lead.reference, name=ig_lead.name,
                                  agency=ig_lead.agency, role=ig_lead.role),
        position=position, registered_at=found.registered_at,
        registered_by=_person(found, found.registered_by),
        identity=IdentityOut(**found.identity.model_dump()), agencies=found.controllers,
        facts=facts,
        consents=[HeldConsentOut(
            position=c.position, consent_id=c.given.consent_id, controller=c.given.controller,
            recipient_agency=c.given.recipient_agency, recipient_kind=c.given.recipient_kind,
            categories=c.given.categories, purposes=c.given.purposes,
            data_from=c.given.data_from, data_to=c.given.data_to,
            expires_at=c.given.expires_at, obtained=c.given.obtained,
            given_at=c.given.timestamp, recorded_by=_person(found, c.given.recorded_by),
            withdrawn_at=c.withdrawn.timestamp if c.withdrawn else None,
            withdrawn_position=c.withdrawn_position,
            withdrawn_by=_person(found, c.withdrawn.recorded_by) if c.withdrawn else None,
            withdrawal_reason=c.withdrawn.reason if c.withdrawn else None,
            active=c.withdrawn is None) for c in found.consents],
        flags=flags, holds_and_restrictions=safeguards,
        emergency_access=[HeldGrantOut(
            position=g.position, grant_id=g.granted.grant_id, agency=g.granted.agency,
            principal=_person(found, g.granted.principal), purpose=g.granted.purpose,
            justification=g.granted.justification, clinical_notes=g.granted.clinical_notes,
            granted_at=g.granted.granted_at, expires_at=g.granted.expires_at,
            ended_at=g.ended.ended_at if g.ended else None,
            ended_by=_person(found, g.ended.ended_by) if g.ended else None,
            end_cause=g.ended.cause if g.ended else None,
            end_reason=g.ended.reason if g.ended else None,
            review=GrantReviewOut(
                review_id=g.review.review_id, status=g.review.status,
                outcome=g.review.outcome, note=g.review.note,
                closed_by=_person(found, g.review.closed_by) if g.review.closed_by else None,
                closed_at=g.review.closed_at)) for g in found.grants],
        alerts=alerts,
        disclosures=[HeldDisclosureOut(
            position=d.position, at=d.at, recipient=d.recipient,
            principal_name=d.principal_name, principal=_person(found, d.principal),
            role=d.role, action=d.action, purpose=d.purpose,
            items=[ReturnedItemOut(**item) for item in d.items]) for d in found.disclosures],
        redaction_reviews=sum(f.redaction_review for f in facts)
        + len(flags) + sum(h.redaction_review for h in safeguards)
        + sum(a.redaction_review for a in alerts),
    )
