"""Facts copied from the event store's own rows into ``accord_facts``, by the database.

Every fact the views show is a ``Client.FactRecorded`` event (or the identity fact of a
``Client.Registered`` one), and a fact's row is a plain copy of the event's fields: no
policy is involved. Decoding each event in Python only to write its fields back was the
largest share of a view catch-up, so the agency views copy each range of the log with
one ``INSERT … SELECT`` that reads the stored events' JSON where they lie, in the same
transaction as the rest of the batch.

This reads the eventsourcing library's stored form: its table, its notification ids,
and the JSON its transcoder writes (times as ``{"_type_": "datetime_iso", "_data_":
"…"}``). ``copy_statement`` refuses an application that compresses or encrypts stored
events, which would hide the JSON, and ``tests/integration/test_log_facts.py`` compares
every copied fact with the same event decoded by the library. Times are stored the way the read
models store them (on SQLite, SQLAlchemy's UTC text), and a time not in the UTC form the
domain writes makes the copy fail (``occurred_at`` and ``recorded_at`` are NOT NULL)
rather than store it wrongly.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine

from domain.application import AccordApplication
from domain.categories import DataCategory
from domain.clients import Client
from infra import dialect

FACT_RECORDED = get_topic(Client.FactRecorded)
REGISTERED = get_topic(Client.Registered)
#: The fact type under which a registration appears in the views.
REGISTRATION_FACT = "client_registered"

_COLUMNS = ("position, client_id, fact_type, category, controller, occurred_at, recorded_at, "
            "recorded_by, data")


def _sqlite_time_sql(value: str) -> str:
    """SQL for an ISO time in UTC (``2026-01-22T21:51:58[.804090]+00:00``) as SQLAlchemy's
    ``DateTime`` text on SQLite (``2026-01-22 21:51:58.804090``); NULL for any other form."""
    return (f"(CASE WHEN length({value}) = 32 AND substr({value}, 20, 1) = '.' "
            f"AND substr({value}, 27) = '+00:00' "
            f"THEN substr({value}, 1, 10) || ' ' || substr({value}, 12, 15) "
            f"WHEN length({value}) = 25 AND substr({value}, 20) = '+00:00' "
            f"THEN substr({value}, 1, 10) || ' ' || substr({value}, 12, 8) || '.000000' END)")


def _sqlite(recorder: Any) -> str:
    table: str = recorder.events_table_name

    def field(path: str) -> str:
        return f"json_extract(e.state, '$.{path}')"

    events = (f"(SELECT rowid AS position, replace(originator_id, '-', '') AS client_id, "  # noqa: S608 - the library's table name
              f"topic, CAST(state AS TEXT) AS state FROM {table} "
              "WHERE rowid > :after AND rowid <= :upto AND topic IN (:recorded, :registered)) e")
    recorded_at = _sqlite_time_sql(field("timestamp._data_"))
    return (f"INSERT INTO accord_facts ({_COLUMNS}) "  # noqa: S608 - fixed text
            f"SELECT e.position, e.client_id, {field('fact_type')}, {field('category')}, "
            f"{field('controller')}, {_sqlite_time_sql(field('occurred_at._data_'))}, "
            f"{recorded_at}, {field('recorded_by')}, json_extract(e.state, '$.data') "
            f"FROM {events} WHERE e.topic = :recorded "
            f"UNION ALL SELECT e.position, e.client_id, :registration, :identity, "
            f"{field('controller')}, {recorded_at}, {recorded_at}, {field('registered_by')}, "
            f"'{{}}' FROM {events} WHERE e.topic = :registered")


def _postgres(recorder: Any) -> str:
    schema: str = recorder.datastore.schema
    table: str = recorder.events_table_name
    events = (f'(SELECT notification_id AS position, '  # noqa: S608 - the library's table name
              f"replace(originator_id::text, '-', '') AS client_id, topic, "
              f"convert_from(state, 'UTF8')::json AS state FROM \"{schema}\".\"{table}\" "
              "WHERE notification_id > :after AND notification_id <= :upto "
              "AND topic IN (:recorded, :registered)) e")
    recorded_at = "(e.state -> 'timestamp' ->> '_data_')::timestamptz"
    return (f"INSERT INTO accord_facts ({_COLUMNS}) "  # noqa: S608 - fixed text
            "SELECT e.position, e.client_id, e.state ->> 'fact_type', e.state ->> 'category', "
            "e.state ->> 'controller', (e.state -> 'occurred_at' ->> '_data_')::timestamptz, "
            f"{recorded_at}, e.state ->> 'recorded_by', (e.state -> 'data')::text "
            f"FROM {events} WHERE e.topic = :recorded "
            "UNION ALL SELECT e.position, e.client_id, :registration, :identity, "
            f"e.state ->> 'controller', {recorded_at}, {recorded_at}, "
            "e.state ->> 'registered_by', '{}' "
            f"FROM {events} WHERE e.topic = :registered")


def copy_statement(app: AccordApplication, database: Connection | Engine | str) -> str:
    """The statement that copies the facts at positions after ``:after`` up to ``:upto``
    (with ``copy_parameters``) into ``accord_facts``, for the application's event store
    on ``database`` (an engine or connection, or its dialect's name)."""
    mapper = app.mapper
    if mapper.compressor is not None or mapper.cipher is not None:
        raise ValueError("the agency views copy facts from the stored events' JSON: the "
                         "event store must not compress or encrypt it")
    write = dialect.of(database).choose(sqlite=_sqlite, postgresql=_postgres)
    return write(app.recorder)


def copy_parameters(after: int, upto: int) -> dict[str, object]:
    return {"after": after, "upto": upto, "recorded": FACT_RECORDED, "registered": REGISTERED,
            "registration": REGISTRATION_FACT, "identity": DataCategory.IDENTITY.value}
