"""``accord extract ndtms``: the NDTMS-style extract of one commissioner's reports.

It reads the reports' read model only (``projections.reports.projection``), caught up
with the log first, so it passes through the same agreements, consents and masks as the
figures the API serves, and writes pseudonymous CSV files (``projections.reports.extract``).
The extract is a read of client data: it is recorded as one (an ``AccessRecord`` by the
CLI operator, action ``reports``, naming the agency, the period and the files; no client).

Exit status: 0 written, 2 unusable input (a bad period, an unknown agency, no database).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from api.access import returned_item
from api.bootstrap import bootstrap
from api.routers.reports import checked_period
from domain.access import AccessAction, AccessOutcome
from domain.agencies import SLUG, AgencyKind
from domain.application import OPERATOR
from domain.errors import InvalidCommand
from domain.vocabulary import Purpose
from infra.settings import Settings
from projections.reports.extract import write_ndtms
from projections.reports.projection import OutcomeReports

COMMANDS = {"extract"}


def _day(value: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a date as YYYY-MM-DD, not {value!r}") from None


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise argparse.ArgumentTypeError(f"not an agency id: {value!r}")
    return value


def add_parser(commands: Any) -> None:
    extract = commands.add_parser("extract", help="extracts for national returns")
    kinds = extract.add_subparsers(dest="action", required=True, metavar="KIND")
    ndtms = kinds.add_parser(
        "ndtms", help="CSV files per entity (client, episode, intervention, top) with "
                      "pseudonymous ids, of what a commissioner may see for commissioning")
    ndtms.add_argument("--from", dest="start", required=True, type=_day, metavar="YYYY-MM-DD")
    ndtms.add_argument("--to", dest="to", required=True, type=_day, metavar="YYYY-MM-DD")
    ndtms.add_argument("--out", required=True, type=Path, metavar="DIR",
                       help="the directory to write the files into (created if need be)")
    ndtms.add_argument("--agency", type=_slug,
                       help="the commissioner agency (needed only if there are several)")


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        period = checked_period(args.start, args.to)
    except InvalidCommand as exc:
        print(f"accord: --{'from' if exc.field == 'from' else 'to'}: {exc.message}",
              file=sys.stderr)
        return 2
    accord = bootstrap(settings)
    try:
        commissioners = sorted(a.slug for a in accord.app.agencies()
                               if a.kind is AgencyKind.COMMISSIONER)
        agency = args.agency
        if agency is None and len(commissioners) == 1:
            agency = commissioners[0]
        if agency not in commissioners:
            named = ", ".join(commissioners) or "none"
            print(f"accord: --agency: name a commissioner agency (the partnership's: {named})",
                  file=sys.stderr)
            return 2
        reports = accord.find(OutcomeReports)
        reports.catch_up(show_progress=True)
        snapshot = reports.snapshot(agency)
        accord.app.record_access(
            OPERATOR, AccessAction.REPORTS, purpose=Purpose.COMMISSIONING.value,
            client_id=None, outcome=AccessOutcome.RETURNED,
            returned=[returned_item(None, s["category"], s["controller"], s["basis"])
                      for s in snapshot.sources],
            detail=json.dumps({"extract": "ndtms", "agency": agency,
                               "from": period.start.isoformat(), "to": period.end.isoformat(),
                               "out": str(args.out)}, separators=(",", ":")))
        written = write_ndtms(snapshot, period, args.out, reports.record_id)
    finally:
        accord.close()
    counts = ", ".join(f"{rows} {name}" for name, rows in written.rows.items())
    print(f"wrote the NDTMS extract of {agency} for {period.start} to {period.end} into "
          f"{args.out}: {counts}")
    return 0
