"""One stream's events as the log holds them, with their log positions, up to a position.

The reports projection keeps only what a commissioner may see, so when a client's consent
or an agreement changes what that is, the facts it did not keep must be read again from
the log. The library reads one stream without its log positions (``select_events``) and
the notification log without a filter by stream (``select_notifications``); this reads
one stream's events with their positions, up to the position being projected, straight
from the library's table (as ``projections.log_facts`` does), so that what is derived
again is exactly what a rebuild derives at that position. The events are decoded by the
library's own mapper.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from sqlalchemy import Connection

from domain.application import AccordApplication
from infra import dialect


def _sqlite(recorder: Any) -> str:
    table: str = recorder.events_table_name
    return (f"SELECT rowid, originator_version, topic, state FROM {table} "  # noqa: S608 - the library's table name
            "WHERE originator_id = :originator AND rowid <= :upto "
            "ORDER BY originator_version")


def _postgres(recorder: Any) -> str:
    schema: str = recorder.datastore.schema
    table: str = recorder.events_table_name
    return (f'SELECT notification_id, originator_version, topic, state FROM "{schema}"."{table}" '  # noqa: S608 - the library's table name
            "WHERE originator_id = CAST(:originator AS uuid) AND notification_id <= :upto "
            "ORDER BY originator_version")


class StoredLog:
    """Reads one stream's events, each with its log position, on a given connection."""

    def __init__(self, app: AccordApplication, conn: Connection) -> None:
        self.app = app
        self.conn = conn
        self._sql = dialect.of(conn).choose(sqlite=_sqlite, postgresql=_postgres)(app.recorder)
        self._sqlite = dialect.of(conn) is dialect.SQLITE

    def events_of(self, originator_id: UUID, upto: int,
                  topics: Sequence[str] = ()) -> Iterator[tuple[int, Any]]:
        """(position, domain event) of the stream's events at positions up to ``upto``, in
        the stream's order; only those of ``topics`` if any are named."""
        originator = originator_id.hex if self._sqlite else str(originator_id)
        rows = dialect.run(self.conn, self._sql, originator=originator, upto=upto).all()
        for position, version, topic, state in rows:
            if topics and topic not in topics:
                continue
            notification = Notification(id=position, originator_id=originator_id,
                                        originator_version=version, topic=topic,
                                        state=bytes(state))
            yield position, self.app.mapper.to_domain_event(notification)
