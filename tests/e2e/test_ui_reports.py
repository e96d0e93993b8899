"""The commissioners' report pages through the app (TestClient), on both databases: the
period and breakdown pickers (errors beside the fields, nothing read on bad input), the
measures as tables with hidden figures as ``*`` and server-drawn charts beside them, the
CSV download (the API's own figures), who may open them, and each read on the record."""

from __future__ import annotations

import re
from datetime import date

from fastapi.testclient import TestClient

from api.bootstrap import Accord
from domain.agencies import Role
from tests.builders import (
    COMMISSIONER,
    SHARED,
    Partnership,
    Story,
    access_records,
    browser_of,
    ui_sign_in,
)

PERIOD = ("from-day=1&from-month=4&from-year=2025"
          "&to-day=31&to-month=3&to-year=2026")


def seeded(accord: Accord, partnership: Partnership) -> Story:
    """Five clients in treatment under an agreement for commissioning: two women, three
    men; one successful completion, one early exit."""
    story = Story(accord, partnership)
    story.agree("tp", SHARED)
    for n, sex in enumerate(["female", "female", "male", "male", "male"]):
        client = story.client(born=f"19{70 + 5 * n}-01-01")
        story.fact(client, "demographics_recorded",
                   {"sex": sex, "ethnicity": "A", "area": "E06000032"})
        story.episode(client, ended={0: "completed_drug_free", 1: "dropped_out"}.get(n),
                      days=100 if n == 0 else 50)
    story.catch_up()
    return story


def commissioner(api: TestClient, partnership: Partnership, agency: str = COMMISSIONER,
                 role: Role = Role.COMMISSIONER) -> TestClient:
    browser = browser_of(api)
    ui_sign_in(browser, partnership.token(agency, role))
    return browser


def cell(html: str, section: str, label: str) -> str:
    """The figure beside ``label`` in the table of the section headed ``section``."""
    part = html.split(f">{section}</h3>")[1].split("</section>")[0]
    found = re.search(rf'<th scope="row" class="nhsuk-table__header">{re.escape(label)}</th>'
                      r'\s*<td[^>]*>(?:<strong>)?([^<]*)<', part)
    assert found, f"no row {label!r} under {section!r}"
    return found.group(1).strip()


def test_the_picker_alone_reads_nothing_and_defaults_to_this_financial_year(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    browser = commissioner(api, partnership)
    before = access_records(accord)
    page = browser.get("/ui/reports")
    assert page.status_code == 200
    assert access_records(accord) == before
    today = date.today()
    first = today.year if today.month >= 4 else today.year - 1
    for name, value in (("from-day", 1), ("from-month", 4), ("from-year", first),
                        ("to-day", 31), ("to-month", 3), ("to-year", first + 1)):
        assert f'name="{name}" type="text" value="{value}"' in page.text, name
    assert 'id="by"' in page.text and "Show the report" in page.text
    assert 'data-testid="figures"' not in page.text


def test_the_report_hides_small_counts_as_stars_with_a_chart_beside_each_table(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    seeded(accord, partnership)
    browser = commissioner(api, partnership)
    before = access_records(accord)
    page = browser.get(f"/ui/reports?{PERIOD}")
    assert page.status_code == 200, page.text
    assert access_records(accord) == before + 1  # the API's read, on the record
    html = page.text
    assert cell(html, "How many", "Clients in treatment") == "5"
    assert cell(html, "How many", "Successful completions") == "*"
    assert "Some figures below are hidden." in html
    assert "A count from 1 to 4 is never published" in html
    # Each chart is an image with a title and a description that reads out its figures,
    # beside a table of the same numbers.
    charts = re.findall(r"<svg [^>]*class=\"accord-chart\"[^>]*>.*?</svg>", html, re.DOTALL)
    tables = re.findall(r'data-testid="figures"', html)
    assert charts and len(charts) == len(tables)
    assert all('role="img"' in c and "<desc id=" in c for c in charts)
    counts = next(c for c in charts if "chart-count-title" in c)
    assert '<title id="chart-count-title">How many</title>' in counts
    assert "Clients in treatment: 5" in counts and "Successful completions: *" in counts
    assert "style=" not in counts  # the pages' CSP allows no inline style
    assert 'href="/ui/reports/outcomes.csv?from=2025-04-01&amp;to=2026-03-31"' in html


def test_a_breakdown_gives_each_measure_its_groups(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    seeded(accord, partnership)
    browser = commissioner(api, partnership)
    page = browser.get(f"/ui/reports?{PERIOD}&by=sex")
    assert page.status_code == 200, page.text
    html = page.text
    assert "31 March 2026, by sex" in html
    # 2 women and 3 men: each group hidden, the total kept.
    assert cell(html, "Clients in treatment", "Female") == "*"
    assert cell(html, "Clients in treatment", "Male") == "*"
    assert cell(html, "Clients in treatment", "All") == "5"
    assert '<option value="sex" selected>' in html
    assert "outcomes.csv?from=2025-04-01&amp;to=2026-03-31&amp;by=sex" in html  # the same


def test_a_bad_period_is_shown_beside_its_field_and_reads_nothing(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    browser = commissioner(api, partnership)
    before = access_records(accord)
    for query, field, message in (
        ("from-day=31&from-month=2&from-year=2025&to-day=1&to-month=3&to-year=2026",
         "from", "The start of the period must be a real date"),
        ("from-day=1&from-month=4&from-year=2025&to-day=&to-month=&to-year=",
         "to", "Enter the end of the period"),
        ("from-day=1&from-month=&from-year=2025&to-day=1&to-month=3&to-year=2026",
         "from", "The start of the period must include a month"),
        ("from-day=1&from-month=4&from-year=2026&to-day=1&to-month=3&to-year=2026",
         "to", "The end of the period must be the same as or after the start"),
        ("from-day=1&from-month=4&from-year=2000&to-day=1&to-month=4&to-year=2026",
         "to", "The period must be shorter than 10 years"),
        (f"{PERIOD}&by=shoe_size", "by", "Select a breakdown from the list"),
    ):
        answer = browser.get(f"/ui/reports?{query}")
        assert answer.status_code == 422, query
        summary = re.search(r'nhsuk-error-summary__list">(.*?)</ul>', answer.text, re.DOTALL)
        assert summary and message in summary.group(1), (query, answer.text[:200])
        anchor = "#by" if field == "by" else f"#{field}-day"
        assert f'href="{anchor}"' in summary.group(1)
        assert answer.text.count(message) == 2  # and beside the field
        assert 'data-testid="figures"' not in answer.text
    assert access_records(accord) == before


def test_the_csv_is_the_apis_csv_as_a_download_on_the_record(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    seeded(accord, partnership)
    browser = commissioner(api, partnership)
    before = access_records(accord)
    download = browser.get("/ui/reports/outcomes.csv?from=2025-04-01&to=2026-03-31&by=sex")
    assert download.status_code == 200
    assert access_records(accord) == before + 1
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == (
        'attachment; filename="outcomes-2025-04-01-2026-03-31.csv"')
    through_api = api.get("/v1/reports/outcomes.csv?from=2025-04-01&to=2026-03-31&by=sex",
                          headers=partnership.headers(COMMISSIONER, Role.COMMISSIONER))
    assert download.content == through_api.content
    assert "in_treatment,sex,female,*" in download.text
    assert "in_treatment,sex,,5," in download.text
    for bad in ("to=2026-03-31", "from=2025-04-01", "from=2025-04-01&to=2024-01-01",
                "from=2025-04-01&to=2026-03-31&by=shoe_size", "from=1.4.2025&to=2026-03-31"):
        answer = browser.get(f"/ui/reports/outcomes.csv?{bad}")
        assert answer.status_code == 422, bad
        assert "There is a problem" in answer.text


def test_only_the_commissioner_agencys_commissioners_and_ig_lead_open_the_reports(
        api: TestClient, accord: Accord, partnership: Partnership) -> None:
    assert commissioner(api, partnership, role=Role.IG_LEAD).get(
        "/ui/reports").status_code == 200
    for agency, role in (("tp", Role.PRACTITIONER), ("tp", Role.COMMISSIONER),
                         (COMMISSIONER, Role.ADMIN), ("childrens", Role.SAFEGUARDING)):
        browser = commissioner(api, partnership, agency, role)
        before = access_records(accord)
        for url in (f"/ui/reports?{PERIOD}", "/ui/reports/outcomes.csv?from=2025-04-01"
                    "&to=2026-03-31"):
            answer = browser.get(url)
            assert answer.status_code == 403, (agency, role, url)
            assert "You cannot do this" in answer.text
        assert access_records(accord) == before
        assert 'href="/ui/reports"' not in browser.get("/ui").text
    assert 'href="/ui/reports"' in commissioner(api, partnership).get("/ui").text
