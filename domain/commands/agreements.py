"""Commands on data-sharing agreements: proposing, approving, amending and revoking (the
agreement keeps its own rules). The register is read on the read side
(``projections.queries``)."""

from __future__ import annotations

from uuid import UUID

from domain.agreements import Agreement, AgreementTerms
from domain.commands.core import ApplicationCore
from domain.errors import AgreementNotFound
from domain.permissions import Action, require
from domain.results import Actor


class AgreementCommands(ApplicationCore):
    """The register of data-sharing agreements, for the parties' IG leads."""

    def propose_agreement(self, terms: AgreementTerms, by: Actor) -> Agreement:
        """The controller's IG lead proposes; nothing is shared until both parties approve."""
        require(Action.PROPOSE_AGREEMENT, by)
        self.agency(terms.recipient)

        def attempt() -> Agreement:
            agreement = Agreement.propose(by.agency, terms, proposed_by=by.reference)
            controller, recipient = self.agency(by.agency), self.agency(terms.recipient)
            controller.join_agreement(agreement.id)
            recipient.join_agreement(agreement.id)
            self.save(agreement, controller, recipient)
            return agreement

        return self._retrying(attempt)

    def approve_agreement(self, agreement_id: UUID, by: Actor) -> Agreement:
        """An IG lead of either party approves the latest terms; with both, they come into force."""
        require(Action.APPROVE_AGREEMENT, by)

        def attempt() -> Agreement:
            agreement = self._agreement_of_party(agreement_id, by)
            agreement.approve(agency=by.agency, approved_by=by.reference)
            self.save(agreement)
            return agreement

        return self._retrying(attempt)

    def amend_agreement(self, agreement_id: UUID, terms: AgreementTerms, by: Actor) -> Agreement:
        """The controller's IG lead proposes new terms as the next version."""
        require(Action.AMEND_AGREEMENT, by)

        def attempt() -> Agreement:
            agreement = self._agreement_of_party(agreement_id, by)
            agreement.amend(terms, proposed_by=by.reference, agency=by.agency)
            self.save(agreement)
            return agreement

        return self._retrying(attempt)

    def revoke_agreement(self, agreement_id: UUID, reason: str, by: Actor) -> Agreement:
        require(Action.REVOKE_AGREEMENT, by)

        def attempt() -> Agreement:
            agreement = self._agreement_of_party(agreement_id, by)
            agreement.revoke(agency=by.agency, reason=reason, revoked_by=by.reference)
            self.save(agreement)  # nothing, if it was revoked already
            return agreement

        return self._retrying(attempt)

    def _agreement_of_party(self, agreement_id: UUID, by: Actor) -> Agreement:
        agreement = self._get(agreement_id, Agreement)
        if agreement is None or by.agency not in agreement.parties:
            raise AgreementNotFound()
        return agreement
