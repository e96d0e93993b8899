"""What outcome reports are computed from: masked facts under a pseudonym, and alerts.

A report never sees a client id, a name, an NHS number or a postcode: the projection hands
it ``ReportFact``s that the commissioner's agreements share for the purpose
``commissioning``, already masked to the shared fields, each under a pseudonym.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class ReportFact:
    """One fact the commissioner may see for the purpose ``commissioning``, already masked.

    ``client`` is a pseudonym (never the client id, never identity); ``data`` holds only
    the fields the commissioner's agreement shares, so a measure that needs a field that
    is not there does not count the fact (it never guesses)."""

    client: str
    position: int
    fact_type: str
    occurred_at: datetime  # aware, UTC
    controller: str
    data: Mapping[str, Any]

    @property
    def day(self) -> date:
        """The UTC calendar day the fact happened on: periods are whole days."""
        return self.occurred_at.date()


@dataclass(frozen=True)
class AlertFact:
    """One safeguarding alert, as the reports count it: who was told, when, and whether
    the recipient acknowledged it by its deadline. ``client`` is the same pseudonym as the
    client's ``ReportFact``s; ``recipient_kind`` is the recipient agency's kind
    (``childrens_services`` alerts are child safeguarding, ``adult_social_care`` ones
    adult safeguarding)."""

    client: str
    rule: str
    recipient_kind: str
    raised_at: datetime  # aware, UTC
    acknowledge_by: datetime  # the deadline the alert was raised with
    acknowledged_at: datetime | None = None

    @property
    def acknowledged_in_time(self) -> bool:
        return self.acknowledged_at is not None and self.acknowledged_at <= self.acknowledge_by


@dataclass(frozen=True)
class Period:
    """A reporting period of whole days, both ends inclusive."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a period ends on or after the day it starts")

    def __contains__(self, day: object) -> bool:
        if isinstance(day, datetime):
            day = day.date()
        return isinstance(day, date) and self.start <= day <= self.end
