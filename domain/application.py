"""accord's eventsourcing Application: the commands the partnership can give.

``AccordApplication`` is composed of one group of commands per concern, each in
``domain/commands/``: agencies and principals, clients and their facts, agreements,
consent, emergency access, matching, households, alerts, flags and access records. They
share ``ApplicationCore`` (``domain/commands/core.py``): the event store, the vault, the
client-visibility lookup, the write listeners and the lookups that find aggregates. Each
command checks the permission table (``domain/permissions.py``), finds what it acts on
and checks what spans aggregates, calls the aggregate (which keeps its own rules), and
saves: it either appends events atomically or changes nothing. A write that loses an
optimistic-concurrency race is retried once against the fresh state; if it loses again
the caller gets ``ConcurrentWrite`` (HTTP 409).

What a caller reads of the aggregates (an agency's record of a client, its consents, an
agency's principals, its agreements) is the read side's: ``projections.queries``. What a
command is given and returns is in ``domain/results.py``, the token format in
``domain/tokens.py``; both are re-exported here, where their importers found them.
"""

from __future__ import annotations

from domain.commands.access import AccessCommands
from domain.commands.agencies import AgencyCommands
from domain.commands.agreements import AgreementCommands
from domain.commands.alerts import AlertCommands
from domain.commands.clients import ClientCommands
from domain.commands.consent import ConsentCommands
from domain.commands.core import FUTURE_TOLERANCE, ApplicationCore, ApplicationNotWired, DateAsISO
from domain.commands.emergency import EmergencyCommands
from domain.commands.erasure import ErasureCommands
from domain.commands.flags import FlagCommands
from domain.commands.households import HouseholdCommands
from domain.commands.matching import MatchingCommands
from domain.results import OPERATOR, Actor, EmergencyGrant, IssuedToken
from domain.tokens import TOKEN_PREFIX

__all__ = [
    "FUTURE_TOLERANCE",
    "OPERATOR",
    "TOKEN_PREFIX",
    "AccordApplication",
    "Actor",
    "ApplicationCore",
    "ApplicationNotWired",
    "DateAsISO",
    "EmergencyGrant",
    "IssuedToken",
]


class AccordApplication(
    AgencyCommands,
    ClientCommands,
    ErasureCommands,
    AgreementCommands,
    ConsentCommands,
    EmergencyCommands,
    MatchingCommands,
    HouseholdCommands,
    AlertCommands,
    FlagCommands,
    AccessCommands,
):
    """The partnership's event log and the commands that append to it.

    ``AccordApplication(vault, env=None, *, sees_client=None, write_listeners=())``:
    ``sees_client`` answers whether an agency has a basis to see a client (the agency
    views); a command that needs it on an application built without it raises
    ``ApplicationNotWired``. Each of ``write_listeners`` is told the log position after
    every append."""

    name = "accord"
    env = {
        "AGGREGATE_CACHE_MAXSIZE": "5000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
    }
