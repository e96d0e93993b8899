"""Data-sharing agreements (DSAs): the register of who may share what with whom, and why.

An agreement is proposed by the controller's IG lead and comes into force only when
an IG lead of each party has approved the same version of its terms. Either party's
IG lead may revoke it, with a reason. An amendment proposes new terms as the next
version: the terms in force stay in force until both parties approve the amendment,
and every earlier version stays on the record in the agreement's own stream.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Self

from eventsourcing.domain import Aggregate, event
from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.agencies import SLUG
from domain.catalogue import CATALOGUE
from domain.categories import (
    CRIMINAL_OFFENCE_CATEGORIES,
    HEALTH_CATEGORIES,
    NEVER_SHARED_BY_AGREEMENT,
    DataCategory,
)
from domain.errors import AgreementNotFound, AgreementRevoked, Forbidden, InvalidCommand
from domain.inputs import STORED, IsoDate, Text
from domain.vocabulary import Article6, Article9, Article10, LegalDuty, Purpose

IDENTITY_FIELDS = ("given_name", "family_name", "date_of_birth", "nhs_number", "postcode")
#: A payload field's name, as the catalogue writes them.
FieldName = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]


def shareable_fields(category: DataCategory) -> set[str]:
    """Every payload field a fact of this category can carry."""
    if category is DataCategory.IDENTITY:
        return set(IDENTITY_FIELDS)
    return {f for t in CATALOGUE.values() if t.category is category for f in t.fields}


class LawfulBasis(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    article_6: Article6
    article_9: Article9 | None = Field(None, description="required for health data")
    article_10: Article10 | None = Field(None, description="required for criminal offence data")
    legal_duty: LegalDuty | None = Field(
        None, description="a statutory duty: sharing then goes ahead without consent"
    )


class AgreementTerms(BaseModel):
    """One version of an agreement's terms, checked against UK GDPR's requirements."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipient: str = Field(pattern=SLUG.pattern, description="the agency that receives the data")
    title: Text = Field(min_length=1, max_length=200)
    purposes: list[Purpose] = Field(min_length=1)
    categories: dict[DataCategory, list[FieldName]] = Field(
        min_length=1, description="each category shared, with the payload fields shared for it"
    )
    lawful_basis: LawfulBasis
    consent_required: bool
    valid_from: IsoDate
    valid_to: IsoDate | None = None
    review_on: IsoDate
    retention_days: int = Field(ge=1, le=36500)

    @model_validator(mode="after")
    def _check(self) -> Self:
        for category, fields in self.categories.items():
            if category in NEVER_SHARED_BY_AGREEMENT:
                raise ValueError(f"{category.value} are never shared by agreement")
            if not fields:
                raise ValueError(f"name the fields shared for {category.value}")
            unknown = set(fields) - shareable_fields(category)
            if unknown:
                raise ValueError(f"{category.value} has no fields {sorted(unknown)}")
        basis = self.lawful_basis
        if basis.article_9 is None and HEALTH_CATEGORIES & set(self.categories):
            raise ValueError("health data needs an Art. 9 condition (lawful_basis.article_9)")
        if basis.article_10 is None and CRIMINAL_OFFENCE_CATEGORIES & set(self.categories):
            raise ValueError(
                "criminal offence data needs an Art. 10 condition (lawful_basis.article_10)"
            )
        if basis.legal_duty is not None and self.consent_required:
            raise ValueError("a legal duty shares without consent: consent_required must be false")
        if basis.article_6 is Article6.CONSENT and not self.consent_required:
            raise ValueError("an agreement based on consent must require consent")
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class AgreementStatus(StrEnum):
    """An agreement's lifecycle: proposed, approved by both parties (in force from its
    ``valid_from``), active, out of date after its ``valid_to``, or revoked."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    ACTIVE = "active"
    OUT_OF_DATE = "out_of_date"
    REVOKED = "revoked"


class Agreement(Aggregate):
    """A data-sharing agreement between a controller and a recipient agency.

    Its commands keep its rules: an agency does not agree with itself; only a party
    approves or revokes, only the controller amends; a revoked agreement is neither
    approved nor amended (a new one is proposed); the terms come into force when both
    parties have approved the latest version."""

    @classmethod
    def propose(cls, controller: str, terms: AgreementTerms, proposed_by: str) -> Agreement:
        """A new agreement, proposed by ``controller`` (nothing is shared until both
        parties approve)."""
        if terms.recipient == controller:
            raise InvalidCommand("recipient", "an agency does not need an agreement with itself")
        return cls(controller=controller, terms=terms.model_dump(mode="json"),
                   proposed_by=proposed_by)

    class Proposed(Aggregate.Created):
        controller: str
        terms: dict[str, Any]
        proposed_by: str

    @event(Proposed)
    def __init__(self, controller: str, terms: dict[str, Any], proposed_by: str) -> None:
        self.controller = controller
        self.recipient = str(terms["recipient"])
        self.versions: list[dict[str, Any]] = [terms]
        self.in_force: int | None = None  # index into versions
        self.approvals: dict[str, str] = {}  # agency -> principal, for the latest version
        self.revoked = False
        self.revoked_reason: str | None = None

    @property
    def latest(self) -> int:
        return len(self.versions)

    @property
    def status(self) -> AgreementStatus:
        return self.status_on(date.today())

    def status_on(self, day: date) -> AgreementStatus:
        """Where the agreement stands in its lifecycle on ``day``."""
        if self.revoked:
            return AgreementStatus.REVOKED
        if self.in_force is None:
            return AgreementStatus.PROPOSED
        terms = self.terms(self.in_force)
        if day < terms.valid_from:
            return AgreementStatus.APPROVED
        if terms.valid_to is not None and day > terms.valid_to:
            return AgreementStatus.OUT_OF_DATE
        return AgreementStatus.ACTIVE

    @property
    def amendment_proposed(self) -> bool:
        """Whether newer terms await approval while earlier ones stay in force."""
        return self.in_force is not None and not self.revoked and self.in_force < self.latest

    def terms(self, version: int | None = None) -> AgreementTerms:
        # Terms on the record were checked when proposed, by the checks of that time.
        return AgreementTerms.model_validate(self.versions[(version or self.latest) - 1],
                                             context=STORED)

    @property
    def parties(self) -> tuple[str, str]:
        return (self.controller, self.recipient)

    def _check_party(self, agency: str) -> None:
        """To an agency that is not a party the agreement is as unknown."""
        if agency not in self.parties:
            raise AgreementNotFound()

    def approve(self, agency: str, approved_by: str) -> None:
        """A party approves the latest terms (again: nothing changes); with both parties'
        approvals they come into force. A revoked agreement is approved by nobody."""
        self._check_party(agency)
        if self.revoked:
            raise AgreementRevoked()
        if agency not in self.approvals:
            self._approve(agency=agency, version=self.latest, approved_by=approved_by)
        if set(self.approvals) == set(self.parties) and self.in_force != self.latest:
            self._come_into_force(version=self.latest)

    @event("Approved")
    def _approve(self, agency: str, version: int, approved_by: str) -> None:
        self.approvals[agency] = approved_by

    class CameIntoForce(Aggregate.Event):
        version: int

    @event(CameIntoForce)
    def _come_into_force(self, version: int) -> None:
        self.in_force = version

    class Amended(Aggregate.Event):
        terms: dict[str, Any]
        proposed_by: str

    def amend(self, terms: AgreementTerms, proposed_by: str, agency: str) -> None:
        """The controller proposes new terms as the next version; the terms in force stay
        until both parties approve them. The recipient cannot change, and a revoked
        agreement is not amended."""
        self._check_party(agency)
        if agency != self.controller:
            raise Forbidden("only the controller's IG lead amends an agreement")
        if self.revoked:
            raise AgreementRevoked()
        if terms.recipient != self.recipient:
            raise InvalidCommand("recipient", "an amendment cannot change the recipient")
        self._amend(terms=terms.model_dump(mode="json"), proposed_by=proposed_by)

    @event(Amended)
    def _amend(self, terms: dict[str, Any], proposed_by: str) -> None:
        self.versions.append(terms)
        self.approvals = {}

    class Revoked(Aggregate.Event):
        agency: str
        reason: str
        revoked_by: str

    def revoke(self, agency: str, reason: str, revoked_by: str) -> None:
        """Either party revokes; revoking again changes nothing (and records nothing)."""
        self._check_party(agency)
        if not self.revoked:
            self._revoke(agency=agency, reason=reason, revoked_by=revoked_by)

    @event(Revoked)
    def _revoke(self, agency: str, reason: str, revoked_by: str) -> None:
        self.revoked = True
        self.revoked_reason = reason

