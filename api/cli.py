"""The ``accord`` command line: serve the API, seed the demo, manage agencies and principals.

The CLI runs on the server with the database's own credentials, so it acts as the
local operator: a partnership administrator that may also add any agency's staff; what it
does is recorded under ``operator:cli``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Sequence
from uuid import UUID

from eventsourcing.persistence import PersistenceError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from api import clients_cli, extract_cli, kafka_cli, tree_cli
from api.bootstrap import Accord, bootstrap
from domain.agencies import SLUG, AgencyKind, Role
from domain.application import OPERATOR
from domain.errors import AccordError
from domain.inputs import Name
from infra.dialect import create_read_engine, database_file, eventsourcing_env
from infra.keys import KeyFileError, check_replaceable, generate_key_file, rotate
from infra.relay import KafkaNotConfigured
from infra.settings import Settings, SettingsError
from infra.signing import generate_signing_key_file
from projections import queries


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise argparse.ArgumentTypeError("use lower-case letters, digits and hyphens, e.g. police")
    return value


_NAME: TypeAdapter[str] = TypeAdapter(Name)


def _name(value: str) -> str:
    """A name as the API takes it (domain.inputs.Name): not only invisible characters."""
    try:
        return _NAME.validate_python(value)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.errors()[0]["msg"]) from None


def _uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a principal id: {value!r}") from None


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {value!r}")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="accord", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the HTTP API (uvicorn)")
    serve.add_argument("--host", help="default ACCORD_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default ACCORD_PORT or 8000")

    demo = commands.add_parser("demo", help="seed the fictional demo partnership (idempotent)")
    demo.add_argument("--clients", type=int, default=300, help="how many clients (default 300)")
    demo.add_argument("--seed", type=int, default=2026, help="random seed for the histories")

    keys = commands.add_parser("keys", help="key-encryption key")
    keys_commands = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    generate = keys_commands.add_parser(
        "generate", help="create ACCORD_KEY_FILE and ACCORD_SIGNING_KEY_FILE if absent")
    generate.add_argument("--force", action="store_true",
                          help="replace an existing key; refused while it wraps client data "
                               "keys in the database (use `accord keys rotate`)")
    keys_commands.add_parser(
        "rotate", help="re-wrap every client data key under a new ACCORD_KEY_FILE, in one "
                       "transaction (stop the servers and workers first)")

    projections = commands.add_parser("projections", help="read models built from the log")
    projection_commands = projections.add_subparsers(dest="action", required=True,
                                                     metavar="ACTION")
    projection_commands.add_parser("rebuild", help="drop the agency views and replay the log")
    projection_commands.add_parser("catch-up", help="process what was appended since")

    worker = commands.add_parser(
        "worker", help="run the projections in this process (with ACCORD_PROJECTIONS=worker)"
    )
    worker.add_argument("--poll", type=float, default=0.2, help="seconds between polls")
    worker.add_argument("--once", action="store_true", help="catch up once, then exit")
    worker.add_argument("--batch-size", type=_positive, default=2000,
                        help="notifications per committed transaction")

    agencies = commands.add_parser("agencies", help="partner agencies")
    agency_commands = agencies.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_agency = agency_commands.add_parser("add", help="register an agency")
    add_agency.add_argument("--id", required=True, type=_slug)
    add_agency.add_argument("--name", required=True, type=_name)
    add_agency.add_argument("--kind", required=True, choices=[k.value for k in AgencyKind])
    agency_commands.add_parser("list", help="list agencies")

    principals = commands.add_parser("principals", help="people and systems acting for agencies")
    principal_commands = principals.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_principal = principal_commands.add_parser("add", help="enrol a principal; prints its token")
    add_principal.add_argument("--agency", required=True, type=_slug)
    add_principal.add_argument(
        "--role", required=True, choices=[r.value for r in Role],
        help="partnership_admin registers agencies and appoints agency admins; it must fit "
             "the agency's kind (commissioner only in a commissioner agency, practitioner "
             "and safeguarding not there)")
    add_principal.add_argument("--name", required=True, type=_name)
    list_principals = principal_commands.add_parser("list", help="list an agency's principals")
    list_principals.add_argument("--agency", required=True, type=_slug)
    revoke = principal_commands.add_parser("revoke", help="revoke a principal's token")
    revoke.add_argument("principal_id", type=_uuid)
    revoke.add_argument("--reason", required=True)
    tree_cli.add_parser(commands)
    clients_cli.add_parser(commands)
    extract_cli.add_parser(commands)
    kafka_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "keys":
            return _keys(settings, args)
        if args.command == "audit":
            return tree_cli.run(settings, args)
        if args.command in kafka_cli.COMMANDS:
            return kafka_cli.run(settings, args)
        if args.command in extract_cli.COMMANDS:
            return extract_cli.run(settings, args)
        if args.command in clients_cli.COMMANDS:
            return clients_cli.run(settings, args)
        if args.command == "serve":
            return _serve(settings, args.host, args.port)
        if args.command == "demo":
            from api.demo import seed  # imported late: only the demo needs it

            generate_key_file(settings.key_file)
            generate_signing_key_file(settings.signing_key_path)
            return _with_accord(settings, lambda accord: seed(accord, args.clients, args.seed))
        if args.command == "worker":
            return _worker(settings, args)
        handler = {"agencies": _agencies, "principals": _principals,
                   "projections": _projections}[args.command]
        return _with_accord(settings, lambda accord: handler(accord, args),
                            read_models=args.command == "projections")
    except (AccordError, SettingsError, KeyFileError, KafkaNotConfigured) as exc:
        print(f"accord: {exc}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, PersistenceError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"accord: cannot use the database: {first_line}", file=sys.stderr)
        return 2


def _with_accord(settings: Settings, work: Callable[[Accord], int | None], *,
                 read_models: bool = True) -> int:
    accord = bootstrap(settings, read_models=read_models)
    try:
        return work(accord) or 0
    finally:
        accord.close()


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn

    from api.app import create_app

    # Built before the server starts, so that a key-encryption key that is missing or does
    # not open the stored data keys (or an unusable database) ends here in one line, not
    # in a traceback; the app's lifespan starts and stops its background work.
    accord = bootstrap(settings)
    try:
        # server_header=False: the server does not announce itself (as uvicorn).
        uvicorn.run(create_app(accord), host=host or settings.host,
                    port=port or settings.port, log_level="info", server_header=False)
    finally:
        accord.close()
    return 0


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    """``generate`` writes a key file unless doing so would strand data keys in the
    database; ``rotate`` re-wraps them under a new one (``infra.keys.rotate``)."""
    if args.action == "rotate":
        engine = create_read_engine(settings)
        try:
            rotated = rotate(engine, settings.key_file)
        finally:
            engine.dispose()
        print(f"{'finished the interrupted rotation' if rotated.resumed else 'rotated'}: "
              f"{settings.key_file} is now key id {rotated.new_kek_id}"
              + (f" ({rotated.rewrapped} client data keys re-wrapped)"
                 if not rotated.resumed else ""))
        print(f"the previous key (id {rotated.old_kek_id}) is kept in {rotated.kept}: "
              "database backups taken before now need it; keep it with them, then delete it "
              "here. Restart the servers and workers.")
        return 0
    if args.force or not settings.key_file.exists():
        existing = _existing_database(settings)
        try:
            check_replaceable(existing, settings.key_file)
        finally:
            if existing is not None:
                existing.dispose()
    created = generate_key_file(settings.key_file, overwrite=args.force)
    print(f"{'created' if created else 'kept existing'} key file {settings.key_file}")
    signing = generate_signing_key_file(settings.signing_key_path)
    print(f"{'created' if signing else 'kept existing'} tree-head signing key "
          f"{settings.signing_key_path}")
    return 0


def _existing_database(settings: Settings) -> Engine | None:
    """The database's engine, or None if it is an SQLite file not created yet (looking
    must not create it)."""
    eventsourcing_env(settings)  # a bad URL is a SettingsError
    path = database_file(settings)
    if path is not None and not path.exists():
        return None
    return create_read_engine(settings)


def _projections(accord: Accord, args: argparse.Namespace) -> int:
    for projection in accord.projections:
        started = time.perf_counter()
        if args.action == "rebuild":
            processed = projection.rebuild(show_progress=True)
        else:
            processed = projection.catch_up(show_progress=True)
        elapsed = time.perf_counter() - started
        rate = processed / elapsed if elapsed else 0.0
        print(f"{args.action} {projection.name}: {processed} events in {elapsed:.1f}s "
              f"({rate:,.0f}/s); at position {projection.position()}")
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    """Follows the log until interrupted (SIGINT/SIGTERM), committing each batch."""
    accord = bootstrap(settings, batch_size=args.batch_size, poll_interval=args.poll)
    try:
        every, runner = accord.projections, accord.runner
        assert runner is not None  # built with the read models
        if args.once:
            for projection in every:
                projection.catch_up(show_progress=True)
            return 0
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: runner.stop_soon())
        start = min(p.position() for p in every)
        print(f"worker: following the log from position {start}", flush=True)
        runner.run()  # in the foreground: this process does nothing else
        print(f"worker: stopped at position {min(p.position() for p in every)}")
        return 0
    finally:
        accord.close()


def _agencies(accord: Accord, args: argparse.Namespace) -> int:
    if args.action == "add":
        agency = accord.app.register_agency(args.id, args.name, AgencyKind(args.kind), OPERATOR)
        print(f"registered {agency.slug} ({agency.kind.value}): {agency.name}")
    else:
        for agency in accord.app.agencies():
            print(f"{agency.slug:24} {agency.kind.value:20} {agency.name}")
    return 0


def _principals(accord: Accord, args: argparse.Namespace) -> int:
    app = accord.app
    if args.action == "add":
        issued = app.add_principal(args.agency, Role(args.role), args.name, OPERATOR)
        print(f"principal {issued.principal_id} ({args.role} at {args.agency})")
        print("token (shown once; only its hash is kept):")
        print(issued.token)
    elif args.action == "list":
        for p in queries.principals(app, args.agency, OPERATOR):
            state = "revoked" if p.revoked else "active"
            print(f"{p.principal_id}  {p.role.value:17} {state:8} {p.name}  "
                  f"(added by {p.added_by.name} {p.added_at:%Y-%m-%d %H:%M})")
    else:
        app.revoke_principal(args.principal_id, args.reason, OPERATOR)
        print(f"revoked {args.principal_id}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
