"""The composition root: the one place where accord is put together.

``bootstrap`` builds, in this order, settings → event store → application → read models →
runner → relay, and hands each part what it needs when it is made. Two parts need each
other, and neither is patched afterwards:

* the application asks whether an agency has a basis to see a client, which the agency
  views answer, while the views follow the application's log. The answer is a query of
  the views' rows (``projections.views.ClientVisibility``), which needs only the
  database, so it is built first and given to the application's constructor;
* the application tells whoever follows the log in this process that it has appended,
  so that a view follows its writes within milliseconds instead of a poll. It is given
  a ``WriteNotices`` port at construction; the runner and the relay are connected to
  that port while they run (``Accord.start``).

Every entry point starts here: ``accord serve`` (through the app's lifespan, see
``api.app.create_app``), ``accord worker``, ``accord relay``, the other commands, the
demo, the tests and the benchmarks. A new read model is added to ``_read_models``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar
from uuid import UUID

from sqlalchemy import Engine

from domain.application import AccordApplication
from infra.dialect import create_read_engine, eventsourcing_env
from infra.dialect import of as dialect_of
from infra.keys import KeyFileError, load_key_file, open_vault, read_keys
from infra.migrations import migrate
from infra.relay import KafkaNotConfigured, Relay, pseudonym_key
from infra.runner import BackgroundLoop, ProjectionRunner, WriteNotices
from infra.settings import Settings
from projections.audit import AccessIndex
from projections.log_tree import tree_projections
from projections.reports.projection import OutcomeReports, report_pseudonym_key
from projections.retention import SafeguardingRetention
from projections.safeguarding import safeguarding_projections
from projections.search import BirthIndex
from projections.views import AgencyViews, ClientVisibility

P = TypeVar("P")

#: Whether an agency has a basis to see a client (the application's visibility lookup).
SeesClient = Callable[[str, UUID], bool]


class Projection(Protocol):
    """A read model that follows the log with its position tracked in its own rows."""

    name: str

    def position(self) -> int: ...

    def catch_up(self, *, show_progress: bool = False) -> int: ...

    def rebuild(self, *, show_progress: bool = False) -> int: ...


@dataclass(frozen=True)
class RelayOptions:
    """How ``accord relay`` publishes (its command-line options)."""

    prefix: str = "accord"
    batch_size: int = 500
    poll_interval: float = 0.2
    feed: bool = True


@dataclass
class Accord:
    """The wired system: what every entry point needs, built by ``bootstrap``.

    ``start`` runs this process's background work and ``stop`` ends it; ``close`` also
    releases the event store and the database."""

    settings: Settings
    engine: Engine
    app: AccordApplication
    #: Every tracked read model, in the order they catch up (empty if not asked for).
    projections: list[Projection]
    #: Follows the log with every read model: in this process's background (``start``,
    #: unless ``ACCORD_PROJECTIONS=worker``), or in the foreground (``accord worker``).
    runner: ProjectionRunner | None
    #: The Kafka relay, if asked for (``accord relay``; it needs ``ACCORD_KAFKA_BOOTSTRAP``).
    relay: Relay | None
    writes: WriteNotices = field(repr=False)
    _running: list[BackgroundLoop] = field(default_factory=list, repr=False)

    @property
    def views(self) -> AgencyViews:
        """The agency views (the read model most routes query)."""
        return self.find(AgencyViews)

    def find(self, kind: type[P]) -> P:
        """The read model of the given class; LookupError if this system has none."""
        for projection in self.projections:
            if isinstance(projection, kind):
                return projection
        raise LookupError(f"{kind.__name__}: not among this system's read models")

    def catch_up(self) -> None:
        """Brings every read model up to the head of the log, in this thread."""
        for projection in self.projections:
            projection.catch_up()

    def start(self) -> None:
        """Runs this process's background work, each part told of the application's
        writes while it runs: the projection runner, unless a worker runs the read models
        (``ACCORD_PROJECTIONS=worker``), and the relay, if it was asked for. Starting
        what already runs does nothing; what was stopped starts again."""
        loops: list[BackgroundLoop] = []
        if self.runner is not None and self.settings.run_projections:
            loops.append(self.runner)
        if self.relay is not None:
            loops.append(self.relay)
        for loop in loops:
            if loop not in self._running:
                self.writes.connect(loop.nudge)
                loop.start()
                self._running.append(loop)

    def stop(self) -> None:
        """Ends the background work ``start`` began, each part after its current batch."""
        while self._running:
            loop = self._running.pop()
            self.writes.disconnect(loop.nudge)
            loop.stop()

    def close(self) -> None:
        self.stop()
        if self.relay is not None:
            self.relay.close()
        self.app.close()
        self.engine.dispose()


def bootstrap(settings: Settings | None = None, *, read_models: bool = True,
              relay: RelayOptions | None = None, batch_size: int = 2000,
              poll_interval: float = 0.5, sees_client: SeesClient | None = None) -> Accord:
    """Builds accord from ``settings`` (default: the environment's).

    ``read_models``: build the read models and their runner (a command that only appends
    to the log, such as ``accord agencies add``, needs neither). ``relay``: build the
    Kafka relay with these options (KafkaNotConfigured without ``ACCORD_KAFKA_BOOTSTRAP``).
    ``batch_size`` and ``poll_interval``: how the read models follow the log.
    ``sees_client``: the application's visibility lookup, by default the agency views'
    rows; a test that seeds a log with no views in its process may answer it itself.

    Stops with KeyFileError, in one line saying what to do, if the key-encryption key is
    missing or does not open the client data keys in the database: every identity would
    otherwise fail to open later, as a 500 on every record and view.
    """
    settings = settings or Settings.from_env()
    if relay is not None and not settings.kafka_bootstrap:
        raise KafkaNotConfigured("set ACCORD_KAFKA_BOOTSTRAP (e.g. localhost:9092) "
                                 "to run the Kafka relay")
    env = eventsourcing_env(settings)
    read_keys(settings.key_file)  # no key file: say so before creating a database
    engine = create_read_engine(settings)
    try:
        migrate(engine)
        vault = open_vault(engine, settings.key_file)
    except KeyFileError:
        engine.dispose()
        raise
    writes = WriteNotices()
    app = AccordApplication(vault=vault, env=env,
                            sees_client=sees_client or ClientVisibility(engine),
                            write_listeners=(writes,),
                            serialise_appends=dialect_of(engine).embedded,
                            safeguarding_retention=SafeguardingRetention(engine))
    projections = _read_models(app, engine, settings, batch_size) if read_models else []
    runner = ProjectionRunner(projections, poll_interval=poll_interval) if read_models else None
    kafka = None
    if relay is not None:
        assert settings.kafka_bootstrap  # checked above, before anything was opened
        kafka = Relay(app, engine, settings.kafka_bootstrap,
                      pseudonym_key(load_key_file(settings.key_file)), prefix=relay.prefix,
                      batch_size=relay.batch_size, poll_interval=relay.poll_interval,
                      feed=relay.feed)
    return Accord(settings=settings, engine=engine, app=app, projections=projections,
                  runner=runner, relay=kafka, writes=writes)


def _read_models(app: AccordApplication, engine: Engine, settings: Settings,
                 batch_size: int) -> list[Projection]:
    """Every tracked read model of the log, in the order they catch up (the alert inbox
    after the safeguarding rules, so that an alert raised in one round is indexed in the
    same round). Each is given what it reads, not the settings: the tree its signing key,
    the rules their window and the alerts' time to acknowledge."""
    return [
        AgencyViews(app, engine, batch_size=batch_size),
        BirthIndex(app, engine, batch_size=batch_size),
        AccessIndex(app, engine, batch_size=batch_size),
        *tree_projections(app, engine, settings.signing_key_path, batch_size=batch_size),
        *safeguarding_projections(app, engine, toxic_trio_days=settings.toxic_trio_days,
                                  alert_ack_hours=settings.alert_ack_hours,
                                  batch_size=batch_size),
        # After the rules: an alert raised in one round is counted in the same round.
        OutcomeReports(app, engine, report_pseudonym_key(load_key_file(settings.key_file)),
                       batch_size=batch_size),
    ]


__all__ = ["Accord", "Projection", "RelayOptions", "bootstrap"]
