"""``accord clients erase``: erasure of a client from the command line.

Erasure is the client's registering controller's IG lead's to decide (the permission
table), not the operator's: the command acts as the principal whose token is in the
environment variable ``ACCORD_TOKEN`` (never an argument, which other users of the
machine could read in the process list). It does what ``POST /v1/clients/{id}/erase``
does: it brings the safeguarding rules and the alert inbox up to date with the log (an
open alert keeps the record), erases through the same command, and records a refusal
about a client the caller's agency did not register as an attempt on the client.

Exit status: 0 erased, 2 refused (with why) or unusable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any
from uuid import UUID

from api.access import AccessLog
from api.bootstrap import bootstrap
from domain.access import AccessAction
from domain.commands.erasure import reason_fingerprint
from domain.errors import InvalidCommand
from infra.settings import Settings
from projections.alerts import AlertInbox
from projections.retention import SafeguardingRetention
from projections.safeguarding import SafeguardingRules

COMMANDS = {"clients"}
#: Where the acting principal's token is read from.
TOKEN_VARIABLE = "ACCORD_TOKEN"  # noqa: S105 - the variable's name, not a token


def _client_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a client id: {value!r}") from None


def add_parser(commands: Any) -> None:
    clients = commands.add_parser("clients", help="the client's rights over the record")
    actions = clients.add_subparsers(dest="action", required=True, metavar="ACTION")
    erase = actions.add_parser(
        "erase", help=f"erase a client (crypto-shredding), as the IG lead whose token is in "
                      f"{TOKEN_VARIABLE}; refused under a legal hold or a safeguarding "
                      "retention")
    erase.add_argument("client_id", type=_client_id)
    erase.add_argument("--reason", required=True,
                       help="why (10 to 1000 characters); kept out of the log, which "
                            "records its keyed fingerprint")


def run(settings: Settings, args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        print(f"accord: set {TOKEN_VARIABLE} to the token of the IG lead of the client's "
              "registering agency", file=sys.stderr)
        return 2
    accord = bootstrap(settings)
    try:
        app = accord.app
        actor = app.authenticate(token)
        for projection in accord.projections:  # the rules before the inbox they feed
            if projection.name in (SafeguardingRules.name, AlertInbox.name):
                projection.catch_up()
        with AccessLog(app).attempting(actor, AccessAction.ERASE, client_ids=[args.client_id]):
            SafeguardingRetention(accord.engine).caught_up(app.head_position)
            position = app.erase_client(args.client_id, args.reason, actor)
        fingerprint = reason_fingerprint(app.vault, args.reason)
    except InvalidCommand as exc:
        print(f"accord: --{exc.field}: {exc.message}", file=sys.stderr)
        return 2
    finally:
        accord.close()
    print(f"erased client {args.client_id} at log position {position}")
    print(f"the reason is not kept; the log records its fingerprint {fingerprint}: file it "
          "with the reason in your case file")
    return 0
