"""One URL selects the database for both the event store and the read models.

The event store uses the eventsourcing library's native modules (``sqlite`` for
the embedded default, ``postgres`` in production); read models use SQLAlchemy
Core on the same database, in the same schema.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from infra.settings import Settings, SettingsError

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def is_sqlite(settings: Settings) -> bool:
    return make_url(settings.database_url).get_backend_name() == "sqlite"


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment derived from ``ACCORD_DATABASE_URL``."""
    try:
        url = make_url(settings.database_url)
    except Exception:
        raise SettingsError(
            f"ACCORD_DATABASE_URL is not a database URL: {settings.database_url!r}"
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database or ""
        if not path or path == ":memory:" or "mode=memory" in path:
            raise SettingsError(
                "ACCORD_DATABASE_URL must name an SQLite file (in-memory is not supported)"
            )
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "30"}
    if backend == "postgresql":
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
    raise SettingsError(
        f"ACCORD_DATABASE_URL must be sqlite:/// or postgresql+psycopg://, not {backend}:"
    )


def create_read_engine(settings: Settings) -> Engine:
    """The SQLAlchemy engine for read models, configured like the event store's connections."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
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
