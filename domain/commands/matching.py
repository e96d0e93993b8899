"""Finding a person: the keyed fingerprint a match looks up, and the identity of a client
for a caller that has already established a basis."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from domain.clients import Client
from domain.commands.core import ApplicationCore
from domain.errors import ClientNotFound, InvalidCommand
from domain.identity import Identity, name_match_key, nhs_match_key


class MatchingCommands(ApplicationCore):
    """Match keys and identities (never the plain identifiers in a lookup)."""

    def match_keys(self, nhs_number: str | None, family_name: str | None,
                   date_of_birth: date | None) -> str:
        """The keyed fingerprint a match looks up; never the plain identifiers."""
        if nhs_number is not None:
            return self.vault.fingerprint(nhs_match_key(nhs_number))
        if family_name is None or date_of_birth is None:
            raise InvalidCommand("body", "give nhs_number, or family_name and date_of_birth")
        return self.vault.fingerprint(name_match_key(family_name, date_of_birth))

    def identity_of(self, client_id: UUID) -> Identity:
        """The decrypted identity, for callers that have already established a basis;
        raises IdentityErased once the client's data key is destroyed."""
        # The identity is sealed once, at registration: its first event is all it takes,
        # not a replay of the client's whole story (every partner's view asks for it).
        first = self.recorder.select_events(client_id, lte=1)
        registered = self.mapper.to_domain_event(first[0]) if first else None
        if not isinstance(registered, Client.Registered):
            raise ClientNotFound()
        return self.vault.open(client_id, registered.sealed_identity)
