"""Every page of the web application, opened in a real browser by a role that may use it,
over a record whose every free-text field holds markup: each page must answer 200, pass
axe-core (WCAG 2.2 A and AA), and show the markup as text (no script runs, no element is
made of it).

The pages are enumerated from the app: a new page fails ``test_the_sweep_covers_every_page``
until it is given a visit here (who opens it, and with which ids).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from api.app import create_app
from api.deps import route_actions
from domain.agencies import Role
from domain.catalogue import CATALOGUE
from domain.tokens import parse_bearer_token
from infra.settings import Settings
from tests.builders import (
    FACT_EXAMPLES,
    VALID_IDENTITY,
    agree,
    childrens_terms,
    concern,
    consent,
    granted,
    nhs_number,
    police_terms,
)
from tests.e2e.browser.conftest import Live, assert_accessible

#: What a user might type anywhere free text is taken; it must come back as text.
MARKUP = '<b id="injected">bold</b><script>document.title="injected"</script>'
#: Pages that are not HTML: the live inbox's event stream and the CSV download.
NOT_PAGES = {"/ui/alerts/stream", "/ui/reports/outcomes.csv"}
#: Pages for anyone, opened signed out.
SIGNED_OUT = {"/ui/sign-in"}


def free_text_fields(fact_type: str) -> set[str]:
    """The fields of a fact type that take any text (no enumeration, format or pattern)."""
    schema = CATALOGUE[fact_type].schema.model_json_schema()
    found = set()
    for name, spec in schema.get("properties", {}).items():
        options = spec.get("anyOf", [spec])
        if any(o.get("type") == "string" and not ({"enum", "format", "pattern", "const"} & set(o))
               for o in options):
            found.add(name)
    return found


@dataclass
class World:
    """A record with something on every page, its free text all markup."""

    client: str = ""
    positions: list[int] = field(default_factory=list)
    consent: str = ""
    agreement: str = ""
    alert: str = ""
    household: str = ""
    review: str = ""
    principal: str = ""


def build(live: Live) -> World:
    world = World()
    api = httpx.Client(base_url=live.url, timeout=30)
    partnership = live.partnership

    def headers(agency: str, role: Role = Role.PRACTITIONER) -> dict[str, str]:
        return partnership.headers(agency, role)

    agree(api, partnership, police_terms(title=f"Offender management {MARKUP}"))  # type: ignore[arg-type]
    world.agreement = agree(api, partnership, childrens_terms(categories={  # type: ignore[arg-type]
        "safeguarding_children": ["children_in_household", "concern"],
        "identity": ["given_name", "family_name"]}))
    registered = api.post("/v1/clients", headers=headers("tp"), json={"identity": {
        **VALID_IDENTITY, "given_name": f"Ann {MARKUP}", "family_name": f"Ex{MARKUP}"}})
    assert registered.status_code == 201, registered.text
    world.client = registered.json()["client_id"]
    for fact_type, example in FACT_EXAMPLES.items():
        data = {**example, **{name: MARKUP for name in free_text_fields(fact_type)
                              if name in example}}
        answer = api.post(f"/v1/clients/{world.client}/events", headers=headers("tp"), json={
            "type": fact_type, "occurred_at": "2026-03-01T10:00:00Z", "data": data})
        assert answer.status_code == 201, f"{fact_type}: {answer.text}"
        world.positions.append(answer.json()["position"])
    partner = api.post("/v1/clients", headers=headers("tp"), json={"identity": {
        **VALID_IDENTITY, "nhs_number": nhs_number(1), "given_name": f"Bo {MARKUP}"}})
    assert partner.status_code == 201, partner.text
    household = api.post("/v1/households", headers=headers("tp"), json={
        "client_ids": [world.client, partner.json()["client_id"]]})
    assert household.status_code == 201, household.text
    world.household = household.json()["household_id"]
    # The concern about a client in a household: an alert about the household too.
    post = api.post(f"/v1/clients/{world.client}/events", headers=headers("tp"),
                    json=concern())
    assert post.status_code == 201, post.text
    world.consent = consent(api, partnership, world.client)["consent_id"]  # type: ignore[arg-type]
    granted(api, partnership, world.client, justification=f"Urgent welfare check {MARKUP}")  # type: ignore[arg-type]
    reviews = api.get(f"/v1/audit/reviews?min_position={live.accord.app.head_position()}",
                      headers=headers("tp", Role.IG_LEAD)).json()
    world.review = reviews[0]["review_id"]
    world.principal = str(parse_bearer_token(partnership.token("tp", Role.PRACTITIONER))[0])
    head = live.accord.app.head_position()
    alerts = api.get(f"/v1/alerts?min_position={head}",
                     headers=headers("childrens", Role.SAFEGUARDING)).json()
    about_household = [a for a in alerts if a.get("household_id")]
    assert about_household, f"the concern raised no alert about the household: {alerts}"
    world.alert = about_household[0]["alert_id"]
    return world


Visit = tuple[str, Role, Callable[[World], str]]
TP_IG = ("tp", Role.IG_LEAD)
#: Who opens each page, and where: (agency, role, the URL from the world's ids).
VISITS: dict[str, list[Visit]] = {
    "/ui": [("tp", Role.PRACTITIONER, lambda w: "/ui")],
    "/ui/sign-in": [("", Role.PRACTITIONER, lambda w: "/ui/sign-in")],
    "/ui/admin/agencies": [("commissioner", Role.PARTNERSHIP_ADMIN,
                            lambda w: "/ui/admin/agencies")],
    "/ui/admin/agencies/new": [("commissioner", Role.PARTNERSHIP_ADMIN,
                                lambda w: "/ui/admin/agencies/new")],
    "/ui/admin/principals": [("tp", Role.ADMIN, lambda w: "/ui/admin/principals")],
    "/ui/admin/principals/new": [("tp", Role.ADMIN, lambda w: "/ui/admin/principals/new")],
    "/ui/admin/principals/{principal_id}/revoke": [
        ("tp", Role.ADMIN, lambda w: f"/ui/admin/principals/{w.principal}/revoke")],
    "/ui/agreements": [(*TP_IG, lambda w: "/ui/agreements")],
    "/ui/agreements/new": [(*TP_IG, lambda w: "/ui/agreements/new")],
    "/ui/agreements/{agreement_id}": [(*TP_IG, lambda w: f"/ui/agreements/{w.agreement}")],
    "/ui/agreements/{agreement_id}/amend": [
        (*TP_IG, lambda w: f"/ui/agreements/{w.agreement}/amend")],
    "/ui/agreements/{agreement_id}/revoke": [
        (*TP_IG, lambda w: f"/ui/agreements/{w.agreement}/revoke")],
    "/ui/alerts": [("childrens", Role.SAFEGUARDING, lambda w: "/ui/alerts")],
    "/ui/alerts/{alert_id}": [("childrens", Role.SAFEGUARDING,
                               lambda w: f"/ui/alerts/{w.alert}")],
    "/ui/alerts/{alert_id}/client": [("childrens", Role.SAFEGUARDING,
                                      lambda w: f"/ui/alerts/{w.alert}/client")],
    "/ui/alerts/{alert_id}/household": [("childrens", Role.SAFEGUARDING,
                                         lambda w: f"/ui/alerts/{w.alert}/household")],
    "/ui/audit/accesses": [(*TP_IG, lambda w: "/ui/audit/accesses")],
    "/ui/audit/replay": [(*TP_IG, lambda w: "/ui/audit/replay?agency=police&purpose="
                          f"offender_management&client_id={w.client}")],
    "/ui/audit/reviews": [(*TP_IG, lambda w: "/ui/audit/reviews")],
    "/ui/audit/reviews/{review_id}/close": [
        (*TP_IG, lambda w: f"/ui/audit/reviews/{w.review}/close")],
    "/ui/audit/reviews/{review_id}/end-access": [
        (*TP_IG, lambda w: f"/ui/audit/reviews/{w.review}/end-access")],
    "/ui/audit/tree": [(*TP_IG, lambda w: "/ui/audit/tree")],
    "/ui/audit/tree/verification": [(*TP_IG, lambda w: "/ui/audit/tree/verification")],
    "/ui/clients": [("tp", Role.PRACTITIONER, lambda w: "/ui/clients")],
    "/ui/clients/new": [("tp", Role.PRACTITIONER, lambda w: "/ui/clients/new")],
    "/ui/clients/{client_id}": [
        ("tp", Role.PRACTITIONER, lambda w: f"/ui/clients/{w.client}?purpose=direct_care"),
        ("police", Role.PRACTITIONER,
         lambda w: f"/ui/clients/{w.client}?purpose=offender_management")],
    "/ui/clients/{client_id}/consents": [
        ("tp", Role.PRACTITIONER, lambda w: f"/ui/clients/{w.client}/consents")],
    "/ui/clients/{client_id}/consents/new": [
        ("tp", Role.PRACTITIONER, lambda w: f"/ui/clients/{w.client}/consents/new")],
    "/ui/clients/{client_id}/consents/{consent_id}/withdraw": [
        ("tp", Role.PRACTITIONER,
         lambda w: f"/ui/clients/{w.client}/consents/{w.consent}/withdraw")],
    "/ui/clients/{client_id}/disclosures": [
        (*TP_IG, lambda w: f"/ui/clients/{w.client}/disclosures")],
    "/ui/clients/{client_id}/facts/new": [
        ("tp", Role.PRACTITIONER,
         lambda w: f"/ui/clients/{w.client}/facts/new?purpose=direct_care")],
    "/ui/clients/{client_id}/facts/{position}/amend": [
        ("tp", Role.PRACTITIONER,
         lambda w: f"/ui/clients/{w.client}/facts/{w.positions[-1]}/amend")],
    "/ui/clients/{client_id}/facts/{position}/retract": [
        ("tp", Role.PRACTITIONER,
         lambda w: f"/ui/clients/{w.client}/facts/{w.positions[-1]}/retract")],
    "/ui/clients/{client_id}/record": [
        ("tp", Role.PRACTITIONER, lambda w: f"/ui/clients/{w.client}/record")],
    "/ui/clients/{client_id}/subject-access": [
        (*TP_IG, lambda w: f"/ui/clients/{w.client}/subject-access")],
    "/ui/clients/{client_id}/governance": [
        (*TP_IG, lambda w: f"/ui/clients/{w.client}/governance")],
    "/ui/emergency-access": [("police", Role.PRACTITIONER,
                              lambda w: f"/ui/emergency-access?client={w.client}")],
    "/ui/find": [("police", Role.PRACTITIONER, lambda w: "/ui/find")],
    "/ui/governance/erased": [(*TP_IG, lambda w: "/ui/governance/erased")],
    "/ui/households/new": [("tp", Role.PRACTITIONER, lambda w: "/ui/households/new")],
    "/ui/households/{household_id}": [
        ("tp", Role.PRACTITIONER,
         lambda w: f"/ui/households/{w.household}?purpose=direct_care")],
    "/ui/reports": [("commissioner", Role.COMMISSIONER, lambda w: "/ui/reports")],
    "/ui/subject-access": [(*TP_IG, lambda w: "/ui/subject-access")],
}


def html_pages() -> set[str]:
    app = create_app(settings=Settings(database_url="sqlite:////nonexistent/unused.db",
                                       key_file=Path("/nonexistent/unused.key")))
    return {path for (method, path) in route_actions(app)
            if method == "GET" and (path == "/ui" or path.startswith("/ui/"))} - NOT_PAGES


def test_the_sweep_covers_every_page() -> None:
    assert html_pages() == set(VISITS)


@pytest.fixture(scope="module")
def world(live: Live) -> World:
    return build(live)


@pytest.fixture(scope="module")
def pages(browser: Browser, live: Live) -> Iterator[Callable[[str, Role], Page]]:
    """A signed-in page per (agency, role), each in its own browser context."""
    opened: dict[tuple[str, Role], Page] = {}
    problems: list[str] = []

    def page_for(agency: str, role: Role) -> Page:
        if (agency, role) not in opened:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(10_000)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            if agency:
                page.goto(f"{live.url}/ui/sign-in")
                page.get_by_label("Token").fill(live.token(agency, role))
                page.get_by_role("button", name="Sign in").click()
                expect(page.get_by_test_id("sign-out")).to_be_visible()
            opened[(agency, role)] = page
        return opened[(agency, role)]

    yield page_for
    for page in opened.values():
        page.context.close()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("route", sorted(VISITS))
def test_every_page_is_accessible_and_shows_markup_as_text(
        route: str, world: World, pages: Callable[[str, Role], Page], live: Live) -> None:
    for agency, role, url in VISITS[route]:
        page = pages(agency, role)
        answer = page.goto(f"{live.url}{url(world)}")
        assert answer is not None and answer.status == 200, \
            f"{route} as {role.value}@{agency}: {answer.status if answer else 'no answer'}"
        assert page.locator("#injected").count() == 0, f"{route}: markup became an element"
        assert page.title() != "injected", f"{route}: a script from the record ran"
        assert_accessible(page)


def test_the_markup_is_on_the_pages_as_text(
        world: World, pages: Callable[[str, Role], Page], live: Live) -> None:
    """The sweep is not vacuous: the record's markup is shown, as text, where it belongs."""
    page = pages("tp", Role.PRACTITIONER)
    page.goto(f"{live.url}/ui/clients/{world.client}/record")
    expect(page.get_by_text(MARKUP).first).to_be_visible()
    page = pages("police", Role.PRACTITIONER)
    page.goto(f"{live.url}/ui/clients/{world.client}?purpose=offender_management")
    expect(page.get_by_text(f"Ex{MARKUP}").first).to_be_visible()


