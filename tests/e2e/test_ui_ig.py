"""The IG leads' pages, through a browser's requests (TestClient, on both databases): the
agreements register (propose from the terms form, approve, amend with the versions side
by side, revoke with a reason), the access audit and its filters, a client's
disclosures, the replay stepping through time, emergency-access reviews (ending a
running grant, closing the review) and the signed tree head with the log's verification.

Each page is the API's answer: what a role may not do is the 403 page, what it may not
see is the same 404 page as what does not exist, a form without its CSRF token or with
invalid input changes nothing, and every read a page makes is on the access record.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from domain.agencies import Role
from infra.settings import Settings
from infra.signing import generate_signing_key_file
from projections.log_tree import LogTree
from tests.builders import (
    Partnership,
    agree,
    browser_of,
    changes,
    consent,
    granted,
    hdr,
    police_terms,
    post_fact,
    register,
    ui_sign_in,
    view,
)

NONCE = re.compile(r"nonce[-=]\"?[A-Za-z0-9_\-]+")


def signed_in(api: TestClient, partnership: Partnership, agency: str,
              role: Role = Role.IG_LEAD) -> tuple[TestClient, str]:
    """A browser of its own, signed in; and its session's CSRF token."""
    browser = browser_of(api)
    return browser, ui_sign_in(browser, partnership.token(agency, role))


def terms_form(csrf: str, **changes_: Any) -> dict[str, Any]:
    """The terms form as an IG lead fills it in: housing status for care coordination."""
    form: dict[str, Any] = {
        "csrf_token": csrf, "recipient": "police", "title": "Housing for care coordination",
        "purposes": ["care_coordination"], "share-housing": ["status"],
        "article_6": "6(1)(e) public task", "article_9": "", "article_10": "",
        "legal_duty": "", "consent_required": "no",
        "valid_from[day]": "1", "valid_from[month]": "1", "valid_from[year]": "2026",
        "valid_to[day]": "", "valid_to[month]": "", "valid_to[year]": "",
        "review_on[day]": "1", "review_on[month]": "1", "review_on[year]": "2027",
        "retention_days": "365",
    }
    form.update(changes_)
    return form


def propose(browser: TestClient, csrf: str, **changes_: Any) -> str:
    answer = browser.post("/ui/agreements", data=terms_form(csrf, **changes_),
                          follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].endswith("?done=proposed")
    location: str = answer.headers["location"]
    return location.split("/")[-1].split("?")[0]


def summary_links(html: str) -> list[str]:
    """The fields the error summary links to."""
    summary = html.split('class="nhsuk-error-summary', 1)[1].split("</div>", 2)[0]
    return re.findall(r'href="#([^"]+)"', summary)


# -- the agreements register ---------------------------------------------------------------


def test_an_agreement_is_proposed_approved_amended_and_revoked_through_its_pages(
        api: TestClient, partnership: Partnership) -> None:
    tp, tp_csrf = signed_in(api, partnership, "tp")
    police, police_csrf = signed_in(api, partnership, "police")
    form = tp.get("/ui/agreements/new")
    assert form.status_code == 200
    assert 'name="share-housing"' in form.text and "clinical_notes" not in form.text
    agreement_id = propose(tp, tp_csrf)
    page = tp.get(f"/ui/agreements/{agreement_id}?done=proposed")
    assert "The agreement was proposed" in page.text and "Proposed" in page.text
    assert "Approve version 1" in page.text and "Amend the terms" in page.text
    # Both parties approve: it comes into force.
    for browser, csrf in ((tp, tp_csrf), (police, police_csrf)):
        approved = browser.post(f"/ui/agreements/{agreement_id}/approve",
                                data={"csrf_token": csrf}, follow_redirects=False)
        assert approved.status_code == 303
    register_page = police.get("/ui/agreements")
    assert "Housing for care coordination" in register_page.text and "Active" in register_page.text
    assert "Care coordination" in register_page.text
    # The recipient may not amend: it is offered no button, and the form refuses it.
    assert "Amend the terms" not in police.get(f"/ui/agreements/{agreement_id}").text
    assert police.get(f"/ui/agreements/{agreement_id}/amend").status_code == 403
    # The controller amends: the terms in force stay beside the proposed version.
    amend_form = tp.get(f"/ui/agreements/{agreement_id}/amend")
    assert 'value="Housing for care coordination"' in amend_form.text
    amended = tp.post(f"/ui/agreements/{agreement_id}/amend",
                      data=terms_form(tp_csrf, title="Housing, second year",
                                      **{"retention_days": "730"}),
                      follow_redirects=False)
    assert amended.status_code == 303, amended.text
    page = tp.get(amended.headers["location"]).text
    assert "Version 1 (in force)" in page and "Version 2 (awaiting approval)" in page
    terms = page.split('data-testid="terms"', 1)[1].split("</table>", 1)[0]
    assert "Housing for care coordination" in terms and "Housing, second year" in terms
    changed_rows = re.findall(r'<th scope="row"[^>]*>([^<]+) <strong[^>]*>Changed', terms)
    assert changed_rows == ["Title", "Kept for"]
    # Either party revokes, with a reason, after confirming.
    confirm = police.get(f"/ui/agreements/{agreement_id}/revoke")
    assert "Why is it revoked?" in confirm.text
    revoked = police.post(f"/ui/agreements/{agreement_id}/revoke",
                          data={"csrf_token": police_csrf, "reason": "The pilot ended"},
                          follow_redirects=False)
    assert revoked.status_code == 303
    page = tp.get(f"/ui/agreements/{agreement_id}").text
    assert "Revoked" in page and "The pilot ended" in page and "Approve version" not in page
    assert tp.get(f"/ui/agreements/{agreement_id}/amend").status_code == 409
    agreement = api.get(f"/v1/agreements/{agreement_id}",
                        headers=hdr(partnership, "tp", Role.IG_LEAD)).json()
    assert agreement["status"] == "revoked" and agreement["version"] == 2


def test_an_invalid_terms_form_says_what_is_wrong_beside_each_field_and_changes_nothing(
        api: TestClient, partnership: Partnership) -> None:
    tp, csrf = signed_in(api, partnership, "tp")
    before = changes(partnership.accord)
    answer = tp.post("/ui/agreements", data=terms_form(
        csrf, recipient="", purposes=[], **{"share-housing": [], "consent_required": "",
                                            "valid_from[month]": "13", "retention_days": "x"}))
    assert answer.status_code == 422
    assert "There is a problem" in answer.text and answer.text.count("nhsuk-error-message") >= 6
    assert summary_links(answer.text) == ["recipient", "purposes", "share-identity",
                                          "consent_required", "valid_from-day",
                                          "retention_days"]
    assert 'value="Housing for care coordination"' in answer.text  # kept as typed
    # The model's own rules, in its words: health data needs an Art. 9 condition.
    answer = tp.post("/ui/agreements", data=terms_form(
        csrf, **{"share-housing": [], "share-treatment": ["appointment"]}))
    assert answer.status_code == 422 and summary_links(answer.text) == ["article_9"]
    assert "Art. 9 condition" in answer.text
    # An agency with itself: the command's refusal, beside the recipient.
    answer = tp.post("/ui/agreements", data=terms_form(csrf, recipient="tp"))
    assert answer.status_code == 422 and summary_links(answer.text) == ["recipient"]
    assert changes(partnership.accord) == before


def test_agreement_forms_without_their_csrf_token_change_nothing(
        api: TestClient, partnership: Partnership) -> None:
    tp, csrf = signed_in(api, partnership, "tp")
    agreement_id = propose(tp, csrf)
    before = changes(partnership.accord)
    for path, data in (("/ui/agreements", terms_form("")),
                       (f"/ui/agreements/{agreement_id}/approve", {}),
                       (f"/ui/agreements/{agreement_id}/revoke", {"reason": "why not"})):
        answer = tp.post(path, data={k: v for k, v in data.items() if k != "csrf_token"})
        assert answer.status_code == 403, path
    assert changes(partnership.accord) == before


def test_who_sees_an_agreement_is_the_apis_answer(api: TestClient,
                                                  partnership: Partnership) -> None:
    tp, csrf = signed_in(api, partnership, "tp")
    agreement_id = propose(tp, csrf, title="<script>alert('x')</script> & co")
    # Markup typed into the title is shown as text.
    page = tp.get(f"/ui/agreements/{agreement_id}").text
    assert "<script>alert" not in page and "&lt;script&gt;alert(" in page
    # An agency that is not a party: the same page as for an agreement that does not exist.
    other, _ = signed_in(api, partnership, "tp2")
    theirs = other.get(f"/ui/agreements/{agreement_id}")
    made_up = other.get(f"/ui/agreements/{uuid4()}")
    assert theirs.status_code == made_up.status_code == 404
    assert NONCE.sub("", theirs.text) == NONCE.sub("", made_up.text)
    # A practitioner reads the register (the API lets everyone) but proposes nothing.
    practitioner, p_csrf = signed_in(api, partnership, "tp", Role.PRACTITIONER)
    assert practitioner.get("/ui/agreements").status_code == 200
    assert "Propose an agreement" not in practitioner.get("/ui/agreements").text
    assert practitioner.get("/ui/agreements/new").status_code == 403
    refused = practitioner.post("/ui/agreements", data=terms_form(p_csrf))
    assert refused.status_code == 403 and "You cannot do this" in refused.text


# -- the access audit and disclosures -----------------------------------------------------


@pytest.fixture
def shared(api: TestClient, partnership: Partnership) -> dict[str, Any]:
    """A client of tp whose engagement the police saw under the police agreement with the
    client's consent, then lost when the consent was withdrawn."""
    agree(api, partnership, police_terms())
    client_id = register(api, partnership)
    post_fact(api, partnership, client_id, {"type": "appointment_attended",
                                            "occurred_at": "2026-01-05T09:30:00Z",
                                            "data": {"appointment": "keywork"}})
    given = consent(api, partnership, client_id)
    seen = view(api, partnership, client_id, "police", "offender_management",
                given["position"])
    assert seen.status_code == 200 and seen.json()["facts"]
    withdrawn = api.post(f"/v1/clients/{client_id}/consents/{given['consent_id']}/withdraw",
                         json={"reason": "changed their mind"}, headers=hdr(partnership, "tp"))
    assert withdrawn.status_code == 200
    return {"client_id": client_id, "given": given["position"],
            "withdrawn": withdrawn.json()["position"]}


def test_the_access_audit_shows_the_reads_and_filters_them(
        api: TestClient, partnership: Partnership, shared: dict[str, Any]) -> None:
    tp, _ = signed_in(api, partnership, "tp")
    client_id = shared["client_id"]
    page = tp.get("/ui/audit/accesses", params={"client_id": client_id, "agency": "police"})
    assert page.status_code == 200
    rows = page.text.split('data-testid="accesses"', 1)[1]
    assert "police practitioner" in rows and "View for offender management" in rows
    assert f"/ui/clients/{client_id}/disclosures" in rows
    assert "tp practitioner" not in rows  # filtered to the police's reads
    everyone = tp.get("/ui/audit/accesses", params={"client_id": client_id}).text
    assert "tp practitioner" in everyone or "police practitioner" in everyone
    # Invalid filters: said beside each field, and nothing is read.
    bad = tp.get("/ui/audit/accesses", params={"client_id": "someone", "agency": "nowhere",
                                               "from[day]": "31", "from[month]": "2",
                                               "from[year]": "2026"})
    assert bad.status_code == 422
    assert summary_links(bad.text) == ["client_id", "agency", "from-day"]
    assert 'data-testid="accesses"' not in bad.text
    # Only IG leads audit.
    practitioner, _ = signed_in(api, partnership, "tp", Role.PRACTITIONER)
    assert practitioner.get("/ui/audit/accesses").status_code == 403


def test_a_clients_disclosures_are_the_controllers_and_on_the_record(
        api: TestClient, partnership: Partnership, shared: dict[str, Any]) -> None:
    tp, _ = signed_in(api, partnership, "tp")
    client_id = shared["client_id"]
    page = tp.get(f"/ui/clients/{client_id}/disclosures")
    assert page.status_code == 200
    table = page.text.split('data-testid="disclosures"', 1)[1]
    assert "Police" in table and "police practitioner" in table and "Treatment" in table
    audit = api.get("/v1/audit/accesses", params={"client_id": client_id},
                    headers=hdr(partnership, "tp", Role.IG_LEAD)).json()
    assert any(a["action"] == "disclosures" and a["principal_name"] == "tp ig_lead"
               for a in audit)
    # Another agency: the same 404 page as for a client that does not exist.
    police, _ = signed_in(api, partnership, "police")
    theirs, made_up = (police.get(f"/ui/clients/{c}/disclosures")
                       for c in (client_id, uuid4()))
    assert theirs.status_code == made_up.status_code == 404
    assert NONCE.sub("", theirs.text) == NONCE.sub("", made_up.text)


# -- the replay, stepping through time -----------------------------------------------------


def replay_page(browser: TestClient, client_id: str, at: int | str | None = None,
                **headers: str) -> Any:
    params = {"agency": "police", "client_id": client_id, "purpose": "offender_management"}
    if at is not None:
        params["at"] = str(at)
    return browser.get("/ui/audit/replay", params=params, headers=headers)


def step_target(html: str, step: str) -> int | None:
    found = re.search(rf'id="{step}" class="nhsuk-link" href="[^"]*at=(\d+)', html)
    return int(found.group(1)) if found else None


def test_the_replay_steps_from_change_to_change(
        api: TestClient, partnership: Partnership, shared: dict[str, Any]) -> None:
    tp, _ = signed_in(api, partnership, "tp")
    client_id = shared["client_id"]
    assert tp.get("/ui/audit/replay").status_code == 200  # the form alone
    # Now (after the withdrawal): the police could see nothing of it; the rule says why.
    now = replay_page(tp, client_id)
    assert now.status_code == 200
    withheld = now.text.split('data-testid="withheld"', 1)[1].split("</table>", 1)[0]
    assert "Appointment attended" in withheld and "withdrawn" in withheld
    assert step_target(now.text, "step-next") is None
    # The previous change: the answer from the consent on, until the withdrawal.
    previous = step_target(now.text, "step-previous")
    assert previous is not None and previous == shared["given"]
    then = replay_page(tp, client_id, previous)
    permitted = then.text.split('data-testid="permitted"', 1)[1].split("</table>", 1)[0]
    assert "Appointment attended" in permitted and "keywork" in permitted
    assert step_target(then.text, "step-next") == shared["withdrawn"]
    assert step_target(then.text, "step-later") == previous + 1
    assert step_target(then.text, "step-earlier") == previous - 1
    # With htmx, a step answers only the part that changes, and says what it shows.
    fragment = replay_page(tp, client_id, previous, **{"HX-Request": "true",
                                                       "HX-Target": "replay"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'hx-swap-oob="true"' in fragment.text and "Showing what police" in fragment.text
    # Every replay the page made is on the record.
    audit = api.get("/v1/audit/accesses", params={"client_id": client_id},
                    headers=hdr(partnership, "tp", Role.IG_LEAD)).json()
    replays = [a for a in audit if a["action"] == "replay" and a["principal_name"] == "tp ig_lead"]
    assert len(replays) >= 6  # each page: the replay and its changes


def test_the_replay_form_says_what_is_wrong_and_hides_what_is_not_the_callers(
        api: TestClient, partnership: Partnership, shared: dict[str, Any]) -> None:
    tp, _ = signed_in(api, partnership, "tp")
    bad = tp.get("/ui/audit/replay", params={"agency": "nowhere", "client_id": "x",
                                             "purpose": "gossip"})
    assert bad.status_code == 422
    assert summary_links(bad.text) == ["agency", "client_id", "purpose"]
    bad_moment = replay_page(tp, shared["client_id"], "yesterday")
    assert bad_moment.status_code == 422 and summary_links(bad_moment.text) == ["at"]
    # The other provider's IG lead: tp's client is as unknown as a made-up one.
    other, _ = signed_in(api, partnership, "tp2")
    theirs, made_up = (replay_page(other, c) for c in (shared["client_id"], str(uuid4())))
    assert theirs.status_code == made_up.status_code == 404
    assert NONCE.sub("", theirs.text) == NONCE.sub("", made_up.text)
    # The police's own IG lead sees its view: at the consent, the facts; now, nothing,
    # said so, with the way back to when it could.
    police, _ = signed_in(api, partnership, "police")
    now = replay_page(police, shared["client_id"])
    assert now.status_code == 200 and "could see nothing of this client" in now.text
    assert step_target(now.text, "step-previous") == shared["given"]


# -- emergency-access reviews -------------------------------------------------------------


def test_an_ig_lead_ends_a_running_grant_and_closes_its_review(
        api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    grant = granted(api, partnership, client_id)
    tp, csrf = signed_in(api, partnership, "tp")
    reviews = tp.get(f"/ui/audit/reviews?min_position={grant['position']}")
    assert reviews.status_code == 200
    review_id = grant["review_id"]
    assert "Access running" in reviews.text and f"{review_id}/end-access" in reviews.text
    # Ending it needs a reason; then the police no longer see the client.
    before = changes(partnership.accord)
    bad = tp.post(f"/ui/audit/reviews/{review_id}/end-access",
                  data={"csrf_token": csrf, "reason": ""})
    assert bad.status_code == 422 and summary_links(bad.text) == ["reason"]
    assert changes(partnership.accord) == before
    ended = tp.post(f"/ui/audit/reviews/{review_id}/end-access",
                    data={"csrf_token": csrf, "reason": "the emergency is over"},
                    follow_redirects=False)
    assert ended.status_code == 303
    assert view(api, partnership, client_id, "police", "safeguarding_adults",
                partnership.accord.app.head_position()).status_code == 404
    # Closing: an outcome is needed; a closed review offers nothing more.
    bad = tp.post(f"/ui/audit/reviews/{review_id}/close",
                  data={"csrf_token": csrf, "note": "fine"})
    assert bad.status_code == 422 and summary_links(bad.text) == ["outcome"]
    closed = tp.post(f"/ui/audit/reviews/{review_id}/close",
                     data={"csrf_token": csrf, "outcome": "justified",
                           "note": "<b>Collapsed</b> in custody"}, follow_redirects=False)
    assert closed.status_code == 303
    page = tp.get(closed.headers["location"] + "&status=closed").text
    assert "The review was closed" in page
    assert "&lt;b&gt;Collapsed&lt;/b&gt;" in page and "<b>Collapsed" not in page
    assert f"{review_id}/close" not in page
    # The police's IG lead (the grantee's) may not close or end it: as unknown.
    police, _ = signed_in(api, partnership, "police")
    for path in (f"/ui/audit/reviews/{review_id}/close",
                 f"/ui/audit/reviews/{review_id}/end-access"):
        assert police.get(path).status_code == 404


# -- tamper evidence ----------------------------------------------------------------------


@pytest.fixture
def signing_key(settings: Settings) -> Path:
    generate_signing_key_file(settings.signing_key_path)
    return settings.signing_key_path


def test_the_tree_head_and_the_logs_verification(
        signing_key: Path, api: TestClient, partnership: Partnership) -> None:
    register(api, partnership)
    partnership.accord.find(LogTree).catch_up(sign_now=True)
    admin, _ = signed_in(api, partnership, "tp", Role.ADMIN)
    page = admin.get("/ui/audit/tree")
    assert page.status_code == 200 and 'data-testid="tree-head"' in page.text
    head = api.get("/v1/audit/tree-head", headers=hdr(partnership, "tp", Role.ADMIN)).json()
    assert head["root_hash"] in page.text
    verified = admin.get("/ui/audit/tree/verification")
    assert "Verified" in verified.text and "The log matches every signed tree head" in verified.text
    fragment = admin.get("/ui/audit/tree/verification",
                         headers={"HX-Request": "true", "HX-Target": "verification"})
    assert "<html" not in fragment.text and "Verified" in fragment.text
    practitioner, _ = signed_in(api, partnership, "tp", Role.PRACTITIONER)
    assert practitioner.get("/ui/audit/tree").status_code == 403


def test_an_ig_leads_navigation_offers_its_sections(api: TestClient,
                                                    partnership: Partnership) -> None:
    tp, _ = signed_in(api, partnership, "tp")
    home = tp.get("/ui").text
    for href in ("/ui/agreements", "/ui/audit/accesses", "/ui/audit/replay",
                 "/ui/audit/reviews", "/ui/audit/tree"):
        assert f'href="{href}"' in home
    practitioner, _ = signed_in(api, partnership, "tp", Role.PRACTITIONER)
    assert 'href="/ui/audit/accesses"' not in practitioner.get("/ui").text

