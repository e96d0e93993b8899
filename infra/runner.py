"""Runs projections: in a background thread of the API process on the embedded default,
or as ``accord worker`` in its own process in production.

The library's SQLite recorder has no ``subscribe()``, so a runner polls the log from
each projection's tracked position; in-process it is also nudged after every local
write, so a view follows its writes within milliseconds rather than a poll interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

log = logging.getLogger("accord.projections")


class CatchesUp(Protocol):
    name: str

    def catch_up(self) -> int: ...


class BackgroundLoop:
    """A loop in a daemon thread that can be nudged awake and asked to stop: what the
    projection runner and the Kafka relay share. Subclasses write ``run``, waiting on
    ``_wake`` and checking ``_stop``."""

    thread_name = "accord-background"
    #: How long ``stop`` waits for the loop to finish its batch.
    join_timeout = 10.0

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Runs the loop in a daemon thread (again, if it was stopped)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()

    def nudge(self, _position: int | None = None) -> None:
        self._wake.set()

    def stop_soon(self) -> None:
        """Asks the loop to finish after the current batch (safe from a signal handler)."""
        self._stop.set()
        self._wake.set()

    def stop(self) -> None:
        self.stop_soon()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout)

    def run(self) -> None:
        raise NotImplementedError


class WriteNotices:
    """Tells the background loops of this process that the application has appended.

    The application is given this port when it is built, before the loops that follow its
    log exist (they need the application first); the composition root connects each loop
    while it runs. Called with the position of the last event appended."""

    def __init__(self) -> None:
        self._listeners: tuple[Callable[[int], None], ...] = ()

    def connect(self, listener: Callable[[int], None]) -> None:
        self._listeners = (*self._listeners, listener)

    def disconnect(self, listener: Callable[[int], None]) -> None:
        self._listeners = tuple(each for each in self._listeners if each != listener)

    def __call__(self, position: int) -> None:
        for listener in self._listeners:  # a tuple: connecting meanwhile is safe
            listener(position)


class ProjectionRunner(BackgroundLoop):
    thread_name = "accord-projections"

    def __init__(self, projections: Sequence[CatchesUp], poll_interval: float = 0.5,
                 linger: float = 0.05) -> None:
        super().__init__()
        self.projections = list(projections)
        self.poll_interval = poll_interval
        #: After a nudge, how long to gather further writes into the same catch-up: under
        #: load (every read appends an access record) one pass serves many writes.
        self.linger = linger

    def run(self) -> None:
        """Catches every projection up until stopped; a failing batch is retried later."""
        while not self._stop.is_set():
            self._wake.clear()
            for projection in self.projections:
                try:
                    projection.catch_up()
                except Exception:
                    log.exception("projection %s failed; retrying", projection.name)
                    self._stop.wait(1.0)
            if self._wake.wait(self.poll_interval) and self.linger:
                self._stop.wait(self.linger)
