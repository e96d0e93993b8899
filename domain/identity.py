"""A client's identity, and the port through which it is protected.

Identity never enters the log in plain text. The domain hands an ``Identity`` to
an ``IdentityVault`` (implemented in ``infra.keys``) which seals it with the
client's own data key and returns an opaque string for the log, plus a keyed
fingerprint of the NHS number for matching. Destroying the data key erases the
identity everywhere (crypto-shredding) while the log stays append-only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.inputs import IsoDate, Name

_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$")


def nhs_number_is_valid(value: str) -> bool:
    """The NHS number's modulus-11 check: ten digits, the last a check digit."""
    if len(value) != 10 or not (value.isascii() and value.isdigit()):
        return False
    weights = range(10, 1, -1)
    total = sum(int(digit) * weight for digit, weight in zip(value[:9], weights, strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(value[9])


def normalise_nhs_number(value: str) -> str:
    """Accepts the usual written forms ("943 476 5919", "943-476-5919")."""
    return re.sub(r"[\s-]", "", value)


class Identity(BaseModel):
    """Who the client is. Held only in sealed form at rest."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    given_name: Name = Field(min_length=1, max_length=100)
    family_name: Name = Field(min_length=1, max_length=100)
    date_of_birth: IsoDate
    nhs_number: str = Field(description="ten digits; spaces or hyphens are allowed")
    postcode: str = Field(min_length=5, max_length=8)

    @field_validator("nhs_number")
    @classmethod
    def _check_nhs_number(cls, value: str) -> str:
        return checked_nhs_number(value)

    @field_validator("postcode")
    @classmethod
    def _check_postcode(cls, value: str) -> str:
        value = value.upper()
        if not _POSTCODE.match(value):
            raise ValueError("not a valid UK postcode")
        if " " not in value:
            value = f"{value[:-3]} {value[-3:]}"
        return value

    @field_validator("date_of_birth")
    @classmethod
    def _check_date_of_birth(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("date of birth is in the future")
        if value.year < 1900:
            raise ValueError("date of birth is before 1900")
        return value


def checked_nhs_number(value: str) -> str:
    """The NHS number normalised to ten digits, or ValueError if its check digit fails."""
    value = normalise_nhs_number(value)
    if not nhs_number_is_valid(value):
        raise ValueError("not a valid NHS number (ten digits with a modulus-11 check digit)")
    return value


def nhs_match_key(nhs_number: str) -> str:
    return f"nhs:{normalise_nhs_number(nhs_number)}"


def name_match_key(family_name: str, date_of_birth: date) -> str:
    return f"name:{' '.join(family_name.casefold().split())}|{date_of_birth.isoformat()}"


def birth_match_key(date_of_birth: date) -> str:
    """The date of birth alone: a name search finds the few clients born that day by its
    keyed fingerprint, then compares their names (``projections.search``)."""
    return f"born:{date_of_birth.isoformat()}"


#: How a text sealed with a client's data key is written in a payload (``seal_texts``).
SEALED_TEXT_PREFIX = "sealed:v1:"


class IdentityErased(Exception):
    """The client's data key was destroyed: the identity can no longer be read."""


class IdentityVault(Protocol):
    """Seals identities with per-client data keys (see ``infra.keys``)."""

    def seal(self, client_id: UUID, identity: Identity) -> str:
        """Creates the client's data key and returns the sealed identity."""
        ...

    def open(self, client_id: UUID, sealed: str) -> Identity:
        """Returns the identity, or raises IdentityErased."""
        ...

    def fingerprint(self, value: str) -> str:
        """A keyed hash for matching (NHS number, or name and date of birth)."""
        ...

    def shred(self, client_id: UUID) -> None:
        """Destroys the client's data key."""
        ...

    def seal_texts(self, client_id: UUID, texts: Sequence[str]) -> list[str]:
        """Each text sealed with the client's data key (free text that can identify the
        client: ``domain.sealing``); raises IdentityErased once the key is destroyed."""
        ...

    def open_texts(self, client_id: UUID, sealed: Sequence[str]) -> list[str]:
        """The texts ``seal_texts`` sealed for this client, with one read of its data key;
        raises IdentityErased once the key is destroyed (with no texts: whether it is)."""
        ...
