"""Commands about clients: registering one (sealing the identity at once, one client per
NHS number and agency), recording a fact, and erasure by crypto-shredding."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from domain.catalogue import fact_type
from domain.clients import Client, NhsNumberIndex, nhs_index_id
from domain.commands.core import ApplicationCore, check_occurred_at
from domain.errors import ClientAlreadyRegistered, ClientNotFound
from domain.identity import Identity, name_match_key, nhs_match_key
from domain.permissions import Action, require
from domain.results import Actor


class ClientCommands(ApplicationCore):
    """Registering clients, recording facts, the own record, erasure."""

    def register_client(self, identity: Identity, by: Actor) -> tuple[UUID, int]:
        """Registers a client of the caller's agency; returns (client id, log position)."""
        require(Action.REGISTER_CLIENT, by)
        fingerprint = self.vault.fingerprint(nhs_match_key(identity.nhs_number))
        existing = self._indexed_client(by.agency, fingerprint)
        if existing is not None:
            raise ClientAlreadyRegistered(existing)
        client_id = uuid4()
        sealed = self.vault.seal(client_id, identity)
        client = Client(
            id=client_id, controller=by.agency, registered_by=by.reference,
            sealed_identity=sealed, nhs_fingerprint=fingerprint,
            name_fingerprint=self.vault.fingerprint(
                name_match_key(identity.family_name, identity.date_of_birth)
            ),
        )
        index = self._get(nhs_index_id(by.agency, fingerprint), NhsNumberIndex)
        if index is None:
            index = NhsNumberIndex(agency=by.agency, fingerprint=fingerprint, client_id=client_id)
        else:  # whoever was registered under the number has been erased
            previous = self._get(index.client_id, Client) if index.client_id else None
            if previous is not None and previous.erased:
                # An index written before erasures released it still names the erased client.
                index.release(erased=previous.id)
            try:
                index.reassign(client_id=client_id)
            except ClientAlreadyRegistered:  # registered meanwhile by a concurrent request
                self.vault.shred(client_id)
                raise
        try:
            recordings = self.save(client, index)
        except IntegrityError:
            self.vault.shred(client_id)  # the losing registration's key protects nothing
            raise ClientAlreadyRegistered(
                self._indexed_client(by.agency, fingerprint) or client_id
            ) from None
        return client_id, self._position(recordings)

    def record_fact(
        self,
        client_id: UUID,
        type_name: str,
        data: Any,
        occurred_at: datetime,
        by: Actor,
    ) -> int:
        """Validates and appends one fact; returns its log position."""
        entry = fact_type(type_name)
        payload = entry.validate(data)
        occurred_at = check_occurred_at(occurred_at)
        require(Action.RECORD_FACT, by)

        def attempt() -> int:
            client = self._client_writable_by(client_id, by)
            client.record_fact(
                fact_type=entry.name, category=entry.category.value, data=payload,
                occurred_at=occurred_at, controller=by.agency, recorded_by=by.reference,
            )
            return self._position(self.save(client))

        return self._retrying(attempt)

    def erase_client(self, client_id: UUID, reason: str, by: Actor) -> int:
        """Erasure (crypto-shredding): destroys the client's data key, then records it.

        The log stays append-only and verifiable; every view and replay shows the
        identity as erased, and partners get the same 404 as for an unknown client."""
        require(Action.ERASE_CLIENT, by)
        client = self._client(client_id)
        if client.controller != by.agency:
            raise ClientNotFound()
        client.check_not_erased()  # before the key goes: the aggregate refuses it again
        self.vault.shred(client_id)

        def attempt() -> int:
            fresh = self._client(client_id)
            fresh.erase(reason=reason, erased_by=by.reference)
            # The NHS number no longer leads to the erased client: the person can be
            # registered again, and that registration is not told the erased id.
            index = self._get(nhs_index_id(fresh.controller, fresh.nhs_fingerprint),
                              NhsNumberIndex)
            if index is None or index.client_id != client_id:
                return self._position(self.save(fresh))
            index.release(erased=client_id)
            return self._position(self.save(fresh, index))

        return self._retrying(attempt)

    def _indexed_client(self, agency: str, fingerprint: str) -> UUID | None:
        """The client the agency registered under this NHS number, if not erased (an
        index written before erasures released it may still name an erased client)."""
        index = self._get(nhs_index_id(agency, fingerprint), NhsNumberIndex)
        if index is None or index.client_id is None:
            return None
        client = self._get(index.client_id, Client)
        return None if client is None or client.erased else index.client_id
