"""A database whose agency views were written in an earlier layout opens and is rebuilt.

The views are derived from the log, so accord drops rows of an older layout when it
starts and the projector writes them again; what partners see comes out the same.
"""

from __future__ import annotations

import contextlib
import io

import pytest
from sqlalchemy import inspect, text

from api.bootstrap import bootstrap
from api.demo import seed
from infra.settings import Settings
from projections.views import AgencyViews

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
