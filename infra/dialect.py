"""Everything that differs between SQLite and PostgreSQL, in one place.

One URL (``ACCORD_DATABASE_URL``) selects the database for the event store (the
eventsourcing library's native module for each) and for the read models (SQLAlchemy Core
on the same database, in the same schema). Whatever the rest of accord must do
differently on the two is done here, so that the views, the rules, the log's tree, the
tracking recorder and the relay write one piece of code for both:

* **connecting**: the eventsourcing environment the URL selects (``eventsourcing_env``)
  and the read engine, with SQLite's pragmas or PostgreSQL's pool and schema
  (``create_read_engine``);
* **writing**: many rows through the driver's ``executemany`` (``bulk_insert``,
  ``Dialect.insert_sql``), insert-or-update (``upsert``, ``Dialect.upsert_sql``) and
  insert-or-ignore (``insert_new``);
* **times**: SQLite keeps no time zone. ``Dialect.stamp`` writes a time as SQLAlchemy's
  ``DateTime`` stores it, for SQL run on the driver; ``as_utc`` reads one back (a time
  without a zone is UTC); ``to_utc`` converts any time to UTC;
* **parameter style**: statements are written with ``:name`` parameters, which SQLite's
  driver takes as they are; ``Dialect.driver_sql`` gives psycopg's ``%(name)s``;
* **SQL that must differ** (the event store's own table, JSON functions):
  ``Dialect.choose``.

``of(bind)`` is the one switch: callers ask the ``Dialect`` it returns, never the
database's name. The hot paths (a view's read, a batch of the views' catch-up) pay one
dictionary lookup for it and reuse statements built once per table.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, overload

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql as postgresql_sql
from sqlalchemy.dialects import sqlite as sqlite_sql
from sqlalchemy.engine import URL, make_url

from infra.settings import Settings, SettingsError

T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, eq=False)
class Dialect:
    """What one database needs done its own way."""

    #: SQLAlchemy's name for it: ``sqlite`` or ``postgresql``.
    name: str
    #: Whether the database is a file this process opens (not a server it connects to).
    embedded: bool
    #: A time (or None) as the database stores it, for SQL run on the driver.
    stamp: Callable[[datetime | None], Any]
    #: A statement written with ``:name`` parameters, in the driver's style.
    driver_sql: Callable[[str], str]
    #: SQLAlchemy's ``INSERT`` with ``ON CONFLICT`` for this database.
    insert: Callable[[Table], Any]
    _environment: Callable[[URL, Settings], dict[str, str]]
    _engine: Callable[[URL, Settings], Engine]

    def choose(self, *, sqlite: T, postgresql: T) -> T:
        """The one of two alternatives (SQL texts, say) that is this database's."""
        return sqlite if self is SQLITE else postgresql

    def insert_sql(self, table: Table, columns: Sequence[str] | None = None, *,
                   if_new: bool = False) -> str:
        """``INSERT`` of one row of ``columns`` (every column of the table, in its order,
        if None) with positional parameters, for the driver's ``executemany``;
        ``if_new``: a row whose key is already there is skipped."""
        return _insert_sql(self, table, tuple(columns or ()), if_new)

    def upsert_sql(self, table: Table, key: str, names: Sequence[str]) -> str:
        """Insert-or-update of one row of ``names`` (``:name`` parameters, in the driver's
        style): where ``key`` is already there, the other columns are updated."""
        return _upsert_sql(self, table, key, tuple(names))


def of(bind: Connection | Engine | str) -> Dialect:
    """The dialect of a connection, an engine, or SQLAlchemy's name for a database."""
    name = bind if isinstance(bind, str) else bind.dialect.name
    dialect = _DIALECTS.get(name)
    if dialect is None:
        raise SettingsError(
            f"ACCORD_DATABASE_URL must be sqlite:/// or postgresql+psycopg://, not {name}:")
    return dialect


# -- connecting --------------------------------------------------------------------------

def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment derived from ``ACCORD_DATABASE_URL``."""
    url = _url(settings)
    return of(url.get_backend_name())._environment(url, settings)


def create_read_engine(settings: Settings) -> Engine:
    """The SQLAlchemy engine for read models, configured like the event store's connections."""
    url = _url(settings)
    return of(url.get_backend_name())._engine(url, settings)


def database_file(settings: Settings) -> Path | None:
    """The file an embedded database (SQLite) lives in; None for a database server."""
    url = _url(settings)
    return Path(url.database or "") if of(url.get_backend_name()).embedded else None


def _url(settings: Settings) -> URL:
    try:
        return make_url(settings.database_url)
    except Exception:
        raise SettingsError(
            f"ACCORD_DATABASE_URL is not a database URL: {settings.database_url!r}"
        ) from None


def _sqlite_environment(url: URL, _settings: Settings) -> dict[str, str]:
    path = url.database or ""
    if not path or path == ":memory:" or "mode=memory" in path:
        raise SettingsError(
            "ACCORD_DATABASE_URL must name an SQLite file (in-memory is not supported)"
        )
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30"}


def _postgres_environment(url: URL, settings: Settings) -> dict[str, str]:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.database or "",
        "POSTGRES_HOST": url.host or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_PASSWORD": url.password or "",
        "POSTGRES_POOL_SIZE": "10",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_LOCK_TIMEOUT": "5",
    }
    if settings.database_schema:
        env["POSTGRES_SCHEMA"] = _schema(settings)
    return env


def _sqlite_engine(url: URL, _settings: Settings) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Read models and their tracked positions commit atomically but without an
        # fsync of their own: after a power loss a projection resumes from its last
        # durable position and redoes the rest. Client data keys written here stay
        # durable because the event store (synchronous=FULL) fsyncs the same WAL when
        # it commits the registration that follows the key.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # A projector writes tens of MB when it catches up: checkpoint the WAL into the
        # database every ~40 MB rather than every 4 MB (each checkpoint is an fsync),
        # and keep up to 32 MiB of pages per connection rather than 2 MiB (the view
        # rows of a batch land all over the table, which is clustered by client).
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute("PRAGMA cache_size=-32768")
        # Destroyed key material must not linger in free pages.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    return engine


def _postgres_engine(url: URL, settings: Settings) -> Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if settings.database_schema:
        connect_args["options"] = f"-csearch_path={_schema(settings)}"
    engine = create_engine(url, connect_args=connect_args, pool_size=10, max_overflow=10,
                           pool_pre_ping=True)
    if settings.database_schema:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{_schema(settings)}"'))
    return engine


def _schema(settings: Settings) -> str:
    schema = settings.database_schema or ""
    if not _SCHEMA_NAME.match(schema):
        raise SettingsError("ACCORD_DATABASE_SCHEMA must be a lower-case SQL identifier")
    return schema


@contextlib.contextmanager
def without_zeroing(conn: Connection) -> Iterator[None]:
    """SQLite's ``secure_delete`` switched off, on this connection, for emptying a read
    model's tables (PostgreSQL has no such setting: nothing to do). It zeroes what every
    delete frees, so that key material and what an erasure removes leave nothing in free
    pages; but a rebuild deletes only what it then derives again from the log, and
    zeroing every page of every view cost a rebuild longer than the deletes themselves.
    If anything fails meanwhile the connection is discarded, so it cannot go back to the
    pool with deletes left unzeroed."""
    if of(conn) is not SQLITE:
        yield
        return
    conn.exec_driver_sql("PRAGMA secure_delete=OFF")
    try:
        yield
        conn.exec_driver_sql("PRAGMA secure_delete=ON")
    except BaseException:
        conn.invalidate()
        raise


@contextlib.contextmanager
def durable_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction whose commit is on disk when it returns: the read engine's SQLite
    connections commit without an fsync of their own (``synchronous=NORMAL``, above), so
    this one is switched to ``FULL`` for its length; PostgreSQL's commits always are."""
    with engine.connect() as conn:
        sqlite = of(conn) is SQLITE
        if sqlite:
            conn.exec_driver_sql("PRAGMA synchronous=FULL")
            conn.commit()
        try:
            with conn.begin():
                yield conn
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                conn.commit()


def empty_write_ahead_log(engine: Engine) -> bool:
    """After a data key is destroyed (or an erasure's rows deleted): SQLite's
    write-ahead log still holds the pages as they were before, the wrapped key among
    them, until it is overwritten. A ``TRUNCATE`` checkpoint copies the log into the
    database file (where ``secure_delete`` has zeroed what was freed) and empties it. It
    waits for readers (``busy_timeout``); True if the log was emptied, False if a reader
    kept it busy (the next checkpoint that completes empties it). PostgreSQL: nothing to
    do here (its old row versions go at the next ``VACUUM``: README, erasure)."""
    if not of(engine).embedded:
        return True
    with engine.connect() as conn:
        busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
    return busy is None or busy[0] == 0


def lock_exclusively(conn: Connection, table: Table) -> None:
    """Keeps other writers off ``table`` until the transaction ends (reads go on): on
    PostgreSQL a table lock; SQLite has one writer at a time, so nothing to do."""
    if of(conn) is POSTGRESQL:
        conn.execute(text(f"LOCK TABLE {table.name} IN EXCLUSIVE MODE"))


# -- writing -----------------------------------------------------------------------------

def bulk_insert(conn: Connection, table: Table, rows: Sequence[Sequence[Any]],
                columns: Sequence[str] | None = None, *, if_new: bool = False) -> None:
    """Inserts many rows (tuples of ``columns``, every column of the table if None, in
    stored form) through the driver's ``executemany``: a projection's hot path, where
    building SQLAlchemy statements row by row cost more than writing the rows."""
    if rows:
        conn.exec_driver_sql(of(conn).insert_sql(table, columns, if_new=if_new), rows)


def insert_new(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]],
               key: str) -> None:
    """Inserts rows; one whose ``key`` is already there (a re-run) is left as it is."""
    if rows:
        conn.execute(of(conn).insert(table).on_conflict_do_nothing(index_elements=[key]),
                     list(rows))


def upsert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]],
           key: str) -> None:
    """Inserts each row, or updates the row already there with the same ``key``: one
    statement per row, in order, so of two rows with one key the later wins."""
    insert = of(conn).insert
    for row in rows:
        statement = insert(table).values(**row)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[key], set_={name: value for name, value in row.items()
                                        if name != key}))


@functools.lru_cache(maxsize=128)
def _insert_sql(dialect: Dialect, table: Table, columns: tuple[str, ...],
                if_new: bool) -> str:
    names = columns or tuple(column.name for column in table.columns)
    mark = dialect.choose(sqlite="?", postgresql="%s")
    statement = (f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608 - schema names
                 f"VALUES ({', '.join(mark for _ in names)})")
    return statement + (" ON CONFLICT DO NOTHING" if if_new else "")


@functools.lru_cache(maxsize=128)
def _upsert_sql(dialect: Dialect, table: Table, key: str, names: tuple[str, ...]) -> str:
    others = [name for name in names if name != key]
    on_conflict = (f"DO UPDATE SET {', '.join(f'{n} = excluded.{n}' for n in others)}"
                   if others else "DO NOTHING")
    return dialect.driver_sql(
        f"INSERT INTO {table.name} ({', '.join(names)}) "  # noqa: S608 - schema names
        f"VALUES ({', '.join(f':{n}' for n in names)}) ON CONFLICT ({key}) {on_conflict}")


# -- times -------------------------------------------------------------------------------

@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | str) -> datetime: ...
def as_utc(value: datetime | str | None) -> datetime | None:
    """A time read back from the database, made aware: SQLite drops the zone (and its
    driver gives SQL run on it the stored text), and every time accord stores is UTC, so
    a time without a zone is UTC. A time with one is returned as it is."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@overload
def to_utc(value: None) -> None: ...
@overload
def to_utc(value: datetime) -> datetime: ...
def to_utc(value: datetime | None) -> datetime | None:
    """A time expressed in UTC, whatever zone it came in (PostgreSQL gives times in the
    session's zone, a client may send any offset); one without a zone is taken as UTC.
    For times compared with others, or shown, in UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_stamp(value: datetime | None) -> str | None:
    """A time as SQLAlchemy's ``DateTime`` stores it on SQLite: UTC, no offset."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat(" ", "microseconds")
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def _stored_as_it_is(value: datetime | None) -> datetime | None:
    """PostgreSQL stores an aware time as it is (``timestamptz``)."""
    return value


# -- parameter style ---------------------------------------------------------------------

def _named(statement: str) -> str:
    """SQLite's driver takes ``:name`` parameters as they are."""
    return statement


@functools.lru_cache(maxsize=256)
def _pyformat(statement: str) -> str:
    """``:name`` parameters as psycopg's ``%(name)s``."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", statement)


def run(conn: Connection, statement: str, **params: Any) -> Any:
    """Runs one statement written with ``:name`` parameters on the driver (the reads on
    every partner's hot path, where building a SQLAlchemy statement cost more than
    running it); returns SQLAlchemy's result."""
    return conn.exec_driver_sql(of(conn).driver_sql(statement), params)


SQLITE = Dialect("sqlite", True, _sqlite_stamp, _named, sqlite_sql.insert,
                 _sqlite_environment, _sqlite_engine)
POSTGRESQL = Dialect("postgresql", False, _stored_as_it_is, _pyformat, postgresql_sql.insert,
                     _postgres_environment, _postgres_engine)
_DIALECTS = {dialect.name: dialect for dialect in (SQLITE, POSTGRESQL)}
