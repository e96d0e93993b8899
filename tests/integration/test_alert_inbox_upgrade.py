"""An alert inbox written before alerts were assigned (and knew when their trigger
happened) is indexed again from the log when accord starts: the inbox is derived data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, Text, inspect

from api.bootstrap import bootstrap
from domain.agencies import Role
from domain.alerts import Alert, TeamMember
from infra.schema import alerts as alerts_table
from infra.settings import Settings
from projections.alerts import AlertInbox


def _earlier_layout() -> Table:
    """``accord_alerts`` as it was before ``triggered_at`` and the assignment columns."""
    return Table(
        alerts_table.name, MetaData(),
        *(Column(name, String(64), primary_key=name == "alert_id") for name in (
            "alert_id", "recipient", "rule", "severity", "status", "client_id",
            "household_id", "acknowledged_by", "closed_by", "outcome")),
        *(Column(name, Text) for name in ("reason", "basis", "note")),
        *(Column(name, BigInteger) for name in ("trigger_position", "raised_position",
                                               "updated_position")),
        *(Column(name, DateTime(timezone=True)) for name in (
            "raised_at", "acknowledge_by", "acknowledged_at", "escalated_at", "closed_at")))


def test_an_inbox_of_an_earlier_layout_is_indexed_again(settings: Settings) -> None:
    accord = bootstrap(settings)
    try:
        alert = Alert(rule="toxic_trio", severity="high", recipient="childrens",
                      client_id=uuid4(), household_id=None, reason="r", basis={},
                      trigger_position=10**6, acknowledge_by=datetime.now(UTC) + timedelta(hours=4))
        alert.assign(to=TeamMember("officer", "childrens", Role.SAFEGUARDING),
                     by=TeamMember("lead", "childrens", Role.SAFEGUARDING))
        accord.app.save(alert)
        accord.find(AlertInbox).catch_up()
        with accord.engine.begin() as conn:
            alerts_table.drop(conn)
            _earlier_layout().create(conn)  # empty, yet the inbox's position is kept
    finally:
        accord.close()
    again = bootstrap(settings)
    try:
        columns = {c["name"] for c in inspect(again.engine).get_columns(alerts_table.name)}
        assert {"triggered_at", "assigned_to", "assigned_by", "assigned_at"} <= columns
        inbox = again.find(AlertInbox)
        inbox.catch_up()
        [item] = inbox.alerts_of("childrens")
        assert (item.alert_id, item.assigned_to, item.assigned_by) == (
            alert.id, "officer", "lead")
        # Saved by hand: no event at its trigger position, so no trigger time.
        assert item.triggered_at is None
    finally:
        again.close()
