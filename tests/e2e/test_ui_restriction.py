"""A restricted client (UK GDPR Art. 18) in the web application, and the record's life
page, through a browser's requests (TestClient, both databases).

The client page and the agency's own record meet the API's refusal (409 without a legal
claim) and show what the restriction means with a form asking for the claim, not an
error; the claim is POSTed (never in a URL or a Location header), checked as the API
checks it, and recorded with the read exactly as the API records it. The IG lead of the
registering controller restricts and lifts, holds and lifts, and erases from the record's
life page, each form with a reason, a confirmation and the CSRF token; a refusal says why
in words and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from api.bootstrap import Accord
from domain.agencies import Role
from tests.builders import (
    Partnership,
    access_records,
    browser_of,
    changes,
    hdr,
    register,
    ui_sign_in,
)

IG = Role.IG_LEAD
CLAIM = "Defence of claim KB-2026-000123 brought against the service"
REASON = "The client contests the accuracy of the record."


class Browser:
    """A signed-in browser that remembers every URL it asked for and every redirect."""

    def __init__(self, api: TestClient, partnership: Partnership, agency: str = "tp",
                 role: Role = Role.PRACTITIONER) -> None:
        self.client = browser_of(api)
        self.seen: list[str] = []

        def remember(response: httpx.Response) -> None:
            self.seen.append(str(response.request.url))
            self.seen.append(response.headers.get("location", ""))

        self.client.event_hooks["response"].append(remember)
        self.csrf = ui_sign_in(self.client, partnership.token(agency, role))

    def get(self, url: str) -> httpx.Response:
        answer: httpx.Response = self.client.get(url)
        return answer

    def post(self, url: str, data: dict[str, str], *, csrf: bool = True,
             follow: bool = False) -> httpx.Response:
        body = {**data, "csrf_token": self.csrf} if csrf else data
        answer: httpx.Response = self.client.post(url, data=body, follow_redirects=follow)
        return answer


def restricted_client(api: TestClient, partnership: Partnership) -> tuple[str, int]:
    """A client of tp's, restricted, and the restriction's log position (a page reading
    the views names it as ``min_position``, as a page following a write does)."""
    client_id = register(api, partnership)
    answer = api.post(f"/v1/clients/{client_id}/restriction", json={"reason": REASON},
                      headers=hdr(partnership, "tp", IG))
    assert answer.status_code == 200, answer.text
    return client_id, answer.json()["position"]


def claims_on_record(api: TestClient, partnership: Partnership, client_id: str) -> list[str]:
    audit = api.get("/v1/audit/accesses", params={"client_id": client_id},
                    headers=hdr(partnership, "tp", IG)).json()
    return [a["detail"] for a in audit if a["detail"] and CLAIM in a["detail"]]


def test_a_restricted_clients_pages_ask_for_the_claim_and_read_with_it(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    client_id, at = restricted_client(api, partnership)
    browser = Browser(api, partnership)
    pages = {"client": f"/ui/clients/{client_id}?purpose=direct_care&min_position={at}",
             "record": f"/ui/clients/{client_id}/record"}
    for name, url in pages.items():
        asked = browser.get(url)
        assert asked.status_code == 200, f"{name}: {asked.text[:300]}"
        assert "This client&#39;s record is restricted" in asked.text or \
            "This client's record is restricted" in asked.text
        assert 'name="restriction_reason"' in asked.text and 'method="post"' in asked.text
        assert "Restricted: read for the stated legal claim" not in asked.text

        # Without a claim, or too short a claim, nothing is read: errors beside the field
        # and in the summary.
        reads = access_records(accord)
        for claim, error in (("", "Enter the legal claim"), ("   ", "Enter the legal claim"),
                             ("too short", "10 to 500 characters"),
                             ("x" * 501, "10 to 500 characters")):
            refused = browser.post(url, {"restriction_reason": claim})
            assert refused.status_code == 422, f"{name} {claim!r}: {refused.status_code}"
            assert "There is a problem" in refused.text and refused.text.count(error) >= 2
            assert 'href="#restriction-reason"' in refused.text
        assert browser.post(url, {"restriction_reason": CLAIM},
                            csrf=False).status_code == 403
        assert access_records(accord) == reads

        shown = browser.post(url, {"restriction_reason": CLAIM})
        assert shown.status_code == 200, shown.text[:500]
        assert "Restricted: read for the stated legal claim" in shown.text
        assert 'data-testid="client-name"' in shown.text
        assert access_records(accord) == reads + 1
    assert len(claims_on_record(api, partnership, client_id)) == 2
    assert all("legal claim" in c for c in claims_on_record(api, partnership, client_id))
    assert not [u for u in browser.seen if "KB-2026" in u or "restriction_reason" in u]


def test_a_page_that_reads_to_name_the_client_explains_and_leads_to_the_claim(
        api: TestClient, partnership: Partnership) -> None:
    client_id, at = restricted_client(api, partnership)
    browser = Browser(api, partnership)
    for url in (f"/ui/clients/{client_id}/facts/new?purpose=direct_care&min_position={at}",
                f"/ui/clients/{client_id}/consents/new"):
        page = browser.get(url)
        assert page.status_code == 200, page.text[:300]
        assert "record is restricted" in page.text
        assert 'name="restriction_reason"' not in page.text  # the claim is stated there
        assert f"/ui/clients/{client_id}" in page.text


def test_a_client_not_restricted_reads_as_before_without_a_banner(
        api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    browser = Browser(api, partnership)
    page = browser.get(f"/ui/clients/{client_id}/record")
    assert page.status_code == 200
    assert "record is restricted" not in page.text
    assert "Restricted: read for the stated legal claim" not in page.text


def governance(client_id: str, change: str = "") -> str:
    return f"/ui/clients/{client_id}/governance" + (f"/{change}" if change else "")


def test_the_ig_lead_restricts_and_lifts_holds_and_lifts_through_the_page(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    ig = Browser(api, partnership, role=IG)
    page = ig.get(governance(client_id))
    assert page.status_code == 200, page.text[:300]
    assert "Not restricted" in page.text and "cannot be undone" in page.text

    # Bad input, a missing confirmation and a missing CSRF token change nothing.
    before = changes(accord)
    bad = ig.post(governance(client_id, "restrict"), {"reason": "short"})
    assert bad.status_code == 422
    assert "The reason must be 10 to 1000 characters" in bad.text
    assert "Tick the box" in bad.text and 'href="#restrict-confirm"' in bad.text
    assert ig.post(governance(client_id, "restrict"), {"reason": REASON}).status_code == 422
    assert ig.post(governance(client_id, "restrict"), {"reason": REASON, "confirm": "yes"},
                   csrf=False).status_code == 403
    assert changes(accord) == before

    for change, state in (("restrict", "Restricted (UK GDPR Article 18)"),
                          ("hold", "In place: the record cannot be erased")):
        done = ig.post(governance(client_id, change), {"reason": REASON, "confirm": "yes"})
        assert done.status_code == 303, done.text[:300]
        assert done.headers["location"] == f"{governance(client_id)}?done={change}"
        shown = ig.get(done.headers["location"])
        assert state in shown.text and "nhsuk-notification-banner" in shown.text
    record = api.get(f"/v1/clients/{client_id}/rights", headers=hdr(partnership, "tp", IG))
    assert record.json() == {"client_id": client_id, "legal_hold": True, "restricted": True}

    # The API's refusal (already restricted), said in words, changing nothing: the form
    # posted from a page opened before someone else restricted the client.
    before = changes(accord)
    again = ig.post(governance(client_id, "restrict"), {"reason": REASON, "confirm": "yes"})
    assert again.status_code == 409
    assert "refused, nothing was changed" in again.text and "already restricted" in again.text
    assert changes(accord) == before

    for change in ("lift-restriction", "lift-hold"):
        done = ig.post(governance(client_id, change), {"reason": REASON, "confirm": "yes"})
        assert done.status_code == 303, done.text[:300]
    record = api.get(f"/v1/clients/{client_id}/rights", headers=hdr(partnership, "tp", IG))
    assert record.json() == {"client_id": client_id, "legal_hold": False, "restricted": False}
    assert not [u for u in ig.seen if REASON.replace(" ", "+") in u or "contests" in u]


def test_erasure_under_a_hold_says_why_and_changes_nothing_then_erases(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    ig = Browser(api, partnership, role=IG)
    assert ig.post(governance(client_id, "hold"),
                   {"reason": REASON, "confirm": "yes"}).status_code == 303
    before = changes(accord)
    refused = ig.post(governance(client_id, "erase"), {"reason": REASON, "confirm": "yes"})
    assert refused.status_code == 409
    assert "refused, nothing was changed" in refused.text and "legal hold" in refused.text
    assert changes(accord) == before
    assert api.get(f"/v1/clients/{client_id}/record",
                   headers=hdr(partnership, "tp")).status_code == 200

    assert ig.post(governance(client_id, "lift-hold"),
                   {"reason": REASON, "confirm": "yes"}).status_code == 303
    erased = ig.post(governance(client_id, "erase"), {"reason": REASON, "confirm": "yes"})
    assert erased.status_code == 303, erased.text[:300]
    page = ig.get(erased.headers["location"])
    assert "The client is erased" in page.text and "hmac-sha256:" in page.text
    assert ig.get(governance(client_id)).status_code == 404
    # A made-up fingerprint is not shown as this session's erasure.
    forged = ig.get("/ui/governance/erased?fingerprint=hmac-sha256:forged&check=0")
    assert "forged" not in forged.text


def test_only_the_registering_controllers_ig_lead_changes_the_record(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    practitioner = Browser(api, partnership)
    other: Any = Browser(api, partnership, agency="tp2", role=IG)
    before = changes(accord)
    assert practitioner.get(governance(client_id)).status_code == 403
    assert practitioner.post(governance(client_id, "erase"),
                             {"reason": REASON, "confirm": "yes"}).status_code == 403
    theirs = other.post(governance(client_id, "restrict"), {"reason": REASON, "confirm": "yes"})
    assert theirs.status_code == 404
    assert other.get(governance(client_id)).status_code == 404
    assert changes(accord) == before


def test_the_subject_access_page_leads_to_the_records_life(
        api: TestClient, partnership: Partnership) -> None:
    client_id = register(api, partnership)
    ig = Browser(api, partnership, role=IG)
    answer = ig.get(f"/ui/clients/{client_id}/subject-access")
    assert f'href="/ui/clients/{client_id}/governance"' in answer.text
    disclosures = ig.get(f"/ui/clients/{client_id}/disclosures")
    assert f'href="/ui/clients/{client_id}/governance"' in disclosures.text
