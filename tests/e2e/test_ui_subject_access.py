"""The subject access pages, through a browser's requests (TestClient, both databases):
finding the client by NHS number, and the printable answer with a heading per section,
another agency's facts marked for redaction review, free text shown as text, and when
and by whom it was produced. Each page is the API's answer and on the record as it is."""

from __future__ import annotations

import re
from uuid import uuid4

from fastapi.testclient import TestClient
from markupsafe import escape

from domain.agencies import Role
from tests.builders import (
    VALID_IDENTITY,
    Partnership,
    agree,
    browser_of,
    changes,
    consent,
    fact,
    hdr,
    police_terms,
    post_fact,
    register,
    ui_sign_in,
    view,
)

NOTE = "Said <script>alert('x')</script> & <b>do not</b> tell her sister."
NONCE = re.compile(r"nonce[-=]\"?[A-Za-z0-9_\-]+")


def signed_in(api: TestClient, partnership: Partnership, agency: str = "tp",
              role: Role = Role.IG_LEAD) -> tuple[TestClient, str]:
    browser = browser_of(api)
    return browser, ui_sign_in(browser, partnership.token(agency, role))


def a_client_with_a_partners_fact(api: TestClient, partnership: Partnership) -> str:
    agree(api, partnership, police_terms())
    client_id = register(api, partnership)
    post_fact(api, partnership, client_id, fact("clinical_note_added", {"text": NOTE}))
    given = consent(api, partnership, client_id)
    assert view(api, partnership, client_id, "police", "offender_management",
                given["position"]).status_code == 200
    post_fact(api, partnership, client_id, fact(
        "domestic_abuse_incident_recorded", {"role": "victim", "children_present": True}),
        agency="police")
    return client_id


def test_the_printable_answer_has_every_section_marks_and_who_produced_it(
        api: TestClient, partnership: Partnership) -> None:
    client_id = a_client_with_a_partners_fact(api, partnership)
    browser, _ = signed_in(api, partnership)
    page = browser.get(f"/ui/clients/{client_id}/subject-access")
    assert page.status_code == 200, page.text
    html = page.text
    assert len(re.findall(r"<h1[ >]", html)) == 1
    assert f"Everything held about {VALID_IDENTITY['given_name']} " \
           f"{VALID_IDENTITY['family_name']}" in html
    for heading in ("Identity", "What was recorded", "Consents and withdrawals", "Flags",
                    "Legal holds and restrictions",
                    "Emergency access and its reviews", "Safeguarding alerts",
                    "Who saw it, when and why"):
        assert re.search(rf'<h2 id="[a-z-]+">{re.escape(heading)}</h2>', html), heading
    assert "Recorded by Police" in html and "Recorded by Tp" in html
    # The police's fact is marked, with why; the provider's own is not.
    assert html.count('data-testid="redaction-review"') == 1
    assert ("recorded by police: check for third-party information before release"
            in html)
    police_facts = html.split('data-testid="facts-police"', 1)[1].split("</ol>", 1)[0]
    assert 'data-testid="redaction-review"' in police_facts
    # When and by whom it was produced.
    produced = html.split('data-testid="produced"', 1)[1].split("</p>", 1)[0]
    assert "Produced on" in produced and "tp ig_lead" in produced
    # Free text is text: the markup in the note is escaped, never run.
    assert "<script>alert(" not in html and "<b>do not</b>" not in html
    assert "&lt;script&gt;alert(" in html and "&lt;b&gt;do not&lt;/b&gt;" in html
    # The police's read is listed among the disclosures.
    disclosures = html.split('data-testid="disclosures"', 1)[1]
    assert "police practitioner" in disclosures and "offender management" in disclosures
    # On the record as the API's answer is.
    audit = api.get("/v1/audit/accesses", params={"client_id": client_id},
                    headers=hdr(partnership, "tp", Role.IG_LEAD)).json()
    assert [a["principal_name"] for a in audit if a["action"] == "subject_access"] == \
        ["tp ig_lead"]


def test_other_roles_and_agencies_get_the_403_and_the_same_404_page(
        api: TestClient, partnership: Partnership) -> None:
    client_id = a_client_with_a_partners_fact(api, partnership)
    before = changes(partnership.accord)
    for agency in ("police", "tp2"):
        browser, _ = signed_in(api, partnership, agency)
        theirs = browser.get(f"/ui/clients/{client_id}/subject-access")
        made_up = browser.get(f"/ui/clients/{uuid4()}/subject-access")
        assert theirs.status_code == made_up.status_code == 404, agency
        assert NONCE.sub("", theirs.text) == NONCE.sub("", made_up.text)
        assert VALID_IDENTITY["family_name"] not in theirs.text
    practitioner, _ = signed_in(api, partnership, "tp", Role.PRACTITIONER)
    refused = practitioner.get(f"/ui/clients/{client_id}/subject-access")
    assert refused.status_code == 403 and "You cannot do this" in refused.text
    assert "Subject access" not in practitioner.get("/ui").text  # not offered either
    assert changes(partnership.accord) == before


def test_finding_the_client_by_nhs_number_opens_the_answer(
        api: TestClient, partnership: Partnership) -> None:
    client_id = a_client_with_a_partners_fact(api, partnership)
    browser, csrf = signed_in(api, partnership)
    assert 'href="/ui/subject-access"' in browser.get("/ui").text
    form = browser.get("/ui/subject-access")
    assert form.status_code == 200 and 'name="nhs_number"' in form.text
    found = browser.post("/ui/subject-access", data={
        "csrf_token": csrf, "nhs_number": VALID_IDENTITY["nhs_number"]},
        follow_redirects=False)
    assert found.status_code == 303, found.text
    assert found.headers["location"] == f"/ui/clients/{client_id}/subject-access"
    # Invalid input: the error summary and the message beside the field, nothing found.
    for bad, words in (("", "Enter the client's NHS number"),
                       ("123", "Enter a valid NHS number")):
        answer = browser.post("/ui/subject-access", data={"csrf_token": csrf,
                                                          "nhs_number": bad})
        assert answer.status_code == 422
        assert "nhsuk-error-summary" in answer.text and 'href="#nhs-number"' in answer.text
        assert escape(words) in answer.text
    # Another agency's IG lead is told "no match", as for a number nobody has.
    police, police_csrf = signed_in(api, partnership, "tp2")
    missed = police.post("/ui/subject-access", data={
        "csrf_token": police_csrf, "nhs_number": VALID_IDENTITY["nhs_number"]})
    assert missed.status_code == 200 and 'data-testid="no-match"' in missed.text
    # Without its CSRF token the form is refused and changes nothing.
    before = changes(partnership.accord)
    refused = browser.post("/ui/subject-access",
                           data={"nhs_number": VALID_IDENTITY["nhs_number"]},
                           follow_redirects=False)
    assert refused.status_code == 403
    assert changes(partnership.accord) == before
