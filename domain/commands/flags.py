"""Flagging a client, so that the flagging agency hears of other agencies' interest.

As the Child Protection Information Sharing service tells a child's council when the
child attends an unscheduled care setting anywhere, an agency that holds its own record
of a client (a children's services department with a child protection plan in the
household, say) flags the client; from then on its safeguarding team is told when any
other agency reads, matches or records something about them (``projections.flags``).
A flag and its removal are events on the client's stream, with who and why; the reasons
are sealed with the client's data key (``domain.sealing``), so they go with the client on
erasure.
"""

from __future__ import annotations

from uuid import UUID, uuid4

from domain.clients import check_flag_reason
from domain.commands.core import ApplicationCore
from domain.errors import ClientNotFound
from domain.identity import IdentityErased
from domain.permissions import Action, require
from domain.results import Actor
from domain.sealing import seal_reason


class FlagCommands(ApplicationCore):
    """Setting and removing flags on clients."""

    def flag_client(self, client_id: UUID, reason: str, by: Actor) -> tuple[UUID, int]:
        """Flags the client for the caller's agency; returns (flag id, log position).

        The reason is checked before anything is looked up; then a client the caller's
        agency holds no record of (or an erased one) is as unknown (``ClientNotFound``),
        which the ``Client`` aggregate itself decides."""
        require(Action.FLAG_CLIENT, by)
        reason = check_flag_reason(reason)
        flag_id = uuid4()

        def attempt() -> int:
            client = self._client(client_id)
            client.check_flaggable(by.agency)
            client.flag(flag_id, agency=by.agency,
                        reason=self._sealed_reason(client_id, reason), flagged_by=by.reference)
            return self._position(self.save(client))

        return flag_id, self._retrying(attempt)

    def remove_flag(self, client_id: UUID, flag_id: UUID, reason: str, by: Actor) -> int:
        """Takes one of the caller agency's flags off the client, with a reason; returns
        the log position. Another agency's flag is as unknown (``FlagNotFound``), and so
        is an unknown client (``ClientNotFound``); a flag already removed conflicts."""
        require(Action.FLAG_CLIENT, by)
        reason = check_flag_reason(reason)

        def attempt() -> int:
            client = self._client(client_id)
            client.flag_of(flag_id, by.agency)
            client.remove_flag(flag_id, agency=by.agency,
                               reason=self._sealed_reason(client_id, reason),
                               removed_by=by.reference)
            return self._position(self.save(client))

        return self._retrying(attempt)

    def _sealed_reason(self, client_id: UUID, reason: str) -> str:
        try:
            return seal_reason(self.vault, client_id, reason)
        except IdentityErased:  # erased since the aggregate was read
            raise ClientNotFound() from None
