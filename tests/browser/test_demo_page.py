"""GET / of the local stack: a chat whose answers each carry the widget with a token of their own, under a
strict CSP, with no raw JSON on the page; a vote there is stored for the demo user."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from local.demo import CHAT, USER_ID
from tests.browser.axe import axe_violations, describe
from tests.browser.pages import Visit
from tests.browser.sites import Backend

TIMEOUT_MS = 15_000


def test_demo_chat_votes_are_stored_and_shown_again(visit: Visit, backend: Backend) -> None:
    page, log = visit.page, visit.log
    response = page.goto("/")
    assert response is not None
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp

    widgets = page.locator("feedback-widget")
    expect(widgets).to_have_count(len(CHAT))
    tokens = widgets.evaluate_all("elements => elements.map((element) => element.token)")
    assert len(set(tokens)) == len(CHAT)
    text = page.locator("body").inner_text()
    assert "{" not in text
    assert "feedback_token" not in text
    assert not re.search(r"eyJ[\w-]+\.", text), "a token is shown on the page"

    wrong = page.locator("article", has_text="Forever, unless you delete it by hand.")
    run_id = wrong.get_attribute("data-run-id")
    assert run_id == "demo-run-3"
    bad = wrong.get_by_role("button", name="Bad response")
    bad.scroll_into_view_if_needed()
    if bad.get_attribute("aria-pressed") == "true":  # left over from a manual run: start afresh
        bad.click()
        expect(bad).to_have_attribute("aria-pressed", "false", timeout=TIMEOUT_MS)
    bad.click()
    expect(bad).to_have_attribute("aria-pressed", "true", timeout=TIMEOUT_MS)
    wrong.get_by_label("Comment").fill("Feedback is kept RetentionDays (90 by default).")
    wrong.get_by_role("button", name="Send").click()
    expect(wrong.get_by_role("status")).to_have_text("Thanks for your feedback.", timeout=TIMEOUT_MS)
    stored = backend.stored(run_id, USER_ID)
    assert stored is not None
    assert (stored["outcome"], stored["comment"], stored["session_id"], stored["agent"]) == (
        "negative",
        "Feedback is kept RetentionDays (90 by default).",
        "demo-chat",
        "demo-assistant",
    )

    violations = axe_violations(page)
    assert violations == [], describe(violations)

    page.reload()  # new tokens for the same answers and user: the vote is still there
    wrong = page.locator("article", has_text="Forever, unless you delete it by hand.")
    bad = wrong.get_by_role("button", name="Bad response")
    bad.scroll_into_view_if_needed()
    expect(bad).to_have_attribute("aria-pressed", "true", timeout=TIMEOUT_MS)
    expect(wrong.get_by_label("Comment")).to_have_value("Feedback is kept RetentionDays (90 by default).")

    bad.click()
    expect(bad).to_have_attribute("aria-pressed", "false", timeout=TIMEOUT_MS)
    assert backend.stored(run_id, USER_ID) is None

    assert page.evaluate("window.cspViolations") == []
    assert log.page_errors == []
    assert log.refused == []
    assert log.failed == []
    assert all(entry.startswith("404 GET ") for entry in log.error_responses), log.error_responses
