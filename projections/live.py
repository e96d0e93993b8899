"""Every projection of the log, started beside the application and connected to it.

``projections_of`` is the one list of tracked projections: the API process runs them on
the embedded default, ``accord worker`` runs them in production, and
``accord projections rebuild|catch-up`` replays them. A new read model is added here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from infra.runner import ProjectionRunner
from infra.wiring import Accord
from projections.audit import AccessIndex
from projections.log_tree import tree_projections
from projections.safeguarding import safeguarding_projections
from projections.views import AgencyViews

P = TypeVar("P")


class Projection(Protocol):
    """A read model that follows the log with its position tracked in its own rows."""

    name: str

    def position(self) -> int: ...

    def catch_up(self, *, show_progress: bool = False) -> int: ...

    def rebuild(self, *, show_progress: bool = False) -> int: ...


@dataclass
class Projections:
    views: AgencyViews
    all: list[Projection]
    runner: ProjectionRunner | None

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()

    def catch_up(self) -> None:
        for projection in self.all:
            projection.catch_up()

    def find(self, kind: type[P]) -> P:
        """The running projection of the given class (for the routes that query it)."""
        for projection in self.all:
            if isinstance(projection, kind):
                return projection
        raise LookupError(kind.__name__)


def projections_of(accord: Accord, views: AgencyViews | None = None,
                   batch_size: int = 2000) -> list[Projection]:
    """Every tracked projection of the log, in the order they catch up."""
    return [
        views or AgencyViews(accord.app, accord.engine, batch_size=batch_size),
        AccessIndex(accord.app, accord.engine, batch_size=batch_size),
        *tree_projections(accord, batch_size=batch_size),
        *safeguarding_projections(accord, batch_size=batch_size),
    ]


def attach(accord: Accord, *, run_in_process: bool = True) -> Projections:
    """Connects the views to the application; runs them in this process unless a worker does."""
    views = AgencyViews(accord.app, accord.engine)
    accord.app.sees_client = views.sees_client
    every = projections_of(accord, views)
    runner = None
    if run_in_process:
        runner = ProjectionRunner(every)
        accord.app.write_listeners.append(runner.nudge)
        runner.start()
    return Projections(views, every, runner)
