"""What every group of commands shares: the event store and its repository, the vault,
the clock, the client-visibility lookup and the write listeners, retrying a write once on
a conflict, and the lookups that find aggregates (or refuse as unknown).

Each command is: check the permission (``domain.permissions``), find what it acts on,
call the aggregate (which keeps its own rules), save; a save that loses an
optimistic-concurrency race is tried once more against the fresh state, and if it loses
again the caller gets ``ConcurrentWrite`` (HTTP 409)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording, Transcoding

from domain.agencies import PARTNERSHIP_ID, Agency, AgencyKind, Partnership, Principal, agency_uuid
from domain.clients import Client
from domain.errors import (
    AgencyNotFound,
    ClientNotFound,
    ConcurrentWrite,
    InvalidCommand,
    PrincipalNotFound,
)
from domain.identity import IdentityVault
from domain.results import Actor

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

#: How far ahead of the server clock an occurred_at may be (clock skew between partners).
FUTURE_TOLERANCE = timedelta(minutes=5)


class DateAsISO(Transcoding):
    """Calendar dates (a consent's data period) stored as ISO strings."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class ApplicationNotWired(RuntimeError):
    """A command needed a part the application was built without (which agencies see a
    client: the agency views' answer). A programming error of the entry point."""


class ApplicationCore(Application[UUID]):
    """The partnership's event log, and what its commands share (see the module).

    ``sees_client`` answers whether an agency has a basis to see a client (the agency
    views); a command that needs it on an application built without it raises
    ``ApplicationNotWired`` rather than answer "cannot see". Each of ``write_listeners``
    is told the log position after every append (a runner's or a relay's nudge)."""

    def __init__(self, vault: IdentityVault, env: dict[str, str] | None = None, *,
                 sees_client: Callable[[str, UUID], bool] | None = None,
                 write_listeners: Sequence[Callable[[int], None]] = (),
                 serialise_appends: bool = False,
                 safeguarding_retention: Callable[[UUID], Sequence[str]] | None = None,
                 ) -> None:
        super().__init__(env)
        self.vault = vault
        self.write_listeners: list[Callable[[int], None]] = list(write_listeners)
        self._sees_client = sees_client
        self._safeguarding_retention = safeguarding_retention
        self._agency_kinds: dict[str, AgencyKind] = {}
        #: The time commands record as "now" (emergency grants); tests may replace it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        #: A database with one writer at a time (SQLite) makes a writer that finds it
        #: locked sleep in growing steps (its busy handler). Under load (every read appends
        #: an access record) request threads would mostly sleep; queueing them here instead
        #: keeps appends in order and quick. The composition root says which databases
        #: need it (``serialise_appends``); PostgreSQL takes concurrent appends as they come.
        self._append_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if serialise_appends else contextlib.nullcontext()
        )

    @property
    def sees_client(self) -> Callable[[str, UUID], bool]:
        """Whether an agency has a basis to see a client (answered by the agency views)."""
        if self._sees_client is None:
            raise ApplicationNotWired(
                "this application was built without sees_client (which agencies see a "
                "client); pass it to AccordApplication(...) where the system is put together")
        return self._sees_client

    @property
    def safeguarding_retention(self) -> Callable[[UUID], Sequence[str]]:
        """Why safeguarding keeps a client's record, beyond its own facts: the open
        safeguarding alerts about the client or its household (answered by the alert
        inbox, ``projections.retention``); it raises if that cannot be told yet."""
        if self._safeguarding_retention is None:
            raise ApplicationNotWired(
                "this application was built without safeguarding_retention (the open "
                "alerts that keep a record); pass it to AccordApplication(...) where the "
                "system is put together")
        return self._safeguarding_retention

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def agency(self, slug: str) -> Agency:
        """The agency, or AgencyNotFound (the directory of agencies is public)."""
        agency = self._get(agency_uuid(slug), Agency)
        if agency is None:
            raise AgencyNotFound(slug)
        return agency

    def controls(self, client_id: UUID, agency: str) -> bool:
        """Whether the agency controls some of the client's data (False if no such client)."""
        client = self._get(client_id, Client)
        return client is not None and agency in client.controllers

    def require_controller(self, client_id: UUID, by: Actor) -> None:
        """ClientNotFound unless the caller's agency controls some of the client's data."""
        if by.agency not in self._client(client_id).controllers:
            raise ClientNotFound()

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's save, one at a time where the database has one writer."""
        with self._append_lock:
            return super().save(*objs, **kwargs)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        # The library's hook "called after new aggregate events have been saved".
        if recordings:
            position = recordings[-1].notification.id
            for listener in self.write_listeners:
                listener(position)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        try:
            return attempt()
        except IntegrityError:
            pass
        try:
            return attempt()
        except IntegrityError:
            raise ConcurrentWrite() from None

    def _get(self, aggregate_id: UUID, cls: type[A]) -> A | None:
        """The aggregate if it exists and is of the expected class, else None."""
        try:
            aggregate: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def _partnership(self) -> Partnership:
        return self._get(PARTNERSHIP_ID, Partnership) or Partnership()

    def _principal(self, principal_id: UUID) -> Principal:
        principal = self._get(principal_id, Principal)
        if principal is None:
            raise PrincipalNotFound()
        return principal

    def _client(self, client_id: UUID) -> Client:
        client = self._get(client_id, Client)
        if client is None:
            raise ClientNotFound()
        return client

    def _client_writable_by(self, client_id: UUID, by: Actor) -> Client:
        """The client, if the caller's agency holds its own record of them or has a basis
        to see them; otherwise ClientNotFound, as for an unknown client."""
        client = self._client(client_id)
        if by.agency not in client.controllers and not self.sees_client(by.agency, client_id):
            raise ClientNotFound()
        return client

    def _exists(self, aggregate_id: UUID) -> bool:
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    @staticmethod
    def _position(recordings: list[Recording[UUID]]) -> int:
        return recordings[-1].notification.id


def check_aware(field: str, value: datetime) -> datetime:
    """The moment in UTC; a moment without a time zone means different things to
    different partners, so it is refused (422 naming ``field``)."""
    if value.tzinfo is None:
        raise InvalidCommand(field, "must include a time zone (e.g. 2026-01-31T09:00:00Z)")
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidCommand(field, "is outside the calendar once converted to UTC") from None


def check_occurred_at(value: datetime) -> datetime:
    """When a fact happened, in UTC: not in the future, beyond clock skew between partners."""
    value = check_aware("occurred_at", value)
    if value > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise InvalidCommand("occurred_at", "is in the future")
    return value
