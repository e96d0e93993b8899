"""The IG review inbox: emergency-grant reviews, by the agencies told of them.

The rows are written by the agency-views projector in the same transaction as its view
rows and tracked position (``index``), so they follow the log wherever the views run (in
the API process and in ``accord worker``), survive a crash without loss or repetition,
and are rebuilt with the views. Each row also says whether the grant was ended before
it expired, when, by whom and why (``grant_ended``, from the client's stream). Closing
a review reads the ``Review`` aggregate itself; this index only answers "which reviews
may my agency see".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, insert, select, update

from domain.clients import Client
from domain.reviews import Review, ReviewStatus
from infra.dialect import as_utc
from infra.schema import review_audience, reviews

TABLES = (reviews, review_audience)


@dataclass(frozen=True)
class ReviewItem:
    review_id: UUID
    controller: str
    client_id: UUID
    grant_id: UUID
    granted_to: str
    principal: str
    principal_name: str
    role: str
    purpose: str
    justification: str
    clinical_notes: bool
    granted_at: datetime
    expires_at: datetime
    position: int
    status: ReviewStatus
    outcome: str | None
    note: str | None
    closed_by: str | None
    closed_at: datetime | None
    grant_ended_at: datetime | None
    grant_ended_by: str | None
    grant_end_cause: str | None


def index(conn: Connection, event: Any, position: int) -> None:
    """Applies one ``Review`` event to the inbox, inside the projector's transaction."""
    if isinstance(event, Review.Opened):
        review_id = event.originator_id.hex
        conn.execute(insert(reviews).values(
            review_id=review_id, controller=event.controller, client_id=event.client_id.hex,
            grant_id=event.grant_id.hex, granted_to=event.granted_to,
            principal=event.principal, principal_name=event.principal_name, role=event.role,
            purpose=event.purpose, justification=event.justification,
            clinical_notes=event.clinical_notes, granted_at=event.granted_at,
            expires_at=event.expires_at, opened_position=position,
            status=ReviewStatus.OPEN.value,
        ))
        conn.execute(insert(review_audience), [
            {"agency": agency, "review_id": review_id} for agency in dict.fromkeys(event.audience)
        ])
    elif isinstance(event, Review.Closed):
        conn.execute(update(reviews).where(reviews.c.review_id == event.originator_id.hex).values(
            status=ReviewStatus.CLOSED.value, outcome=event.outcome, note=event.note,
            closed_by=event.closed_by, closed_at=event.timestamp,
        ))


def grant_ended(conn: Connection, event: Client.EmergencyAccessEnded) -> None:
    """Marks the review of a grant ended before it expired, inside the projector's
    transaction (the grant's review was opened in the same transaction as the grant)."""
    conn.execute(update(reviews).where(reviews.c.review_id == event.review_id.hex).values(
        grant_ended_at=event.ended_at, grant_ended_by=event.ended_by,
        grant_end_cause=event.cause,
    ))


def list_reviews(engine: Engine, agency: str,
                 status: ReviewStatus | None = None) -> list[ReviewItem]:
    """The reviews the agency is told of (as controller of the client's data), oldest first.
    Only the caller's own audience rows are read."""
    query = (
        select(reviews)
        .join(review_audience, review_audience.c.review_id == reviews.c.review_id)
        .where(review_audience.c.agency == agency)
        .order_by(reviews.c.opened_position)
    )
    if status is not None:
        query = query.where(reviews.c.status == status.value)
    with engine.connect() as conn:
        return [_item(row) for row in conn.execute(query)]


def _item(row: Any) -> ReviewItem:
    return ReviewItem(
        review_id=UUID(hex=row.review_id), controller=row.controller,
        client_id=UUID(hex=row.client_id), grant_id=UUID(hex=row.grant_id),
        granted_to=row.granted_to, principal=row.principal, principal_name=row.principal_name,
        role=row.role, purpose=row.purpose, justification=row.justification,
        clinical_notes=bool(row.clinical_notes), granted_at=as_utc(row.granted_at),
        expires_at=as_utc(row.expires_at), position=row.opened_position,
        status=ReviewStatus(row.status), outcome=row.outcome, note=row.note,
        closed_by=row.closed_by, closed_at=as_utc(row.closed_at),
        grant_ended_at=as_utc(row.grant_ended_at), grant_ended_by=row.grant_ended_by,
        grant_end_cause=row.grant_end_cause,
    )
