"""Read-your-writes (``min_position``) without holding a worker thread while waiting.

A caller that has just written passes the write's log position as ``min_position`` and
the read waits (up to ``MAX_WAIT_SECONDS``) until the read model has caught up with it.
That wait used to poll on one of the server's worker threads: about 40 requests asking
for a position far beyond the head of the log took every thread for 2 s each, and every
other caller's request queued behind them. Now:

- a ``min_position`` more than ``MARGIN`` positions beyond the head of the log is a 422
  naming ``min_position``: no write has that position, so there is nothing to wait for
  (the margin leaves room for writes committing while the request arrives);
- a wait is a coroutine parked on the event loop (an ``asyncio.Condition``), not a
  thread; while any request waits, one poller per read model reads the tracked position
  (a quick query, on a worker thread for that moment only) every ``POLL_SECONDS`` and
  wakes the waiters; the read model may be followed by another process (``accord
  worker``), so polling the database is what sees its progress;
- at most ``MAX_WAITING`` requests wait on one read model at a time; more get 503.

On a time-out the read goes ahead: its answer says which position it is current to.
The dependencies routes list (``ViewsCaughtUp``, ``InboxCaughtUp``) are in ``api.deps``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from domain.errors import InvalidCommand

log = logging.getLogger("accord.api")

#: How long a read-your-writes request waits for the read model to catch up.
MAX_WAIT_SECONDS = 2.0
#: How far beyond the head of the log a ``min_position`` may be.
MARGIN = 100
#: How often the tracked position is read while requests wait.
POLL_SECONDS = 0.05
#: How many requests may wait on one read model at a time (per server process).
MAX_WAITING = 200


class TooManyWaiting(HTTPException):
    def __init__(self) -> None:
        super().__init__(503, "too many requests are waiting for the views to catch up; "
                              "retry shortly")


class CatchUp:
    """Lets requests wait, on the event loop, until one read model reaches a position."""

    def __init__(self, position: Callable[[], int], head: Callable[[], int], *,
                 poll_seconds: float = POLL_SECONDS, max_waiting: int = MAX_WAITING) -> None:
        self._position = position
        self._head = head
        self.poll_seconds = poll_seconds
        self.max_waiting = max_waiting
        #: How many requests are waiting now.
        self.waiting = 0
        self._seen = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Condition()
        self._poller: asyncio.Task[None] | None = None

    async def until(self, target: int, timeout: float = MAX_WAIT_SECONDS) -> bool:
        """True once the read model has processed ``target``, False after ``timeout``.
        ``InvalidCommand`` (422) for a target beyond the head plus ``MARGIN``;
        ``TooManyWaiting`` (503) when ``max_waiting`` requests already wait."""
        position, head = await run_in_threadpool(lambda: (self._position(), self._head()))
        self._seen = position
        if position >= target:
            return True
        if target > head + MARGIN:
            raise InvalidCommand("min_position", f"is more than {MARGIN} positions beyond "
                                                 "the head of the log: no write has it yet")
        if self.waiting >= self.max_waiting:
            raise TooManyWaiting()
        self._bind()
        self.waiting += 1
        try:
            if self._poller is None:
                self._poller = asyncio.get_running_loop().create_task(self._poll())
            async with self._changed:
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: self._seen >= target), timeout)
                except TimeoutError:
                    return False
            return True
        finally:
            self.waiting -= 1

    def _bind(self) -> None:
        """asyncio's primitives belong to one event loop: a server has one, but each
        TestClient session of the same app runs its own."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._changed, self._poller = loop, asyncio.Condition(), None

    async def _poll(self) -> None:
        try:
            while self.waiting:
                try:
                    seen = await run_in_threadpool(self._position)
                except Exception:  # the database is unreachable: waiters time out
                    log.exception("cannot read a tracked position for min_position")
                else:
                    async with self._changed:
                        self._seen = seen
                        self._changed.notify_all()
                await asyncio.sleep(self.poll_seconds)
        finally:
            self._poller = None


class Tracked(Protocol):
    """A read model with a tracked position (the agency views, the alert inbox)."""

    name: str

    def position(self) -> int: ...
