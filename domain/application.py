"""accord's eventsourcing Application: the commands the partnership can give.

Every command either appends events atomically or changes nothing. A write that
loses an optimistic-concurrency race is retried once against the fresh state;
if it loses again the caller gets ``ConcurrentWrite`` (HTTP 409).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording

from domain.agencies import (
    PARTNERSHIP_ID,
    Agency,
    AgencyKind,
    Partnership,
    Principal,
    Role,
    agency_uuid,
)
from domain.catalogue import CATALOGUE, FactType, fact_type
from domain.clients import Client, NhsNumberIndex, nhs_index_id
from domain.errors import (
    AgencyExists,
    AgencyNotFound,
    ClientAlreadyRegistered,
    ClientNotFound,
    ConcurrentWrite,
    Forbidden,
    InvalidCommand,
    PrincipalNotFound,
    Unauthenticated,
)
from domain.identity import Identity, IdentityErased, IdentityVault

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

#: How far ahead of the server clock an occurred_at may be (clock skew between partners).
FUTURE_TOLERANCE = timedelta(minutes=5)
TOKEN_PREFIX = "acc"  # noqa: S105 - a prefix, not a secret


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


#: The local operator running the CLI on the server: trusted like a database administrator.
OPERATOR = Actor(None, "cli", "", None, Role.ADMIN)


@dataclass(frozen=True)
class RecordedFact:
    sequence: int
    fact_type: str
    category: str
    occurred_at: datetime
    recorded_at: datetime
    controller: str
    recorded_by: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ClientRecord:
    """An agency's own record of a client: the facts it controls, and identity if it holds it."""

    client_id: UUID
    controller: str
    registered_at: datetime
    identity: Identity | None
    identity_erased: bool
    facts: list[RecordedFact]


@dataclass(frozen=True)
class IssuedToken:
    principal_id: UUID
    token: str


@dataclass(frozen=True)
class PrincipalSummary:
    principal_id: UUID
    agency: str
    role: Role
    name: str
    revoked: bool
    added_at: datetime


class AccordApplication(Application[UUID]):
    """The partnership's event log and the commands that append to it."""

    name = "accord"
    env = {
        "AGGREGATE_CACHE_MAXSIZE": "5000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
    }

    def __init__(self, vault: IdentityVault, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.vault = vault
        self.write_listeners: list[Callable[[int], None]] = []

    # -- agencies and principals -------------------------------------------------

    def register_agency(self, slug: str, name: str, kind: AgencyKind, by: Actor) -> Agency:
        if by.role is not Role.ADMIN:
            raise Forbidden("only an admin registers agencies")
        if self._exists(agency_uuid(slug)):
            raise AgencyExists(slug)

        def attempt() -> Agency:
            # Built afresh on each attempt: a failed save has already taken its pending events.
            agency = Agency(slug=slug, name=name, kind=kind, registered_by=by.reference)
            partnership = self._partnership()
            partnership.admit(slug)
            self.save(partnership, agency)
            return agency

        try:
            agency = self._retrying(attempt)
        except ConcurrentWrite:
            if self._exists(agency_uuid(slug)):
                raise AgencyExists(slug) from None
            raise
        return agency

    def agencies(self) -> list[Agency]:
        return [self.agency(slug) for slug in self._partnership().agencies]

    def agency(self, slug: str) -> Agency:
        agency = self._get(agency_uuid(slug), Agency)
        if agency is None:
            raise AgencyNotFound(slug)
        return agency

    def add_principal(self, agency: str, role: Role, name: str, by: Actor) -> IssuedToken:
        """Enrols a person or system and returns its bearer token (shown once, never stored)."""
        if by.role is not Role.ADMIN:
            raise Forbidden("only an admin adds principals")
        secret = secrets.token_urlsafe(32)

        def attempt() -> IssuedToken:
            enrolling = self.agency(agency)
            principal = Principal(
                agency=agency, role=role, name=name, token_hash=_hash(secret),
                added_by=by.reference,
            )
            enrolling.enrol(principal.id)
            self.save(enrolling, principal)
            return IssuedToken(principal.id, f"{TOKEN_PREFIX}_{principal.id.hex}_{secret}")

        return self._retrying(attempt)

    def revoke_principal(self, principal_id: UUID, reason: str, by: Actor) -> None:
        if by.role is not Role.ADMIN:
            raise Forbidden("only an admin revokes principals")

        def attempt() -> None:
            principal = self._principal(principal_id)
            if not principal.revoked:
                principal.revoke(reason=reason, revoked_by=by.reference)
                self.save(principal)

        self._retrying(attempt)

    def principals(self, agency: str) -> list[PrincipalSummary]:
        result = []
        for principal_id in self.agency(agency).principal_ids:
            p = self._principal(principal_id)
            result.append(
                PrincipalSummary(p.id, p.agency, p.role, p.name, p.revoked, p.created_on)
            )
        return result

    def authenticate(self, token: str) -> Actor:
        """Resolves a bearer token to an actor; raises Unauthenticated for anything else."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise Unauthenticated("malformed token")
        try:
            principal_id = UUID(hex=parts[1])
            principal = self._principal(principal_id)
        except (ValueError, PrincipalNotFound):
            raise Unauthenticated("unknown token") from None
        if not hmac.compare_digest(principal.token_hash, _hash(parts[2])):
            raise Unauthenticated("unknown token")
        if principal.revoked:
            raise Unauthenticated("token revoked")
        kind = self.agency(principal.agency).kind
        return Actor(principal.id, principal.name, principal.agency, kind, principal.role)

    # -- clients -------------------------------------------------------------------

    def register_client(self, identity: Identity, by: Actor) -> tuple[UUID, int]:
        """Registers a client of the caller's agency; returns (client id, log position)."""
        if by.role is not Role.PRACTITIONER or by.agency_kind is not AgencyKind.TREATMENT_PROVIDER:
            raise Forbidden("only a practitioner of a treatment provider registers clients")
        fingerprint = self.vault.fingerprint(identity.nhs_number)
        existing = self._indexed_client(by.agency, fingerprint)
        if existing is not None:
            raise ClientAlreadyRegistered(existing)
        client_id = uuid4()
        sealed = self.vault.seal(client_id, identity)
        client = Client(
            id=client_id, controller=by.agency, registered_by=by.reference,
            sealed_identity=sealed, nhs_fingerprint=fingerprint,
        )
        index = NhsNumberIndex(agency=by.agency, fingerprint=fingerprint, client_id=client_id)
        try:
            recordings = self.save(client, index)
        except IntegrityError:
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
        occurred_at = _check_occurred_at(occurred_at)
        if by.role not in (Role.PRACTITIONER, Role.SAFEGUARDING):
            raise Forbidden("only practitioners and safeguarding staff record facts")

        def attempt() -> int:
            client = self._client_writable_by(client_id, by)
            client.record_fact(
                fact_type=entry.name, category=entry.category.value, data=payload,
                occurred_at=occurred_at, controller=by.agency, recorded_by=by.reference,
            )
            return self._position(self.save(client))

        return self._retrying(attempt)

    def client_record(self, client_id: UUID, by: Actor) -> ClientRecord:
        """The caller agency's own record of the client; ClientNotFound if it has none."""
        if by.role not in (Role.PRACTITIONER, Role.SAFEGUARDING, Role.IG_LEAD):
            raise Forbidden("this role does not read client records")
        client = self._client(client_id)
        if client.controller != by.agency:
            raise ClientNotFound()
        identity: Identity | None = None
        erased = False
        try:
            identity = self.vault.open(client_id, client.sealed_identity)
        except IdentityErased:
            erased = True
        facts = [
            _as_fact(e) for e in self._client_events(client_id)
            if isinstance(e, Client.FactRecorded) and e.controller == by.agency
        ]
        return ClientRecord(
            client_id, client.controller, client.created_on, identity, erased, facts
        )

    def event_types(self) -> Iterable[FactType]:
        return CATALOGUE.values()

    def head_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    # -- internals -------------------------------------------------------------------

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
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
        client = self._client(client_id)
        if client.controller != by.agency:
            raise ClientNotFound()
        return client

    def _client_events(self, client_id: UUID) -> Iterable[Aggregate.Event]:
        return self.events.get(client_id)  # type: ignore[return-value]

    def _indexed_client(self, agency: str, fingerprint: str) -> UUID | None:
        index = self._get(nhs_index_id(agency, fingerprint), NhsNumberIndex)
        return index.client_id if index else None

    def _exists(self, aggregate_id: UUID) -> bool:
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    @staticmethod
    def _position(recordings: list[Recording[UUID]]) -> int:
        return recordings[-1].notification.id


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_occurred_at(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise InvalidCommand("occurred_at", "must include a time zone (e.g. 2026-01-31T09:00:00Z)")
    value = value.astimezone(UTC)
    if value > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise InvalidCommand("occurred_at", "is in the future")
    return value


def _as_fact(e: Client.FactRecorded) -> RecordedFact:
    return RecordedFact(
        sequence=e.originator_version, fact_type=e.fact_type, category=e.category,
        occurred_at=e.occurred_at, recorded_at=e.timestamp, controller=e.controller,
        recorded_by=e.recorded_by, data=e.data,
    )
