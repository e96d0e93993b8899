"""For IG leads: who saw what, about whom, why; and what a partner could see at a moment."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.access import returned_item
from api.deps import Access, AccessAuditor, App, DisclosureReader, Index, Replayer
from api.errors import error_responses
from api.models import (
    AccessOut,
    CorrectionOut,
    DisclosureOut,
    ReplayFactOut,
    ReplayOut,
    ReturnedItemOut,
    WithheldFactOut,
)
from consent.state import Correction
from domain.access import ATTEMPTS, AccessAction, AccessOutcome
from domain.agencies import SLUG
from domain.errors import ClientNotFound, InvalidCommand
from domain.inputs import AwareIsoDatetime, parse_moment, parse_position
from domain.sealing import open_reason, opened
from domain.vocabulary import Purpose
from projections.audit import Access as AccessRow
from projections.audit import AccessIndex
from projections.queries import LEGAL_CLAIM
from projections.replay import PointInTime, ReplayedFact

router = APIRouter(tags=["ig leads"])
#: What a principal is recorded as: its id, or ``operator:cli``.
PRINCIPAL_REFERENCE = r"^[A-Za-z0-9:_-]{1,64}$"
#: How long a read of the audit index waits for records appended just before it.
MAX_WAIT_SECONDS = 2.0



def _current(index: AccessIndex, app: App) -> None:
    """Read-your-writes: the index includes every access recorded before this request."""
    with contextlib.suppress(TimeoutError):
        index.tracking.wait(index.name, app.head_position(), timeout=MAX_WAIT_SECONDS)


def _about(item: dict[str, Any], row: AccessRow) -> UUID | None:
    """The client a returned item is about: its own, or the read's one client."""
    return UUID(str(item["client_id"])) if item.get("client_id") else row.client_id


def _out(row: AccessRow, for_agency: str, held: set[UUID],
         client_id: UUID | None = None) -> AccessOut:
    """One access as an IG lead of ``for_agency`` may see it. Its own staff's accesses in
    full; anyone else's only as far as they concern the agency: the items of its data,
    and the clients those are about or (for an attempt) that it holds a record of. With
    a ``client_id`` filter, only the items about that client.

    A client the access found without telling its caller (``withheld_client_ids``, which
    the index gives only to an agency holding that client's record, and never for its
    own staff's accesses) is named like an attempt's client; where the agency sees the
    access for that alone, its outcome is ``no_match``: what the caller was told of it."""
    own_staff = row.agency == for_agency
    items = [item for item in row.returned
             if (own_staff or item["controller"] == for_agency)
             and (client_id is None or _about(item, row) in (None, client_id))]
    withheld = [] if own_staff else list(row.withheld_client_ids)
    outcome = row.outcome
    if own_staff:
        clients = list(row.client_ids)
    else:
        mine = {_about(item, row) for item in items}
        clients = [c for c in row.client_ids if c in mine or c in held]
        if withheld and not clients and not items:
            outcome = AccessOutcome.NO_MATCH.value
        clients += [c for c in withheld if c not in clients]
    named = row.client_id if own_staff or row.client_id in clients else None
    if named is None and len(withheld) == 1 and clients == withheld:
        named = withheld[0]
    return AccessOut(
        position=row.position, access_id=row.access_id, at=row.at, principal=row.principal,
        principal_name=row.principal_name, agency=row.agency, role=row.role,
        action=row.action, purpose=row.purpose, client_id=named,
        client_ids=clients, subject_agency=row.subject_agency, outcome=outcome,
        detail=row.detail if own_staff else None,
        returned=[ReturnedItemOut(**item) for item in items],
    )


@router.get("/v1/audit/accesses", response_model=list[AccessOut],
            responses=error_responses(403, 503))
def accesses(
    app: App,
    index: Index,
    ig_lead: AccessAuditor,
    client_id: UUID | None = None,
    agency: Annotated[str | None, Query(max_length=64, pattern=SLUG.pattern,
                                        description="who read")] = None,
    principal: Annotated[str | None, Query(max_length=64, pattern=PRINCIPAL_REFERENCE,
                                           description="a principal id, or operator:cli")]
    = None,
    from_: Annotated[AwareIsoDatetime | None, Query(alias="from")] = None,
    to: AwareIsoDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[AccessOut]:
    """Reads of data your agency controls, reads made by your own staff, and attempts by
    anyone on a client your agency holds a record of that found nothing or were refused
    (outcome ``not_found`` or ``refused``: reads, and writes such as recording a fact),
    newest first; and partners' matches and name searches that found your client without
    telling them of it (outcome ``no_match`` as you see it; their own IG lead sees no
    client). Items of other agencies' data in your partners' reads are left out."""
    if from_ is not None and to is not None and to <= from_:
        raise InvalidCommand("to", "must be after from")
    _current(index, app)
    rows = index.accesses(ig_lead.agency, client_id=client_id, agency=agency,
                          principal=principal, since=from_, until=to, limit=limit)
    # The clients in partners' attempts that this agency holds a record of (its own
    # staff's accesses it sees whole).
    held = index.held(ig_lead.agency, sorted({
        c for row in rows if row.agency != ig_lead.agency and row.outcome in ATTEMPTS
        for c in row.client_ids}))
    return [_claim_opened(app, _out(row, ig_lead.agency, held, client_id)) for row in rows]


def _claim_opened(app: App, out: AccessOut) -> AccessOut:
    """A read of a restricted client names the legal claim it stated, sealed with the
    client's data key in its record (``projections.queries.legal_claim``): opened here
    for the reader's own IG lead; once the client is erased it is gone."""
    if out.detail is None or out.client_id is None or LEGAL_CLAIM not in out.detail:
        return out
    before, _, sealed = out.detail.partition(LEGAL_CLAIM)
    claim = open_reason(app.vault, out.client_id, sealed)
    return out.model_copy(update={
        "detail": before + LEGAL_CLAIM + (claim if claim is not None else "(erased)")})


@router.get("/v1/clients/{client_id}/disclosures", response_model=list[DisclosureOut],
            responses=error_responses(403, 404, 503))
def disclosures(client_id: UUID, app: App, index: Index, access: Access,
                actor: DisclosureReader) -> list[DisclosureOut]:
    """Every disclosure of your agency's data about the client to another agency: when,
    to whom, for what purpose and on what basis (for a subject access request)."""
    with access.reading(actor, AccessAction.DISCLOSURES, client_id=client_id,
                        purpose=None) as read:
        app.require_controller(client_id, actor)
        _current(index, app)
        rows = index.disclosures(actor.agency, client_id)
        read.returned([])
    return [
        DisclosureOut(
            at=row.at, recipient=row.agency, principal_name=row.principal_name,
            role=row.role, action=row.action, purpose=row.purpose,
            items=[ReturnedItemOut(**i) for i in row.returned
                   if i["controller"] == actor.agency and _about(i, row) == client_id],
        )
        for row in rows
    ]


def _moment(raw: str | None) -> tuple[int | None, datetime | None]:
    """``at`` is a log position (ASCII digits) or an ISO 8601 timestamp with a time zone.

    Not ``str.isdigit``: it accepts ``"²"`` and ``"١٢"``, which ``int`` does not read."""
    if raw is None:
        return None, None
    if raw[:1].isascii() and raw[:1].isdigit() and "-" not in raw:
        try:
            return parse_position(raw), None
        except ValueError as exc:
            raise InvalidCommand("at", str(exc)) from None
    try:
        moment = parse_moment(raw)
    except ValueError:
        raise InvalidCommand("at", "give a log position (ASCII digits) or an ISO 8601 "
                                   "timestamp, e.g. 2026-01-05T09:30:00Z") from None
    if moment.tzinfo is None:
        raise InvalidCommand("at", "a timestamp needs a time zone, e.g. 2026-01-05T09:30:00Z")
    return None, moment


@router.get("/v1/audit/replay", response_model=ReplayOut,
            responses=error_responses(403, 404, 503))
def replay(
    app: App,
    access: Access,
    ig_lead: Replayer,
    agency: Annotated[str, Query(max_length=64, pattern=SLUG.pattern,
                                 description="whose view to rebuild")],
    client_id: UUID,
    purpose: Purpose,
    at: Annotated[str | None, Query(max_length=40, description="a log position or an "
                                    "ISO 8601 timestamp; the head of the log if omitted")]
    = None,
) -> ReplayOut:
    """What ``agency`` could see of the client for ``purpose`` at ``at``, each fact with the
    basis that permitted it; and, for the controller's IG lead, each of its facts that was
    withheld with the rule that withheld it. The agency's own IG lead sees what it could
    see; the controller's sees only its own data. Anyone else gets 404."""
    position, moment = _moment(at)
    subject = app.agency(agency)
    with access.reading(ig_lead, AccessAction.REPLAY, client_id=client_id,
                        purpose=purpose.value, subject_agency=agency) as read:
        result = PointInTime(app).replay(agency, subject.kind, client_id, purpose.value,
                                         position=position, at=moment)
        own_view = ig_lead.agency == agency
        shown = [f for f in result.facts
                 if f.controller == ig_lead.agency or (own_view and f.permitted)]
        if not shown and (own_view or not app.controls(client_id, ig_lead.agency)):
            raise ClientNotFound()
        read.returned(returned_item(f.position, f.category, f.controller,
                                    f.basis or {"kind": "controller"}) for f in shown)
    def corrections(fact: ReplayedFact) -> list[CorrectionOut]:
        return [_correction(c, fact, ig_lead.agency) for c in fact.amendments]

    # Free text is sealed in the log: opened as the view opens it (gone once erased).
    data = dict(zip((f.position for f in shown), opened(
        app.vault, client_id, [(f.fact_type, f.data) for f in shown]), strict=True))

    return ReplayOut(
        agency=agency, client_id=client_id, purpose=purpose, position=result.position,
        at=result.at,
        permitted=[ReplayFactOut(position=f.position, type=f.fact_type, category=f.category,
                                 controller=f.controller, occurred_at=f.occurred_at,
                                 recorded_at=f.recorded_at, data=data[f.position] or {},
                                 basis=f.basis or {}, reasons=list(f.reasons),
                                 amendments=corrections(f))
                   for f in shown if f.permitted],
        withheld=[WithheldFactOut(position=f.position, type=f.fact_type, category=f.category,
                                  controller=f.controller, occurred_at=f.occurred_at,
                                  reasons=list(f.reasons), amendments=corrections(f),
                                  retraction=_correction(f.retraction, f, ig_lead.agency)
                                  if f.retraction else None)
                  for f in shown if not f.permitted],
    )


def _correction(correction: Correction, fact: ReplayedFact, agency: str) -> CorrectionOut:
    """A correction as an IG lead is shown it: when and at which position to anyone who
    sees the fact; who made it and why to the fact's controller only (the reason is its
    own words about its own record)."""
    own = fact.controller == agency
    return CorrectionOut(position=correction.position, at=correction.at,
                         by=correction.by if own else None,
                         reason=correction.reason if own else None)
