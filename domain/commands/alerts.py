"""Working safeguarding alerts: the recipient agency's safeguarding staff acknowledge,
assign and close them; the system escalates those nobody acknowledged in time."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.agencies import Principal
from domain.alerts import Alert, AlertOutcome, TeamMember
from domain.commands.core import ApplicationCore
from domain.errors import AlertNotFound, Conflict, PrincipalNotFound
from domain.permissions import Action, require
from domain.results import Actor


class AlertCommands(ApplicationCore):
    """The lifecycle of an alert, as its recipient works it."""

    def acknowledge_alert(self, alert_id: UUID, by: Actor) -> tuple[Alert, int]:
        """The recipient agency's safeguarding team acknowledges an alert (also once it
        has been escalated). Another agency's alert is a 404, as for an unknown one."""

        def attempt() -> tuple[Alert, int]:
            alert = self._alert_for(alert_id, by, Action.ACKNOWLEDGE_ALERT)
            alert.acknowledge(by=by.reference)
            return alert, self._position(self.save(alert))

        return self._retrying(attempt)

    def assign_alert(self, alert_id: UUID, principal_id: UUID,
                     by: Actor) -> tuple[Alert, int]:
        """Assigns an alert of the caller's agency to a member of its safeguarding team.
        Another agency's alert is a 404, as for an unknown one; so is another agency's
        principal (its staff list is not the caller's to probe). The alert itself refuses
        an assignee who is not an active safeguarding member of the recipient agency."""

        def attempt() -> tuple[Alert, int]:
            alert = self._alert_for(alert_id, by, Action.ASSIGN_ALERT)
            principal = self._get(principal_id, Principal)
            if principal is None or principal.agency != by.agency:
                raise PrincipalNotFound()
            alert.assign(
                to=TeamMember(str(principal.id), principal.agency, principal.role,
                              active=not principal.revoked),
                by=TeamMember(by.reference, by.agency, by.role))
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
