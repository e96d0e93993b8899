"""Crash safety of the agency views (issue 3).

A projector killed with SIGKILL part-way through catch-up and restarted ends with the
same view as a clean rebuild: nothing lost, nothing twice. On both databases.

The log is seeded in-process with no projections running (``ACCORD_PROJECTIONS=worker``
semantics: ``build`` wires no projector), with the policy changing along the way so
that a restarted projector has to resume from the policy state it persisted: an
agreement amended, then revoked and replaced, a late agency with a new agreement,
consents given and withdrawn, partner facts, an erasure. Then ``accord worker`` runs as
a subprocess and is killed (SIGKILL, no chance to clean up) at three points of the
catch-up; a last ``accord worker --once`` finishes it. Every read-model table is then
compared with what ``AgencyViews.rebuild()`` makes of the same log.

The worker runs ``api.cli.main`` unchanged except for a small batch size (the CLI has no
option for it), so that a catch-up is hundreds of commits long and a kill lands
part-way; the final ``--once`` run uses the default batch size.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select

from api.bootstrap import Accord, bootstrap
from api.demo import (
    AGENCIES,
    TP,
    _ig_lead,
    _seed_agreements,
    _seed_consents,
    demo_agreements,
    demo_nhs_number,
    history,
)
from domain.agencies import AgencyKind, Role
from domain.agreements import AgreementTerms
from domain.application import OPERATOR, Actor
from domain.clients import Client
from domain.identity import Identity
from infra.schema import (
    client_matching,
    facts,
    policy_agencies,
    policy_agreements,
    policy_consents,
    policy_erasures,
    tracking,
    view_rows,
)
from infra.settings import Settings
from projections import queries
from projections.alerts import AlertInbox
from projections.safeguarding import SafeguardingRules
from projections.views import AgencyViews

CLIENTS_PER_ROUND = 45
ROUNDS = 4
KILL_BATCH_SIZE = 15
ACCORD = str(Path(sys.executable).with_name("accord"))  # the console script
#: Where, as fractions of the log, the worker is killed.
KILL_AT = (0.2, 0.45, 0.7)

READ_MODEL = (view_rows, facts, policy_agencies, policy_agreements, policy_consents,
              policy_erasures, client_matching, tracking)


@pytest.fixture
def seeded(settings: Settings) -> Iterator[Accord]:
    assert not Settings.from_env({"ACCORD_PROJECTIONS": "worker"}).run_projections
    # Nothing follows the log in this process (the worker is the only projector), so
    # partners may record facts about every client: the seeding answers that itself.
    accord = bootstrap(settings, sees_client=lambda _agency, _client: True)
    try:
        _seed(accord, random.Random(3))
        # The safeguarding rules raise their alerts now, so that the log the worker
        # follows does not grow under it (the views are what this test compares).
        for projection in accord.projections:
            if isinstance(projection, SafeguardingRules | AlertInbox):
                projection.catch_up()
        yield accord
    finally:
        accord.close()


def test_killed_worker_resumes_to_the_rebuilt_view(seeded: Accord, tmp_path: Path) -> None:
    accord = seeded
    views = AgencyViews(accord.app, accord.engine)
    head = accord.app.recorder.max_notification_id() or 0
    assert views.position() == 0
    env = _worker_env(accord.settings)

    killed_at: list[int] = []
    for n, fraction in enumerate(KILL_AT):
        target = int(head * fraction)
        log = tmp_path / f"worker-{n}.log"
        with log.open("wb") as output:
            worker = subprocess.Popen(
                [ACCORD, "worker", "--poll", "0.05", "--batch-size", str(KILL_BATCH_SIZE)],
                env=env, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT,
            )
            try:
                _wait_for(views, target, worker, log)
            finally:
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=30)
        assert worker.returncode == -signal.SIGKILL
        text = log.read_text()
        assert "following the log from position" in text, text
        assert "Traceback" not in text and "failed" not in text, text
        position = views.position()
        # Killed part-way, and each restart got further than the last kill.
        assert (killed_at[-1] if killed_at else 0) < position < head, (killed_at, position, head)
        killed_at.append(position)

    finish = subprocess.run(
        [sys.executable, "-m", "api.cli", "worker", "--once"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert finish.returncode == 0, finish.stdout + finish.stderr
    assert "Traceback" not in finish.stdout + finish.stderr
    assert views.position() == head

    incremental = _snapshot(accord)
    incremental_view = views.all_rows()
    _check_invariants(accord, incremental, head)

    rebuilt = AgencyViews(accord.app, accord.engine)
    assert rebuilt.rebuild() > 0 and rebuilt.position() == head
    rebuilt = _snapshot(accord)
    for table in READ_MODEL:
        assert len(incremental[table.name]) == len(rebuilt[table.name]), table.name
        assert incremental[table.name] == rebuilt[table.name], table.name
    assert incremental_view == views.all_rows()


# -- the log --------------------------------------------------------------------------------


def _seed(accord: Accord, rng: random.Random) -> None:
    """The demo partnership and its clients, with the policy changing between rounds."""
    app = accord.app
    for slug, name, kind in AGENCIES:
        app.register_agency(slug, name, kind, OPERATOR)
    _seed_agreements(app)
    worker = _actor(accord, TP, Role.PRACTITIONER)
    police = _actor(accord, "northshire-police", Role.PRACTITIONER)
    childrens = _actor(accord, "northshire-childrens", Role.SAFEGUARDING)
    tp_lead = _ig_lead(app, TP)
    leads = {TP: tp_lead}
    agreements = {a.recipient: a.id for a in queries.agreements(app, tp_lead)}
    clients: list[UUID] = []
    used: set[str] = set()
    now = datetime.now(UTC).replace(microsecond=0)
    for round_ in range(ROUNDS):
        for _ in range(CLIENTS_PER_ROUND):
            nhs = demo_nhs_number(rng)
            while nhs in used:
                nhs = demo_nhs_number(rng)
            used.add(nhs)
            identity = Identity(given_name="Crash", family_name=f"Safety{len(clients)}",
                                date_of_birth=date(1980, 1, 1), nhs_number=nhs,
                                postcode="NR1 1AA")
            client_id, _ = app.register_client(identity, worker)
            clients.append(client_id)
            journey = history(rng)
            for index, (type_name, occurred_at, data) in enumerate(journey):
                if index == 2:
                    _seed_consents(app, client_id, rng, journey, worker)
                app.record_fact(client_id, type_name, data, occurred_at, worker)
        # Partners' facts about clients of earlier rounds too (positions far apart).
        for client_id in rng.sample(clients, 12):
            app.record_fact(client_id, "domestic_abuse_incident_recorded",
                            {"role": "victim", "children_present": rng.random() < 0.5},
                            now - timedelta(days=rng.randint(1, 90)), police)
            app.record_fact(client_id, "child_protection_status_recorded",
                            {"status": "child_in_need", "children": 1},
                            now - timedelta(days=rng.randint(1, 60)), childrens)
        # Later consents for earlier clients, some withdrawn.
        for client_id in rng.sample(clients, 8):
            consent_id, _ = app.give_consent(
                client_id, recipient_agency="northshire-housing", recipient_kind=None,
                categories=["identity", "housing"], purposes=["care_coordination"],
                data_from=None, data_to=None, expires_at=None, obtained="written", by=worker,
            )
            if rng.random() < 0.5:
                app.withdraw_consent(client_id, consent_id, "changed their mind", worker)
        if round_ == 0:
            # The police agreement amended (criminal-justice fields narrowed): both approve.
            terms = _terms("northshire-police")
            terms["categories"]["criminal_justice"] = ["order", "status"]
            agreement_id = agreements["northshire-police"]
            app.amend_agreement(agreement_id, AgreementTerms.model_validate(terms), tp_lead)
            app.approve_agreement(agreement_id, tp_lead)
            app.approve_agreement(agreement_id, _lead(app, leads, "northshire-police"))
        elif round_ == 1:
            # Housing's agreement revoked, and a new one (no consent needed) proposed,
            # approved by one party only so far; a client erased.
            app.revoke_agreement(agreements["northshire-housing"], "re-procured", tp_lead)
            terms = _terms("northshire-housing")
            terms["title"] = "Housing support (second agreement)"
            replacement = app.propose_agreement(AgreementTerms.model_validate(terms), tp_lead)
            app.approve_agreement(replacement.id, tp_lead)
            agreements["replacement"] = replacement.id
            app.erase_client(clients[3], "erasure request", tp_lead)
        elif round_ == 2:
            # The replacement comes into force; an agency joins late, with an agreement.
            app.approve_agreement(agreements["replacement"],
                                  _lead(app, leads, "northshire-housing"))
            app.register_agency("northshire-gp", "Northshire GP Federation",
                                AgencyKind.PRIMARY_CARE, OPERATOR)
            terms = {**_terms("northshire-mh-trust"), "recipient": "northshire-gp",
                     "title": "Shared care prescribing", "purposes": ["direct_care"],
                     "consent_required": False}
            terms["categories"] = {k: v for k, v in terms["categories"].items()
                                   if k in ("identity", "prescribing")}
            gp = app.propose_agreement(AgreementTerms.model_validate(terms), tp_lead)
            app.approve_agreement(gp.id, tp_lead)
            app.approve_agreement(gp.id, _lead(app, leads, "northshire-gp"))


def _terms(recipient: str) -> dict[str, Any]:
    for controller, terms in demo_agreements():
        if controller == TP and terms["recipient"] == recipient:
            return {**terms, "categories": dict(terms["categories"])}
    raise KeyError(recipient)


def _lead(app: Any, leads: dict[str, Actor], agency: str) -> Actor:
    if agency not in leads:
        leads[agency] = _ig_lead(app, agency)
    return leads[agency]


def _actor(accord: Accord, agency: str, role: Role) -> Actor:
    app = accord.app
    return app.authenticate(app.add_principal(agency, role, f"crash test {role}", OPERATOR).token)


# -- the worker -----------------------------------------------------------------------------


def _worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCORD_")}
    env.update({
        "ACCORD_DATABASE_URL": settings.database_url,
        "ACCORD_KEY_FILE": str(settings.key_file),
        "ACCORD_PROJECTIONS": "worker",
        "CI": "true",  # no progress bars
        "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).parents[2]),
                                                  env.get("PYTHONPATH")) if p),
    })
    if settings.database_schema:
        env["ACCORD_DATABASE_SCHEMA"] = settings.database_schema
    return env


def _wait_for(views: AgencyViews, target: int, worker: subprocess.Popen[bytes],
              log: Path) -> None:
    deadline = time.monotonic() + 60
    while views.position() < target:
        if worker.poll() is not None:
            pytest.fail(f"the worker exited ({worker.returncode}): {log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the worker did not reach {target}: {log.read_text()}")
        time.sleep(0.005)


# -- comparing ------------------------------------------------------------------------------


def _snapshot(accord: Accord) -> dict[str, list[tuple[Any, ...]]]:
    with accord.engine.connect() as conn:
        return {table.name: [tuple(r) for r in conn.execute(
            select(table).order_by(*table.primary_key.columns))] for table in READ_MODEL}


def _check_invariants(accord: Accord, snapshot: dict[str, list[tuple[Any, ...]]],
                      head: int) -> None:
    """Every fact of the log once in the projector's copy; the views look like the policy."""
    app = accord.app
    fact_positions: list[int] = []
    registered, erased = 0, 0
    position = 0
    while True:
        batch = app.recorder.select_notifications(start=position, limit=1000,
                                                  inclusive_of_start=False)
        if not batch:
            break
        for notification in batch:
            event = app.mapper.to_domain_event(notification)
            if isinstance(event, Client.FactRecorded | Client.Registered):
                fact_positions.append(notification.id)
            registered += isinstance(event, Client.Registered)
            erased += isinstance(event, Client.Erased)
        position = batch[-1].id
    assert position == head
    assert [r[0] for r in snapshot["accord_facts"]] == fact_positions
    tracked = dict(snapshot["accord_tracking"])
    assert tracked["agency_views"] == head
    assert all(position == head for position in tracked.values()), tracked
    assert len(snapshot["accord_client_matching"]) == 2 * (registered - erased)
    assert len(snapshot["accord_policy_erasures"]) == erased == 1

    rows = snapshot["accord_view_rows"]
    columns = [c.name for c in view_rows.columns]
    at = {name: columns.index(name) for name in ("agency", "position", "basis_kind")}
    assert {r[at["position"]] for r in rows} <= set(fact_positions)
    agencies = {r[at["agency"]] for r in rows}
    assert {"northshire-police", "northshire-housing", "northshire-gp",
            "northshire-childrens"} <= agencies, agencies
    kinds = {r[at["basis_kind"]] for r in rows}
    assert len(kinds) >= 3, kinds  # controller, agreement with consent, legal duty, ...

