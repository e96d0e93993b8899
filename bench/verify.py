"""``accord audit verify`` throughput over a log of a million events (or more).

Method: seed a small demo partnership (``api.demo.seed``) in a fresh SQLite file to get
real stored events (their topics and state bytes, ~380 bytes on average), then append
copies of them with fresh aggregate ids straight through the event store's recorder
(``recorder.insert_events``, 10,000 per transaction) until the log holds ``--events``
events: the verifier hashes stored bytes and never decodes them, so copies cost it
exactly what originals would. Then, timed separately:

* ``log tree``: the tree projection catching up over the whole log (leaf hashes, nodes
  every fourth level, a signed head per batch, one transaction per batch);
* ``verify``: ``accord audit verify`` itself (``api.cli.main``), which reads every
  notification, recomputes the tree, checks every signed head and compares each leaf;
* ``hashing only``: the RFC 6962 compact range over the same number of ~380-byte leaves
  in memory, and, if ``pymerkle`` is importable, the library over the same leaves.

A script, not a test: nothing asserts on timings.

    .venv/bin/python bench/verify.py --events 1000000
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from eventsourcing.persistence import StoredEvent

from api.bootstrap import bootstrap
from api.cli import main as accord_main
from api.demo import seed
from infra.keys import generate_key_file
from infra.settings import Settings
from infra.signing import generate_signing_key_file
from projections.log_tree import LogTree
from projections.merkle import CompactRange, leaf_hash


def build_log(directory: Path, events: int) -> Settings:
    settings = Settings(database_url=f"sqlite:///{directory / 'accord.db'}",
                        key_file=directory / "kek.key")
    generate_key_file(settings.key_file)
    generate_signing_key_file(settings.signing_key_path)
    accord = bootstrap(settings)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            seed(accord, 60, 2026)
        recorder = accord.app.recorder
        templates = recorder.select_notifications(start=1, limit=100_000)
        have = recorder.max_notification_id() or 0
        started = time.perf_counter()
        i = 0
        while have < events:
            batch: list[StoredEvent] = []
            originator = uuid.uuid4()
            version = 0
            while len(batch) < min(10_000, events - have):
                template = templates[i % len(templates)]
                i += 1
                version += 1
                if version > 10:  # aggregates of ten events
                    originator, version = uuid.uuid4(), 1
                batch.append(StoredEvent(originator_id=originator, originator_version=version,
                                         topic=template.topic, state=template.state))
            recorder.insert_events(batch)
            have += len(batch)
        elapsed = time.perf_counter() - started
        print(f"log: {have:,} events ({len(templates)} from the demo seed, the rest copies "
              f"appended through the recorder at {(have - len(templates)) / elapsed:,.0f}/s)")
    finally:
        accord.close()
    return settings


def project(settings: Settings) -> None:
    accord = bootstrap(settings)
    try:
        tree = accord.find(LogTree)
        started = time.perf_counter()
        count = tree.catch_up(sign_now=True)
        elapsed = time.perf_counter() - started
        print(f"log tree: {count:,} events in {elapsed:.1f}s ({count / elapsed:,.0f} events/s)")
    finally:
        accord.close()


def verify(settings: Settings) -> None:
    os.environ["ACCORD_DATABASE_URL"] = settings.database_url
    os.environ["ACCORD_KEY_FILE"] = str(settings.key_file)
    os.environ["ACCORD_SIGNING_KEY_FILE"] = str(settings.signing_key_path)
    started = time.perf_counter()
    code = accord_main(["audit", "verify"])
    elapsed = time.perf_counter() - started
    print(f"accord audit verify: exit {code}, {elapsed:.1f}s wall clock including start-up")


def hashing_only(count: int) -> None:
    leaves = [os.urandom(16) + i.to_bytes(8, "big") * 45 for i in range(count)]  # ~376 bytes
    started = time.perf_counter()
    compact = CompactRange()
    for leaf in leaves:
        compact.append(leaf_hash(leaf))
    root = compact.root()
    elapsed = time.perf_counter() - started
    print(f"hashing only, compact range (hashlib): {count / elapsed:,.0f} leaves/s")
    try:
        from pymerkle import InmemoryTree  # type: ignore[import-not-found]
    except ImportError:
        print("hashing only, pymerkle: not installed (pip install pymerkle to compare)")
        return
    started = time.perf_counter()
    tree = InmemoryTree(algorithm="sha256")
    for leaf in leaves:
        tree.append_entry(leaf)
    same = tree.get_root() == root
    elapsed = time.perf_counter() - started
    print(f"hashing only, pymerkle InmemoryTree: {count / elapsed:,.0f} leaves/s "
          f"(same root: {same})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, help="keep the database here (default: a temp dir)")
    parser.add_argument("--no-hashing", action="store_true", help="skip the in-memory figures")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    directory = args.dir or Path(tempfile.mkdtemp(prefix="accord-bench-verify-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        settings = build_log(directory, args.events)
        project(settings)
        verify(settings)
        if not args.no_hashing:
            hashing_only(args.events)
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
