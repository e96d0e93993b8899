"""Two processes following the same read model at once end as one would have.

An operator may run ``accord projections rebuild`` while ``accord serve`` follows the log
in-process, or start a second ``accord worker`` by mistake. Each batch moves the tracked
position only from where that follower found it, first thing in its transaction, so the
second to get there starts again from where the first got to: nothing is written twice,
no follower gives up, and the views equal a clean rebuild. Here each "process" is a
follower with its own connections, in its own thread.
"""

from __future__ import annotations

import contextlib
import io
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import delete

from api.bootstrap import Accord
from api.demo import seed
from domain.access import AccessAction, AccessOutcome
from domain.agencies import Role
from infra.schema import tracking
from projections.audit import AccessIndex
from projections.follower import LogFollower
from projections.views import AgencyViews
from tests.builders import Partnership


def seeded(accord: Accord) -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # the demo prints its tokens
        seed(accord, clients=12)


def emptied(follower: LogFollower) -> LogFollower:
    """The follower's read model emptied, as if never run (the demo caught it up)."""
    with follower.engine.begin() as conn:
        for table in follower.tables:
            conn.execute(delete(table))
        conn.execute(delete(tracking).where(tracking.c.name == follower.name))
    return follower


def followed(accord: Accord, follower: LogFollower) -> int:
    """How many events of the log the follower follows."""
    return len(accord.app.recorder.select_notifications(
        start=1, limit=10**9, topics=follower.topics))


def clean_rebuild(accord: Accord) -> list[tuple[object, ...]]:
    views = AgencyViews(accord.app, accord.engine)
    views.rebuild()
    return views.all_rows()


def test_two_followers_of_the_agency_views_at_once_write_each_batch_once(
    accord: Accord,
) -> None:
    seeded(accord)
    followers = [AgencyViews(accord.app, accord.engine, batch_size=40) for _ in range(2)]
    emptied(followers[0])
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda views: views.catch_up(), followers))
    head = accord.app.head_position()
    assert all(views.position() == head for views in followers)
    assert sum(done) == followed(accord, followers[0])  # every batch committed once
    incremental = followers[0].all_rows()
    assert incremental == clean_rebuild(accord)


def test_a_rebuild_beside_a_following_projector_ends_equal_to_a_clean_rebuild(
    accord: Accord,
) -> None:
    seeded(accord)
    serving = AgencyViews(accord.app, accord.engine, batch_size=40)
    serving.catch_up()
    rebuilding = AgencyViews(accord.app, accord.engine, batch_size=40)
    with ThreadPoolExecutor(max_workers=2) as pool:
        rebuilt = pool.submit(rebuilding.rebuild)
        for _ in range(20):  # the server is nudged by writes while the rebuild runs
            serving.catch_up()
        rebuilt.result()
    serving.catch_up()
    assert serving.position() == accord.app.head_position()
    assert serving.all_rows() == clean_rebuild(accord)


def test_two_followers_of_the_access_index_record_each_read_once(
    accord: Accord, partnership: Partnership,
) -> None:
    actor = accord.app.authenticate(partnership.token("police", Role.PRACTITIONER))
    for _ in range(150):
        accord.app.record_access(actor, AccessAction.MATCH, purpose="offender_management",
                                 client_id=None, outcome=AccessOutcome.NO_MATCH)
    followers = [AccessIndex(accord.app, accord.engine, batch_size=40) for _ in range(2)]
    emptied(followers[0])
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(lambda index: index.catch_up(), followers))
    assert sum(done) == followed(accord, followers[0])
    with accord.engine.connect() as conn:
        counted = conn.exec_driver_sql(
            "SELECT COUNT(*), COUNT(DISTINCT position) FROM accord_access_log").one()
    assert counted[0] == counted[1] == 150
