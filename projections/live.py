"""Starts the projections beside the application and connects them to it."""

from __future__ import annotations

from dataclasses import dataclass

from infra.runner import ProjectionRunner
from infra.wiring import Accord
from projections.views import AgencyViews


@dataclass
class Projections:
    views: AgencyViews
    runner: ProjectionRunner | None

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()


def attach(accord: Accord, *, run_in_process: bool = True) -> Projections:
    """Connects the views to the application; runs them in this process unless a worker does."""
    views = AgencyViews(accord.app, accord.engine)
    accord.app.sees_client = views.sees_client
    runner = None
    if run_in_process:
        runner = ProjectionRunner([views])
        accord.app.write_listeners.append(runner.nudge)
        runner.start()
    return Projections(views, runner)
