"""A subject access request (UK GDPR Art. 15), answered by the registering controller's IG lead.

``GET /v1/clients/{client_id}/subject-access`` on both databases: a disclosure made
earlier appears; nothing the client is owed is left out (every agency's facts with who
recorded them, their amendments and retractions, consents and withdrawals, flags, legal
holds and restrictions, emergency grants and their reviews, alerts); another agency's
facts are marked for redaction review; every other role and agency is refused as the
permission table and the 404 rule say; the answer is itself on the access record.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from fastapi.testclient import TestClient

from domain.agencies import Role
from tests.builders import (
    SAFEGUARDING,
    VALID_IDENTITY,
    Partnership,
    agree,
    changes,
    childrens_terms,
    concern,
    consent,
    fact,
    granted,
    hdr,
    inbox,
    police_terms,
    post_fact,
    register,
    settle,
    view,
)

IG = Role.IG_LEAD
REASON = "Recorded against the wrong appointment type."
NOTE_TEXT = "Client said <b>not</b> to tell her sister & brother-in-law."


def answer(api: TestClient, partnership: Partnership, client_id: str, agency: str = "tp",
           role: Role = IG) -> Any:
    return api.get(f"/v1/clients/{client_id}/subject-access",
                   headers=hdr(partnership, agency, role))


def accesses(api: TestClient, partnership: Partnership, agency: str,
             client_id: str) -> list[dict[str, Any]]:
    response = api.get("/v1/audit/accesses", params={"client_id": client_id},
                       headers=hdr(partnership, agency, IG))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def a_full_story(api: TestClient, partnership: Partnership) -> dict[str, Any]:
    """A client of tp with something of every kind held about them: tp's facts (one
    amended, one retracted, a note), a consent to the police then withdrawn, the police's
    read and their own fact, a child concern that alerts children's services (who read
    the inbox), and another provider's emergency grant, reviewed."""
    agree(api, partnership, police_terms())
    agree(api, partnership, childrens_terms())
    client_id = register(api, partnership)
    story: dict[str, Any] = {"client_id": client_id}
    story["attended"] = post_fact(api, partnership, client_id, fact())
    story["amend"] = api.post(
        f"/v1/clients/{client_id}/facts/{story['attended']}/amend",
        json={"data": {"appointment": "group"}, "reason": REASON},
        headers=hdr(partnership, "tp")).json()["position"]
    story["housing"] = post_fact(api, partnership, client_id,
                                 fact("housing_status_recorded", {"status": "settled"}))
    story["retract"] = api.post(
        f"/v1/clients/{client_id}/facts/{story['housing']}/retract",
        json={"reason": "Recorded about the wrong client."},
        headers=hdr(partnership, "tp")).json()["position"]
    story["note"] = post_fact(api, partnership, client_id,
                              fact("clinical_note_added", {"text": NOTE_TEXT}))
    given = consent(api, partnership, client_id)
    story["consent_id"] = given["consent_id"]
    # The police read the client's view for offender management: a disclosure of tp's data.
    seen = view(api, partnership, client_id, "police", "offender_management",
                given["position"])
    assert seen.status_code == 200, seen.text
    story["police_fact"] = post_fact(api, partnership, client_id, fact(
        "domestic_abuse_incident_recorded", {"role": "victim", "children_present": False,
                                             "police_reference": "NP/1"}), agency="police")
    withdrawn = api.post(f"/v1/clients/{client_id}/consents/{given['consent_id']}/withdraw",
                         json={"reason": "client changed their mind"},
                         headers=hdr(partnership, "tp"))
    assert withdrawn.status_code == 200, withdrawn.text
    story["concern"] = post_fact(api, partnership, client_id, concern())
    [alert] = inbox(api, partnership)  # children's services read their inbox: a disclosure
    story["alert_id"] = alert["alert_id"]
    grant = granted(api, partnership, client_id, agency="tp2")
    story["grant_id"] = grant["grant_id"]
    assert view(api, partnership, client_id, "tp2", "safeguarding_adults",
                grant["position"]).status_code == 200
    closed = api.post(f"/v1/audit/reviews/{grant['review_id']}",
                      json={"outcome": "justified", "note": "Overdose in the waiting room."},
                      headers=hdr(partnership, "tp", IG))
    assert closed.status_code == 200, closed.text
    # Flags, last (so that no read above is an interest they are told of): the provider's,
    # and one the police set and took off again.
    for agency in ("tp", "police"):
        flagged = api.post(f"/v1/clients/{client_id}/flags",
                           json={"reason": f"Child protection plan in the household ({agency})"},
                           headers=hdr(partnership, agency, SAFEGUARDING))
        assert flagged.status_code == 201, flagged.text
        story[f"{agency}_flag"] = flagged.json()["flag_id"]
    removed = api.post(f"/v1/clients/{client_id}/flags/{story['police_flag']}/remove",
                       json={"reason": "The plan has ended, no longer needed."},
                       headers=hdr(partnership, "police", SAFEGUARDING))
    assert removed.status_code == 200, removed.text
    # A legal hold, and a restriction of processing placed and lifted (reasons sealed).
    for path, reason in (("legal-hold", "Complaint to the ombudsman pending."),
                         ("restriction", "The client contests the accuracy of a fact."),
                         ("restriction/lift", "The disputed fact has been checked.")):
        done = api.post(f"/v1/clients/{client_id}/{path}", json={"reason": reason},
                        headers=hdr(partnership, "tp", IG))
        assert done.status_code == 200, done.text
    settle(api)
    return story


def test_the_answer_lists_everything_held_and_marks_other_agencies_facts(
        api: TestClient, partnership: Partnership) -> None:
    story = a_full_story(api, partnership)
    client_id = story["client_id"]
    response = answer(api, partnership, client_id)
    assert response.status_code == 200, response.text
    body = response.json()

    assert body["controller"] == "tp"
    assert body["identity"]["nhs_number"] == VALID_IDENTITY["nhs_number"].replace(" ", "")
    assert body["identity"]["family_name"] == VALID_IDENTITY["family_name"]
    assert body["produced_by"]["name"] == "tp ig_lead"
    assert body["registered_by"]["name"] == "tp practitioner"
    assert body["agencies"] == ["tp", "police"]

    # Every fact from every agency, retracted and amended ones included, each named.
    facts = {f["position"]: f for f in body["facts"]}
    assert {story["attended"], story["housing"], story["note"], story["police_fact"],
            story["concern"]} <= set(facts)
    amended = facts[story["attended"]]
    assert amended["data"] == {"appointment": "group"}
    assert amended["recorded_data"] == {"appointment": "keywork"}
    [amendment] = amended["amendments"]
    assert (amendment["position"], amendment["reason"], amendment["by"]["name"],
            amendment["data"]) == (story["amend"], REASON, "tp practitioner",
                                   {"appointment": "group"})
    retracted = facts[story["housing"]]
    assert retracted["retraction"]["position"] == story["retract"]
    assert retracted["retraction"]["by"]["agency"] == "tp"
    assert facts[story["note"]]["data"] == {"text": NOTE_TEXT}
    police = facts[story["police_fact"]]
    assert police["controller"] == "police"
    assert (police["recorded_by"]["name"], police["recorded_by"]["agency"],
            police["recorded_by"]["role"]) == ("police practitioner", "police", "practitioner")
    # Only the other agency's fact is marked, with why.
    assert police["redaction_review"] is True
    assert police["redaction_reason"] == ("recorded by police: check for third-party "
                                          "information before release")
    assert [f["position"] for f in body["facts"] if f["redaction_review"]] == \
        [story["police_fact"]]

    # The consent and its withdrawal, named.
    [given] = body["consents"]
    assert (given["consent_id"], given["active"], given["withdrawal_reason"]) == (
        story["consent_id"], False, "client changed their mind")
    assert given["recorded_by"]["name"] == given["withdrawn_by"]["name"] == "tp practitioner"

    # The other provider's emergency grant and its closed review.
    [grant] = body["emergency_access"]
    assert (grant["grant_id"], grant["agency"], grant["principal"]["name"]) == (
        story["grant_id"], "tp2", "tp2 practitioner")
    assert (grant["review"]["status"], grant["review"]["outcome"], grant["review"]["note"],
            grant["review"]["closed_by"]["name"]) == (
        "closed", "justified", "Overdose in the waiting room.", "tp ig_lead")

    # The alert children's services received, marked (their handling is their record).
    [alert] = body["alerts"]
    assert alert["alert"]["alert_id"] == story["alert_id"]
    assert alert["alert"]["recipient"] == "childrens"
    assert alert["redaction_review"] is True

    # Both flags, each marked: the provider's for the harm test, the police's as theirs.
    flags = {f["flag_id"]: f for f in body["flags"]}
    assert set(flags) == {story["tp_flag"], story["police_flag"]}
    own, theirs = flags[story["tp_flag"]], flags[story["police_flag"]]
    assert (own["agency"], own["flagged_by"]["name"], own["removed_at"]) == (
        "tp", "tp safeguarding", None)
    assert own["redaction_review"] and "serious harm" in own["redaction_reason"]
    assert theirs["redaction_reason"].startswith("recorded by police:")
    assert (theirs["removal_reason"], theirs["removed_by"]["name"]) == (
        "The plan has ended, no longer needed.", "police safeguarding")

    # The hold and the restriction, each with who and why (opened: sealed in the log).
    assert [(h["kind"], h["reason"], h["by"]["name"], h["redaction_review"])
            for h in body["holds_and_restrictions"]] == [
        ("legal_hold_placed", "Complaint to the ombudsman pending.", "tp ig_lead", True),
        ("processing_restricted", "The client contests the accuracy of a fact.", "tp ig_lead",
         False),
        ("restriction_lifted", "The disputed fact has been checked.", "tp ig_lead", False)]
    # The police's fact, the alert, two flags and the legal hold.
    assert body["redaction_reviews"] == 5

    # The disclosures made earlier: the police's view, children's services' inbox read.
    disclosed = [(d["recipient"], d["action"], d["purpose"]) for d in body["disclosures"]]
    assert ("police", "view", "offender_management") in disclosed
    assert ("childrens", "alerts") in {(recipient, action) for recipient, action, _ in disclosed}
    police_read = next(d for d in body["disclosures"] if d["action"] == "view")
    assert police_read["principal"]["name"] == "police practitioner"
    assert police_read["items"] and all(
        i["controller"] == "tp" and i["basis"]["consent_id"] == story["consent_id"]
        for i in police_read["items"])
    # The other provider's read under its grant is one too.
    assert ("tp2", "view", "safeguarding_adults") in disclosed
    assert all(d["recipient"] != "tp" for d in body["disclosures"])


def test_the_answer_is_on_the_record_and_is_itself_a_disclosure_of_others_data(
        api: TestClient, partnership: Partnership) -> None:
    story = a_full_story(api, partnership)
    client_id = story["client_id"]
    before = changes(partnership.accord)
    first = answer(api, partnership, client_id).json()
    assert changes(partnership.accord) == before  # a read: only its access record
    [record] = [a for a in accesses(api, partnership, "tp", client_id)
                if a["action"] == "subject_access"]
    assert (record["position"], record["outcome"], record["principal_name"]) == (
        first["position"], "returned", "tp ig_lead")
    listed = {(i["position"], i["controller"]) for i in record["returned"]}
    assert {(f["position"], f["controller"]) for f in first["facts"]} <= listed
    assert (story["police_fact"], "police") in listed
    assert {i["category"] for i in record["returned"]} >= {
        "identity", "consent", "flag", "emergency_access", "alert", "access_record",
        "legal_hold_placed", "processing_restricted", "restriction_lifted"}
    # The police's IG lead finds that tp's IG lead saw its fact, and why.
    [theirs] = [a for a in accesses(api, partnership, "police", client_id)
                if a["action"] == "subject_access"]
    assert [(i["position"], i["basis"]["kind"]) for i in theirs["returned"]
            if i["category"] == "domestic_abuse"] == [(story["police_fact"], "subject_access")]
    # So the next answer lists the first among the disclosures of the police's data.
    second = answer(api, partnership, client_id).json()
    [listed_first] = [d for d in second["disclosures"] if d["position"] == first["position"]]
    assert (listed_first["recipient"], listed_first["action"]) == ("tp", "subject_access")
    assert {i["controller"] for i in listed_first["items"]} == {"police"}


def test_only_the_registering_controllers_ig_lead_is_answered(
        api: TestClient, partnership: Partnership) -> None:
    agree(api, partnership, police_terms())
    client_id = register(api, partnership)
    given = consent(api, partnership, client_id)
    assert view(api, partnership, client_id, "police", "offender_management",
                given["position"]).status_code == 200
    # The police hold their own record of the client now; still not theirs to answer.
    post_fact(api, partnership, client_id, fact(
        "domestic_abuse_incident_recorded", {"role": "victim", "children_present": False}),
        agency="police")
    unknown = answer(api, partnership, str(uuid4()))
    assert unknown.status_code == 404
    before = changes(partnership.accord)
    for agency in ("police", "tp2", "childrens", "commissioner"):
        theirs = answer(api, partnership, client_id, agency)
        made_up = answer(api, partnership, str(uuid4()), agency)
        assert theirs.status_code == made_up.status_code == 404, agency
        assert theirs.json() == made_up.json() == unknown.json()
        assert VALID_IDENTITY["family_name"] not in theirs.text
    for role in (Role.PRACTITIONER, SAFEGUARDING, Role.ADMIN, Role.COMMISSIONER,
                 Role.PARTNERSHIP_ADMIN):
        refused = answer(api, partnership, client_id, "tp", role)
        assert refused.status_code == 403, role
        assert refused.json()["detail"] == ("only the IG lead of the client's registering "
                                            "controller answers a subject access request")
    assert changes(partnership.accord) == before
    # Each 404 is an attempt on the record: the controller's audit shows the police's.
    attempts = [(a["agency"], a["outcome"]) for a in accesses(api, partnership, "tp", client_id)
                if a["action"] == "subject_access"]
    assert ("police", "not_found") in attempts
    assert api.get("/v1/clients/not-a-uuid/subject-access",
                   headers=hdr(partnership, "tp", IG)).status_code == 422
