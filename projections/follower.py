"""What every tracked read model does to follow the log.

A ``LogFollower`` reads only the events of its topics (a topic-filtered read of the
notification log), in batches, and hands each batch to ``_process`` with the position
that batch brings it up to; ``_process`` writes its rows and records that position with
``self._advance`` in the same transaction (first, so that two processes following the
same read model never both commit the same batch: the second starts again from where the
first got to). ``rebuild`` clears the follower's tables and tracked position and follows
the whole log again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import ClassVar

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from sqlalchemy import Connection, Engine, Table, delete

from domain.application import AccordApplication
from infra.dialect import without_zeroing
from infra.progress import progress
from infra.schema import tracking
from infra.tracking import SqlTrackingRecorder, TrackingConflict

#: How many times a catch-up starts again when another process moved the same read model.
CONFLICT_RETRIES = 50


def topics_of(*aggregates: type) -> list[str]:
    """Every event topic of the given aggregates (found, not listed, so a new event of a
    followed aggregate is never missed by a topic-filtered read of the log)."""
    topics = []
    for aggregate in aggregates:
        for value in vars(aggregate).values():
            if isinstance(value, type) and issubclass(value, Aggregate.Event):
                topics.append(get_topic(value))
    return sorted(set(topics))


class LogFollower:
    #: The tracking name, unique per read model.
    name: ClassVar[str]
    #: What the progress bar says while catching up.
    doing: ClassVar[str]
    #: The tables ``rebuild`` empties.
    tables: ClassVar[tuple[Table, ...]]
    #: At most how many positions of the log one batch covers (None: no limit), for a
    #: follower that reads some events other than through ``_batches``.
    span: ClassVar[int | None] = None

    def __init__(self, app: AccordApplication, engine: Engine, topics: Sequence[str],
                 batch_size: int = 2000, *, copied: Sequence[str] = ()) -> None:
        self.app = app
        self.engine = engine
        #: Every topic followed; ``_batches`` reads those not ``copied`` in bulk by the
        #: follower itself (which then bounds its batches with ``span``).
        self.topics = list(topics)
        self._read_topics = [topic for topic in self.topics if topic not in copied]
        self.batch_size = batch_size
        self.tracking = SqlTrackingRecorder(engine)
        self._lock = threading.Lock()
        self._start = 0  # the position the batch in hand starts after
        self._at: int | None = None  # where this follower's last commit left the read model

    def position(self) -> int:
        return self.tracking.max_tracking_id(self.name) or 0

    def catch_up(self, *, show_progress: bool = False) -> int:
        """Processes everything appended so far; returns how many followed events it
        committed (not counting any another process committed meanwhile)."""
        with self._lock:
            processed = [0]
            for _attempt in range(CONFLICT_RETRIES):
                try:
                    self._follow(show_progress, processed)
                    break
                except TrackingConflict:
                    self._forget()  # another process is following too: resume after it
            else:
                raise TrackingConflict(f"{self.name}: another process kept moving it")
            self._caught_up()
            return processed[0]

    def _follow(self, show_progress: bool, processed: list[int]) -> None:
        head = self.app.recorder.max_notification_id() or 0
        position = self.position()
        if position != self._at:
            # Whatever is kept in memory was built for another position: another process
            # has moved (or rebuilt) this read model since this one last committed.
            self._forget()
        if position < head:
            steps = self._batches(position, head)
            if show_progress:
                steps = progress(steps, self.doing)
            for batch, upto in steps:
                self._start, self._at = position, None
                processed[0] += self._process(batch, upto)
                position = self._at = upto

    def _advance(self, conn: Connection, upto: int) -> None:
        """Records ``upto`` in the batch's transaction (call it first there)."""
        self.tracking.advance(conn, self.name, self._start, upto)

    def _still_at_start(self, conn: Connection) -> None:
        """Raises ``TrackingConflict`` if another process has moved this read model since
        the batch began: for a follower that reads its state outside the batch's write
        transaction, where ``_advance`` alone could not tell a rebuild that emptied the
        state and came back to the same position from nothing having happened."""
        if (self.tracking.position(conn, self.name) or 0) != self._start:
            raise TrackingConflict(f"{self.name} has been moved from {self._start} "
                                   "by another process")

    def rebuild(self, *, show_progress: bool = False) -> int:
        """Empties the tables and the tracked position, and follows the whole log again."""
        self.empty()
        return self.catch_up(show_progress=show_progress)

    def empty(self) -> None:
        """Empties the tables and the tracked position (the first half of ``rebuild``)."""
        with self._lock, self.engine.begin() as conn:
            with without_zeroing(conn):
                for table in self.tables:
                    conn.execute(delete(table))
            conn.execute(delete(tracking).where(tracking.c.name == self.name))
            self._forget()
            self._at = None

    def _batches(self, position: int,
                 head: int) -> Iterable[tuple[Sequence[Notification], int]]:
        """Batches of the followed events, each with the position it brings this read
        model up to (the head, once no more followed events are left before it; or the
        end of the ``span``)."""
        while position < head:
            stop = head if self.span is None else min(head, position + self.span)
            batch = self.app.recorder.select_notifications(
                start=position, limit=self.batch_size, stop=stop, topics=self._read_topics,
                inclusive_of_start=False,
            )
            upto = batch[-1].id if len(batch) == self.batch_size else stop
            yield batch, upto
            position = upto

    def _process(self, batch: Sequence[Notification], upto: int) -> int:
        """Writes the batch's rows and records ``upto`` in one transaction; returns how
        many followed events that was (``batch``, and any the follower read another way)."""
        raise NotImplementedError

    def _forget(self) -> None:
        """Drops any state kept in memory (on rebuild)."""

    def _caught_up(self) -> None:
        """Work after each catch-up, under the same lock."""
