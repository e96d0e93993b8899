"""Where a replay's answer changes, on both databases: the one walk of the log
(``projections.replay_changes``) finds exactly the positions at which replaying every
position, one by one, gives a different answer than the position before. The story moves
the answer in every way it can move: facts recorded, amended and retracted, a consent
given, withdrawn and lapsing with no event of its own (time passing between events), an
emergency grant and its early end, an agreement revoked; and events about another client
that change nothing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from api.bootstrap import Accord
from domain.agencies import AgencyKind, Role
from domain.agreements import AgreementTerms
from domain.identity import Identity
from domain.vocabulary import Purpose
from projections.replay import PointInTime
from projections.replay_changes import ReplayChanges, answer_of, shown_to
from tests.builders import VALID_IDENTITY, Partnership, nhs_number, police_terms

JANUARY = datetime(2026, 1, 5, 9, tzinfo=UTC)
PURPOSE = "offender_management"


def actor(partnership: Partnership, agency: str, role: Role = Role.PRACTITIONER) -> Any:
    return partnership.accord.app.authenticate(partnership.token(agency, role))


def a_client(partnership: Partnership, seq: int) -> UUID:
    identity = Identity.model_validate({**VALID_IDENTITY, "nhs_number": nhs_number(seq)})
    client_id, _ = partnership.accord.app.register_client(identity, actor(partnership, "tp"))
    return client_id


def consent_to_police(partnership: Partnership, client_id: UUID,
                      expires_at: datetime | None = None) -> UUID:
    consent_id, _ = partnership.accord.app.give_consent(
        client_id, recipient_agency="police", recipient_kind=None,
        categories=["identity", "treatment", "criminal_justice"], purposes=[PURPOSE],
        data_from=None, data_to=None, expires_at=expires_at, obtained="written",
        by=actor(partnership, "tp"))
    return consent_id


def story(accord: Accord, partnership: Partnership) -> tuple[UUID, int, tuple[int, int]]:
    """(client, the position before its registration, (the position of its last consent,
    that of the first event after the consent lapsed: another client's registration))."""
    app = accord.app
    tp = actor(partnership, "tp")
    agreement = app.propose_agreement(AgreementTerms.model_validate(police_terms()),
                                      actor(partnership, "tp", Role.IG_LEAD))
    for party in ("tp", "police"):
        app.approve_agreement(UUID(str(agreement.id)), actor(partnership, party, Role.IG_LEAD))
    before = app.head_position()
    client_id = a_client(partnership, 1)
    attended = app.record_fact(client_id, "appointment_attended", {"appointment": "keywork"},
                               JANUARY, tp)
    app.record_fact(client_id, "criminal_justice_status",
                    {"order": "drug_rehabilitation_requirement", "status": "started"},
                    JANUARY, tp)
    housing = app.record_fact(client_id, "housing_status_recorded", {"status": "temporary"},
                              JANUARY, tp)
    a_client(partnership, 2)  # about someone else: changes nothing
    first = consent_to_police(partnership, client_id)
    app.record_fact(client_id, "appointment_missed", {"appointment": "prescriber"}, JANUARY,
                    tp)
    grant = app.grant_emergency_access(client_id, Purpose.SAFEGUARDING_ADULTS,
                                       "Found collapsed in custody; need treatment history.",
                                       30, actor(partnership, "police"))
    app.end_emergency_access(client_id, grant.grant_id, "the emergency is over",
                             actor(partnership, "tp", Role.IG_LEAD))
    app.amend_fact(client_id, attended, {"appointment": "prescriber"}, None,
                   "the appointment type was entered wrongly", tp)
    app.retract_fact(client_id, housing, "recorded against the wrong client", tp)
    app.withdraw_consent(client_id, first, "client changed their mind", tp)
    consent_to_police(partnership, client_id, datetime.now(UTC) + timedelta(seconds=1.5))
    lasting = app.head_position()
    time.sleep(1.6)
    # After the consent lapsed, the next event (about someone else) changes the answer.
    _, lapsed = app.register_client(
        Identity.model_validate({**VALID_IDENTITY, "nhs_number": nhs_number(3)}), tp)
    a_client(partnership, 4)
    app.revoke_agreement(UUID(str(agreement.id)), "the pilot ended",
                         actor(partnership, "police", Role.IG_LEAD))
    return client_id, before, (lasting, lapsed)


def replayed_changes(accord: Accord, client_id: UUID, since: int, asking: str,
                     ) -> list[tuple[int, int, int]]:
    """(position, permitted, withheld) wherever replaying position p answers otherwise than
    position p - 1, replaying every position."""
    replay, shown = PointInTime(accord.app), shown_to(asking, "police")
    found, previous = [], answer_of([])
    for position in range(since, accord.app.head_position() + 1):
        facts = [f for f in replay.replay("police", AgencyKind.POLICE, client_id, PURPOSE,
                                          position=position).facts if shown(f)]
        answer = answer_of(facts)
        if answer != previous:
            found.append((position, sum(f.permitted for f in facts),
                          sum(not f.permitted for f in facts)))
            previous = answer
    return found


def test_one_walk_finds_every_change_a_replay_of_each_position_shows(
        accord: Accord, partnership: Partnership) -> None:
    client_id, before, lapsed = story(accord, partnership)
    walker = ReplayChanges(accord.app, batch_size=7)  # several batches
    for asking in ("police", "tp"):  # the police's own view; the controller's IG lead
        walked = walker.changes("police", AgencyKind.POLICE, client_id, PURPOSE,
                                shown_to(asking, "police"))
        assert walked.head == accord.app.head_position()
        expected = replayed_changes(accord, client_id, before, asking)
        assert [(c.position, c.permitted, c.withheld) for c in walked.changes] == expected
        assert len(expected) >= 7, expected  # the story moved the answer many times
        # Time passing is a change, at the first event after it (about someone else).
        assert [c for c in walked.changes if lapsed[0] < c.position <= lapsed[1]]
    police_view = walker.changes("police", AgencyKind.POLICE, client_id, PURPOSE,
                                 shown_to("police", "police"))
    # Permitted facts come and go: consent, withdrawal, a second consent, its lapse.
    counts = [c.permitted for c in police_view.changes]
    assert max(counts) >= 3 and counts[-1] == 0


def test_a_client_never_shown_has_no_changes(accord: Accord,
                                             partnership: Partnership) -> None:
    client_id = a_client(partnership, 5)
    accord.app.record_fact(client_id, "appointment_attended", {"appointment": "keywork"},
                           JANUARY, actor(partnership, "tp"))
    walked = ReplayChanges(accord.app).changes("police", AgencyKind.POLICE, client_id,
                                               PURPOSE, shown_to("police", "police"))
    assert walked.changes == [] and walked.facts == {}
