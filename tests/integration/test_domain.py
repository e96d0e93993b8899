"""The application without HTTP, on both databases: agencies, principals and their
tokens, clients and their facts, erasure. (NHS numbers, identity and the catalogue, which
need no database, are tests/unit/test_identity.py and tests/unit/test_catalogue.py.)

The tests run through the ``accord`` fixture and act through real principals (a token
added by the operator, then authenticated), exactly as the API does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from api.bootstrap import Accord, bootstrap
from domain.agencies import AgencyKind, Role, agency_uuid
from domain.application import OPERATOR, Actor
from domain.catalogue import InvalidPayload, UnknownFactType
from domain.errors import (
    AgencyExists,
    ClientAlreadyRegistered,
    ClientNotFound,
    Forbidden,
    InvalidCommand,
    Unauthenticated,
)
from projections import queries
from projections.views import AgencyViews
from tests.builders import FACT_EXAMPLES, VALID_IDENTITY, Partnership, identity

# -- the application: agencies and principals ----------------------------------------------


def actor(partnership: Partnership, agency: str, role: Role) -> Actor:
    return partnership.accord.app.authenticate(partnership.token(agency, role))


def test_registering_an_agency_twice_is_refused(accord: Accord) -> None:
    app = accord.app
    app.register_agency("housing", "Housing Options", AgencyKind.HOUSING, OPERATOR)
    before = app.head_position()
    with pytest.raises(AgencyExists):
        app.register_agency("housing", "Another name", AgencyKind.POLICE, OPERATOR)
    assert app.head_position() == before
    assert [(a.slug, a.name, a.kind) for a in app.agencies()] == [
        ("housing", "Housing Options", AgencyKind.HOUSING)
    ]


def test_only_a_partnership_admin_registers_agencies(partnership: Partnership) -> None:
    for role in Role:
        if role is not Role.PARTNERSHIP_ADMIN:
            with pytest.raises(Forbidden):
                partnership.accord.app.register_agency(
                    "housing", "Housing", AgencyKind.HOUSING, actor(partnership, "tp", role)
                )
    admin = actor(partnership, "police", Role.PARTNERSHIP_ADMIN)
    assert partnership.accord.app.register_agency(
        "housing", "Housing", AgencyKind.HOUSING, admin
    ).slug == "housing"


def test_a_token_authenticates_as_its_principal(accord: Accord) -> None:
    app = accord.app
    app.register_agency("police", "Police", AgencyKind.POLICE, OPERATOR)
    issued = app.add_principal("police", Role.SAFEGUARDING, "DS Vera Stanhope", OPERATOR)
    who = app.authenticate(issued.token)
    assert (who.principal_id, who.agency, who.agency_kind, who.role, who.name) == (
        issued.principal_id, "police", AgencyKind.POLICE, Role.SAFEGUARDING, "DS Vera Stanhope"
    )
    [listed] = queries.principals(app, "police", OPERATOR)
    assert (listed.principal_id, listed.role, listed.revoked) == (
        issued.principal_id, Role.SAFEGUARDING, False
    )


def test_a_revoked_token_fails_on_the_next_call(accord: Accord) -> None:
    app = accord.app
    app.register_agency("tp", "TP", AgencyKind.TREATMENT_PROVIDER, OPERATOR)
    issued = app.add_principal("tp", Role.PRACTITIONER, "Leaver", OPERATOR)
    other = app.add_principal("tp", Role.PRACTITIONER, "Stayer", OPERATOR)
    app.authenticate(issued.token)
    app.revoke_principal(issued.principal_id, "left the service", OPERATOR)
    with pytest.raises(Unauthenticated):
        app.authenticate(issued.token)
    assert app.authenticate(other.token).name == "Stayer"
    revoked = {p.name: p.revoked for p in queries.principals(app, "tp", OPERATOR)}
    assert revoked == {"Leaver": True, "Stayer": False}
    app.revoke_principal(issued.principal_id, "again", OPERATOR)  # idempotent
    with pytest.raises(Unauthenticated):
        app.authenticate(issued.token)


def test_revocation_reaches_another_process_on_the_same_database(accord: Accord) -> None:
    """Several `accord serve` processes share one database: each must see a revocation."""
    app = accord.app
    app.register_agency("tp", "TP", AgencyKind.TREATMENT_PROVIDER, OPERATOR)
    issued = app.add_principal("tp", Role.PRACTITIONER, "Leaver", OPERATOR)
    other = bootstrap(accord.settings)
    try:
        assert other.app.authenticate(issued.token).name == "Leaver"  # now cached there
        app.revoke_principal(issued.principal_id, "left", OPERATOR)
        with pytest.raises(Unauthenticated):
            other.app.authenticate(issued.token)
    finally:
        other.close()


def test_only_an_admin_adds_or_revokes_principals(partnership: Partnership) -> None:
    app = partnership.accord.app
    victim = app.authenticate(partnership.token("tp", Role.PRACTITIONER))
    assert victim.principal_id is not None
    for role in Role:
        if role not in (Role.ADMIN, Role.PARTNERSHIP_ADMIN):
            by = actor(partnership, "tp", role)
            with pytest.raises(Forbidden):
                app.add_principal("tp", Role.ADMIN, "Self-promoted", by)
            with pytest.raises(Forbidden):
                app.revoke_principal(victim.principal_id, "spite", by)
    assert app.authenticate(partnership.token("tp", Role.PRACTITIONER)).role is Role.PRACTITIONER


def test_a_tampered_secret_is_refused(partnership: Partnership) -> None:
    app = partnership.accord.app
    token = partnership.token("tp", Role.ADMIN)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (flipped, token + "x", token[:-1]):
        with pytest.raises(Unauthenticated):
            app.authenticate(bad)


def test_a_token_cannot_borrow_another_principals_id(partnership: Partnership) -> None:
    app = partnership.accord.app
    admin = app.authenticate(partnership.token("tp", Role.ADMIN))
    assert admin.principal_id is not None
    practitioner_secret = partnership.token("tp", Role.PRACTITIONER).split("_", 2)[2]
    with pytest.raises(Unauthenticated):
        app.authenticate(f"acc_{admin.principal_id.hex}_{practitioner_secret}")


MALFORMED_TOKENS = {
    "empty": "", "garbage": "garbage", "prefix only": "acc", "empty parts": "acc__",
    "id not hex": "acc_nothex_secret", "with scheme": "Bearer acc_x_y",
    "wrong prefix": f"xyz_{uuid4().hex}_secret", "no secret part": f"acc_{uuid4().hex}",
    "unknown principal": f"acc_{uuid4().hex}_secret",
    "an agency's id": f"acc_{agency_uuid('tp').hex}_secret",
}


@pytest.mark.parametrize("token", MALFORMED_TOKENS.values(), ids=MALFORMED_TOKENS.keys())
def test_malformed_or_unknown_tokens_are_refused(partnership: Partnership, token: str) -> None:
    with pytest.raises(Unauthenticated):
        partnership.accord.app.authenticate(token)


# -- the application: clients and facts ----------------------------------------------------


def test_registering_the_same_nhs_number_twice_in_one_agency_names_the_first(
    partnership: Partnership,
) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    first, _ = app.register_client(identity(), worker)
    before = app.head_position()
    # The same person written differently is still the same NHS number.
    with pytest.raises(ClientAlreadyRegistered) as caught:
        app.register_client(identity(nhs_number="943-476-5919", given_name="Annie"), worker)
    assert caught.value.client_id == first
    assert app.head_position() == before
    assert queries.client_record(app, first, worker).identity == identity()


def test_another_treatment_provider_registers_the_same_person_as_its_own_client(
    partnership: Partnership,
) -> None:
    app = partnership.accord.app
    tp, tp2 = actor(partnership, "tp", Role.PRACTITIONER), actor(partnership, "tp2",
                                                                   Role.PRACTITIONER)
    first, _ = app.register_client(identity(), tp)
    second, _ = app.register_client(identity(), tp2)
    assert first != second
    assert queries.client_record(app, second, tp2).controller == "tp2"
    with pytest.raises(ClientNotFound):
        queries.client_record(app, first, tp2)
    with pytest.raises(ClientNotFound):
        queries.client_record(app, second, tp)


def test_facts_get_consecutive_sequences_and_increasing_positions(
    partnership: Partnership,
) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    safeguarding = actor(partnership, "tp", Role.SAFEGUARDING)
    client_id, registered_at = app.register_client(identity(), worker)
    when = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    written = [
        ("referral_received", FACT_EXAMPLES["referral_received"], worker),
        ("assessment_completed", FACT_EXAMPLES["assessment_completed"], worker),
        ("household_updated", FACT_EXAMPLES["household_updated"], safeguarding),
        ("appointment_missed", FACT_EXAMPLES["appointment_missed"], worker),
    ]
    positions = [registered_at]
    for i, (name, data, by) in enumerate(written):
        positions.append(app.record_fact(client_id, name, data, when + timedelta(days=i), by))
        assert positions[-1] == app.head_position()
    assert positions == sorted(set(positions))
    record = queries.client_record(app, client_id, worker)
    assert [f.sequence for f in record.facts] == [2, 3, 4, 5]
    assert [(f.fact_type, f.data) for f in record.facts] == [(n, d) for n, d, _ in written]
    assert [f.occurred_at for f in record.facts] == [when + timedelta(days=i) for i in range(4)]
    assert {f.controller for f in record.facts} == {"tp"}
    assert [f.recorded_by for f in record.facts] == [
        str(by.principal_id) for _, _, by in written
    ]
    assert [f.category for f in record.facts] == [
        "referral", "treatment", "safeguarding_children", "treatment"
    ]


def test_occurred_at_is_kept_as_the_same_instant_in_utc(partnership: Partnership) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    client_id, _ = app.register_client(identity(), worker)
    local = datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    app.record_fact(client_id, "appointment_attended", {"appointment": "group"}, local, worker)
    [fact] = queries.client_record(app, client_id, worker).facts
    assert fact.occurred_at == local
    assert fact.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "occurred_at",
    [datetime(2026, 1, 5, 9, 30), datetime.now(UTC) + timedelta(days=1)],
    ids=["no time zone", "tomorrow"],
)
def test_occurred_at_without_a_time_zone_or_in_the_future_is_refused(
    partnership: Partnership, occurred_at: datetime
) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    client_id, _ = app.register_client(identity(), worker)
    before = app.head_position()
    with pytest.raises(InvalidCommand) as caught:
        app.record_fact(client_id, "appointment_attended", {"appointment": "group"},
                        occurred_at, worker)
    assert caught.value.field == "occurred_at"
    assert app.head_position() == before
    assert queries.client_record(app, client_id, worker).facts == []


def test_a_minute_of_clock_skew_between_partners_is_tolerated(partnership: Partnership) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    client_id, _ = app.register_client(identity(), worker)
    app.record_fact(client_id, "appointment_attended", {"appointment": "group"},
                    datetime.now(UTC) + timedelta(minutes=1), worker)
    assert len(queries.client_record(app, client_id, worker).facts) == 1


def test_bad_payloads_and_unknown_types_append_nothing(partnership: Partnership) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    client_id, _ = app.register_client(identity(), worker)
    before = app.head_position()
    when = datetime(2026, 1, 5, tzinfo=UTC)
    with pytest.raises(InvalidPayload):
        app.record_fact(client_id, "housing_status_recorded", {"status": "castle"}, when, worker)
    with pytest.raises(UnknownFactType):
        app.record_fact(client_id, "rumour_heard", {}, when, worker)
    assert app.head_position() == before


@pytest.mark.parametrize(
    ("agency", "role"),
    [("police", Role.PRACTITIONER), ("commissioner", Role.COMMISSIONER),
     ("commissioner", Role.PRACTITIONER), ("tp", Role.SAFEGUARDING), ("tp", Role.IG_LEAD),
     ("tp", Role.ADMIN), ("tp", Role.COMMISSIONER), ("childrens", Role.SAFEGUARDING)],
)
def test_only_treatment_provider_practitioners_register_clients(
    partnership: Partnership, agency: str, role: Role
) -> None:
    app = partnership.accord.app
    before = app.head_position()
    with pytest.raises(Forbidden):
        app.register_client(identity(), actor(partnership, agency, role))
    assert app.head_position() == before


def test_roles_that_may_not_record_or_read_are_refused(partnership: Partnership) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    client_id, _ = app.register_client(identity(), worker)
    when = datetime(2026, 1, 5, tzinfo=UTC)
    for role in (Role.IG_LEAD, Role.ADMIN, Role.COMMISSIONER):
        with pytest.raises(Forbidden):
            app.record_fact(client_id, "appointment_attended", {"appointment": "keywork"},
                            when, actor(partnership, "tp", role))
    for role in (Role.ADMIN, Role.COMMISSIONER):
        with pytest.raises(Forbidden):
            queries.client_record(app, client_id, actor(partnership, "tp", role))
    assert queries.client_record(app, client_id, actor(partnership, "tp", Role.IG_LEAD)).facts == []


def test_other_agencies_cannot_write_to_or_read_a_client(partnership: Partnership) -> None:
    app = partnership.accord.app
    client_id, _ = app.register_client(identity(), actor(partnership, "tp", Role.PRACTITIONER))
    before = app.head_position()
    when = datetime(2026, 1, 5, tzinfo=UTC)
    for agency in ("tp2", "police", "childrens"):
        for role in (Role.PRACTITIONER, Role.SAFEGUARDING):
            by = actor(partnership, agency, role)
            with pytest.raises(ClientNotFound):
                app.record_fact(client_id, "appointment_attended", {"appointment": "keywork"},
                                when, by)
            with pytest.raises(ClientNotFound):
                queries.client_record(app, client_id, by)
    assert app.head_position() == before


def test_an_unknown_client_is_not_found(partnership: Partnership) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    for unknown in (uuid4(), agency_uuid("tp"), worker.principal_id):
        assert isinstance(unknown, UUID)
        with pytest.raises(ClientNotFound):
            queries.client_record(app, unknown, worker)
        with pytest.raises(ClientNotFound):
            app.record_fact(unknown, "appointment_attended", {"appointment": "keywork"},
                            datetime(2026, 1, 5, tzinfo=UTC), worker)


def test_crypto_shredding_erases_the_identity_but_keeps_the_facts(
    partnership: Partnership,
) -> None:
    app = partnership.accord.app
    worker = actor(partnership, "tp", Role.PRACTITIONER)
    kept, _ = app.register_client(identity(), worker)
    erased, _ = app.register_client(identity(nhs_number="4010232137"), worker)
    app.record_fact(erased, "appointment_attended", {"appointment": "keywork"},
                    datetime(2026, 1, 5, tzinfo=UTC), worker)
    app.vault.shred(erased)
    record = queries.client_record(app, erased, worker)
    assert record.identity is None
    assert record.identity_erased is True
    assert [f.fact_type for f in record.facts] == ["appointment_attended"]
    assert queries.client_record(app, kept, worker).identity == identity()
    # A fresh process with the same key-encryption key cannot read it either.
    other = bootstrap(partnership.accord.settings)
    try:
        again = queries.client_record(other.app, erased, other.app.authenticate(
            partnership.token("tp", Role.PRACTITIONER)))
        assert (again.identity, again.identity_erased) == (None, True)
    finally:
        other.close()


# -- erasure and the views' matching index -------------------------------------------------


def test_a_client_erased_in_the_same_batch_as_registered_cannot_be_matched(
    partnership: Partnership,
) -> None:
    """A rebuild reads registration and erasure in one batch: the erased person's
    matching fingerprints must still go (a match would say they were a client)."""
    accord = partnership.accord
    app = accord.app
    tp = app.authenticate(partnership.token("tp", Role.PRACTITIONER))
    client_id, _ = app.register_client(identity(), tp)
    app.erase_client(client_id, "subject asked for erasure",
                     app.authenticate(partnership.token("tp", Role.IG_LEAD)))
    views = AgencyViews(app, accord.engine)
    views.rebuild()
    fingerprint = app.match_keys(VALID_IDENTITY["nhs_number"], None, None)
    assert views.matching_clients(fingerprint) == []
