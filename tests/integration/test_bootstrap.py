"""The composition root (``api.bootstrap``): every read model wired, the application given
its visibility lookup and its write notices when it is built, and the ways accord refuses
to start said in one line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

import projections
from api.bootstrap import Accord, RelayOptions, bootstrap
from domain.agencies import AgencyKind, Role
from domain.application import OPERATOR, AccordApplication, ApplicationNotWired
from domain.errors import ClientNotFound
from domain.vocabulary import Purpose
from infra.dialect import eventsourcing_env
from infra.relay import KafkaNotConfigured
from infra.settings import Settings
from infra.signing import generate_signing_key_file
from projections.views import AgencyViews
from tests.builders import Partnership, identity


def read_model_classes() -> set[type]:
    """Every class in ``projections/`` (its subpackages too) that follows the log with a
    tracked position (a name, ``position``, ``catch_up`` and ``rebuild``), found rather than
    listed, so that a read model added there and forgotten by the root fails the test below."""
    found: set[type] = set()
    for module_info in pkgutil.walk_packages(projections.__path__, "projections."):
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and isinstance(getattr(cls, "name", None), str) \
                    and all(callable(getattr(cls, m, None))
                            for m in ("position", "catch_up", "rebuild")):
                found.add(cls)
    return found


@pytest.fixture
def signed(settings: Settings) -> Settings:
    generate_signing_key_file(settings.signing_key_path)
    return settings


def test_the_root_wires_every_read_model_once_and_the_runner_follows_them(
    signed: Settings,
) -> None:
    accord = bootstrap(signed)
    try:
        wired = [type(projection) for projection in accord.projections]
        assert len(wired) == len(set(wired))
        assert set(wired) == read_model_classes()
        assert len(wired) >= 5  # views, access index, log tree, rules, alert inbox, ...
        assert accord.runner is not None and accord.runner.projections == accord.projections
        assert accord.views is accord.projections[0]
    finally:
        accord.close()


def test_a_command_that_only_appends_gets_no_read_models(settings: Settings) -> None:
    accord = bootstrap(settings, read_models=False)
    try:
        assert accord.projections == [] and accord.runner is None and accord.relay is None
        with pytest.raises(LookupError, match="AgencyViews"):
            _ = accord.views
    finally:
        accord.close()


def test_a_started_system_follows_its_own_writes_without_waiting_for_a_poll(
    signed: Settings,
) -> None:
    """The runner polls only once a minute here: each write reaching every read model
    within seconds shows the application tells it of its writes (its write notices are
    connected by the root), and stopping disconnects it."""
    accord = bootstrap(signed, poll_interval=60)
    try:
        accord.start()
        at_head = _waiting_for(lambda: _all_at(accord, accord.app.head_position()))
        assert at_head, "the runner's first pass did not reach the head"
        for n in range(3):
            accord.app.register_agency(f"agency-{n}", f"Agency {n}",
                                       AgencyKind.HOUSING, OPERATOR)
            head = accord.app.head_position()
            assert _waiting_for(lambda head=head: _all_at(accord, head)), \
                f"write {n} was not followed"
        accord.stop()
        accord.app.register_agency("after-stop", "After stop", AgencyKind.HOUSING, OPERATOR)
        time.sleep(0.3)
        assert accord.views.position() < accord.app.head_position()
    finally:
        accord.close()


def _all_at(accord: Accord, head: int) -> bool:
    return all(projection.position() >= head for projection in accord.projections
               if projection.name in ("agency_views", "log_tree"))


def _waiting_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_the_application_asks_the_agency_views_whether_a_partner_sees_a_client(
    accord: Accord, partnership: Partnership,
) -> None:
    """The police break glass on the treatment provider's client: they may record a fact
    about the client once the agency views hold the grant, and not before (no assignment
    wired this; the root gave the application the views' lookup when it built it)."""
    app = accord.app
    worker = app.authenticate(partnership.token("tp", Role.PRACTITIONER))
    police = app.authenticate(partnership.token("police", Role.PRACTITIONER))
    client_id, _ = app.register_client(identity(), worker)
    app.grant_emergency_access(client_id, Purpose.SAFEGUARDING_ADULTS,
                               "Found unconscious; next of kin unknown.", 30, police)
    with pytest.raises(ClientNotFound):
        app.record_fact(client_id, "housing_status_recorded", {"status": "settled"},
                        datetime.now(UTC), police)
    accord.views.catch_up()
    assert app.sees_client("police", client_id)
    app.record_fact(client_id, "housing_status_recorded", {"status": "settled"},
                    datetime.now(UTC), police)
    assert AgencyViews(app, accord.engine).sees_client("police", client_id)


def test_an_application_built_without_a_visibility_lookup_fails_loudly(
    accord: Accord, partnership: Partnership,
) -> None:
    """An entry point that builds the application itself and forgets the lookup gets an
    error naming what is missing the first time a command needs it, not a silent "cannot
    see" for every client (as an application nobody wired used to answer)."""
    app = accord.app
    worker = app.authenticate(partnership.token("tp", Role.PRACTITIONER))
    client_id, _ = app.register_client(identity(), worker)
    unwired = AccordApplication(vault=app.vault, env=eventsourcing_env(accord.settings))
    try:
        police = unwired.authenticate(partnership.token("police", Role.PRACTITIONER))
        own = unwired.authenticate(partnership.token("tp", Role.PRACTITIONER))
        # The controller writes about its own client without asking anyone ...
        unwired.record_fact(client_id, "housing_status_recorded", {"status": "settled"},
                            datetime.now(UTC), own)
        # ... a partner's write needs the lookup, and its absence is not an answer.
        with pytest.raises(ApplicationNotWired, match="sees_client"):
            unwired.record_fact(client_id, "housing_status_recorded", {"status": "settled"},
                                datetime.now(UTC), police)
    finally:
        unwired.close()
    with pytest.raises(ClientNotFound):  # the root's application answers, from the views
        app.record_fact(client_id, "housing_status_recorded", {"status": "settled"},
                        datetime.now(UTC), app.authenticate(
                            partnership.token("police", Role.PRACTITIONER)))


def test_a_relay_asked_for_without_kafka_is_refused_before_a_database_is_made(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'accord.db'}",
                        key_file=tmp_path / "kek.key")
    with pytest.raises(KafkaNotConfigured, match="ACCORD_KAFKA_BOOTSTRAP"):
        bootstrap(settings, relay=RelayOptions())
    assert not (tmp_path / "accord.db").exists()
