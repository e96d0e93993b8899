"""Commands on a client's consent to share: giving and withdrawing it (the client
aggregate keeps each consent to the agency that recorded it)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID, uuid4

from domain.agencies import AgencyKind
from domain.clients import (
    Client,
    NhsNumberIndex,
    check_consent_recipient,
    check_data_period,
    nhs_index_id,
)
from domain.commands.core import ApplicationCore, check_aware
from domain.errors import ClientNotFound
from domain.identity import nhs_match_key
from domain.permissions import Action, require
from domain.results import Actor


class ConsentCommands(ApplicationCore):
    """Consents recorded by the agency whose data they cover."""

    def give_consent(
        self,
        client_id: UUID,
        *,
        recipient_agency: str | None,
        recipient_kind: AgencyKind | None,
        categories: list[str],
        purposes: list[str],
        data_from: date | None,
        data_to: date | None,
        expires_at: datetime | None,
        obtained: str,
        by: Actor,
    ) -> tuple[UUID, int]:
        """Records the client's consent to share the caller agency's data; returns its id."""
        require(Action.GIVE_CONSENT, by)
        kind = recipient_kind.value if recipient_kind else None
        # Checked before the client is looked up (the aggregate checks them again): bad
        # terms are refused the same whoever the client is.
        check_consent_recipient(recipient_agency, kind)
        if recipient_agency is not None:
            self.agency(recipient_agency)
        check_data_period(data_from, data_to)
        if expires_at is not None:
            expires_at = check_aware("expires_at", expires_at)
        consent_id = uuid4()

        def attempt() -> int:
            client = self._client(client_id)
            # The aggregate refuses an agency holding no record of the client as unknown.
            client.give_consent(
                consent_id=consent_id, controller=by.agency, recipient_agency=recipient_agency,
                recipient_kind=kind,
                categories=sorted(set(categories)), purposes=sorted(set(purposes)),
                data_from=data_from, data_to=data_to, expires_at=expires_at,
                obtained=obtained, recorded_by=by.reference,
            )
            return self._position(self.save(client))

        return consent_id, self._retrying(attempt)

    def client_registered_by(self, nhs_number: str, by: Actor) -> UUID | None:
        """The client the caller's agency registered under this NHS number, if any (not
        one since erased): a consent a partner system sends names the client by NHS
        number, and the agency's own registration is the one it certainly means."""
        require(Action.GIVE_CONSENT, by)
        index = self._get(nhs_index_id(by.agency, self.vault.fingerprint(
            nhs_match_key(nhs_number))), NhsNumberIndex)
        if index is None or index.client_id is None:
            return None
        client = self._get(index.client_id, Client)
        return None if client is None or client.erased else index.client_id

    def withdraw_consent(self, client_id: UUID, consent_id: UUID, reason: str, by: Actor) -> int:
        """Withdrawal takes effect at its log position: views lose the facts it covered."""
        require(Action.WITHDRAW_CONSENT, by)

        def attempt() -> int:
            client = self._client(client_id)
            if by.agency not in client.controllers:
                raise ClientNotFound()
            # The aggregate refuses another agency's consent as unknown, and a second
            # withdrawal as a conflict (domain/clients.py).
            client.withdraw_consent(consent_id=consent_id, reason=reason,
                                    recorded_by=by.reference, agency=by.agency)
            return self._position(self.save(client))

        return self._retrying(attempt)
