"""accord's eventsourcing Application: the commands the partnership can give.

What a caller reads of the aggregates (an agency's record of a client, its consents, an
agency's principals, its agreements) is the read side's: ``projections.queries``.

Every command either appends events atomically or changes nothing. A write that
loses an optimistic-concurrency race is retried once against the fresh state;
if it loses again the caller gets ``ConcurrentWrite`` (HTTP 409).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording, Transcoding

from domain.access import AccessAction, AccessOutcome, AccessRecord
from domain.agencies import (
    ADMINISTRATORS,
    CLINICAL_KINDS,
    PARTNERSHIP_ID,
    Agency,
    AgencyKind,
    Partnership,
    Principal,
    Role,
    agency_uuid,
)
from domain.agreements import Agreement, AgreementTerms
from domain.alerts import Alert, AlertOutcome
from domain.catalogue import CATALOGUE, FactType, fact_type
from domain.clients import (
    Client,
    EmergencyEndCause,
    NhsNumberIndex,
    check_consent_recipient,
    check_data_period,
    check_emergency_request,
    nhs_index_id,
)
from domain.errors import (
    AgencyExists,
    AgencyNotFound,
    AgreementNotFound,
    AlertNotFound,
    ClientAlreadyRegistered,
    ClientNotFound,
    ConcurrentWrite,
    Conflict,
    Forbidden,
    HouseholdNotFound,
    InvalidCommand,
    LastAdministrator,
    PrincipalNotFound,
    ReviewNotFound,
    Unauthenticated,
)
from domain.households import Household, HouseholdMembership, check_members, membership_id
from domain.identity import (
    Identity,
    IdentityVault,
    name_match_key,
    nhs_match_key,
)
from domain.permissions import Action, require
from domain.reviews import Review, ReviewOutcome, review_id_for
from domain.vocabulary import Purpose

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


class AccordApplication(Application[UUID]):
    """The partnership's event log and the commands that append to it.

    ``sees_client`` answers whether an agency has a basis to see a client (the agency
    views); a command that needs it on an application built without it raises
    ``ApplicationNotWired`` rather than answer "cannot see". Each of ``write_listeners``
    is told the log position after every append (a runner's or a relay's nudge)."""

    name = "accord"
    env = {
        "AGGREGATE_CACHE_MAXSIZE": "5000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
    }

    def __init__(self, vault: IdentityVault, env: dict[str, str] | None = None, *,
                 sees_client: Callable[[str, UUID], bool] | None = None,
                 write_listeners: Sequence[Callable[[int], None]] = ()) -> None:
        super().__init__(env)
        self.vault = vault
        self.write_listeners: list[Callable[[int], None]] = list(write_listeners)
        self._sees_client = sees_client
        self._agency_kinds: dict[str, AgencyKind] = {}
        #: The time commands record as "now" (emergency grants); tests may replace it.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        #: SQLite has one writer at a time, and a writer that finds the database locked
        #: sleeps in growing steps (its busy handler). Under load (every read appends an
        #: access record) request threads would mostly sleep; queueing them here instead
        #: keeps appends in order and quick. PostgreSQL takes concurrent appends as is.
        self._append_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if type(self.recorder).__module__ == "eventsourcing.sqlite"
            else contextlib.nullcontext()
        )

    @property
    def sees_client(self) -> Callable[[str, UUID], bool]:
        """Whether an agency has a basis to see a client (answered by the agency views)."""
        if self._sees_client is None:
            raise ApplicationNotWired(
                "this application was built without sees_client (which agencies see a "
                "client); pass it to AccordApplication(...) where the system is put together")
        return self._sees_client

    @sees_client.setter
    def sees_client(self, lookup: Callable[[str, UUID], bool]) -> None:
        # Until every entry point passes it to the constructor (projections/live.py).
        self._sees_client = lookup

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # -- agencies and principals -------------------------------------------------

    def register_agency(self, slug: str, name: str, kind: AgencyKind, by: Actor) -> Agency:
        """Admits an agency to the partnership; ``registered_by`` keeps who did it."""
        require(Action.REGISTER_AGENCY, by)
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
        """Enrols a person or system and returns its bearer token (shown once, never stored).

        An agency's admin adds principals to its own agency only (any role but partnership
        administrator); a partnership administrator adds admins and partnership
        administrators to any agency (so the first admin of a new one), not staff, so no
        single token mints readers of another agency's data; the CLI operator adds anyone.
        The role must fit the agency's kind (``role_fits``).
        """
        self._check_may_add(agency, role, by)
        self.agency(agency).check_role_fits(role)
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
        """Revokes a principal; revoking it again changes nothing.

        An agency's admin revokes its own agency's principals (another agency's are as
        unknown, so an id reveals nothing), but not a partnership administrator, nor its
        agency's last admin. A partnership administrator (or the CLI operator) may revoke
        anyone: taking access away exposes nothing. Nobody revokes the partnership's last
        partnership administrator.
        """
        require(Action.REVOKE_PRINCIPAL, by)

        def attempt() -> None:
            principal = self._principal(principal_id)
            if by.role is not Role.PARTNERSHIP_ADMIN and principal.agency != by.agency:
                raise PrincipalNotFound()
            if principal.revoked:
                return
            if principal.role is Role.PARTNERSHIP_ADMIN and by.role is not Role.PARTNERSHIP_ADMIN:
                raise Forbidden("only a partnership administrator revokes a partnership "
                                "administrator")
            if principal.role not in ADMINISTRATORS:
                principal.revoke(reason=reason, revoked_by=by.reference)
                self.save(principal)
                return
            partnership = self._partnership()
            self._check_not_last_administrator(partnership, principal, by)
            principal.revoke(reason=reason, revoked_by=by.reference)
            # Saved with the revocation: two at once conflict here and the retry counts again.
            partnership.note_administrator_revoked(principal.id, principal.agency,
                                                   principal.role.value)
            self.save(principal, partnership)

        self._retrying(attempt)

    def _check_may_add(self, agency: str, role: Role, by: Actor) -> None:
        """Refuses (403) an addition outside the caller's scope; see ``add_principal``."""
        require(Action.ADD_PRINCIPAL, by)
        if by.is_operator:
            return
        if by.role is Role.PARTNERSHIP_ADMIN:
            if role not in ADMINISTRATORS:
                raise Forbidden("a partnership administrator adds admins and partnership "
                                "administrators; an agency's own admin adds its staff")
            return
        if agency != by.agency:
            raise Forbidden("an admin manages only its own agency's principals")
        if role is Role.PARTNERSHIP_ADMIN:
            raise Forbidden("only a partnership administrator adds a partnership administrator")

    def _check_not_last_administrator(
        self, partnership: Partnership, principal: Principal, by: Actor
    ) -> None:
        """Refuses (409) to revoke the partnership's last partnership administrator (for
        anyone), or an agency's last admin (unless a partnership administrator does it)."""
        if principal.role is Role.PARTNERSHIP_ADMIN:
            everyone = (i for slug in partnership.agencies for i in self.agency(slug).principal_ids)
            if not self._any_active(everyone, Role.PARTNERSHIP_ADMIN, besides=principal.id):
                raise LastAdministrator(
                    "this is the partnership's last active partnership administrator; add "
                    "another before revoking it")
        elif by.role is not Role.PARTNERSHIP_ADMIN and not self._any_active(
                self.agency(principal.agency).principal_ids, Role.ADMIN, besides=principal.id):
            raise LastAdministrator(
                f"this is the last active admin of {principal.agency}; only a partnership "
                "administrator may revoke an agency's last admin")

    def _any_active(self, principal_ids: Iterable[UUID], role: Role, besides: UUID) -> bool:
        return any(
            not p.revoked and p.role is role
            for p in (self._principal(i) for i in principal_ids if i != besides)
        )

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
        return Actor(principal.id, principal.name, principal.agency,
                     self._agency_kind(principal.agency), principal.role)

    def _agency_kind(self, slug: str) -> AgencyKind:
        """An agency's kind, fixed when it is registered, so remembered after one read
        (it is looked up on every request)."""
        kind = self._agency_kinds.get(slug)
        if kind is None:
            kind = self._agency_kinds[slug] = self.agency(slug).kind
        return kind

    # -- clients -------------------------------------------------------------------

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
        occurred_at = _check_occurred_at(occurred_at)
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

    # -- data-sharing agreements -------------------------------------------------------

    def propose_agreement(self, terms: AgreementTerms, by: Actor) -> Agreement:
        """The controller's IG lead proposes; nothing is shared until both parties approve."""
        require(Action.PROPOSE_AGREEMENT, by)
        self.agency(terms.recipient)

        def attempt() -> Agreement:
            agreement = Agreement.propose(by.agency, terms, proposed_by=by.reference)
            controller, recipient = self.agency(by.agency), self.agency(terms.recipient)
            controller.join_agreement(agreement.id)
            recipient.join_agreement(agreement.id)
            self.save(agreement, controller, recipient)
            return agreement

        return self._retrying(attempt)

    def approve_agreement(self, agreement_id: UUID, by: Actor) -> Agreement:
        """An IG lead of either party approves the latest terms; with both, they come into force."""
        require(Action.APPROVE_AGREEMENT, by)

        def attempt() -> Agreement:
            agreement = self._agreement_of_party(agreement_id, by)
            agreement.approve(agency=by.agency, approved_by=by.reference)
            self.save(agreement)
            return agreement

        return self._retrying(attempt)

    def amend_agreement(self, agreement_id: UUID, terms: AgreementTerms, by: Actor) -> Agreement:
        """The controller's IG lead proposes new terms as the next version."""
        require(Action.AMEND_AGREEMENT, by)

        def attempt() -> Agreement:
            agreement = self._agreement_of_party(agreement_id, by)
            agreement.amend(terms, proposed_by=by.reference, agency=by.agency)
            self.save(agreement)
            return agreement

        return self._retrying(attempt)

    def revoke_agreement(self, agreement_id: UUID, reason: str, by: Actor) -> Agreement:
        require(Action.REVOKE_AGREEMENT, by)

        def attempt() -> Agreement:
            agreement = self._agreement_of_party(agreement_id, by)
            agreement.revoke(agency=by.agency, reason=reason, revoked_by=by.reference)
            self.save(agreement)  # nothing, if it was revoked already
            return agreement

        return self._retrying(attempt)

    def _agreement_of_party(self, agreement_id: UUID, by: Actor) -> Agreement:
        agreement = self._get(agreement_id, Agreement)
        if agreement is None or by.agency not in agreement.parties:
            raise AgreementNotFound()
        return agreement

    # -- client consent -----------------------------------------------------------------

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
            expires_at = _check_aware("expires_at", expires_at)
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

    def controls(self, client_id: UUID, agency: str) -> bool:
        """Whether the agency controls some of the client's data (False if no such client)."""
        client = self._get(client_id, Client)
        return client is not None and agency in client.controllers

    def require_controller(self, client_id: UUID, by: Actor) -> None:
        """ClientNotFound unless the caller's agency controls some of the client's data."""
        if by.agency not in self._client(client_id).controllers:
            raise ClientNotFound()

    # -- emergency (break-glass) access ---------------------------------------------------

    def grant_emergency_access(
        self, client_id: UUID, purpose: Purpose, justification: str, minutes: int, by: Actor
    ) -> EmergencyGrant:
        """Rule 5: a named practitioner or safeguarding officer of a partner agency sees the
        client for one purpose for at most 24 hours, and the controller's IG lead reviews it.

        Everything that does not depend on the client is checked first, so those refusals
        say nothing about it. An unknown and an erased client are the same 404. A grant for
        a client the caller could not otherwise see does confirm that the id is a client:
        that is unavoidable (it is the point of breaking glass), and it is never silent:
        the grant is on the client's stream, it is the basis views and replays name, and it
        opens a review for the controller's IG lead in the same transaction."""
        require(Action.GRANT_EMERGENCY_ACCESS, by)
        justification = check_emergency_request(purpose, justification, minutes)
        grant_id = uuid4()
        review_id = review_id_for(grant_id)
        assert by.agency_kind is not None  # the permission admits only agencies of a kind
        kind, clinical = by.agency_kind, by.agency_kind in CLINICAL_KINDS

        def attempt() -> EmergencyGrant:
            # The aggregate refuses an erased client (as unknown) and the client's own
            # registering agency (it sees its own record).
            client = self._client(client_id)
            granted_at = self.clock().astimezone(UTC)
            expires_at = granted_at + timedelta(minutes=minutes)
            # The registering controller reviews; other controllers of the client's data
            # (except the caller's own agency) are told too.
            audience = [client.controller,
                        *sorted(client.controllers - {client.controller, by.agency})]
            terms: dict[str, Any] = {
                "agency": by.agency, "principal": by.reference, "principal_name": by.name,
                "role": by.role.value, "purpose": Purpose(purpose).value,
                "justification": justification, "clinical_notes": clinical,
                "granted_at": granted_at, "expires_at": expires_at,
            }
            client.grant_emergency_access(
                grant_id=grant_id, review_id=review_id, agency_kind=kind.value, **terms,
            )
            review = Review(
                grant_id=grant_id, client_id=client_id, controller=client.controller,
                audience=audience, granted_to=terms.pop("agency"), **terms,
            )
            position = self._position(self.save(client, review))
            return EmergencyGrant(grant_id, review_id, granted_at, expires_at, position)

        return self._retrying(attempt)

    def close_review(
        self, review_id: UUID, outcome: ReviewOutcome, note: str, by: Actor
    ) -> tuple[Review, int]:
        """The registering controller's IG lead closes a review, once, with an outcome.

        A review the caller's agency is not told of is a 404, as for an unknown one.
        Closed as ``not_justified``, a grant still running ends in the same transaction
        (an ``EmergencyAccessEnded`` on the client's stream, at that log position): an
        access judged unjustified must not go on until it expires."""
        require(Action.CLOSE_REVIEW, by)

        def attempt() -> tuple[Review, int]:
            review = self._get(review_id, Review)
            if review is None or by.agency not in review.audience:
                raise ReviewNotFound()
            review.close(outcome=outcome, note=note, closed_by=by.reference, agency=by.agency)
            changed: list[Aggregate] = [review]
            if ReviewOutcome(outcome) is ReviewOutcome.NOT_JUSTIFIED:
                now = self.clock().astimezone(UTC)
                client = self._get(review.client_id, Client)
                if (client is not None and not client.erased
                        and client.emergency_access_running(review.grant_id, now)):
                    client.end_emergency_access(
                        review.grant_id, agency=by.agency, ended_at=now,
                        cause=EmergencyEndCause.REVIEW_NOT_JUSTIFIED, reason=note,
                        ended_by=by.reference,
                    )
                    changed.append(client)
            return review, self._position(self.save(*changed))

        return self._retrying(attempt)

    def end_emergency_access(self, client_id: UUID, grant_id: UUID, reason: str,
                             by: Actor) -> int:
        """The IG lead of the client's registering controller ends a running emergency
        grant now; returns the log position from which it shows nothing.

        Anyone else gets the same 404 as for an unknown client (an agency holding no
        record of the client) or an unknown grant (one that does, such as the grantee
        once it has recorded a fact). A grant already ended or expired is a 409."""
        require(Action.END_EMERGENCY_ACCESS, by)
        reason = reason.strip()
        if not reason:
            raise InvalidCommand("reason", "say why the emergency access is ended")

        def attempt() -> int:
            client = self._client(client_id)
            if client.erased or by.agency not in client.controllers:
                raise ClientNotFound()
            client.end_emergency_access(
                grant_id, agency=by.agency, ended_at=self.clock().astimezone(UTC),
                cause=EmergencyEndCause.ENDED_BY_IG_LEAD, reason=reason,
                ended_by=by.reference,
            )
            return self._position(self.save(client))

        return self._retrying(attempt)

    # -- matching -------------------------------------------------------------------------

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

    # -- households ---------------------------------------------------------------------

    def link_household(self, client_ids: list[UUID], by: Actor) -> tuple[UUID, int]:
        """Links clients into a new household; returns (household id, log position).

        The caller's agency must hold its own record of, or have a basis to see, every
        client (otherwise the same 404 as for an unknown client). A client already in a
        household is a 409: a client belongs to at most one (domain/households.py)."""
        require(Action.LINK_HOUSEHOLD, by)
        members = check_members(client_ids)  # before any client is looked up
        for client_id in members:
            self._client_writable_by(client_id, by)
        for client_id in members:
            if self._exists(membership_id(client_id)):
                raise Conflict(f"client {client_id} already belongs to a household")
        household = Household.link(members, agency=by.agency, linked_by=by.reference)
        joined = [HouseholdMembership(client_id=c, household_id=household.id) for c in members]
        try:
            recordings = self.save(household, *joined)
        except IntegrityError:
            raise Conflict("a client was linked into another household at the same time; "
                           "nothing was written") from None
        return household.id, self._position(recordings)

    def add_household_member(self, household_id: UUID, client_id: UUID, by: Actor) -> int:
        """Adds a client to a household. The caller must see the client and at least one
        member already in the household; otherwise the household is as unknown (404)."""
        require(Action.ADD_HOUSEHOLD_MEMBER, by)
        household = self._get(household_id, Household)
        if household is None or not any(self._sees(c, by) for c in household.members):
            raise HouseholdNotFound()
        self._client_writable_by(client_id, by)
        # A member of this household conflicts in the aggregate; of another, here.
        if client_id not in household.members and self._exists(membership_id(client_id)):
            raise Conflict(f"client {client_id} already belongs to a household")

        def attempt() -> int:
            fresh = self._get(household_id, Household)
            assert fresh is not None
            fresh.add_member(client_id=client_id, agency=by.agency, added_by=by.reference)
            joined = HouseholdMembership(client_id=client_id, household_id=household_id)
            return self._position(self.save(fresh, joined))

        return self._retrying(attempt)

    def _sees(self, client_id: UUID, by: Actor) -> bool:
        try:
            self._client_writable_by(client_id, by)
        except ClientNotFound:
            return False
        return True

    # -- safeguarding alerts -------------------------------------------------------------

    def acknowledge_alert(self, alert_id: UUID, by: Actor) -> tuple[Alert, int]:
        """The recipient agency's safeguarding team acknowledges an alert (also once it
        has been escalated). Another agency's alert is a 404, as for an unknown one."""

        def attempt() -> tuple[Alert, int]:
            alert = self._alert_for(alert_id, by, Action.ACKNOWLEDGE_ALERT)
            alert.acknowledge(by=by.reference)
            return alert, self._position(self.save(alert))

        return self._retrying(attempt)

    def close_alert(self, alert_id: UUID, outcome: AlertOutcome, note: str,
                    by: Actor) -> tuple[Alert, int]:
        """Closes an alert with an outcome, once (a second close is a 409)."""

        def attempt() -> tuple[Alert, int]:
            alert = self._alert_for(alert_id, by, Action.CLOSE_ALERT)
            alert.close(outcome=outcome, note=note, by=by.reference)
            return alert, self._position(self.save(alert))

        return self._retrying(attempt)

    def escalate_alert(self, alert_id: UUID, reason: str) -> int | None:
        """Escalates a raised alert nobody acknowledged in time (the system does this);
        None if it is no longer raised or another process escalated it first."""
        alert = self._get(alert_id, Alert)
        if alert is None:
            return None
        try:
            alert.escalate(reason=reason)
        except Conflict:  # acknowledged, closed or escalated meanwhile
            return None
        try:
            return self._position(self.save(alert))
        except IntegrityError:
            return None

    def _alert_for(self, alert_id: UUID, by: Actor, action: Action) -> Alert:
        require(action, by)
        alert = self._get(alert_id, Alert)
        if alert is None or alert.recipient != by.agency:
            raise AlertNotFound()
        return alert

    # -- access records ------------------------------------------------------------

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
    ) -> int:
        """Appends the record of one read, or of one refused write (a new aggregate: reads
        never contend). ``client_ids`` are the clients it concerned besides ``client_id``
        (each alert's client, in an alert read)."""
        concerned = list(dict.fromkeys([*([client_id] if client_id else []), *client_ids]))
        record = AccessRecord(
            principal=by.reference, principal_name=by.name, agency=by.agency,
            role=by.role.value, action=action.value, purpose=purpose, client_id=client_id,
            client_ids=concerned, subject_agency=subject_agency, outcome=outcome.value,
            detail=detail, returned=returned or [],
        )
        return self._position(self.save(record))

    def event_types(self) -> Iterable[FactType]:
        return CATALOGUE.values()

    def head_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    # -- internals -------------------------------------------------------------------

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        with self._append_lock:
            return super()._record(processing_event)

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
        """The client, if the caller's agency holds its own record of them or has a basis
        to see them; otherwise ClientNotFound, as for an unknown client."""
        client = self._client(client_id)
        if by.agency not in client.controllers and not self.sees_client(by.agency, client_id):
            raise ClientNotFound()
        return client

    def _indexed_client(self, agency: str, fingerprint: str) -> UUID | None:
        """The client the agency registered under this NHS number, if not erased (an
        index written before erasures released it may still name an erased client)."""
        index = self._get(nhs_index_id(agency, fingerprint), NhsNumberIndex)
        if index is None or index.client_id is None:
            return None
        client = self._get(index.client_id, Client)
        return None if client is None or client.erased else index.client_id

    def _exists(self, aggregate_id: UUID) -> bool:
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    @staticmethod
    def _position(recordings: list[Recording[UUID]]) -> int:
        return recordings[-1].notification.id


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_aware(field: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise InvalidCommand(field, "must include a time zone (e.g. 2026-01-31T09:00:00Z)")
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidCommand(field, "is outside the calendar once converted to UTC") from None


def _check_occurred_at(value: datetime) -> datetime:
    value = _check_aware("occurred_at", value)
    if value > datetime.now(UTC) + FUTURE_TOLERANCE:
        raise InvalidCommand("occurred_at", "is in the future")
    return value
