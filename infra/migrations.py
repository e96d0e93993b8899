"""Brings a database to the read models' current layout when accord starts.

``metadata.create_all`` makes the tables a database lacks. A read model written by an
earlier version in a layout the projectors no longer read is dropped or emptied instead,
with its tracked position, so that its projector writes it again from the log: read
models are derived data, and the log keeps everything they were made from.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from infra.schema import (
    access_clients,
    access_controllers,
    access_log,
    alerts,
    client_matching,
    facts,
    feed_outbox,
    metadata,
    policy_agencies,
    policy_agreements,
    policy_consents,
    policy_emergencies,
    policy_erasures,
    review_audience,
    reviews,
    tracking,
    view_rows,
    view_shares,
)

#: The alert stream's index: an agency's alerts in the order they last changed.
alerts_changed = next(i for i in alerts.indexes if i.name == "accord_alerts_recipient_changed")


def migrate(engine: Engine) -> None:
    """Creates the read models' tables, replacing those of an outdated layout."""
    _drop_outdated_views(engine)
    _drop_outdated_access_index(engine)
    _drop_outdated_alert_inbox(engine)
    metadata.create_all(engine)
    # An index added to a table that already exists (create_all adds only new tables).
    alerts_changed.create(engine, checkfirst=True)
    _add_fact_corrections(engine)


def _add_fact_corrections(engine: Engine) -> None:
    """Adds to the agency views' copy of the facts, written before facts could be
    corrected, the columns that say a fact was amended or retracted. Empty is right for
    every fact already copied: a log written before corrections existed holds none, so
    nothing needs to be projected again."""
    inspector = inspect(engine)
    if not inspector.has_table(facts.name):
        return
    present = {column["name"] for column in inspector.get_columns(facts.name)}
    with engine.begin() as conn:
        for name in ("amended", "retracted"):
            if name not in present:
                conn.execute(text(f"ALTER TABLE {facts.name} ADD COLUMN {name} BIGINT"))


def _drop_outdated_access_index(engine: Engine) -> None:
    """Drops an access-audit index written before it kept every client an access
    concerned (``accord_access_clients``), so the index is written again from the access
    records in the log: alert reads, and refused writes, are then found under each client."""
    inspector = inspect(engine)
    if not inspector.has_table(access_log.name) or inspector.has_table(access_clients.name):
        return
    with engine.begin() as conn:
        for table in (access_log, access_controllers):
            if inspector.has_table(table.name):
                table.drop(conn)
        if inspector.has_table(tracking.name):
            conn.execute(tracking.delete().where(tracking.c.name == "access_audit"))


def _drop_outdated_alert_inbox(engine: Engine) -> None:
    """Drops an alert inbox written before it kept each alert's assignee and the time of
    its triggering fact, so that it is indexed again from the alerts' events in the log
    (escalations included: they are events too)."""
    inspector = inspect(engine)
    if not inspector.has_table(alerts.name) or "assigned_to" in {
            column["name"] for column in inspector.get_columns(alerts.name)}:
        return
    with engine.begin() as conn:
        alerts.drop(conn)
        if inspector.has_table(tracking.name):
            conn.execute(tracking.delete().where(tracking.c.name == "alert_inbox"))


def _drop_outdated_views(engine: Engine) -> None:
    """Drops agency-view rows of an earlier layout (before view grounds, or with the
    masked data in each row, or a review inbox that cannot say a grant was ended), so
    that the projector rebuilds them from the log: they are derived data, and the log
    keeps everything they were made from."""
    inspector = inspect(engine)
    if not inspector.has_table(view_rows.name):
        return
    columns = {column["name"] for column in inspector.get_columns(view_rows.name)}
    old_reviews = inspector.has_table(reviews.name) and "grant_ended_at" not in {
        column["name"] for column in inspector.get_columns(reviews.name)}
    if "ground" in columns and "data" not in columns and not old_reviews:
        return
    with engine.begin() as conn:
        view_rows.drop(conn)
        if old_reviews:  # create_all makes it again, with the columns it lacked
            reviews.drop(conn)
        for table in (view_shares, facts, feed_outbox, policy_agencies, policy_agreements,
                      policy_consents, policy_erasures, client_matching, policy_emergencies,
                      reviews, review_audience):
            if inspector.has_table(table.name) and not (old_reviews and table is reviews):
                conn.execute(table.delete())
        if inspector.has_table(tracking.name):
            conn.execute(tracking.delete().where(tracking.c.name == "agency_views"))
