"""Emergency (break-glass) access: granting it with its IG review in one transaction,
closing the review (ending a grant judged not justified), and ending a grant early."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain.agencies import CLINICAL_KINDS
from domain.clients import Client, EmergencyEndCause, check_emergency_request
from domain.commands.core import ApplicationCore
from domain.errors import ClientNotFound, InvalidCommand, ReviewNotFound
from domain.permissions import Action, require
from domain.results import Actor, EmergencyGrant
from domain.reviews import Review, ReviewOutcome, review_id_for
from domain.vocabulary import Purpose


class EmergencyCommands(ApplicationCore):
    """Break-glass grants and their reviews by the registering controller's IG lead."""

    def grant_emergency_access(
        self, client_id: UUID, purpose: Purpose, justification: str, minutes: int, by: Actor
    ) -> EmergencyGrant:
        """Rule 5: a named practitioner or safeguarding officer of a partner agency sees the
        client for one purpose for at most 24 hours, and the controller's IG lead reviews it.

        Everything that does not depend on the client is checked first, so those refusals
        say nothing about it. An unknown and an erased client are the same 404. A grant for
        a client the caller could not otherwise see does confirm that the id is a client:
        that is unavoidable (it is the point of breaking glass), and it is never silent:
        the grant is on the client's stream, it is the basis views and replays name, and it
        opens a review for the controller's IG lead in the same transaction."""
        require(Action.GRANT_EMERGENCY_ACCESS, by)
        justification = check_emergency_request(purpose, justification, minutes)
        grant_id = uuid4()
        review_id = review_id_for(grant_id)
        assert by.agency_kind is not None  # the permission admits only agencies of a kind
        kind, clinical = by.agency_kind, by.agency_kind in CLINICAL_KINDS

        def attempt() -> EmergencyGrant:
            # The aggregate refuses an erased client (as unknown) and the client's own
            # registering agency (it sees its own record).
            client = self._client(client_id)
            granted_at = self.clock().astimezone(UTC)
            expires_at = granted_at + timedelta(minutes=minutes)
            # The registering controller reviews; other controllers of the client's data
            # (except the caller's own agency) are told too.
            audience = [client.controller,
                        *sorted(client.controllers - {client.controller, by.agency})]
            terms: dict[str, Any] = {
                "agency": by.agency, "principal": by.reference, "principal_name": by.name,
                "role": by.role.value, "purpose": Purpose(purpose).value,
                "justification": justification, "clinical_notes": clinical,
                "granted_at": granted_at, "expires_at": expires_at,
            }
            client.grant_emergency_access(
                grant_id=grant_id, review_id=review_id, agency_kind=kind.value, **terms,
            )
            review = Review(
                grant_id=grant_id, client_id=client_id, controller=client.controller,
                audience=audience, granted_to=terms.pop("agency"), **terms,
            )
            position = self._position(self.save(client, review))
            return EmergencyGrant(grant_id, review_id, granted_at, expires_at, position)

        return self._retrying(attempt)

    def close_review(
        self, review_id: UUID, outcome: ReviewOutcome, note: str, by: Actor
    ) -> tuple[Review, int]:
        """The registering controller's IG lead closes a review, once, with an outcome.

        A review the caller's agency is not told of is a 404, as for an unknown one.
        Closed as ``not_justified``, a grant still running ends in the same transaction
        (an ``EmergencyAccessEnded`` on the client's stream, at that log position): an
        access judged unjustified must not go on until it expires."""
        require(Action.CLOSE_REVIEW, by)

        def attempt() -> tuple[Review, int]:
            review = self._get(review_id, Review)
            if review is None or by.agency not in review.audience:
                raise ReviewNotFound()
            review.close(outcome=outcome, note=note, closed_by=by.reference, agency=by.agency)
            changed: list[Aggregate] = [review]
            if ReviewOutcome(outcome) is ReviewOutcome.NOT_JUSTIFIED:
                now = self.clock().astimezone(UTC)
                client = self._get(review.client_id, Client)
                if (client is not None and not client.erased
                        and client.emergency_access_running(review.grant_id, now)):
                    client.end_emergency_access(
                        review.grant_id, agency=by.agency, ended_at=now,
                        cause=EmergencyEndCause.REVIEW_NOT_JUSTIFIED, reason=note,
                        ended_by=by.reference,
                    )
                    changed.append(client)
            return review, self._position(self.save(*changed))

        return self._retrying(attempt)

    def end_emergency_access(self, client_id: UUID, grant_id: UUID, reason: str,
                             by: Actor) -> int:
        """The IG lead of the client's registering controller ends a running emergency
        grant now; returns the log position from which it shows nothing.

        Anyone else gets the same 404 as for an unknown client (an agency holding no
        record of the client) or an unknown grant (one that does, such as the grantee
        once it has recorded a fact). A grant already ended or expired is a 409."""
        require(Action.END_EMERGENCY_ACCESS, by)
        reason = reason.strip()
        if not reason:
            raise InvalidCommand("reason", "say why the emergency access is ended")

        def attempt() -> int:
            client = self._client(client_id)
            if client.erased or by.agency not in client.controllers:
                raise ClientNotFound()
            client.end_emergency_access(
                grant_id, agency=by.agency, ended_at=self.clock().astimezone(UTC),
                cause=EmergencyEndCause.ENDED_BY_IG_LEAD, reason=reason,
                ended_by=by.reference,
            )
            return self._position(self.save(client))

        return self._retrying(attempt)
