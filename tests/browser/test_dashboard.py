"""GET /dashboard in a real browser, on a project of its own: what the page shows is what the API says.

Feedback goes in as users send it (a token per answer, then POST /v1/feedback); the totals, the charts'
data, the agent breakdown, the table under each filter, the drawer and the CSV export are each compared
with GET /v1/stats and GET /v1/feedback for the same query.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from playwright.sync_api import Page, expect

from feedback_core.apikeys import ApiKeyStore
from local.process import LocalProcess
from tests.browser.axe import axe_violations, describe
from tests.browser.pages import STRICT_CSP, Visit

STATS_TIMEOUT_S = 60.0
NO_VALUE = "\u2013"  # an en dash: what the page shows for a value it does not have
DEFAULT_DAYS = 30
AGENTS = ("support-bot", "billing-bot", "search-bot")
BULK_RECORDS = 110  # more than one page of GET /v1/feedback (limit 100): the export has to follow the cursor
TRICKY_COMMENT = 'Wrong price, it said "free"\nbut charged me twice'
FORMULA_COMMENT = '=HYPERLINK("http://example.com","refund")'
CSV_COLUMNS = [
    "feedback_id", "project", "run_id", "user_id", "session_id", "agent", "outcome", "score", "weight",
    "comment", "tags", "source", "details", "context", "created_at", "updated_at", "version", "expires_at",
]  # fmt: skip


@dataclass(frozen=True)
class Project:
    name: str
    api_key: str
    endpoint: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.endpoint}{path}", headers=self.headers, params=params, timeout=15)
        assert response.status_code == 200, response.text
        return response.json()

    def records(self, **filters: Any) -> list[dict[str, Any]]:
        """Every record of a filter, newest first, following next_cursor."""
        found: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get("/v1/feedback", limit=100, **filters, **({"cursor": cursor} if cursor else {}))
            found += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return found


def utc_today() -> str:
    return datetime.now(UTC).date().isoformat()


def window() -> dict[str, str]:
    """The dashboard's default days, as GET /v1/stats takes them (both ends included)."""
    today = datetime.now(UTC).date()
    return {"start": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), "end": today.isoformat()}


def list_window() -> dict[str, str]:
    """The same days for GET /v1/feedback, whose ``end`` is exclusive."""
    days = window()
    return {"start": days["start"], "end": (datetime.now(UTC).date() + timedelta(days=1)).isoformat()}


def submit(
    client: httpx.Client, project: Project, token_request: dict[str, Any], body: dict[str, Any]
) -> None:
    issued = client.post("/v1/tokens", headers=project.headers, json=token_request)
    assert issued.status_code == 201, issued.text
    sent = client.post(
        "/v1/feedback", headers={"X-Feedback-Token": issued.json()["feedback_token"]}, json=body
    )
    assert sent.status_code == 201, sent.text


@pytest.fixture(scope="module")
def project(stack: LocalProcess) -> Project:
    """A project of its own with a fresh key, and feedback sent the way users send it."""
    credentials = stack.credentials()
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=credentials["dynamodb_endpoint_url"],
        region_name=credentials["aws_region"],
        aws_access_key_id=credentials["aws_access_key_id"],
        aws_secret_access_key=credentials["aws_secret_access_key"],
    )
    name = f"dash-{secrets.token_hex(4)}"
    secret, _ = ApiKeyStore(dynamodb, credentials["api_keys_table"]).create(
        name, ["tokens:write", "feedback:read"], name="dashboard test"
    )
    project = Project(name, secret, stack.endpoint)
    with httpx.Client(base_url=stack.endpoint, timeout=15) as client:
        for index in range(BULK_RECORDS):
            body: dict[str, Any] = {"outcome": "negative" if index % 4 == 0 else "positive"}
            if index % 3 != 2:
                body["score"] = index % 11 - 3
            if index % 5 == 0:
                body["comment"] = f"Answer {index} was clear, thanks"
            token_request = {
                "run_id": f"run-{index}",
                "user_id": f"user-{index % 9}",
                "session_id": f"session-{index % 4}",
                "agent": AGENTS[index % 3],
            }
            submit(client, project, token_request, body)
        # The newest two: on the table's first page.
        submit(
            client,
            project,
            {"run_id": "run-formula", "user_id": "@mallory", "agent": "billing-bot"},
            {"outcome": "negative", "comment": FORMULA_COMMENT},
        )
        submit(
            client,
            project,
            {
                "run_id": "run-tricky",
                "user_id": "user-tricky",
                "session_id": "session-support-1",
                "agent": "billing-bot",
                "context": {"page": "/pricing"},
            },
            {
                "outcome": "negative",
                "score": -6,
                "weight": 0.5,
                "comment": TRICKY_COMMENT,
                "details": {"plan": "pro", "expected": "free"},
                "tags": ["pricing", "refund"],
            },
        )
    expected_votes = BULK_RECORDS + 2
    deadline = time.monotonic() + STATS_TIMEOUT_S
    # The stats follow the table's stream, seconds behind the writes; the counters of all agents and of
    # each agent may land in different transactions, so each is awaited.
    while True:
        counted = [
            project.get("/v1/stats", granularity="total", **window(), **({"agent": agent} if agent else {}))
            for agent in (None, *AGENTS)
        ]
        votes = [stats["total"]["positive"] + stats["total"]["negative"] for stats in counted]
        if votes[0] == expected_votes == sum(votes[1:]):
            return project
        assert time.monotonic() < deadline, f"stats never counted {expected_votes} votes: {votes}"
        time.sleep(0.25)


def open_dashboard(page: Page, project: Project) -> None:
    response = page.goto("/dashboard")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-security-policy"] == STRICT_CSP
    page.fill("#api-key", project.api_key)
    page.click("#key-form button[type=submit]")
    settle(page)


def settle(page: Page) -> None:
    """Waits until the page has drawn what it asked for."""
    expect(page.locator("#report")).to_be_visible()
    expect(page.locator("body.loading")).to_have_count(0)


def shown_ids(page: Page) -> list[str]:
    ids: list[str] = page.locator("#feedback-table button[data-feedback-id]").evaluate_all(
        "buttons => buttons.map(button => button.dataset.feedbackId)"
    )
    return ids


def apply_filters(page: Page, **fields: str) -> None:
    for name, value in fields.items():
        target = page.locator(f"#filters [name={name}]")
        if name == "outcome":
            target.select_option(value)
        else:
            target.fill(value)
    page.click("#filters button[type=submit]")
    settle(page)


def assert_clean(visit: Visit, *, allowed_errors: int = 0) -> None:
    """No CSP violation, script error, console error or failed request; no host but the stack's."""
    assert visit.page.evaluate("window.cspViolations") == []
    assert visit.log.page_errors == []
    assert visit.log.console == []
    assert visit.log.failed == []
    assert visit.log.refused == []
    assert len(visit.log.error_responses) == allowed_errors, visit.log.error_responses


def mean_text(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value:.2f}"


def test_overview_matches_the_stats(visit: Visit, project: Project) -> None:
    page = visit.page
    open_dashboard(page, project)
    stats = project.get("/v1/stats", **window())
    total = stats["total"]
    expect(page.locator("#total-positive")).to_have_text(str(total["positive"]))
    expect(page.locator("#total-negative")).to_have_text(str(total["negative"]))
    expect(page.locator("#total-mean")).to_have_text(mean_text(total["score_weighted_mean"]))
    expect(page.locator("#total-scored")).to_contain_text(f"from {total['score_count']} scores")
    expect(page.locator("#total-comments")).to_have_text(str(total["comments"]))
    share = round(100 * total["positive"] / (total["positive"] + total["negative"]))
    expect(page.locator("#total-share")).to_have_text(f"{share}%")
    expect(page.locator("#summary-range")).to_contain_text("(UTC)")

    # The charts' data, day by day, is the stats' buckets.
    votes = page.locator("#votes-table tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent))"
    )
    assert votes == [[b["start"], str(b["positive"]), str(b["negative"])] for b in stats["buckets"]]
    scores = page.locator("#score-table tbody tr").evaluate_all(
        "rows => rows.map(row => [...row.cells].map(cell => cell.textContent))"
    )
    assert scores == [
        [b["start"], mean_text(b["score_weighted_mean"]), str(b["score_count"])] for b in stats["buckets"]
    ]
    today = next(b for b in stats["buckets"] if b["start"] == utc_today())
    expect(page.locator("#votes-chart svg .bar title").last).to_have_text(
        f"{today_label()}: {today['positive']} positive, {today['negative']} negative"
    )
    expect(page.locator("#votes-chart svg")).to_have_attribute("role", "img")

    # One row per agent, each with that agent's own stats.
    rows = page.locator("#agents-table tbody tr")
    expect(rows).to_have_count(len(AGENTS))
    for agent in AGENTS:
        agent_total = project.get("/v1/stats", agent=agent, granularity="total", **window())["total"]
        cells = rows.filter(has=page.get_by_role("button", name=agent, exact=True)).locator("td")
        expect(cells.nth(0)).to_have_text(str(agent_total["positive"]))
        expect(cells.nth(1)).to_have_text(str(agent_total["negative"]))
        expect(cells.nth(3)).to_have_text(mean_text(agent_total["score_weighted_mean"]))
        expect(cells.nth(4)).to_have_text(str(agent_total["comments"]))

    # The key lives in this tab's session storage only, and a reload keeps the dashboard open.
    assert page.evaluate("Object.values(sessionStorage)") == [project.api_key]
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    page.reload()
    settle(page)
    expect(page.locator("#total-positive")).to_have_text(str(total["positive"]))
    assert page.input_value("#api-key") == ""
    assert_clean(visit)


def today_label() -> str:
    day = datetime.now(UTC).date()
    return f"{day.strftime('%b')} {day.day}, {day.year}"


def test_the_table_filters_pages_and_opens_a_record(visit: Visit, project: Project) -> None:
    page = visit.page
    open_dashboard(page, project)
    everything = project.records(**list_window())
    assert len(everything) == BULK_RECORDS + 2

    # Newest first, 20 a page: the pages are the API's list, in order, and lead back.
    first_page = everything[:20]
    assert shown_ids(page) == [record["feedback_id"] for record in first_page]
    expect(page.locator("#feedback-table tbody")).to_contain_text(TRICKY_COMMENT)
    expect(page.locator("#page-previous")).to_be_disabled()
    seen: list[str] = []
    for number in range(1, 7):
        expect(page.locator("#page-label")).to_contain_text(f"Page {number}")
        seen += shown_ids(page)
        if number < 6:
            page.click("#page-next")
            settle(page)
    assert seen == [record["feedback_id"] for record in everything]
    expect(page.locator("#page-next")).to_be_disabled()
    page.click("#page-previous")
    settle(page)
    assert shown_ids(page) == [record["feedback_id"] for record in everything[80:100]]

    # Every filter narrows the table to what the API returns for it.
    page.select_option("#page-size", "100")
    settle(page)
    for filters in (
        {"outcome": "negative"},
        {"outcome": "", "agent": "billing-bot"},
        {"agent": "", "session_id": "session-support-1"},
        {"session_id": "", "user_id": "user-3"},
        {"user_id": "user-5", "outcome": "positive", "agent": "search-bot"},
    ):
        apply_filters(page, **filters)
        query = {name: value for name, value in readable_filters(page).items() if value}
        expected = [record["feedback_id"] for record in project.records(**list_window(), **query)]
        assert 0 < len(expected) < len(everything), query
        assert shown_ids(page) == expected, query
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    page.click("#filters-reset")
    settle(page)
    apply_filters(page, start=yesterday, end=yesterday)
    expect(page.locator("#feedback-empty")).to_have_text(
        "No feedback matches these filters. Widen the dates or clear a filter."
    )
    expect(page.locator("#stats-empty")).to_be_visible()
    assert shown_ids(page) == []
    expect(page.locator("#total-positive")).to_have_text("0")

    # The drawer shows one record whole.
    page.click("#filters-reset")
    settle(page)
    tricky = everything[0]
    assert tricky["run_id"] == "run-tricky"
    page.click(f'#feedback-table button[data-feedback-id="{tricky["feedback_id"]}"]')
    drawer = page.locator("#drawer")
    expect(drawer).to_be_visible()
    fields = dict(
        zip(
            drawer.locator("dt").all_text_contents(),
            drawer.locator("dd").all_text_contents(),
            strict=True,
        )
    )
    assert fields["Comment"] == TRICKY_COMMENT
    assert fields["Run"] == "run-tricky"
    assert fields["User"] == "user-tricky"
    assert fields["Session"] == "session-support-1"
    assert fields["Score"] == "-6"
    assert fields["Weight"] == "0.5"
    assert fields["Tags"] == "pricing, refund"
    assert json.loads(fields["Details"]) == {"plan": "pro", "expected": "free"}
    assert json.loads(fields["Context"]) == {"page": "/pricing"}
    assert fields["Feedback id"] == tricky["feedback_id"]
    assert fields["Created (UTC)"] == tricky["created_at"].replace("T", " ").removesuffix("Z")[:19]
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    assert_clean(visit)


def readable_filters(page: Page) -> dict[str, str]:
    """The table's filters as the page holds them, named as GET /v1/feedback names them."""
    values: dict[str, str] = page.evaluate(
        """() => Object.fromEntries(
            ["outcome", "agent", "session_id", "user_id"].map(name => [name, document.querySelector(
                `#filters [name=${name}]`).value])
        )"""
    )
    return values


def csv_cell(value: Any) -> str:
    """A record's value as the export writes it (docs/DASHBOARD.md)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def download_csv(page: Page) -> str:
    with page.expect_download() as started:
        page.click("#export-csv")
    download = started.value
    content = download.path().read_bytes()
    assert content.startswith(b"\xef\xbb\xbf")  # a byte order mark: spreadsheets then read UTF-8
    assert download.suggested_filename.endswith(".csv")
    return content.decode("utf-8-sig")


def test_the_csv_export_is_the_apis_records(visit: Visit, project: Project) -> None:
    page = visit.page
    open_dashboard(page, project)
    text = download_csv(page)
    expect(page.locator("#export-status")).to_have_text(f"Exported {BULK_RECORDS + 2} records.")
    records = project.records(**list_window())
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == CSV_COLUMNS
    assert rows[1:] == [[csv_cell(record.get(column)) for column in CSV_COLUMNS] for record in records]
    assert text.endswith("\r\n")
    assert text.count("\r\n") == len(rows)  # CRLF ends each row (RFC 4180); the comment's own \n stays
    # The comment with a comma, quotes and a line break is one quoted cell; formulas are made inert.
    assert '"Wrong price, it said ""free""\nbut charged me twice"' in text
    formula = next(row for row in rows if row[2] == "run-formula")
    assert formula[CSV_COLUMNS.index("comment")] == f"'{FORMULA_COMMENT}"
    assert formula[CSV_COLUMNS.index("user_id")] == "'@mallory"
    # Numbers are not text: a negative score stays a number.
    scores = [row[CSV_COLUMNS.index("score")] for row in rows[1:]]
    assert "-3" in scores

    # The export follows the filters.
    apply_filters(page, outcome="negative", agent="billing-bot")
    filtered = list(csv.reader(io.StringIO(download_csv(page), newline="")))
    expected = project.records(**list_window(), outcome="negative", agent="billing-bot")
    assert [row[0] for row in filtered[1:]] == [record["feedback_id"] for record in expected]
    assert_clean(visit)


def test_a_bad_key_gets_a_clear_message(visit: Visit, project: Project) -> None:
    page = visit.page
    page.goto("/dashboard")
    notice = page.locator("#notice")

    page.fill("#api-key", "not-a-key")
    page.click("#key-form button[type=submit]")
    expect(notice).to_have_text(
        "This is not an API key: a key is fbk_ followed by 43 letters, digits, - or _."
    )
    assert not [url for url in visit.log.requests if "/v1/" in url]  # refused before any request

    unknown = "fbk_" + secrets.token_urlsafe(32)
    page.fill("#api-key", unknown)
    page.click("#key-form button[type=submit]")
    expect(notice).to_have_text(
        "This API key was not accepted: it is unknown or has been revoked. Check the key and enter it again."
    )
    expect(page.locator("#report")).to_be_hidden()
    expect(page.locator("#api-key")).to_be_focused()
    assert page.evaluate("sessionStorage.length") == 0
    assert page.evaluate("localStorage.length") == 0
    page.wait_for_load_state("networkidle")
    assert {entry.split(" ")[0] for entry in visit.log.error_responses} == {"401"}
    # The browser itself logs each refused request; the page logs nothing of its own.
    assert all("status of 401" in entry for entry in visit.log.console), visit.log.console
    visit.log.error_responses.clear()
    visit.log.console.clear()

    # The right key afterwards clears the message.
    page.fill("#api-key", project.api_key)
    page.click("#key-form button[type=submit]")
    settle(page)
    expect(notice).to_be_hidden()
    assert_clean(visit)


def test_the_dashboard_is_accessible(visit: Visit, project: Project) -> None:
    """axe-core finds nothing serious or critical: before a key, with data, with the drawer open, on a
    phone-sized screen, and with the bad-key message."""
    page = visit.page
    page.goto("/dashboard")
    assert axe_violations(page) == [], describe(axe_violations(page))
    page.fill("#api-key", project.api_key)
    page.click("#key-form button[type=submit]")
    settle(page)
    for table in ("votes", "score"):
        page.click(f"#{table}-table >> xpath=ancestor::details/summary")
    assert axe_violations(page) == [], describe(axe_violations(page))
    page.click("#feedback-table button[data-feedback-id] >> nth=0")
    expect(page.locator("#drawer")).to_be_visible()
    assert axe_violations(page) == [], describe(axe_violations(page))
    page.keyboard.press("Escape")
    page.set_viewport_size({"width": 390, "height": 844})
    assert axe_violations(page) == [], describe(axe_violations(page))
    assert_clean(visit)


def test_an_unreachable_service_gets_a_clear_message(visit: Visit, project: Project) -> None:
    """The page survives the network failing under it, says so, and keeps the key for a retry."""
    page = visit.page
    page.goto("/dashboard")
    page.route("**/v1/**", lambda route: route.abort("connectionfailed"))
    page.fill("#api-key", project.api_key)
    page.click("#key-form button[type=submit]")
    expect(page.locator("#notice")).to_have_text(
        "The feedback service could not be reached. Check the connection and try again."
    )
    assert page.evaluate("Object.values(sessionStorage)") == [project.api_key]
    page.unroute("**/v1/**")
    page.click("#filters button[type=submit]")
    settle(page)
    expect(page.locator("#notice")).to_be_hidden()
    expect(page.locator("#feedback-table tbody tr")).to_have_count(20)
    assert visit.log.page_errors == []
    assert visit.page.evaluate("window.cspViolations") == []
