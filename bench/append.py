"""Append cost: accord's write path beside the eventsourcing library's own, in one run.

Target (DESIGN.md, "Targets"): appending through the API costs at most 1.5x the
eventsourcing library's own append on the same database, measured side by side.

Every measurement appends the same N events (one fixed, seeded mix of appointments,
missed appointments, prescription changes and Treatment Outcomes Profiles), round-robin
over the same number of streams, into a fresh database of the chosen kind (an SQLite
file, or a PostgreSQL schema dropped afterwards), one append at a time:

* ``bare eventsourcing``: an ``Application`` with a one-event aggregate and accord's own
  aggregate-cache settings; per event ``repository.get`` + trigger the event + ``save``,
  with the payload already in the canonical form accord stores.
* ``accord record_fact``: ``AccordApplication.record_fact`` (validate the payload against
  its type, check the actor and the client, trigger, save) over registered clients.

With ``--http``, three more rows, each POST answered by a real uvicorn on a free loopback
port, in a background thread of this process, driven by httpx one request at a time on
one keep-alive connection (so the client's own cost is inside these rows):

* ``HTTP, projections off``: ``POST /v1/clients/{id}/events`` with the projections not
  running, as with ``ACCORD_PROJECTIONS=worker`` when ``accord worker`` runs them.
* ``HTTP, projections on``: the same with the embedded default, the in-process projection
  runner catching the agency views up while the appends run (in the same process).
* ``HTTP floor``: the same requests to a no-op route of the same shape (no auth, no
  append): what uvicorn + FastAPI + httpx alone cost per request here.

Rounds are interleaved (the order rotates each round). The table gives the best and
median rate, microseconds per event, and the cost ratio (bare events/s / measured
events/s); the verdict uses the ratio of the medians. A script, not a test.

    .venv/bin/python bench/append.py --database both --events 5000 --rounds 3 --http
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import uvicorn
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from fastapi import FastAPI

from api import errors
from api.app import create_app
from api.bootstrap import Accord, bootstrap
from api.models import EventIn, EventRecorded
from domain.agencies import AgencyKind, Role
from domain.application import OPERATOR, AccordApplication
from domain.catalogue import fact_type
from domain.identity import Identity
from infra.dialect import eventsourcing_env
from infra.keys import generate_key_file
from infra.settings import Settings

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET = 1.5
BARE, ACCORD = "bare eventsourcing", "accord record_fact"
HTTP_OFF, HTTP_ON, FLOOR = "HTTP, projections off", "HTTP, projections on", "HTTP floor"


class Stream(Aggregate):
    """The smallest useful aggregate: one event type carrying a dict payload."""

    @event("Started")
    def __init__(self) -> None:
        self.appended = 0

    @event("Appended")
    def append(self, data: dict[str, Any]) -> None:
        self.appended += 1


class BareApplication(Application[UUID]):
    name = "bare"
    env = dict(AccordApplication.env)  # the same aggregate cache, fast-forward and deepcopy


# -- the workload --------------------------------------------------------------------------


def _payload(rng: random.Random) -> tuple[str, dict[str, Any]]:
    roll, kind = rng.random(), rng.choice(["keywork", "prescriber", "group", "review"])
    if roll < 0.55:
        return "appointment_attended", {"appointment": kind}
    if roll < 0.70:
        return "appointment_missed", {"appointment": kind,
                                      "contacted_afterwards": rng.random() < 0.5}
    if roll < 0.85:
        return "treatment_outcomes_profile", {
            "stage": rng.choice(["start", "review", "exit"]),
            "substance_use": {"alcohol": rng.randint(0, 28), "opiates": rng.randint(0, 28)},
            "injecting": {"days_injected": rng.randint(0, 12), "shared_equipment": False},
            "crime": {"shoplifting_days": rng.randint(0, 5), "selling_drugs_days": 0,
                      "other_theft": False, "assault_or_violence": rng.random() < 0.1},
            "health_and_social_functioning": {
                "psychological_health": rng.randint(0, 20),
                "physical_health": rng.randint(0, 20), "quality_of_life": rng.randint(0, 20),
                "days_paid_work": rng.randint(0, 10), "acute_housing_problem": False},
        }
    return "prescription_changed", {
        "medication": rng.choice(["methadone", "buprenorphine"]),
        "change": rng.choice(["started", "increased", "decreased"]),
        "daily_dose_mg": float(rng.randint(2, 120)), "supervised_consumption": True,
    }


@dataclass(frozen=True)
class Workload:
    streams: int
    facts: list[tuple[str, dict[str, Any]]]
    canonical: list[dict[str, Any]]  # the same payloads as accord stores them, for the bare app
    occurred_at: datetime

    @classmethod
    def make(cls, events: int, streams: int) -> Workload:
        rng = random.Random(2)
        facts = [_payload(rng) for _ in range(events)]
        canonical = [fact_type(name).validate(data) for name, data in facts]
        occurred_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        return cls(streams, facts, canonical, occurred_at)

    def mix(self) -> str:
        counts: dict[str, int] = {}
        for name, _ in self.facts:
            counts[name] = counts.get(name, 0) + 1
        return ", ".join(f"{name} {100 * n / len(self.facts):.0f}%"
                         for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _nhs_number(rng: random.Random) -> str:
    while True:
        digits = [rng.randint(0, 9) for _ in range(9)]
        check = (11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11) % 11
        if check != 10:
            return "".join(map(str, digits)) + str(check)


# -- databases -------------------------------------------------------------------------------


@contextmanager
def fresh_database(kind: str, workdir: Path, key_file: Path) -> Iterator[Settings]:
    if kind == "sqlite":
        path = workdir / f"{uuid.uuid4().hex[:12]}.db"
        try:
            yield Settings(database_url=f"sqlite:///{path}", key_file=key_file)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    schema = f"bench_append_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE SCHEMA "{schema}"')  # the event store does not create its schema
    try:
        yield Settings(database_url=POSTGRES_URL, database_schema=schema, key_file=key_file)
    finally:
        _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _admin(sql: str) -> None:
    with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(sql.encode())


# -- the measurements (each returns seconds for the timed loop) --------------------------


def run_bare(settings: Settings, work: Workload) -> float:
    app = BareApplication(env=eventsourcing_env(settings))
    try:
        streams = [Stream() for _ in range(work.streams)]
        app.save(*streams)
        ids = [s.id for s in streams]
        for stream_id in ids:  # warm the aggregate cache, as accord's setup does
            app.repository.get(stream_id)
        started = time.perf_counter()
        for i, data in enumerate(work.canonical):
            stream: Stream = app.repository.get(ids[i % work.streams])
            stream.append(data=data)
            app.save(stream)
        elapsed = time.perf_counter() - started
        _check(work.streams + len(work.canonical), app.recorder.max_notification_id() or 0)
        return elapsed
    finally:
        app.close()


@dataclass
class Seeded:
    accord: Accord
    token: str
    client_ids: list[UUID]


def seed(settings: Settings, streams: int) -> Seeded:
    accord = bootstrap(settings)
    app = accord.app
    app.register_agency("tp", "Treatment provider", AgencyKind.TREATMENT_PROVIDER, OPERATOR)
    token = app.add_principal("tp", Role.PRACTITIONER, "bench keyworker", OPERATOR).token
    actor = app.authenticate(token)
    rng = random.Random(7)
    client_ids = []
    for n in range(streams):
        identity = Identity(given_name="Bench", family_name=f"Client{n}",
                            date_of_birth=date(1970 + n % 30, 1 + n % 9, 10 + n % 10),
                            nhs_number=_nhs_number(rng), postcode="NR1 3QU")
        client_ids.append(app.register_client(identity, actor)[0])
    for client_id in client_ids:  # warm the aggregate cache
        app.repository.get(client_id)
    return Seeded(accord, token, client_ids)


def run_accord(settings: Settings, work: Workload) -> float:
    seeded = seed(settings, work.streams)
    app = seeded.accord.app
    try:
        actor = app.authenticate(seeded.token)
        before = app.head_position()
        started = time.perf_counter()
        for i, (name, data) in enumerate(work.facts):
            app.record_fact(seeded.client_ids[i % work.streams], name, data, work.occurred_at,
                            actor)
        elapsed = time.perf_counter() - started
        _check(len(work.facts), app.head_position() - before)
        return elapsed
    finally:
        seeded.accord.close()


@contextmanager
def serving(api: FastAPI) -> Iterator[str]:
    """A real uvicorn on a free loopback port, in a background thread; yields its URL."""
    # IPPROTO_TCP, so that asyncio sets TCP_NODELAY on accepted sockets; without it each
    # response can wait ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(api, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise SystemExit("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def post_all(api: FastAPI, token: str, client_ids: list[UUID], work: Workload) -> float:
    occurred_at = work.occurred_at.isoformat()
    with serving(api) as base_url, httpx.Client(
        base_url=base_url, trust_env=False, timeout=30,
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        http.get("/openapi.json").raise_for_status()  # open the connection, build the schema
        started = time.perf_counter()
        for i, (name, data) in enumerate(work.facts):
            response = http.post(f"/v1/clients/{client_ids[i % len(client_ids)]}/events",
                                 json={"type": name, "occurred_at": occurred_at, "data": data})
            if response.status_code != 201:
                raise SystemExit(f"HTTP {response.status_code}: {response.text}")
        return time.perf_counter() - started


def run_http(settings: Settings, work: Workload, *, projections: bool) -> float:
    seeded = seed(replace(settings, run_projections=projections), work.streams)
    app = seeded.accord.app
    try:
        before = app.head_position()
        elapsed = post_all(create_app(seeded.accord), seeded.token, seeded.client_ids, work)
        _check(len(work.facts), app.head_position() - before)
        return elapsed
    finally:
        seeded.accord.close()


def floor_app() -> FastAPI:
    """The same route shape with nothing behind it: what HTTP alone costs per request."""
    api = FastAPI()
    errors.install(api)

    @api.post("/v1/clients/{client_id}/events", status_code=201, response_model=EventRecorded)
    def record_event(client_id: UUID, body: EventIn) -> EventRecorded:
        return EventRecorded(position=1)

    api.add_middleware(errors.BodyLimit, max_bytes=65536)
    return api


def run_floor(_settings: Settings, work: Workload) -> float:
    return post_all(floor_app(), "none", [uuid.uuid4() for _ in range(work.streams)], work)


def _check(expected: int, appended: int) -> None:
    if appended != expected:
        raise SystemExit(f"expected {expected} events appended, found {appended}")


RUNNERS: dict[str, Callable[[Settings, Workload], float]] = {
    BARE: run_bare, ACCORD: run_accord,
    HTTP_OFF: lambda s, w: run_http(s, w, projections=False),
    HTTP_ON: lambda s, w: run_http(s, w, projections=True),
    FLOOR: run_floor,
}


# -- the run ------------------------------------------------------------------------------------


def measure(kind: str, labels: list[str], work: Workload, rounds: int,
            workdir: Path, key_file: Path) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(rounds):
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            with fresh_database(kind, workdir, key_file) as settings:
                rate = len(work.facts) / RUNNERS[label](settings, work)
            rates[label].append(rate)
            print(f"  {kind} round {r + 1}/{rounds} {label}: {rate:,.0f} events/s",
                  file=sys.stderr, flush=True)
    return rates


def table(kind: str, rates: dict[str, list[float]]) -> list[list[str]]:
    bare_best, bare_median = max(rates[BARE]), statistics.median(rates[BARE])
    rows = []
    for label, values in rates.items():
        best, median = max(values), statistics.median(values)
        ratio = bare_median / median
        verdict = "-" if label in (BARE, FLOOR) else ("met" if ratio <= TARGET else "NOT met")
        rows.append([kind, label, f"{median:,.0f}", f"{best:,.0f}", f"{1e6 / median:,.0f}",
                     f"{ratio:.2f}x", f"{bare_best / best:.2f}x", verdict,
                     " / ".join(f"{v:,.0f}" for v in values)])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--events", type=int, default=5000, help="events per measurement")
    parser.add_argument("--clients", type=int, default=50, help="streams the events go to")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--http", action="store_true", help="also append through HTTP")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    labels = [BARE, ACCORD] + ([HTTP_OFF, HTTP_ON, FLOOR] if args.http else [])
    work = Workload.make(args.events, args.clients)

    print(f"append benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{args.events:,} events over {args.clients} streams per measurement, "
          f"{args.rounds} interleaved rounds, a fresh database each; mix: {work.mix()}")
    rows = [["database", "measurement", "median ev/s", "best ev/s", "us/event",
             "cost (median)", "cost (best)", "<= 1.5x", "each round ev/s"]]
    with tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp:
        key_file = Path(tmp) / "kek.key"
        generate_key_file(key_file)
        for kind in kinds:
            rows += table(kind, measure(kind, labels, work, args.rounds, Path(tmp), key_file))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rows.insert(1, ["-" * w for w in widths])
    print(f"load average at end {os.getloadavg()[0]:.2f}; "
          "cost = bare events/s / measured events/s\n")
    for row in rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
