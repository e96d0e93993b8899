"""The tracking recorder for read models, on SQLAlchemy.

It keeps eventsourcing's ``TrackingRecorder`` contract: a projection records the log
position it has processed in the same transaction as its rows, so after a crash it
resumes exactly where its last commit left it, losing nothing and repeating nothing.
``wait`` lets a reader ask for its own writes (read-your-writes) without polling hard.
"""

from __future__ import annotations

import threading
from time import monotonic

from eventsourcing.persistence import Tracking, TrackingRecorder
from sqlalchemy import Connection, Engine, insert, update
from sqlalchemy.exc import IntegrityError

from infra import dialect
from infra.schema import tracking

_POSITION = f"SELECT position FROM {tracking.name} WHERE name = :name"  # noqa: S608 - schema name


class TrackingConflict(Exception):
    """Another process moved a read model's position while this one was working: what
    this one wrote in the same transaction must not be committed."""


class SqlTrackingRecorder(TrackingRecorder):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._advanced = threading.Condition()

    def insert_tracking(self, tracking_: Tracking) -> None:
        with self.engine.begin() as conn:
            self.record(conn, tracking_.application_name, tracking_.notification_id)

    def record(self, conn: Connection, name: str, position: int) -> None:
        """Records ``position`` for ``name`` inside the caller's transaction."""
        dialect.upsert(conn, tracking, [{"name": name, "position": position}], "name")

    def advance(self, conn: Connection, name: str, start: int, upto: int) -> None:
        """Moves ``name`` from ``start`` to ``upto`` inside the caller's transaction, if no
        other process has moved it meanwhile; else raises ``TrackingConflict``.

        Run it first in the transaction: its write takes SQLite's write lock, or locks the
        row on PostgreSQL, so no other follower of the same read model (an ``accord
        projections rebuild`` beside a running server, a second worker) can commit in
        between, and whichever comes second finds the position moved and starts again
        from there."""
        moved = conn.execute(update(tracking).where(
            tracking.c.name == name, tracking.c.position == start).values(position=upto))
        if moved.rowcount == 1:
            return
        if start == 0 and self.position(conn, name) is None:
            try:
                conn.execute(insert(tracking).values(name=name, position=upto))
            except IntegrityError:
                raise TrackingConflict(f"{name} was started by another process") from None
            return
        raise TrackingConflict(f"{name} has been moved from {start} by another process")

    def committed(self) -> None:
        """Wakes readers waiting in ``wait`` (called after a commit in this process)."""
        with self._advanced:
            self._advanced.notify_all()

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.engine.connect() as conn:
            return self.position(conn, application_name)

    @staticmethod
    def position(conn: Connection, name: str) -> int | None:
        """The tracked position, read on the driver: every view and every poll of every
        follower asks for it, and building the query cost more than running it."""
        value = dialect.run(conn, _POSITION, name=name).scalar()
        return int(value) if value is not None else None

    def wait(self, application_name: str, notification_id: int | None, timeout: float = 1.0,
             interrupt: threading.Event | None = None) -> None:
        """Blocks until ``notification_id`` is processed; TimeoutError after ``timeout``."""
        deadline = monotonic() + timeout
        while not self.has_tracking_id(application_name, notification_id):
            remaining = deadline - monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{application_name} has not reached {notification_id}")
            with self._advanced:
                # Another process may be the writer, so wake up now and then regardless.
                self._advanced.wait(min(remaining, 0.05))
