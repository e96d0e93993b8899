"""Projection catch-up into all agency views, beside a bare replay of the log, in one run.

Seeds a fresh database with the demo partnership (``api.demo.seed``: the eight agencies,
their agreements, and N clients with realistic histories, consent asked for at
assessment, a few withdrawals, police and children's services records), then, in each
round, measures:

* ``bare replay``: read the whole notification log in batches of 2,000 and decode every
  event into its domain event (``recorder.select_notifications`` + ``mapper``): what a
  projection that decodes every event must pay before doing any work, so its ceiling
  (the agency views decode only the events that change the policy: they copy the facts
  in SQL);
* ``catch-up``: ``AgencyViews.catch_up()`` from empty views (emptied untimed just
  before): follow the same log into every agency's view (the policy's changes decoded
  and compiled into shares, the facts copied from the log and their rows derived in
  bulk, the tracked position committed with each batch). This is the figure for the
  target;
* ``rebuild``: ``AgencyViews.rebuild()``, what ``accord projections rebuild`` does:
  delete every view row and the policy state, then the same catch-up;
* ``database alone`` (once, after the rounds): the facts the rebuild wrote deleted with
  their view rows and feed entries, then copied from the log again and their rows
  derived with the projector's own statements, in log order, one transaction per batch
  of the projector's (``AgencyViews.span`` positions), against the shares in force at
  the head of the log: what the database alone costs, with no policy, so a second
  ceiling.

Target (DESIGN.md): catch-up into all agency views at least 30k events/s on SQLite.
A script, not a test: nothing asserts on timings.

    .venv/bin/python bench/catchup.py --clients 1000 --rounds 3 --database sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from api.bootstrap import Accord, bootstrap
from api.demo import seed
from infra.keys import generate_key_file
from infra.settings import Settings
from infra.signing import generate_signing_key_file
from projections.log_facts import copy_statement
from projections.views import AgencyViews, ViewWriter

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET = 30_000


def bare_replay(accord: Accord) -> int:
    recorder, mapper = accord.app.recorder, accord.app.mapper
    count = position = 0
    while batch := recorder.select_notifications(start=position, limit=2000,
                                                 inclusive_of_start=False):
        for notification in batch:
            mapper.to_domain_event(notification)
        count += len(batch)
        position = batch[-1].id
    return count


def database_alone(accord: Accord, span: int = AgencyViews.span) -> float:
    """Seconds to copy every fact from the log again and derive its view rows and feed
    entries, in the projector's batches."""
    head = accord.app.head_position()
    with accord.engine.begin() as conn:
        for table in ("accord_view_rows", "accord_feed_outbox", "accord_facts"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    copy_facts = copy_statement(accord.app, accord.engine.dialect.name)
    started = time.perf_counter()
    for after in range(0, head, span):
        with accord.engine.begin() as conn:
            ViewWriter(conn, set(), copy_facts, after).flush(min(head, after + span))
    return time.perf_counter() - started


def timed(work: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = work()
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000, help="demo clients to seed")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="accord-bench-") as tmp:
        key_file = Path(tmp) / "kek.key"
        generate_key_file(key_file)
        generate_signing_key_file(key_file.parent / "signing.key")  # as `accord demo` does
        schema = None
        if args.database == "sqlite":
            settings = Settings(database_url=f"sqlite:///{tmp}/bench.db", key_file=key_file)
        else:
            schema = f"bench_catchup_{uuid.uuid4().hex[:12]}"
            settings = Settings(database_url=POSTGRES_URL, database_schema=schema,
                                key_file=key_file)
        accord = bootstrap(settings)
        try:
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the demo prints its tokens
                seed(accord, args.clients)
            seconds = time.perf_counter() - started
            print(f"catch-up benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
                  f"{platform.python_implementation()} {platform.python_version()}, "
                  f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
                  f"{args.database}; seeded the demo partnership with {args.clients:,} clients "
                  f"in {seconds:.0f} s", flush=True)
            views = accord.views
            replay, catchup, rebuild = [], [], []
            for r in range(args.rounds):
                events, seconds = timed(lambda: bare_replay(accord))
                replay.append(events / seconds)
                views.empty()
                processed, seconds = timed(views.catch_up)
                catchup.append(processed / seconds)
                processed, seconds = timed(views.rebuild)
                rebuild.append(processed / seconds)
                print(f"  round {r + 1}: bare replay {replay[-1]:,.0f}/s, "
                      f"catch-up {catchup[-1]:,.0f}/s, rebuild {rebuild[-1]:,.0f}/s", flush=True)
            with accord.engine.connect() as conn:
                rows = int(conn.exec_driver_sql("SELECT COUNT(*) FROM accord_view_rows")
                           .scalar() or 0)
            floor = processed / database_alone(accord)
        finally:
            accord.close()
            if schema is not None:
                with psycopg.connect(POSTGRES_URL.replace("+psycopg", ""),
                                     autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())

    median_replay, median_catchup = statistics.median(replay), statistics.median(catchup)
    print(f"events in the log    {events:,}")
    print(f"view rows written    {rows:,} ({rows / events:.2f} per event)")
    print(f"bare replay          {median_replay:>8,.0f} events/s median, "
          f"{max(replay):,.0f} best (read + decode: the ceiling)")
    print(f"catch-up             {median_catchup:>8,.0f} events/s median, "
          f"{max(catchup):,.0f} best (into all agency views, from empty)")
    print(f"rebuild              {statistics.median(rebuild):>8,.0f} events/s median, "
          f"{max(rebuild):,.0f} best (delete the views, then catch up)")
    print(f"database alone       {floor:>8,.0f} events/s (the facts copied again and their "
          f"rows derived: the database's share)")
    print(f"ratio                {median_catchup / median_replay:>8.2f} of bare replay "
          f"(bare replay is {median_replay / median_catchup:.1f}x faster), "
          f"{median_catchup / floor:.2f} of the database alone")
    verdict = "met" if median_catchup >= TARGET else "NOT met"
    print(f"target >= {TARGET:,}/s {'on SQLite' if args.database == 'sqlite' else '(SQLite)'}: "
          f"{verdict if args.database == 'sqlite' else 'n/a here'}")


if __name__ == "__main__":
    main()
