"""What commands are given and what they return: the actor giving a command (a principal,
or the CLI operator) and the plain, frozen results the API and the CLI render. Nothing
here reads or writes the log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.agencies import AgencyKind, Role


@dataclass(frozen=True)
class Actor:
    """Who is giving a command: an authenticated principal, or the local operator (CLI)."""

    principal_id: UUID | None
    name: str
    agency: str
    agency_kind: AgencyKind | None
    role: Role

    @property
    def reference(self) -> str:
        """How the actor is named on the record."""
        return str(self.principal_id) if self.principal_id else f"operator:{self.name}"

    @property
    def is_operator(self) -> bool:
        """The CLI operator, not a principal: it may add any principal (staff included)."""
        return self.principal_id is None


#: The local operator running the CLI on the server: trusted like a database administrator,
#: it acts as a partnership administrator that may also add any agency's staff.
OPERATOR = Actor(None, "cli", "", None, Role.PARTNERSHIP_ADMIN)


@dataclass(frozen=True)
class EmergencyGrant:
    """An emergency grant as recorded: its review, its window and its log position."""

    grant_id: UUID
    review_id: UUID
    granted_at: datetime
    expires_at: datetime
    position: int


@dataclass(frozen=True)
class IssuedToken:
    principal_id: UUID
    token: str
