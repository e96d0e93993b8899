"""Commands for the client's rights over the record: erasure (UK GDPR Art. 17) by
crypto-shredding, the legal hold that prevents it, and restriction of processing
(Art. 18). Each is the registering controller's, and its IG lead's (the permission
table); to any other agency the client is as unknown.

Erasure destroys the client's data key, which seals the identity and every free-text
field that can identify the client (``domain.sealing``), then records ``Client.Erased``
with no personal data: the reason the IG lead gives is kept out of the log, which holds
only its keyed fingerprint (``reason_fingerprint``) to match the IG lead's case file.
It is refused (``ErasureRefused``, 409, saying why) while a legal hold is in place, while
a child protection status recorded about the client is in force, or while a safeguarding
alert about the client or its household is open (``safeguarding_retention``, answered
by the alert inbox). Reasons for a legal hold or a restriction are sealed with the
client's data key, so they go with the client on erasure.
"""

from __future__ import annotations

from uuid import UUID

from domain.clients import Client, NhsNumberIndex, nhs_index_id
from domain.commands.core import ApplicationCore
from domain.errors import ClientNotFound, ErasureRefused, InvalidCommand
from domain.identity import IdentityErased, IdentityVault
from domain.permissions import Action, require
from domain.results import Actor
from domain.sealing import seal_reason

#: A reason must say something: at least this long, and at most this long.
REASON_LENGTH = (10, 1000)


def check_stated_reason(reason: str, field: str = "reason") -> str:
    """The reason as recorded (stripped), or ``InvalidCommand`` naming ``field``: asked
    before anything is looked up, so the refusal says nothing about the client."""
    reason = reason.strip()
    shortest, longest = REASON_LENGTH
    if not shortest <= len(reason) <= longest:
        raise InvalidCommand(field, f"say why, in {shortest} to {longest} characters")
    return reason


def reason_fingerprint(vault: IdentityVault, reason: str) -> str:
    """How an erasure's reason is named in the log: its keyed fingerprint (HMAC-SHA256
    under the partnership's matching key), which tells nobody the reason but matches the
    IG lead's case file holding it."""
    return "hmac-sha256:" + vault.fingerprint(f"erasure-reason:{reason.strip()}")


class ErasureCommands(ApplicationCore):
    """Erasure, legal holds and restriction of processing."""

    def erase_client(self, client_id: UUID, reason: str, by: Actor) -> int:
        """Erasure (crypto-shredding): destroys the client's data key, then records it;
        returns the erasure's log position.

        The log stays append-only and verifiable; every view and replay shows the
        identity as erased, the free text is gone, and partners get the same 404 as for
        an unknown client. Refused while a legal hold or a safeguarding retention applies
        (``Client.check_erasable`` and ``safeguarding_retention``), before the key goes:
        once it has gone the erasure is a fact, and is recorded whatever was appended
        meanwhile."""
        require(Action.ERASE_CLIENT, by)
        reason = check_stated_reason(reason)
        client = self._client(client_id)
        if client.controller != by.agency:
            raise ClientNotFound()
        client.check_erasable()
        held = list(self.safeguarding_retention(client_id))
        if held:
            raise ErasureRefused("safeguarding retention applies: " + "; ".join(held))
        self.vault.shred(client_id)
        fingerprint = reason_fingerprint(self.vault, reason)

        def attempt() -> int:
            fresh = self._client(client_id)
            fresh.erase(reason_fingerprint=fingerprint, erased_by=by.reference)
            # The NHS number no longer leads to the erased client: the person can be
            # registered again, and that registration is not told the erased id.
            index = self._get(nhs_index_id(fresh.controller, fresh.nhs_fingerprint),
                              NhsNumberIndex)
            if index is None or index.client_id != client_id:
                return self._position(self.save(fresh))
            index.release(erased=client_id)
            return self._position(self.save(fresh, index))

        return self._retrying(attempt)

    def place_legal_hold(self, client_id: UUID, reason: str, by: Actor) -> int:
        """Keeps the client's record from erasure until the hold is lifted (litigation,
        an inquiry, a complaint); returns the log position. 409 if one is in place."""
        require(Action.PLACE_LEGAL_HOLD, by)
        reason = check_stated_reason(reason)

        def attempt() -> int:
            client = self._registered_by(client_id, by)
            client.place_legal_hold(reason=self._seal(client_id, reason), agency=by.agency,
                                    placed_by=by.reference)
            return self._position(self.save(client))

        return self._retrying(attempt)

    def lift_legal_hold(self, client_id: UUID, reason: str, by: Actor) -> int:
        """Ends the legal hold; returns the log position. 409 if none is in place."""
        require(Action.LIFT_LEGAL_HOLD, by)
        reason = check_stated_reason(reason)

        def attempt() -> int:
            client = self._registered_by(client_id, by)
            client.lift_legal_hold(reason=self._seal(client_id, reason), agency=by.agency,
                                   lifted_by=by.reference)
            return self._position(self.save(client))

        return self._retrying(attempt)

    def restrict_processing(self, client_id: UUID, reason: str, by: Actor) -> int:
        """Restricts processing of the client (UK GDPR Art. 18): partners see nothing of
        them from the returned position, and their controllers read their records only
        stating a legal claim. 409 if already restricted."""
        require(Action.RESTRICT_PROCESSING, by)
        reason = check_stated_reason(reason)

        def attempt() -> int:
            client = self._registered_by(client_id, by)
            client.restrict_processing(reason=self._seal(client_id, reason),
                                       agency=by.agency, restricted_by=by.reference)
            return self._position(self.save(client))

        return self._retrying(attempt)

    def lift_restriction(self, client_id: UUID, reason: str, by: Actor) -> int:
        """Ends the restriction: partners see the client again as agreements and consents
        allow. 409 if the client is not restricted."""
        require(Action.LIFT_RESTRICTION, by)
        reason = check_stated_reason(reason)

        def attempt() -> int:
            client = self._registered_by(client_id, by)
            client.lift_restriction(reason=self._seal(client_id, reason), agency=by.agency,
                                    lifted_by=by.reference)
            return self._position(self.save(client))

        return self._retrying(attempt)

    def _registered_by(self, client_id: UUID, by: Actor) -> Client:
        """The client, if the caller's agency registered them and they are not erased;
        otherwise as unknown (the aggregate checks the same again)."""
        client = self._client(client_id)
        if client.controller != by.agency:
            raise ClientNotFound()
        client.check_not_erased()
        return client

    def _seal(self, client_id: UUID, reason: str) -> str:
        try:
            return seal_reason(self.vault, client_id, reason)
        except IdentityErased:  # erased since the aggregate was read
            raise ClientNotFound() from None
