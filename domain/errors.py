"""What can go wrong in a command, in the partnership's terms.

The API maps each to one HTTP status; the CLI prints the message. None of them
carries data the caller may not see.
"""

from __future__ import annotations

from uuid import UUID


class AccordError(Exception):
    """Base of the domain's refusals."""


class NotFound(AccordError):
    """Unknown, or not visible to the caller: the two are indistinguishable on purpose."""


class ClientNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("client not found")


class AgencyNotFound(NotFound):
    def __init__(self, slug: str) -> None:
        super().__init__(f"agency {slug!r} not found")


class AgreementNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("agreement not found")


class ConsentNotFound(NotFound):
    """Unknown, or recorded by another agency: only the recording agency may act on a
    consent, and to anyone else it is as unknown."""

    def __init__(self) -> None:
        super().__init__("consent not found")


class EmergencyAccessNotFound(NotFound):
    """An unknown emergency grant, or one the caller's agency may not end (only the IG
    lead of the client's registering controller may): the two are the same answer."""

    def __init__(self) -> None:
        super().__init__("emergency access not found")


class FactNotFound(NotFound):
    """No fact of this client at that log position, or one another agency recorded: only
    the fact's controller may correct it, and to anyone else it is as unknown."""

    def __init__(self) -> None:
        super().__init__("fact not found")


class FlagNotFound(NotFound):
    """An unknown flag, or one another agency set on the client: only the agency that
    set a flag removes it, and to anyone else it is as unknown."""

    def __init__(self) -> None:
        super().__init__("flag not found")


class PrincipalNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("principal not found")


class ReviewNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("review not found")


class HouseholdNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("household not found")


class AlertNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("alert not found")


class Forbidden(AccordError):
    """The caller is known, but their role or agency may not do this."""


class Unauthenticated(AccordError):
    """No valid, unrevoked token."""


class Conflict(AccordError):
    """The command conflicts with what is already recorded."""


class AgencyExists(Conflict):
    def __init__(self, slug: str) -> None:
        super().__init__(f"agency {slug!r} is already registered")


class LastAdministrator(Conflict):
    """Revoking this principal would leave the partnership, or an agency, without an
    administrator to manage its principals; the message says which, and what to do first."""


class ClientAlreadyRegistered(Conflict):
    """The registering agency already has a client with this NHS number."""

    def __init__(self, client_id: UUID) -> None:
        self.client_id = client_id
        super().__init__(
            f"this agency has already registered a client with that NHS number: {client_id}"
        )


class AgreementRevoked(Conflict):
    def __init__(self) -> None:
        super().__init__("this agreement has been revoked; propose a new one")


class ConsentAlreadyWithdrawn(Conflict):
    def __init__(self) -> None:
        super().__init__("this consent has already been withdrawn")


class FactAlreadyRetracted(Conflict):
    """A retracted fact is neither amended nor retracted again."""

    def __init__(self) -> None:
        super().__init__("this fact has been retracted; record a new fact instead")


class FlagAlreadyRemoved(Conflict):
    def __init__(self) -> None:
        super().__init__("this flag has already been removed")


class EmergencyAccessOver(Conflict):
    """The grant has already ended, or expired: there is nothing left to end."""


class ConcurrentWrite(Conflict):
    """Another write to the same record won twice in a row; nothing was written."""

    def __init__(self) -> None:
        super().__init__(
            "the record was changed by another request at the same time; nothing was written, "
            "please retry"
        )


class InvalidCommand(AccordError):
    """A command's arguments break a rule the schema alone cannot express."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class ErasureRefused(Conflict):
    """A legal hold or a safeguarding retention keeps the client's record: the message
    says which (the caller is the IG lead of the record's controller)."""


class LegalHoldConflict(Conflict):
    """A legal hold placed twice, or lifted where none is in place."""


class RestrictionConflict(Conflict):
    """A client restricted twice, or a restriction lifted where none is in place."""


class RestrictionReasonRequired(Conflict):
    """Processing of the client is restricted (UK GDPR Art. 18): its controllers read
    its record only for a legal claim, which the read must state."""

    def __init__(self) -> None:
        super().__init__(
            "processing of this client is restricted (UK GDPR Art. 18): its record is read "
            "only for the establishment, exercise or defence of legal claims; state the "
            "claim in restriction_reason (10 to 500 characters) and the read is recorded "
            "with it")
