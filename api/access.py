"""Recording every read of client data before the data leaves the API.

A route that reads client data takes an ``AccessLog`` and does its work inside
``access.reading(...)``. It calls ``read.returned(...)`` with what it is about to return;
that appends the ``AccessRecord`` there and then, so a read whose record cannot be written
fails (503) instead of returning data. A refusal (404 or 403) raised inside the block is
recorded as such before it propagates. Leaving the block without a record is a
programming error and fails the request: no path returns client data unrecorded
(tests/e2e/test_access_matrix.py calls every route, as every role, to prove it). Routes
get an ``AccessLog`` through ``api.deps.Access``; another entry point builds its own
from the application.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from domain.access import AccessAction, AccessOutcome
from domain.application import AccordApplication, Actor
from domain.errors import AccordError, Forbidden, NotFound

log = logging.getLogger("accord.access")


class AccessNotRecorded(AccordError):
    """The access record could not be written, so nothing is returned (HTTP 503)."""


class UnrecordedRead(RuntimeError):
    """A route left its ``reading`` block without recording the access (a bug)."""


def returned_item(position: int | None, category: str, controller: str,
                  basis: dict[str, Any]) -> dict[str, Any]:
    """One item of an access record: where it is in the log, what it is, whose, and why
    it was shown (the basis without its lawful-basis detail, which the agreement holds)."""
    return {
        "position": position, "category": category, "controller": controller,
        "basis": {k: basis.get(k) for k in ("kind", "agreement_id", "agreement_version",
                                            "consent_id", "legal_duty", "grant_id")
                  if basis.get(k) is not None},
    }


class Read:
    """One read in progress."""

    def __init__(self, app: AccordApplication, actor: Actor, action: AccessAction,
                 client_id: UUID | None, purpose: str | None, subject_agency: str | None,
                 client_ids: Sequence[UUID] = ()) -> None:
        self.app = app
        self.actor = actor
        self.action = action
        self.client_id = client_id
        self.client_ids = list(client_ids)
        self.purpose = purpose
        self.subject_agency = subject_agency
        #: Clients found but not told of (``withholding``): their controllers see the attempt.
        self.withheld: list[UUID] = []
        self.position: int | None = None

    def withholding(self, client_ids: Iterable[UUID]) -> None:
        """Notes clients the read found but does not tell the caller of (a match on a
        person the caller may not identify): the record names them for their controllers'
        access audit only; the caller's answer, and its own IG lead's audit, say nothing of
        them. Call it before the read is recorded (its ``returned`` or a refusal)."""
        if self.position is not None:
            raise UnrecordedRead("withholding after the read was recorded")
        self.withheld.extend(client_ids)

    def returned(self, items: Iterable[dict[str, Any]], *,
                 client_id: UUID | None = None, client_ids: Sequence[UUID] = (),
                 detail: str | None = None) -> int:
        """Records what is about to be returned; call it just before building the response.
        ``client_ids`` names every client it discloses something about, where that is not
        the one ``client_id`` (an alert read: each alert's client); ``detail`` what was
        asked, where the items do not say it (a report's measures and period)."""
        if client_id is not None:
            self.client_id = client_id
        self.client_ids.extend(client_ids)
        return self._record(AccessOutcome.RETURNED, list(items), detail)

    def found_nothing(self, outcome: AccessOutcome = AccessOutcome.NO_MATCH,
                      detail: str | None = None) -> int:
        return self._record(outcome, [], detail)

    def _record(self, outcome: AccessOutcome, items: list[dict[str, Any]],
                detail: str | None = None) -> int:
        if self.position is not None:
            raise UnrecordedRead("a read is recorded once")
        try:
            self.position = self.app.record_access(
                self.actor, self.action, purpose=self.purpose, client_id=self.client_id,
                outcome=outcome, returned=items, detail=detail,
                subject_agency=self.subject_agency, client_ids=self.client_ids,
                withheld_client_ids=self.withheld,
            )
        except Exception as exc:
            log.exception("could not record an access by %s", self.actor.reference)
            raise AccessNotRecorded(
                "the access could not be recorded, so nothing is returned; try again"
            ) from exc
        return self.position


class AccessLog:
    def __init__(self, app: AccordApplication) -> None:
        self.app = app

    @contextmanager
    def reading(self, actor: Actor, action: AccessAction, *, client_id: UUID | None,
                purpose: str | None, subject_agency: str | None = None) -> Iterator[Read]:
        read = Read(self.app, actor, action, client_id, purpose, subject_agency)
        try:
            yield read
        except NotFound as exc:
            if read.position is None:
                outcome = (AccessOutcome.NO_MATCH if action is AccessAction.MATCH
                           else AccessOutcome.NOT_FOUND)
                read.found_nothing(outcome, str(exc))
            raise
        except Forbidden as exc:
            if read.position is None:
                read.found_nothing(AccessOutcome.REFUSED, str(exc))
            raise
        if read.position is None:
            raise UnrecordedRead(f"{action.value} returned without an access record")

    @contextmanager
    def attempting(self, actor: Actor, action: AccessAction, *,
                   client_ids: Sequence[UUID], purpose: str | None = None,
                   detail: str | None = None) -> Iterator[None]:
        """A write about clients: recorded only if it is refused (404 or 403), so that an
        attempt on a client the caller may not see is on the record for the client's
        controllers (``GET /v1/audit/accesses``), as a refused read is. The record is
        written whether or not the client exists, so the answer and the work done are
        the same for an unknown client and a hidden one. A write that succeeds is on the
        log already; bad input (422) and conflicts (409) are not attempts on a client.
        ``detail`` says what was attempted where no client does (an alert's id)."""
        read = Read(self.app, actor, action, client_ids[0] if len(client_ids) == 1 else None,
                    purpose, None, client_ids)
        try:
            yield
        except NotFound as exc:
            read.found_nothing(AccessOutcome.NOT_FOUND, _said(detail, exc))
            raise
        except Forbidden as exc:
            read.found_nothing(AccessOutcome.REFUSED, _said(detail, exc))
            raise


def _said(detail: str | None, refusal: Exception) -> str:
    """An attempt's record: what was attempted, if said, and why it was refused."""
    return f"{detail}: {refusal}" if detail else str(refusal)
