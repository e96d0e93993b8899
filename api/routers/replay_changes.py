"""For IG leads: where a replay's answer changes, to step through time from one change to
the next (``projections.replay_changes``)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.access import returned_item
from api.deps import Access, App, Replayer
from api.errors import error_responses
from api.models import ReplayChangeOut, ReplayChangesOut
from domain.access import AccessAction
from domain.agencies import SLUG
from domain.errors import ClientNotFound
from domain.vocabulary import Purpose
from projections.replay_changes import ReplayChanges, shown_to

router = APIRouter(tags=["ig leads"])


@router.get("/v1/audit/replay/changes", response_model=ReplayChangesOut,
            responses=error_responses(403, 404, 503))
def replay_changes(
    app: App,
    access: Access,
    ig_lead: Replayer,
    agency: Annotated[str, Query(max_length=64, pattern=SLUG.pattern,
                                 description="whose view to rebuild")],
    client_id: UUID,
    purpose: Purpose,
) -> ReplayChangesOut:
    """Each log position from which ``GET /v1/audit/replay`` gives a different answer
    (other facts, or the same facts permitted, withheld, masked, based or explained
    otherwise), oldest first, up to the head of the log: replay at a change's position to
    see that answer. What counts is what the replay shows the caller (its own agency's
    view whole; another agency's view only as far as its own facts), and the same callers
    get 404. Recorded as a replay, with every fact any of the answers showed."""
    subject = app.agency(agency)
    with access.reading(ig_lead, AccessAction.REPLAY, client_id=client_id,
                        purpose=purpose.value, subject_agency=agency) as read:
        found = ReplayChanges(app).changes(agency, subject.kind, client_id, purpose.value,
                                           shown_to(ig_lead.agency, agency))
        if not found.facts and (ig_lead.agency == agency
                                or not app.controls(client_id, ig_lead.agency)):
            raise ClientNotFound()
        read.returned(
            (returned_item(f.position, f.category, f.controller,
                           f.basis or {"kind": "controller"})
             for f in sorted(found.facts.values(), key=lambda f: f.position)),
            detail="the positions at which the replay's answer changed")
    return ReplayChangesOut(
        agency=agency, client_id=client_id, purpose=purpose, head=found.head,
        changes=[ReplayChangeOut(position=c.position, at=c.at, permitted=c.permitted,
                                 withheld=c.withheld) for c in found.changes],
    )
