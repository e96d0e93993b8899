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

from collections.abc import Callable, Iterable, Iterator, Sequence
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


def _sqlite_first(recorder: Any) -> str:
    table: str = recorder.events_table_name
    return (f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "  # noqa: S608 - the library's table name
            "WHERE originator_id IN ({listed}) AND originator_version = 1")


def _postgres_first(recorder: Any) -> str:
    schema: str = recorder.datastore.schema
    table: str = recorder.events_table_name
    return ("SELECT notification_id, originator_id, originator_version, topic, state "  # noqa: S608 - the library's table name
            f'FROM "{schema}"."{table}" '
            "WHERE originator_id IN ({listed}) AND originator_version = 1")


def _postgres(recorder: Any) -> str:
    schema: str = recorder.datastore.schema
    table: str = recorder.events_table_name
    return (f'SELECT notification_id, originator_version, topic, state FROM "{schema}"."{table}" '  # noqa: S608 - the library's table name
            "WHERE originator_id = CAST(:originator AS uuid) AND notification_id <= :upto "
            "ORDER BY originator_version")


def _hex(stream_id: UUID) -> str:
    return stream_id.hex


def _text(stream_id: UUID) -> str:
    return str(stream_id)


class StoredLog:
    """Reads one stream's events, each with its log position, on a given connection."""

    def __init__(self, app: AccordApplication, conn: Connection,
                 decode: Callable[[Notification], Any] | None = None) -> None:
        """``decode``: how an event is decoded (the library's mapper by default)."""
        self.app = app
        self.conn = conn
        self.decode = decode or app.mapper.to_domain_event
        self._sql = dialect.of(conn).choose(sqlite=_sqlite, postgresql=_postgres)(app.recorder)
        self._first = dialect.of(conn).choose(sqlite=_sqlite_first,
                                              postgresql=_postgres_first)(app.recorder)
        # How a stream id is passed to and read back from the library's table.
        self._id: Callable[[UUID], str] = dialect.of(conn).choose(
            sqlite=_hex, postgresql=_text)
        self._cast: str = dialect.of(conn).choose(sqlite="{}", postgresql="CAST({} AS uuid)")
        self._read_id: Callable[[Any], UUID] = dialect.of(conn).choose(
            sqlite=lambda stored: UUID(hex=stored), postgresql=lambda stored: UUID(str(stored)))

    def events_of(self, originator_id: UUID, upto: int,
                  topics: Sequence[str] = ()) -> Iterator[tuple[int, Any]]:
        """(position, domain event) of the stream's events at positions up to ``upto``, in
        the stream's order; only those of ``topics`` if any are named."""
        originator = self._id(originator_id)
        rows = dialect.run(self.conn, self._sql, originator=originator, upto=upto).all()
        for position, version, topic, state in rows:
            if topics and topic not in topics:
                continue
            notification = Notification(id=position, originator_id=originator_id,
                                        originator_version=version, topic=topic,
                                        state=bytes(state))
            yield position, self.decode(notification)

    def registrations(self, client_ids: Iterable[UUID]) -> dict[UUID, Any]:
        """Each client's first event (its registration, holding the sealed identity), in
        one query."""
        ids = sorted(set(client_ids))
        if not ids:
            return {}
        names = {f"c{n}": self._id(c) for n, c in enumerate(ids)}
        listed = ", ".join(self._cast.format(f":{name}") for name in names)
        found: dict[UUID, Any] = {}
        for position, originator, version, topic, state in dialect.run(
                self.conn, self._first.format(listed=listed), **names).all():
            client_id = self._read_id(originator)
            notification = Notification(id=position, originator_id=client_id,
                                        originator_version=version, topic=topic,
                                        state=bytes(state))
            found[client_id] = self.app.mapper.to_domain_event(notification)
        return found
