"""The practitioners' pages (api/ui/routes/practitioner*.py), through a browser's requests.

Each page is the API seen through a browser: what a role sees and does not see is what
the API would answer, another agency's client is the same "not found" page as an unknown
one, a form without its CSRF token or with invalid input changes nothing (and says what
is wrong beside each field), and every read a page makes is on the access record.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

from fastapi.testclient import TestClient

from domain.agencies import Role
from tests.builders import (
    VALID_IDENTITY,
    Partnership,
    access_records,
    agree,
    browser_of,
    changes,
    consent,
    fact,
    hdr,
    police_terms,
    post_fact,
    register,
    settle,
    ui_sign_in,
)

NHS = "943 476 5919"
REGISTRATION = {"given_name": "Ann", "family_name": "Example", "date-of-birth-day": "12",
                "date-of-birth-month": "4", "date-of-birth-year": "1985",
                "nhs_number": NHS, "postcode": "NR1 3QU"}


def signed_in(api: TestClient, partnership: Partnership, agency: str = "tp",
              role: Role = Role.PRACTITIONER) -> tuple[TestClient, str]:
    """A browser of its own, signed in as the partnership's ``agency`` ``role``."""
    browser = browser_of(api)
    return browser, ui_sign_in(browser, partnership.token(agency, role))


def main(html: str) -> str:
    """A page's main content, without what changes on every response (nonces, tokens)."""
    found = html[html.index("<main"):html.index("</main>")]
    return re.sub(r'value="[A-Za-z0-9_-]{30,}"', 'value="…"', found)


def client_id_of(location: str) -> str:
    return urlsplit(location).path.split("/")[3]


def registered_by_form(browser: TestClient, csrf: str, **changes: str) -> str:
    answer = browser.post("/ui/clients/new", data={"csrf_token": csrf, **REGISTRATION,
                                                   **changes}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client_id_of(answer.headers["location"])


def episode_form(csrf: str, **more: Any) -> dict[str, Any]:
    return {"csrf_token": csrf, "type": "treatment_episode_started", "occurred-at-day": "5",
            "occurred-at-month": "1", "occurred-at-year": "2026", "occurred_time": "09:30",
            "data.modality": "pharmacological", "data.substances": ["opioids", "crack"],
            "data.key_worker": "Sam Okafor", **more}


def test_a_practitioner_registers_a_client_and_records_a_fact_from_the_catalogue_form(
        api: TestClient, partnership: Partnership) -> None:
    tp, csrf = signed_in(api, partnership)
    assert "Register a client" in tp.get("/ui/clients/new").text
    registered = tp.post("/ui/clients/new", data={"csrf_token": csrf, **REGISTRATION},
                         follow_redirects=False)
    assert registered.status_code == 303
    location = registered.headers["location"]
    client_id = client_id_of(location)
    assert parse_qs(urlsplit(location).query)["done"] == ["client-registered"]
    page = tp.get(location)
    assert page.status_code == 200
    assert "The client is registered." in page.text
    assert 'data-testid="client-name">Ann Example<' in page.text

    # The fact form is generated from the type's JSON Schema: radios, checkboxes, a date.
    form = tp.get(f"/ui/clients/{client_id}/facts/new?type=treatment_episode_started"
                  "&purpose=direct_care").text
    assert "Record a fact about Ann Example" in form
    assert 'type="radio" value="pharmacological"' in form
    assert 'type="checkbox" value="opioids"' in form
    assert 'name="occurred-at-day"' in form and 'name="csrf_token"' in form
    recorded = tp.post(f"/ui/clients/{client_id}/facts/new", data=episode_form(csrf),
                       follow_redirects=False)
    assert recorded.status_code == 303
    page = tp.get(recorded.headers["location"]).text
    assert "The fact is recorded." in page
    chronology = page[page.index('data-testid="chronology"'):]
    assert "Treatment episode started" in chronology
    assert "Opioids, Crack" in chronology and "Sam Okafor" in chronology
    assert "recorded by tp practitioner of tp" in chronology  # a name, never an id
    assert "Your agency&#39;s own record" in chronology
    assert "In treatment</dt>" in page and "Yes, since 5 January 2026" in page

    # The API holds exactly what the form said, at 09:30 UK time.
    record = api.get(f"/v1/clients/{client_id}/record", headers=hdr(partnership, "tp")).json()
    assert record["identity"]["nhs_number"] == "9434765919"
    [episode] = record["facts"]
    assert episode["data"] == {"modality": "pharmacological", "substances": ["opioids", "crack"],
                               "key_worker": "Sam Okafor"}
    assert episode["occurred_at"].startswith("2026-01-05T09:30:00")
    caseload = tp.get("/ui/clients").text
    assert "Ann Example" in caseload and "Sam Okafor" in caseload


def test_invalid_input_is_said_beside_each_field_and_changes_nothing(
        api: TestClient, partnership: Partnership) -> None:
    tp, csrf = signed_in(api, partnership)
    before = changes(partnership.accord)
    refused = tp.post("/ui/clients/new", data={
        "csrf_token": csrf, **REGISTRATION, "given_name": "", "nhs_number": "943 476 5918",
        "date-of-birth-month": "13"})
    assert refused.status_code == 422
    assert "<title>Error: Register a client" in refused.text
    summary = refused.text[refused.text.index("nhsuk-error-summary"):]
    for link, message in (("#given-name", "Enter the client&#39;s given name"),
                          ("#date-of-birth-day", "Date of birth must be a real date"),
                          ("#nhs-number", "Enter a valid NHS number")):
        assert f'href="{link}"' in summary and message in summary
    assert 'id="nhs-number-error"' in refused.text  # the message beside the field too
    assert 'value="943 476 5918"' in refused.text  # what was typed is kept

    client_id = register(api, partnership)
    before = changes(partnership.accord)
    bad = tp.post(f"/ui/clients/{client_id}/facts/new", data={
        "csrf_token": csrf, "type": "treatment_outcomes_profile", "occurred-at-day": "5",
        "occurred-at-month": "1", "occurred-at-year": "2026",
        "data.substance_use.opiates": "40", "data.health_and_social_functioning."
        "physical_health": "ten"})
    assert bad.status_code == 422
    text = bad.text
    for message in ("Select stage", "Opiates must be a whole number from 0 to 28",
                    "Physical health must be a whole number from 0 to 20",
                    "Enter psychological health"):
        assert message in text
    assert 'href="#data-substance-use-opiates"' in text
    assert 'value="40"' in text
    future = tp.post(f"/ui/clients/{client_id}/facts/new", data={
        **episode_form(csrf), "occurred-at-year": "2099"})
    assert future.status_code == 422
    assert "The date it happened must not be in the future" in future.text
    assert changes(partnership.accord) == before


def test_a_form_without_its_csrf_token_changes_nothing(
        api: TestClient, partnership: Partnership) -> None:
    tp, _ = signed_in(api, partnership)
    client_id = register(api, partnership)
    before = changes(partnership.accord)
    for path, data in (("/ui/clients/new", REGISTRATION),
                       (f"/ui/clients/{client_id}/facts/new", episode_form("")),
                       (f"/ui/clients/{client_id}/consents/new",
                        {"recipient": "agency:police", "categories": ["treatment"],
                         "purposes": ["offender_management"], "obtained": "written"})):
        answer = tp.post(path, data={k: v for k, v in data.items() if k != "csrf_token"})
        assert answer.status_code == 403, path
        assert "You cannot do this" in answer.text
        forged = tp.post(path, data={**data, "csrf_token": "not-the-token"})
        assert forged.status_code == 403
    assert changes(partnership.accord) == before


def test_another_agencys_client_is_the_same_not_found_page_as_an_unknown_one(
        api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    post_fact(api, partnership, client_id, fact())
    other, _ = signed_in(api, partnership, "tp2")
    for path in ("/ui/clients/{}?purpose=direct_care", "/ui/clients/{}/record",
                 "/ui/clients/{}/consents", "/ui/clients/{}/consents/new",
                 "/ui/clients/{}/facts/new?purpose=direct_care"):
        theirs = other.get(path.format(client_id))
        unknown = other.get(path.format(uuid4()))
        assert theirs.status_code == unknown.status_code == 404, path
        assert main(theirs.text).replace(client_id, "") == main(unknown.text).replace(
            str(urlsplit(str(unknown.url)).path.split("/")[3]), "")


def test_finding_a_client_says_no_match_alike_for_no_basis_and_nobody(
        api: TestClient, partnership: Partnership) -> None:
    register(api, partnership)
    police, csrf = signed_in(api, partnership, "police")
    answers = [police.post("/ui/find", data={"csrf_token": csrf, "purpose":
                                             "offender_management", "nhs_number": nhs})
               for nhs in (NHS, "999 000 0018")]
    assert [a.status_code for a in answers] == [200, 200]
    # The same page but for the number typed (kept in its field).
    no_match = [main(a.text).replace('value="943 476 5919"', "").replace(
        'value="999 000 0018"', "") for a in answers]
    assert "No match" in no_match[0] and no_match[0] == no_match[1]
    by_name = police.post("/ui/find", data={
        "csrf_token": csrf, "purpose": "offender_management", "family_name": "Example",
        "date-of-birth-day": "12", "date-of-birth-month": "4", "date-of-birth-year": "1985"})
    assert 'data-testid="no-match"' in by_name.text
    missing = police.post("/ui/find", data={"csrf_token": csrf})
    assert missing.status_code == 422
    assert "Select why you need to find this person" in missing.text
    assert "Enter an NHS number, or a family name and date of birth" in missing.text


def test_police_see_the_masked_facts_with_their_basis_until_consent_is_withdrawn(
        api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    post_fact(api, partnership, client_id, fact("treatment_episode_started", {
        "modality": "pharmacological", "substances": ["opioids"], "key_worker": "Sam Okafor"}))
    post_fact(api, partnership, client_id, fact("clinical_note_added", {
        "text": "Disclosed a relapse in confidence."}))
    agree(api, partnership, police_terms())
    tp, tp_csrf = signed_in(api, partnership)
    given = tp.post(f"/ui/clients/{client_id}/consents/new", follow_redirects=False, data={
        "csrf_token": tp_csrf, "recipient": "agency:police",
        "categories": ["identity", "treatment", "criminal_justice"],
        "purposes": ["offender_management"], "obtained": "written"})
    assert given.status_code == 303
    assert "The consent is recorded." in tp.get(given.headers["location"]).text
    settle(api)  # the views follow the consent

    police, csrf = signed_in(api, partnership, "police")
    found = police.post("/ui/find", follow_redirects=False, data={
        "csrf_token": csrf, "purpose": "offender_management", "nhs_number": NHS})
    assert found.status_code == 303
    assert found.headers["location"] == f"/ui/clients/{client_id}?purpose=offender_management"
    page = police.get(found.headers["location"]).text
    assert 'data-testid="client-name">Ann Example<' in page
    assert "Date of birth" not in page  # the agreement shares the name only
    chronology = page[page.index('data-testid="chronology"'):]
    assert "Modality</dt>" in chronology and "Pharmacological" in chronology
    assert "Substances" not in chronology and "Sam Okafor" not in chronology  # masked
    assert "relapse" not in page  # clinical notes are shared with nobody
    assert ("Shared under the agreement “Drug intervention: treatment engagement for "
            "offender management” (version 1), with the client&#39;s consent") in chronology
    assert "Why you see it:" in chronology
    assert "Record a fact" in page and "Consents" not in page.split("What you can do")[1][:600]

    consents = tp.get(f"/ui/clients/{client_id}/consents").text
    withdraw_path = re.search(r'href="(/ui/clients/[^"]+/withdraw)"', consents)
    assert withdraw_path is not None
    confirm = tp.get(withdraw_path.group(1)).text
    assert "Are you sure?" in confirm
    empty = tp.post(withdraw_path.group(1), data={"csrf_token": tp_csrf, "reason": ""})
    assert empty.status_code == 422 and "Enter why the consent is withdrawn" in empty.text
    withdrawn = tp.post(withdraw_path.group(1), follow_redirects=False, data={
        "csrf_token": tp_csrf, "reason": "The client asked in writing"})
    assert withdrawn.status_code == 303
    assert "Withdrawn" in tp.get(withdrawn.headers["location"]).text
    settle(api)
    gone = police.get(f"/ui/clients/{client_id}?purpose=offender_management")
    assert gone.status_code == 404
    assert "Ann Example" not in gone.text


def test_the_chronology_filters_by_category_as_a_fragment_for_htmx_and_a_page_without(
        api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    post_fact(api, partnership, client_id, fact())
    position = post_fact(api, partnership, client_id, fact("housing_status_recorded",
                                                           {"status": "temporary"}))
    tp, _ = signed_in(api, partnership)
    path = f"/ui/clients/{client_id}?purpose=direct_care&category=housing&min_position={position}"
    fragment = tp.get(path, headers={"HX-Request": "true", "HX-Target": "chronology"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "Housing status recorded" in fragment.text
    assert "Appointment attended" not in fragment.text
    assert "1 fact of housing" in fragment.text
    whole = tp.get(path).text
    assert "<html" in whole and 'hx-get="/ui/clients/' in whole
    assert "Housing status recorded" in whole and "Appointment attended" not in whole
    # The summary reads every fact the caller may see, whatever the filter.
    assert "Last attended</dt>" in whole and "5 January 2026" in whole


def test_each_page_read_is_on_the_access_record(
        api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    settle(api)
    tp, _ = signed_in(api, partnership)
    for path in (f"/ui/clients/{client_id}?purpose=direct_care",
                 f"/ui/clients/{client_id}/record", f"/ui/clients/{client_id}/consents",
                 "/ui/clients"):
        before = access_records(partnership.accord)
        assert tp.get(path).status_code == 200
        assert access_records(partnership.accord) == before + 1, path
    audit = api.get(f"/v1/audit/accesses?client_id={client_id}",
                    headers=hdr(partnership, "tp", Role.IG_LEAD)).json()
    actions = {(a["action"], a["purpose"]) for a in audit}
    assert {("view", "direct_care"), ("record", None), ("consents", None)} <= actions
    # A client's page needs a purpose: without one, it reads nothing.
    before = access_records(partnership.accord)
    assert tp.get(f"/ui/clients/{client_id}").status_code == 422
    assert access_records(partnership.accord) == before


def test_roles_see_only_what_they_may(api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    commissioner, _ = signed_in(api, partnership, "commissioner", Role.COMMISSIONER)
    before = access_records(partnership.accord)
    refused = commissioner.get(f"/ui/clients/{client_id}?purpose=direct_care")
    assert refused.status_code == 403
    assert "commissioners read aggregate reports" in refused.text
    assert access_records(partnership.accord) == before + 1  # the refusal is recorded
    assert commissioner.get("/ui/clients/new").status_code == 403
    home = commissioner.get("/ui").text
    assert 'href="/ui/find"' in home and 'href="/ui/clients"' not in home
    police, _ = signed_in(api, partnership, "police")
    assert police.get("/ui/clients/new").status_code == 403  # only a provider registers
    police_home = police.get("/ui").text
    assert 'href="/ui/clients"' in police_home and 'href="/ui/emergency-access"' in police_home
    cohort = police.get("/ui/clients").text
    assert "Choose the purpose" in cohort and 'data-testid="client-list"' not in cohort


def test_amending_and_retracting_a_fact_from_the_own_record(
        api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    position = post_fact(api, partnership, client_id, fact("housing_status_recorded",
                                                           {"status": "settled"}))
    tp, csrf = signed_in(api, partnership)
    record = tp.get(f"/ui/clients/{client_id}/record").text
    assert f"/ui/clients/{client_id}/facts/{position}/amend" in record
    form = tp.get(f"/ui/clients/{client_id}/facts/{position}/amend").text
    assert 'value="settled" checked' in form  # filled in as it stands
    short = tp.post(f"/ui/clients/{client_id}/facts/{position}/amend", data={
        "csrf_token": csrf, "type": "housing_status_recorded", "data.status": "temporary",
        "occurred-at-day": "5", "occurred-at-month": "1", "occurred-at-year": "2026",
        "reason": "typo"})
    assert short.status_code == 422 and "Enter why the record is corrected" in short.text
    amended = tp.post(f"/ui/clients/{client_id}/facts/{position}/amend", follow_redirects=False,
                      data={"csrf_token": csrf, "type": "housing_status_recorded",
                            "data.status": "temporary", "occurred-at-day": "5",
                            "occurred-at-month": "1", "occurred-at-year": "2026",
                            "reason": "status was typed in wrongly"})
    assert amended.status_code == 303
    record = tp.get(amended.headers["location"]).text
    assert "The fact is amended." in record and "Temporary" in record
    assert "by tp practitioner: status was typed in wrongly" in record

    confirm = tp.get(f"/ui/clients/{client_id}/facts/{position}/retract").text
    assert "No partner will see this fact again" in confirm
    retracted = tp.post(f"/ui/clients/{client_id}/facts/{position}/retract",
                        follow_redirects=False, data={
                            "csrf_token": csrf, "reason": "recorded about the wrong client"})
    assert retracted.status_code == 303
    record = tp.get(retracted.headers["location"]).text
    assert 'data-testid="retraction"' in record and "recorded about the wrong client" in record
    assert f"/facts/{position}/amend" not in record
    # Someone else's fact is not there to correct: the same 404 as an unknown one.
    other, _ = signed_in(api, partnership, "tp2")
    assert other.get(f"/ui/clients/{client_id}/facts/{position}/amend").status_code == 404


def test_free_text_is_shown_as_text_never_as_markup(
        api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    markup = "<script>alert(1)</script><b>bold</b>"
    post_fact(api, partnership, client_id, fact("demographics_recorded", {
        "sex": "female", "ethnicity": "N"}))
    position = post_fact(api, partnership, client_id,
                         fact("clinical_note_added", {"text": markup}))
    tp, csrf = signed_in(api, partnership)
    for path in (f"/ui/clients/{client_id}/record",
                 f"/ui/clients/{client_id}?purpose=direct_care&min_position={position}"):
        page = tp.get(path).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page
        assert "<script>alert" not in page and "<b>bold" not in page
        # A code is shown as the catalogue's form names it.
        assert "Black or Black British: African" in page
    echoed = tp.post("/ui/clients/new", data={"csrf_token": csrf, **REGISTRATION,
                                              "postcode": markup})
    assert echoed.status_code == 422 and "<b>bold" not in echoed.text

    # Every free text a practitioner types on these pages comes back as text: a key worker,
    # a correction's reason, a consent's withdrawal.
    recorded = tp.post(f"/ui/clients/{client_id}/facts/new", follow_redirects=False,
                       data=episode_form(csrf, **{"data.key_worker": "<b>Sam</b>",
                                                  "purpose": "direct_care"}))
    assert recorded.status_code == 303
    assert "&lt;b&gt;Sam&lt;/b&gt;" in tp.get(recorded.headers["location"]).text
    position = post_fact(api, partnership, client_id, fact("housing_status_recorded",
                                                           {"status": "settled"}))
    tp.post(f"/ui/clients/{client_id}/facts/{position}/retract",
            data={"csrf_token": csrf, "reason": markup})
    given = consent(api, partnership, client_id)
    tp.post(f"/ui/clients/{client_id}/consents/{given['consent_id']}/withdraw",
            data={"csrf_token": csrf, "reason": markup})
    for path in (f"/ui/clients/{client_id}/record", f"/ui/clients/{client_id}/consents"):
        page = tp.get(path).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page, path
        assert "<script>alert" not in page and "<b>bold" not in page


def test_breaking_glass_shows_the_grant_and_when_it_expires(
        api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    post_fact(api, partnership, client_id, fact())
    police, csrf = signed_in(api, partnership, "police")
    short = police.post("/ui/emergency-access", data={
        "csrf_token": csrf, "client": client_id, "purpose": "safeguarding_adults",
        "justification": "urgent", "minutes": "60"})
    assert short.status_code == 422
    assert "Describe the emergency in 10 to 1000 characters" in short.text
    unknown = police.post("/ui/emergency-access", data={
        "csrf_token": csrf, "client": str(uuid4()), "purpose": "safeguarding_adults",
        "justification": "Found unconscious in custody", "minutes": "60"})
    assert unknown.status_code == 404 and "No client has this reference" in unknown.text
    granted = police.post("/ui/emergency-access", follow_redirects=False, data={
        "csrf_token": csrf, "client": client_id, "purpose": "safeguarding_adults",
        "justification": "Found unconscious in custody", "minutes": "60"})
    assert granted.status_code == 303
    page = police.get(granted.headers["location"]).text
    assert "Emergency access granted until" in page
    assert 'data-testid="client-name">Ann Example<' in page
    assert "Emergency access (break glass)" in page
    # A link that names another expiry, without this session's check, says nothing.
    query = parse_qs(urlsplit(granted.headers["location"]).query)
    forged = police.get(f"/ui/clients/{client_id}?purpose=safeguarding_adults"
                        f"&done=emergency-access&until=2099-01-01T00:00:00%2B00:00"
                        f"&check={query['check'][0]}").text
    assert "Emergency access granted until" not in forged


def test_a_household_is_linked_and_shows_the_members_the_caller_may_see(
        api: TestClient, partnership: Partnership) -> None:
    first = register(api, partnership)
    second = register(api, partnership, identity={**VALID_IDENTITY, "given_name": "Bea",
                                                  "nhs_number": "999 000 0018"})
    tp, csrf = signed_in(api, partnership)
    assert first in tp.get(f"/ui/households/new?client={first}").text
    bad = tp.post("/ui/households/new", data={"csrf_token": csrf, "members": "not-a-ref"})
    assert bad.status_code == 422 and "Enter each client reference" in bad.text
    linked = tp.post("/ui/households/new", follow_redirects=False, data={
        "csrf_token": csrf, "members": first, "purpose": "direct_care"})
    assert linked.status_code == 303
    household = tp.get(linked.headers["location"]).text
    assert "The household is linked." in household and "Ann Example" in household
    path = urlsplit(linked.headers["location"]).path
    added = tp.post(f"{path}/members", follow_redirects=False, data={
        "csrf_token": csrf, "client": second, "purpose": "direct_care"})
    assert added.status_code == 303
    household = tp.get(added.headers["location"]).text
    assert "Bea Example" in household and "Ann Example" in household
    other, _ = signed_in(api, partnership, "tp2")
    assert other.get(f"{path}?purpose=direct_care").status_code == 404


def test_a_name_search_lists_the_candidates_to_choose_from(
        api: TestClient, partnership: Partnership) -> None:
    register(api, partnership, identity={**VALID_IDENTITY, "family_name": "Smith"})
    register(api, partnership, identity={**VALID_IDENTITY, "family_name": "Smyth",
                                         "nhs_number": "999 000 0018"})
    settle(api)  # the birth index follows the registrations
    tp, csrf = signed_in(api, partnership)
    found = tp.post("/ui/find", data={
        "csrf_token": csrf, "purpose": "direct_care", "family_name": "Smith",
        "date-of-birth-day": "12", "date-of-birth-month": "4", "date-of-birth-year": "1985"})
    assert found.status_code == 200
    table = found.text[found.text.index('data-testid="candidates"'):]
    assert "Ann Smith" in table and "Ann Smyth" in table
    assert "Same name" in table and "Similar spelling" in table
    assert "12 April 1985" in table
