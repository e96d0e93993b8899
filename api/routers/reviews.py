"""For IG leads: reviewing emergency (break-glass) access to their agency's clients."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import App, ReadEngine, ReviewCloser, ReviewReader, ViewsCaughtUp
from api.errors import error_responses
from api.models import ReviewClosedOut, ReviewCloseIn, ReviewOut
from domain.reviews import ReviewOutcome, ReviewStatus
from projections.reviews import ReviewItem, list_reviews

router = APIRouter(prefix="/v1/audit/reviews", tags=["ig leads"])


@router.get("", response_model=list[ReviewOut], responses=error_responses(403))
def list_open_or_closed(
    engine: ReadEngine,
    actor: ReviewReader,
    _: ViewsCaughtUp,
    status: Annotated[ReviewStatus | None, Query(description="open or closed; both if "
                                                 "omitted")] = None,
) -> list[ReviewOut]:
    """Reviews of emergency access to clients whose data the caller's agency controls:
    those it closes (as the registering controller) and those it is told of. With
    ``min_position``, it first waits (without holding a thread) for the inbox to catch up."""
    return [_out(item) for item in list_reviews(engine, actor.agency, status)]


@router.post("/{review_id}", response_model=ReviewClosedOut,
             responses=error_responses(403, 404, 409))
def close(review_id: UUID, body: ReviewCloseIn, app: App,
          actor: ReviewCloser) -> ReviewClosedOut:
    """The registering controller's IG lead closes the review with an outcome and a note.
    Closed as `not_justified`, a grant still running ends at once (the position returned
    is the end's too). Closing twice is a 409; another agency's review is a 404."""
    review, position = app.close_review(review_id, body.outcome, body.note, actor)
    return ReviewClosedOut(review_id=review.id, status=review.status,
                           outcome=ReviewOutcome(body.outcome), position=position)


def _out(item: ReviewItem) -> ReviewOut:
    return ReviewOut(
        review_id=item.review_id, status=item.status, controller=item.controller,
        client_id=item.client_id, grant_id=item.grant_id, granted_to=item.granted_to,
        principal=item.principal, principal_name=item.principal_name, role=item.role,
        purpose=item.purpose, justification=item.justification,
        clinical_notes=item.clinical_notes, granted_at=item.granted_at,
        expires_at=item.expires_at, position=item.position,
        outcome=ReviewOutcome(item.outcome) if item.outcome else None, note=item.note,
        closed_by=item.closed_by, closed_at=item.closed_at,
        grant_ended_at=item.grant_ended_at, grant_ended_by=item.grant_ended_by,
        grant_end_cause=item.grant_end_cause,
    )
