"""A database whose agency views were written in an earlier layout opens and is rebuilt.

The views are derived from the log, so accord drops rows of an older layout when it
starts and the projector writes them again; what partners see comes out the same.
"""

from __future__ import annotations

import contextlib
import io
import json
from uuid import uuid4

import pytest
from sqlalchemy import Column, MetaData, Table, inspect, select, text

from api.bootstrap import Accord, bootstrap
from api.demo import seed
from domain.access import AccessRecord
from domain.agencies import AgencyKind, Role
from domain.application import OPERATOR
from domain.vocabulary import Purpose
from infra.schema import reviews as reviews_table
from infra.settings import Settings
from projections.views import AgencyViews
from tests.builders import Partnership, identity

#: The view rows' layout before grounds had a table of their own.
ROWS_WITH_BASIS = """
CREATE TABLE accord_view_rows (
    client_id VARCHAR(32) NOT NULL, agency VARCHAR(64) NOT NULL,
    purpose VARCHAR(32) NOT NULL, position BIGINT NOT NULL, basis_key VARCHAR(120) NOT NULL,
    basis TEXT NOT NULL, reason TEXT NOT NULL, fact_type VARCHAR(64) NOT NULL,
    category VARCHAR(32) NOT NULL, controller VARCHAR(64) NOT NULL,
    occurred_at TIMESTAMP NOT NULL, recorded_at TIMESTAMP NOT NULL, fields TEXT,
    data TEXT NOT NULL, not_before TIMESTAMP, not_after TIMESTAMP,
    PRIMARY KEY (client_id, agency, purpose, position, basis_key)
)
"""

#: The layout with grounds, but the masked data written into every row.
ROWS_WITH_DATA = """
CREATE TABLE accord_view_rows (
    client_id VARCHAR(32) NOT NULL, agency VARCHAR(64) NOT NULL,
    purpose VARCHAR(32) NOT NULL, position BIGINT NOT NULL, ground VARCHAR(24) NOT NULL,
    basis_kind VARCHAR(32) NOT NULL, controller VARCHAR(64) NOT NULL, data TEXT NOT NULL,
    not_before TIMESTAMP, not_after TIMESTAMP,
    PRIMARY KEY (client_id, agency, purpose, position, ground)
)
"""


@pytest.mark.parametrize("old_layout", [ROWS_WITH_BASIS, ROWS_WITH_DATA],
                         ids=["basis in rows", "data in rows"])
def test_views_of_an_earlier_layout_are_rebuilt_from_the_log(settings: Settings,
                                                             old_layout: str) -> None:
    accord = bootstrap(settings)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the demo prints its tokens
            seed(accord, clients=6)
        views = AgencyViews(accord.app, accord.engine)
        views.catch_up()
        before = views.all_rows()
        assert before
        with accord.engine.begin() as conn:
            conn.execute(text("DROP TABLE accord_view_rows"))
            conn.execute(text(old_layout))
    finally:
        accord.close()

    reopened = bootstrap(settings)
    try:
        columns = {c["name"] for c in inspect(reopened.engine).get_columns("accord_view_rows")}
        assert "ground" in columns and not columns & {"basis_key", "data"}
        views = AgencyViews(reopened.app, reopened.engine)
        assert views.position() == 0  # followed again from the start of the log
        views.catch_up()
        assert views.all_rows() == before
    finally:
        reopened.close()


# -- the review inbox before grants could end ----------------------------------------------


def test_a_review_inbox_of_an_earlier_layout_is_rebuilt_with_the_end_of_grants(
    settings: Settings
) -> None:
    """A database whose review inbox predates ended grants opens, and the projector
    writes the inbox again from the log, with the new columns."""
    accord = bootstrap(settings)
    try:
        app = accord.app
        for slug, kind in (("tp", AgencyKind.TREATMENT_PROVIDER), ("police", AgencyKind.POLICE)):
            app.register_agency(slug, slug, kind, OPERATOR)
        worker = app.authenticate(app.add_principal("tp", Role.PRACTITIONER, "w",
                                                    OPERATOR).token)
        officer = app.authenticate(app.add_principal("police", Role.PRACTITIONER, "o",
                                                     OPERATOR).token)
        client_id, _ = app.register_client(identity(), worker)
        grant = app.grant_emergency_access(client_id, Purpose.SAFEGUARDING_ADULTS,
                                           "Collapsed in custody; need history.", 30, officer)
        AgencyViews(app, accord.engine).catch_up()
        old = MetaData()
        kept = [Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                for c in reviews_table.columns if not c.name.startswith("grant_end")]
        old_reviews = Table(reviews_table.name, old, *kept,
                            schema=reviews_table.schema)
        with accord.engine.begin() as conn:
            reviews_table.drop(conn)
            old_reviews.create(conn)
    finally:
        accord.close()
    reopened = bootstrap(settings)
    try:
        columns = {c["name"] for c in inspect(reopened.engine).get_columns(reviews_table.name)}
        assert {"grant_ended_at", "grant_ended_by", "grant_end_cause"} <= columns
        AgencyViews(reopened.app, reopened.engine).catch_up()
        with reopened.engine.connect() as conn:
            [row] = conn.execute(select(reviews_table)).all()
        assert row.review_id == grant.review_id.hex and row.grant_ended_at is None
    finally:
        reopened.close()


# -- access records before they named several clients --------------------------------------


def test_an_access_record_written_before_client_ids_reads_as_about_its_one_client(
    accord: Accord, partnership: Partnership
) -> None:
    """Records already in a log (version 1) are read with the client they named."""
    actor = accord.app.authenticate(partnership.token("police", Role.PRACTITIONER))
    client_id = uuid4()
    for named in (client_id, None):
        record = AccessRecord(
            principal=actor.reference, principal_name=actor.name, agency=actor.agency,
            role=actor.role.value, action="view", purpose="direct_care", client_id=named,
            client_ids=[client_id] if named else [], subject_agency=None,
            outcome="not_found", detail=None, returned=[])
        [event] = record.collect_events()
        stored = accord.app.mapper.to_stored_event(event)
        state = json.loads(stored.state)
        assert state.pop("class_version") == 3
        del state["client_ids"], state["withheld_client_ids"]
        old = type(stored)(originator_id=stored.originator_id,
                           originator_version=stored.originator_version, topic=stored.topic,
                           state=json.dumps(state).encode())
        decoded = accord.app.mapper.to_domain_event(old)
        assert isinstance(decoded, AccessRecord.Recorded)
        assert decoded.client_ids == ([client_id] if named else [])
        assert decoded.withheld_client_ids == []


def test_an_access_record_written_before_withheld_clients_withheld_nobody(
    accord: Accord, partnership: Partnership
) -> None:
    """Records of version 2 (before a match named the clients it found but did not tell
    of) are read as withholding nobody, and index as they did."""
    actor = accord.app.authenticate(partnership.token("police", Role.PRACTITIONER))
    client_id = uuid4()
    record = AccessRecord(
        principal=actor.reference, principal_name=actor.name, agency=actor.agency,
        role=actor.role.value, action="match", purpose="direct_care", client_id=None,
        client_ids=[], subject_agency=None, outcome="no_match", detail=None, returned=[],
        withheld_client_ids=[client_id])
    [event] = record.collect_events()
    stored = accord.app.mapper.to_stored_event(event)
    state = json.loads(stored.state)
    assert len(state["withheld_client_ids"]) == 1
    state["class_version"] = 2
    del state["withheld_client_ids"]
    old = type(stored)(originator_id=stored.originator_id,
                       originator_version=stored.originator_version, topic=stored.topic,
                       state=json.dumps(state).encode())
    decoded = accord.app.mapper.to_domain_event(old)
    assert isinstance(decoded, AccessRecord.Recorded)
    assert decoded.withheld_client_ids == [] and decoded.client_ids == []
