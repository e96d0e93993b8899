"""The record of each read (and each refused write), the event catalogue and the head of
the log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from domain.access import AccessAction, AccessOutcome, AccessRecord
from domain.catalogue import CATALOGUE, FactType
from domain.commands.core import ApplicationCore
from domain.results import Actor


class AccessCommands(ApplicationCore):
    """Access records and what every caller may read of the log itself."""

    def record_access(
        self,
        by: Actor,
        action: AccessAction,
        *,
        purpose: str | None,
        client_id: UUID | None,
        outcome: AccessOutcome,
        returned: list[dict[str, Any]] | None = None,
        detail: str | None = None,
        subject_agency: str | None = None,
        client_ids: Iterable[UUID] = (),
        withheld_client_ids: Iterable[UUID] = (),
    ) -> int:
        """Appends the record of one read, or of one refused write (a new aggregate: reads
        never contend). ``client_ids`` are the clients it concerned besides ``client_id``
        (each alert's client, in an alert read); ``withheld_client_ids`` those it found
        but did not tell the caller of (for their controllers' eyes only)."""
        concerned = list(dict.fromkeys([*([client_id] if client_id else []), *client_ids]))
        withheld = [c for c in dict.fromkeys(withheld_client_ids) if c not in concerned]
        record = AccessRecord(
            principal=by.reference, principal_name=by.name, agency=by.agency,
            role=by.role.value, action=action.value, purpose=purpose, client_id=client_id,
            client_ids=concerned, subject_agency=subject_agency, outcome=outcome.value,
            detail=detail, returned=returned or [], withheld_client_ids=withheld,
        )
        return self._position(self.save(record))

    def event_types(self) -> Iterable[FactType]:
        return CATALOGUE.values()

    def head_position(self) -> int:
        return self.recorder.max_notification_id() or 0
