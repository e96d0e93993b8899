"""Builds the running system from settings: the place where adapters meet the domain."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from domain.application import AccordApplication
from infra.database import create_read_engine, eventsourcing_env
from infra.keys import FieldVault, load_key_file
from infra.schema import metadata
from infra.settings import Settings


@dataclass
class Accord:
    """The wired system: settings, the application (event store) and the read engine."""

    settings: Settings
    app: AccordApplication
    engine: Engine

    def close(self) -> None:
        self.app.close()
        self.engine.dispose()


def build(settings: Settings | None = None) -> Accord:
    settings = settings or Settings.from_env()
    env = eventsourcing_env(settings)
    engine = create_read_engine(settings)
    metadata.create_all(engine)
    vault = FieldVault(engine, load_key_file(settings.key_file))
    app = AccordApplication(vault=vault, env=env)
    return Accord(settings=settings, app=app, engine=engine)
