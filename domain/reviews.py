"""IG review items: each emergency (break-glass) grant is reviewed by the controller.

A ``Review`` is a new aggregate per grant, created in the same transaction as the
grant on the client's stream, so a grant never exists without its review. It is
addressed to the client's registering controller, whose IG lead closes it with an
outcome and a note; the other agencies whose data the grant covered at the time
(``audience``) see it too. Lifecycle: open, then closed once (a second close conflicts).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.agencies import namespaced_uuid
from domain.errors import Conflict, Forbidden


class ReviewOutcome(StrEnum):
    """What the controller's IG lead concluded about an emergency access."""

    JUSTIFIED = "justified"
    NOT_JUSTIFIED = "not_justified"
    ESCALATED = "escalated"


class ReviewStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Review(Aggregate):
    """The IG review of one emergency grant."""

    @staticmethod
    def create_id(grant_id: UUID, **_: Any) -> UUID:
        return review_id_for(grant_id)

    class Opened(Aggregate.Created):
        grant_id: UUID
        client_id: UUID
        controller: str
        audience: list[str]
        granted_to: str
        principal: str
        principal_name: str
        role: str
        purpose: str
        justification: str
        clinical_notes: bool
        granted_at: datetime
        expires_at: datetime

    @event(Opened)
    def __init__(
        self,
        grant_id: UUID,
        client_id: UUID,
        controller: str,
        audience: list[str],
        granted_to: str,
        principal: str,
        principal_name: str,
        role: str,
        purpose: str,
        justification: str,
        clinical_notes: bool,
        granted_at: datetime,
        expires_at: datetime,
    ) -> None:
        self.grant_id = grant_id
        self.client_id = client_id
        self.controller = controller
        self.audience = list(audience)
        self.granted_to = granted_to
        self.outcome: ReviewOutcome | None = None

    @property
    def status(self) -> ReviewStatus:
        return ReviewStatus.OPEN if self.outcome is None else ReviewStatus.CLOSED

    class Closed(Aggregate.Event):
        outcome: str
        note: str
        closed_by: str

    def close(self, outcome: str, note: str, closed_by: str, *, agency: str) -> None:
        """The registering controller (``agency`` is the closer's) closes the review with
        an outcome, once: a second close conflicts."""
        if agency != self.controller:
            raise Forbidden("only the IG lead of the client's registering controller "
                            "closes this review")
        if self.outcome is not None:
            raise Conflict(f"this review is already closed ({self.outcome.value})")
        self._close(outcome=ReviewOutcome(outcome).value, note=note, closed_by=closed_by)

    @event(Closed)
    def _close(self, outcome: str, note: str, closed_by: str) -> None:
        self.outcome = ReviewOutcome(outcome)


def review_id_for(grant_id: UUID) -> UUID:
    """A grant's review has a stable id derived from the grant."""
    return namespaced_uuid(f"review/{grant_id}")
