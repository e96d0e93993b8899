"""Safeguarding retention across aggregates: the open alerts that keep a client's record.

Erasure is refused while safeguarding needs the record (``domain.commands.erasure``). The
client aggregate knows its own facts (a child protection status in force); what spans
aggregates is here: a safeguarding alert about the client, or about a household the
client is in, that its recipient's team has not closed (raised, escalated or
acknowledged). It is read from the alert inbox and the rules' household index, which
follow the log: ``caught_up`` first waits until the safeguarding rules have read the log
as it stands and the inbox has indexed what they raised, so that a fact recorded just
before the erasure cannot raise an alert the check misses (``RetentionUnknown`` if they
do not catch up in time: nothing is erased).
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from sqlalchemy import Engine, func, or_, select

from domain.errors import Conflict
from infra.schema import alerts, rule_households
from infra.tracking import SqlTrackingRecorder
from projections.alerts import OPEN, AlertInbox
from projections.safeguarding import SafeguardingRules

#: How long an erasure waits for the safeguarding rules and the alert inbox.
MAX_WAIT_SECONDS = 5.0


class RetentionUnknown(Conflict):
    """The safeguarding rules or the alert inbox are behind the log, so whether an open
    alert keeps the record cannot be told yet (409): nothing was erased."""

    def __init__(self) -> None:
        super().__init__("the safeguarding alerts are not yet up to date with the record "
                         "(the projections are behind or not running); nothing was erased: "
                         "try again shortly")


class SafeguardingRetention:
    """The open safeguarding alerts that keep a client's record (the application's
    ``safeguarding_retention``): built from the database alone, as
    ``projections.views.ClientVisibility`` is, before the application."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tracking = SqlTrackingRecorder(engine)

    def __call__(self, client_id: UUID) -> list[str]:
        """Why open alerts keep the record (none: they do not). Says how many, not
        whose or what: the IG lead asks the recipients' safeguarding teams."""
        client = client_id.hex
        households = select(rule_households.c.household_id).where(
            rule_households.c.client_id == client).scalar_subquery()
        query = select(func.count()).select_from(alerts).where(
            alerts.c.status.in_(OPEN),
            or_(alerts.c.client_id == client, alerts.c.household_id == households))
        with self.engine.connect() as conn:
            count = int(conn.execute(query).scalar_one())
        if not count:
            return []
        return [f"{count} safeguarding alert{'s' if count > 1 else ''} about the client or "
                "its household {} open until the recipient's safeguarding team closes "
                "{}".format("are" if count > 1 else "is", "them" if count > 1 else "it")]

    def caught_up(self, head: Callable[[], int], timeout: float = MAX_WAIT_SECONDS) -> None:
        """Waits until the safeguarding rules have read the log up to its head as it is
        now, then until the inbox has indexed the log as it is then (every alert the
        rules raised for those facts is appended before their position commits);
        ``RetentionUnknown`` if either is not there within ``timeout`` seconds."""
        try:
            self.tracking.wait(SafeguardingRules.name, head(), timeout=timeout)
            self.tracking.wait(AlertInbox.name, head(), timeout=timeout)
        except TimeoutError:
            raise RetentionUnknown() from None
