"""Commands of the partnership and its principals: admitting agencies, enrolling and
revoking principals (each administrator within its scope, and never the last
administrator), and resolving a bearer token to the actor it names."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from domain.agencies import (
    ADMINISTRATORS,
    Agency,
    AgencyKind,
    Partnership,
    Principal,
    Role,
    agency_uuid,
)
from domain.commands.core import ApplicationCore
from domain.errors import (
    AgencyExists,
    ConcurrentWrite,
    Forbidden,
    LastAdministrator,
    PrincipalNotFound,
    Unauthenticated,
)
from domain.permissions import Action, require
from domain.results import Actor, IssuedToken
from domain.tokens import bearer_token, new_secret, parse_bearer_token, secret_matches, token_hash


class AgencyCommands(ApplicationCore):
    """The partnership's directory of agencies and the principals acting for them."""

    def register_agency(self, slug: str, name: str, kind: AgencyKind, by: Actor,
                        contact: str | None = None) -> Agency:
        """Admits an agency to the partnership; ``registered_by`` keeps who did it, and
        ``contact`` how partners reach it."""
        require(Action.REGISTER_AGENCY, by)
        if self._exists(agency_uuid(slug)):
            raise AgencyExists(slug)

        def attempt() -> Agency:
            # Built afresh on each attempt: a failed save has already taken its pending events.
            agency = Agency(slug=slug, name=name, kind=kind, registered_by=by.reference)
            if contact is not None:
                agency.record_contact(contact=contact, recorded_by=by.reference)
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

    def record_agency_contact(self, slug: str, contact: str, by: Actor) -> None:
        """Records how partners reach an agency (a partnership administrator's task, as
        registering it is); the same contact again records nothing."""
        require(Action.REGISTER_AGENCY, by)

        def attempt() -> None:
            agency = self.agency(slug)
            if agency.contact != contact:
                agency.record_contact(contact=contact, recorded_by=by.reference)
                self.save(agency)

        self._retrying(attempt)

    def agencies(self) -> list[Agency]:
        return [self.agency(slug) for slug in self._partnership().agencies]

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
        secret = new_secret()

        def attempt() -> IssuedToken:
            enrolling = self.agency(agency)
            principal = Principal(
                agency=agency, role=role, name=name, token_hash=token_hash(secret),
                added_by=by.reference,
            )
            enrolling.enrol(principal.id)
            self.save(enrolling, principal)
            return IssuedToken(principal.id, bearer_token(principal.id, secret))

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
        principal_id, secret = parse_bearer_token(token)
        try:
            principal = self._principal(principal_id)
        except PrincipalNotFound:
            raise Unauthenticated("unknown token") from None
        if not secret_matches(principal.token_hash, secret):
            raise Unauthenticated("unknown token")
        if principal.revoked:
            raise Unauthenticated("token revoked")
        return Actor(principal.id, principal.name, principal.agency,
                     self._agency_kind(principal.agency), principal.role)

    def resume(self, principal_id: UUID) -> Actor:
        """The actor a signed-in web session acts as. The token was checked at sign-in;
        the principal's standing is checked again here, on every request, so a token
        revoked since ends its sessions (Unauthenticated)."""
        try:
            principal = self._principal(principal_id)
        except PrincipalNotFound:
            raise Unauthenticated("unknown principal") from None
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
