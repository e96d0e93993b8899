"""Commands about clients: registering one (sealing the identity at once, one client per
NHS number and agency), recording a fact and correcting it (amending or retracting it),
each fact's free text sealed with the client's data key (``domain.sealing``). Erasure,
legal holds and restriction are ``domain.commands.erasure``'s."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from domain.catalogue import fact_type
from domain.clients import Client, NhsNumberIndex, check_correction_reason, nhs_index_id
from domain.commands.core import ApplicationCore, check_occurred_at
from domain.errors import ClientAlreadyRegistered, ClientNotFound, FactNotFound, InvalidCommand
from domain.identity import Identity, IdentityErased, name_match_key, nhs_match_key
from domain.permissions import Action, require
from domain.results import Actor
from domain.sealing import seal_payload


class ClientCommands(ApplicationCore):
    """Registering clients, recording facts and correcting them."""

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
        """Validates and appends one fact; returns its log position. Its free text is
        sealed with the client's data key; an erased client is as unknown."""
        entry = fact_type(type_name)
        payload = entry.validate(data)
        occurred_at = check_occurred_at(occurred_at)
        require(Action.RECORD_FACT, by)

        def attempt() -> int:
            client = self._client_writable_by(client_id, by)
            client.check_not_erased()
            client.record_fact(
                fact_type=entry.name, category=entry.category.value,
                data=self._sealed(client_id, entry.name, payload),
                occurred_at=occurred_at, controller=by.agency, recorded_by=by.reference,
            )
            return self._position(self.save(client))

        return self._retrying(attempt)

    def amend_fact(self, client_id: UUID, position: int, data: Any,
                   occurred_at: datetime | None, reason: str, by: Actor) -> int:
        """Corrects a fact the caller's agency recorded in error: the payload (validated
        against the fact's type) and, if given, when it occurred. Returns the amendment's
        log position; views, reports, feeds and the safeguarding rules follow the
        corrected fact from there, and a replay of a moment before it shows the original.

        The reason and the time are checked before anything is looked up; then a client
        the caller's agency holds no record of is as unknown (``ClientNotFound``), and
        another agency's fact as an unknown one (``FactNotFound``), before the payload
        is judged, so a refusal says nothing about a fact the caller may not see."""
        require(Action.AMEND_FACT, by)
        reason = check_correction_reason(reason)
        if occurred_at is not None:
            occurred_at = check_occurred_at(occurred_at)

        def attempt() -> int:
            client = self._client_held_by(client_id, by)
            client.amend_fact(position=position, sequence=self._fact_sequence(client, position),
                              data=data, occurred_at=occurred_at, reason=reason,
                              agency=by.agency, amended_by=by.reference,
                              seal=lambda kind, payload: self._sealed(client_id, kind, payload))
            return self._position(self.save(client))

        return self._retrying(attempt)

    def retract_fact(self, client_id: UUID, position: int, reason: str, by: Actor) -> int:
        """Withdraws a fact the caller's agency should never have recorded; returns the
        retraction's log position. From there nobody sees the fact (the agency's own
        record keeps it, marked retracted) and no report or rule counts it; a replay of a
        moment before shows it as it was. Refused like ``amend_fact``; a fact already
        retracted conflicts."""
        require(Action.RETRACT_FACT, by)
        reason = check_correction_reason(reason)

        def attempt() -> int:
            client = self._client_held_by(client_id, by)
            client.retract_fact(position=position,
                                sequence=self._fact_sequence(client, position),
                                reason=reason, agency=by.agency, retracted_by=by.reference)
            return self._position(self.save(client))

        return self._retrying(attempt)

    def _client_held_by(self, client_id: UUID, by: Actor) -> Client:
        """The client, if the caller's agency holds its own record of them (only an agency
        that recorded something about a client has facts of it to correct); otherwise,
        or once erased, as unknown."""
        client = self._client(client_id)
        if by.agency not in client.controllers:
            raise ClientNotFound()
        client.check_not_erased()
        return client

    def _fact_sequence(self, client: Client, position: int) -> int:
        """The place in the client's stream of the fact at log ``position``: a fact is
        named by its log position everywhere it is shown, and the client aggregate knows
        its facts by their place in its stream. ``FactNotFound`` for a position that
        holds no fact of this client (nothing says what it does hold)."""
        found = self.recorder.select_notifications(start=position, limit=1)
        if not found or found[0].id != position \
                or UUID(str(found[0].originator_id)) != client.id:
            raise FactNotFound()
        notification = found[0]
        if notification.topic == _REGISTERED:
            # The client's own registration (its identity), which the caller, holding a
            # record of the client, knows of: told what it is rather than "not found".
            raise InvalidCommand("position", "this is the client's registration, not a "
                                             "recorded fact: identity is not corrected here")
        if notification.topic != _FACT_RECORDED:
            raise FactNotFound()
        return notification.originator_version

    def _sealed(self, client_id: UUID, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with its free text sealed; an erased client (whose key is gone,
        perhaps since the aggregate was read) is as unknown."""
        try:
            return seal_payload(self.vault, client_id, kind, payload)
        except IdentityErased:
            raise ClientNotFound() from None

    def _indexed_client(self, agency: str, fingerprint: str) -> UUID | None:
        """The client the agency registered under this NHS number, if not erased (an
        index written before erasures released it may still name an erased client)."""
        index = self._get(nhs_index_id(agency, fingerprint), NhsNumberIndex)
        if index is None or index.client_id is None:
            return None
        client = self._get(index.client_id, Client)
        return None if client is None or client.erased else index.client_id


_FACT_RECORDED = get_topic(Client.FactRecorded)
_REGISTERED = get_topic(Client.Registered)
