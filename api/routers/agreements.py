"""For IG leads: the register of data-sharing agreements."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api.deps import (
    AgreementAmender,
    AgreementApprover,
    AgreementLister,
    AgreementProposer,
    AgreementReader,
    AgreementRevoker,
    App,
)
from api.errors import error_responses
from api.models import AgreementOut, RevokeIn
from domain.agreements import Agreement, AgreementTerms
from projections import queries

router = APIRouter(prefix="/v1/agreements", tags=["ig leads"])


def agreement_out(agreement: Agreement) -> AgreementOut:
    return AgreementOut(
        agreement_id=agreement.id, controller=agreement.controller,
        recipient=agreement.recipient, status=agreement.status,
        amendment_proposed=agreement.amendment_proposed, version=agreement.latest,
        version_in_force=agreement.in_force, approvals=dict(agreement.approvals),
        terms=agreement.terms(),
        terms_in_force=agreement.terms(agreement.in_force) if agreement.in_force else None,
        revoked_reason=agreement.revoked_reason,
        versions=[agreement.terms(v) for v in range(1, agreement.latest + 1)],
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AgreementOut,
             responses=error_responses(403, 404, 409))
def propose(terms: AgreementTerms, app: App, ig_lead: AgreementProposer) -> AgreementOut:
    """The controller's IG lead proposes an agreement; the caller's agency is the controller."""
    return agreement_out(app.propose_agreement(terms, ig_lead))


@router.post("/{agreement_id}/approve", response_model=AgreementOut,
             responses=error_responses(403, 404, 409))
def approve(agreement_id: UUID, app: App, ig_lead: AgreementApprover) -> AgreementOut:
    """An IG lead of either party approves the latest terms; with both it comes into force."""
    return agreement_out(app.approve_agreement(agreement_id, ig_lead))


@router.post("/{agreement_id}/amend", response_model=AgreementOut,
             responses=error_responses(403, 404, 409))
def amend(agreement_id: UUID, terms: AgreementTerms, app: App,
          ig_lead: AgreementAmender) -> AgreementOut:
    """Proposes new terms as the next version; the terms in force stay until both approve."""
    return agreement_out(app.amend_agreement(agreement_id, terms, ig_lead))


@router.post("/{agreement_id}/revoke", response_model=AgreementOut,
             responses=error_responses(403, 404, 409))
def revoke(agreement_id: UUID, body: RevokeIn, app: App,
           ig_lead: AgreementRevoker) -> AgreementOut:
    """Either party's IG lead revokes; views lose what it shared."""
    return agreement_out(app.revoke_agreement(agreement_id, body.reason, ig_lead))


@router.get("", response_model=list[AgreementOut], responses=error_responses())
def list_agreements(app: App, actor: AgreementLister) -> list[AgreementOut]:
    """Agreements to which the caller's agency is a party."""
    return [agreement_out(a) for a in queries.agreements(app, actor)]


@router.get("/{agreement_id}", response_model=AgreementOut, responses=error_responses(404))
def read_agreement(agreement_id: UUID, app: App, actor: AgreementReader) -> AgreementOut:
    return agreement_out(queries.agreement(app, agreement_id, actor))
