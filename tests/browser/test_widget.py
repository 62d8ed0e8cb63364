"""<feedback-widget> in a real browser against the local stack: what the user sees and can do (mouse and
keyboard), what the API stored as a result (read back with the API key), the DOM events a page gets,
lazy loading, retries, an expired token, another origin, theming, translations and accessibility.

Host pages are served under a strict Content-Security-Policy, as a careful site would; the widget script
is the stack's own GET /v1/widget.js and every request it makes reaches the real API."""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, Route, expect

from local.process import LocalProcess
from tests.browser.axe import axe_violations, describe
from tests.browser.pages import STRICT_CSP, Visit, host_page
from tests.browser.sites import Backend, OtherSite

TIMEOUT_MS = 15_000
HOST_PATH = "/test/widget-host"
RECORD_EVENTS = """
window.feedbackEvents = [];
for (const type of ["feedback-loaded", "feedback-submitted", "feedback-retracted", "feedback-error"]) {
  document.addEventListener(type, (event) => window.feedbackEvents.push({type, detail: event.detail}));
}
"""
"""Run before the host page's scripts (DevTools injects it, so the page's CSP does not apply)."""


def styled_csp(style: str) -> str:
    """The strict CSP, plus the host page's one <style> by its hash (still no inline script)."""
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    return STRICT_CSP.replace("style-src 'self'", f"style-src 'self' 'sha256-{digest}'")


def host_html(widget: str, *, style: str = "", before: str = "", script: bool = True) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host page</title>
<link rel="icon" href="data:,">{f"<style>{style}</style>" if style else ""}
{'<script type="module" src="/v1/widget.js"></script>' if script else ""}</head>
<body><main><h1>Assistant</h1>{before}<p>The answer being rated.</p>{widget}</main></body></html>"""


@dataclass
class Widget:
    """One widget on its host page."""

    page: Page
    visit: Visit
    run_id: str
    user_id: str
    token: str
    endpoint: str
    calls: list[str]
    """Every request of the page, as "METHOD URL" (without the query string)."""

    @property
    def element(self) -> Locator:
        return self.page.locator("feedback-widget")

    @property
    def good(self) -> Locator:
        return self.page.get_by_role("button", name="Good response")

    @property
    def bad(self) -> Locator:
        return self.page.get_by_role("button", name="Bad response")

    @property
    def comment(self) -> Locator:
        return self.page.get_by_label("Comment")

    @property
    def send(self) -> Locator:
        return self.page.get_by_role("button", name="Send")

    @property
    def status(self) -> Locator:
        return self.page.get_by_role("status")

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = self.page.evaluate("window.feedbackEvents")
        return [event for event in events if kind is None or event["type"] == kind]

    def wait_for_events(self, kind: str, count: int) -> list[dict[str, Any]]:
        self.page.wait_for_function(
            "([kind, count]) => window.feedbackEvents.filter((e) => e.type === kind).length >= count",
            arg=[kind, count],
            timeout=TIMEOUT_MS,
        )
        return self.events(kind)

    def requests_to(self, path: str, method: str = "GET") -> list[str]:
        return [call for call in self.calls if call == f"{method} {self.endpoint}{path}"]


@pytest.fixture
def open_widget(visit: Visit, stack: LocalProcess, backend: Backend) -> Callable[..., Widget]:
    """Opens a host page with one widget for a fresh run and user; waits until it has loaded."""
    visit.page.add_init_script(RECORD_EVENTS)
    calls: list[str] = []
    visit.page.on("request", lambda request: calls.append(f"{request.method} {request.url.split('?')[0]}"))

    def open_page(
        attributes: str = "",
        *,
        token: str | None = None,
        run_id: str | None = None,
        user_id: str = "browser-user",
        style: str = "",
        before: str = "",
        wait: bool = True,
        intercept: Callable[[Route], None] | None = None,
    ) -> Widget:
        run_id = run_id or f"widget-run-{uuid.uuid4().hex[:12]}"
        token = token or backend.issue(run_id, user_id)
        element = f'<feedback-widget token="{token}" endpoint="/"{attributes}></feedback-widget>'
        csp = styled_csp(style) if style else STRICT_CSP
        host_page(
            visit.page, f"{stack.endpoint}{HOST_PATH}", host_html(element, style=style, before=before), csp
        )
        if intercept is not None:
            visit.page.route("**/v1/feedback**", intercept)
        visit.page.goto(HOST_PATH)
        widget = Widget(visit.page, visit, run_id, user_id, token, stack.endpoint, calls)
        if wait:
            widget.wait_for_events("feedback-loaded", 1)
        return widget

    return open_page


def settled(widget: Widget) -> None:
    """Waits until no request of the widget is in flight."""
    expect(widget.page.locator("feedback-widget [part~=container]")).to_have_attribute(
        "aria-busy", "false", timeout=TIMEOUT_MS
    )


def assert_clean(visit: Visit) -> None:
    """No CSP violation, script error or unexpected failure; a first GET /v1/feedback/me may be 404."""
    page, log = visit.page, visit.log
    assert page.evaluate("window.cspViolations") == []
    assert log.page_errors == []
    assert log.refused == []
    assert log.failed == []
    unexpected = [entry for entry in log.error_responses if not entry.startswith("404 GET ")]
    assert unexpected == []
    assert [line for line in log.console if "404" not in line] == []


# ------------------------------------------------------------------------------------- the user flow


def test_vote_change_comment_retract_with_events_and_stored_state(
    open_widget: Callable[..., Widget], backend: Backend
) -> None:
    widget = open_widget()
    expect(widget.good).to_have_attribute("aria-pressed", "false")
    expect(widget.bad).to_have_attribute("aria-pressed", "false")
    expect(widget.comment).to_be_hidden()  # the comment box opens after a vote
    assert widget.events("feedback-loaded")[0]["detail"] == {"record": None}

    widget.good.click()
    submitted = widget.wait_for_events("feedback-submitted", 1)
    expect(widget.good).to_have_attribute("aria-pressed", "true")
    expect(widget.status).to_have_text("Thanks for your feedback.")
    stored = backend.stored(widget.run_id, widget.user_id)
    assert stored is not None
    assert (stored["outcome"], stored["version"], stored["source"]) == ("positive", 1, "web")
    assert submitted[0]["detail"]["created"] is True
    assert submitted[0]["detail"]["record"]["feedback_id"] == stored["feedback_id"]

    widget.bad.click()
    submitted = widget.wait_for_events("feedback-submitted", 2)
    expect(widget.bad).to_have_attribute("aria-pressed", "true")
    expect(widget.good).to_have_attribute("aria-pressed", "false")
    stored = backend.stored(widget.run_id, widget.user_id)
    assert stored is not None
    assert (stored["outcome"], stored["version"]) == ("negative", 2)
    assert submitted[1]["detail"]["created"] is False

    expect(widget.comment).to_be_visible()
    widget.comment.fill("Too vague: which setting?")
    widget.send.click()
    widget.wait_for_events("feedback-submitted", 3)
    stored = backend.stored(widget.run_id, widget.user_id)
    assert stored is not None
    assert (stored["outcome"], stored["comment"], stored["version"]) == (
        "negative",
        "Too vague: which setting?",
        3,
    )

    widget.bad.click()  # the active thumb again: take the feedback back
    retracted = widget.wait_for_events("feedback-retracted", 1)
    expect(widget.bad).to_have_attribute("aria-pressed", "false")
    expect(widget.good).to_have_attribute("aria-pressed", "false")
    expect(widget.comment).to_be_hidden()
    expect(widget.status).to_have_text("Your feedback was removed.")
    assert backend.stored(widget.run_id, widget.user_id) is None
    assert retracted[0]["detail"]["previous"]["comment"] == "Too vague: which setting?"
    assert widget.events("feedback-error") == []
    assert_clean(widget.visit)


def test_reload_shows_the_stored_feedback(open_widget: Callable[..., Widget], backend: Backend) -> None:
    widget = open_widget()
    widget.good.click()
    widget.wait_for_events("feedback-submitted", 1)
    widget.comment.fill("Exactly what I needed")
    widget.send.click()
    widget.wait_for_events("feedback-submitted", 2)

    widget.page.reload()
    loaded = widget.wait_for_events("feedback-loaded", 1)
    expect(widget.good).to_have_attribute("aria-pressed", "true")
    expect(widget.bad).to_have_attribute("aria-pressed", "false")
    expect(widget.comment).to_have_value("Exactly what I needed")
    stored = backend.stored(widget.run_id, widget.user_id)
    assert loaded[0]["detail"]["record"] == stored
    assert widget.element.evaluate("element => element.record.version") == 2


def test_keyboard_only(open_widget: Callable[..., Widget], backend: Backend) -> None:
    widget = open_widget()
    keyboard = widget.page.keyboard
    keyboard.press("Tab")
    expect(widget.good).to_be_focused()
    keyboard.press("Enter")
    widget.wait_for_events("feedback-submitted", 1)
    expect(widget.good).to_have_attribute("aria-pressed", "true")
    expect(widget.good).to_be_focused()  # the vote does not move the focus

    keyboard.press("Tab")
    expect(widget.bad).to_be_focused()
    keyboard.press("Tab")
    expect(widget.comment).to_be_focused()
    keyboard.type("Typed without a mouse")
    keyboard.press("Tab")
    expect(widget.send).to_be_focused()
    keyboard.press("Space")
    widget.wait_for_events("feedback-submitted", 2)
    stored = backend.stored(widget.run_id, widget.user_id)
    assert stored is not None
    assert (stored["outcome"], stored["comment"]) == ("positive", "Typed without a mouse")

    for _ in range(3):
        keyboard.press("Shift+Tab")
    expect(widget.good).to_be_focused()
    keyboard.press("Space")
    widget.wait_for_events("feedback-retracted", 1)
    assert backend.stored(widget.run_id, widget.user_id) is None


def test_score_is_sent_with_the_comment(open_widget: Callable[..., Widget], backend: Backend) -> None:
    widget = open_widget(' score score-min="1" score-max="5"')
    score = widget.page.get_by_label("Score")
    expect(score).to_be_hidden()
    widget.good.click()
    widget.wait_for_events("feedback-submitted", 1)
    expect(score).to_have_attribute("max", "5")
    score.fill("4")
    widget.send.click()
    widget.wait_for_events("feedback-submitted", 2)
    stored = backend.stored(widget.run_id, widget.user_id)
    assert stored is not None
    assert (stored["outcome"], stored["score"], stored.get("comment")) == ("positive", 4, None)


# ------------------------------------------------------------------------------ network behaviour


def test_no_request_until_the_widget_is_on_screen(open_widget: Callable[..., Widget]) -> None:
    style = ".spacer { height: 3000px; }"
    widget = open_widget(style=style, before='<div class="spacer"></div>', wait=False)
    widget.page.wait_for_load_state("networkidle")
    expect(widget.good).to_be_attached()
    assert widget.requests_to("/v1/feedback/me") == []
    assert widget.events() == []

    widget.good.scroll_into_view_if_needed()
    widget.wait_for_events("feedback-loaded", 1)
    assert len(widget.requests_to("/v1/feedback/me")) == 1


def test_transient_failures_are_retried(open_widget: Callable[..., Widget], backend: Backend) -> None:
    failures = {"GET": 2, "POST": 1}

    def flaky(route: Route) -> None:
        method = route.request.method
        if failures.get(method, 0) > 0:
            failures[method] -= 1
            if method == "GET":
                route.fulfill(status=503, json={"message": "Service Unavailable"})
            else:
                route.abort("connectionreset")  # lost before any answer
            return
        route.fallback()

    widget = open_widget(intercept=flaky)
    loaded = widget.events("feedback-loaded")
    assert loaded[0]["detail"] == {"record": None}
    assert len(widget.requests_to("/v1/feedback/me")) == 3  # two 503s, then the answer

    widget.bad.click()
    widget.wait_for_events("feedback-submitted", 1)
    assert len(widget.requests_to("/v1/feedback", method="POST")) == 2
    stored = backend.stored(widget.run_id, widget.user_id)
    assert stored is not None
    assert (stored["outcome"], stored["version"]) == ("negative", 1)
    assert widget.events("feedback-error") == []


def test_a_failure_that_lasts_is_reported(open_widget: Callable[..., Widget], backend: Backend) -> None:
    widget = open_widget()
    widget.page.route(
        "**/v1/feedback", lambda route: route.fulfill(status=503, json={"message": "Service Unavailable"})
    )
    widget.good.click()
    errors = widget.wait_for_events("feedback-error", 1)
    assert errors[0]["detail"]["status"] == 503
    assert len(widget.requests_to("/v1/feedback", method="POST")) == 4  # the first try and 3 retries
    expect(widget.status).to_have_text("Your feedback could not be saved. Please try again.")
    expect(widget.good).to_have_attribute("aria-pressed", "false")
    assert backend.stored(widget.run_id, widget.user_id) is None


def test_expired_token_says_so(open_widget: Callable[..., Widget], backend: Backend) -> None:
    run_id = f"widget-run-{uuid.uuid4().hex[:12]}"
    token = backend.issue(run_id, "browser-user", ttl_seconds=1)
    time.sleep(1.5)  # let the token expire: exp is checked with no leeway
    widget = open_widget(token=token, run_id=run_id, wait=False)
    errors = widget.wait_for_events("feedback-error", 1)
    assert errors[0]["detail"]["status"] == 401
    expect(widget.status).to_have_text(
        "This feedback link has expired. Reload the page to rate this response."
    )
    expect(widget.good).to_have_attribute("aria-disabled", "true")
    widget.good.click(force=True)  # the button still takes the click; nothing is sent
    widget.bad.click(force=True)
    assert widget.requests_to("/v1/feedback", method="POST") == []
    assert len(widget.requests_to("/v1/feedback/me")) == 1  # a 401 is not retried
    assert backend.stored(run_id, "browser-user") is None
    assert axe_violations(widget.page) == []


# -------------------------------------------------------------------------- embedding and styling


def test_on_another_origin(
    visit: Visit, stack: LocalProcess, other_site: OtherSite, backend: Backend
) -> None:
    """A customer's site, on its own origin, loads the module from the API and calls it with CORS."""
    run_id = f"widget-run-{uuid.uuid4().hex[:12]}"
    token = backend.issue(run_id, "site-user")
    other_site.csp = STRICT_CSP.replace("'self'", f"'self' {stack.endpoint}")
    other_site.pages["/chat"] = host_html(
        f'<feedback-widget token="{token}" endpoint="{stack.endpoint}"></feedback-widget>', script=False
    ).replace("</head>", f'<script type="module" src="{stack.endpoint}/v1/widget.js"></script></head>')
    page = visit.page
    page.add_init_script(RECORD_EVENTS)
    page.goto(f"{other_site.origin}/chat")
    good = page.get_by_role("button", name="Good response")
    page.wait_for_function("() => window.feedbackEvents.some((e) => e.type === 'feedback-loaded')")
    good.click()
    page.wait_for_function("() => window.feedbackEvents.some((e) => e.type === 'feedback-submitted')")
    expect(good).to_have_attribute("aria-pressed", "true")
    stored = backend.stored(run_id, "site-user")
    assert stored is not None
    assert stored["outcome"] == "positive"
    assert page.evaluate("window.cspViolations") == []
    assert visit.log.page_errors == []


@pytest.fixture
def stranger_site() -> Iterator[OtherSite]:
    """A site on an origin the stack does not allow."""
    site = OtherSite().start()
    yield site
    site.stop()


def test_an_origin_the_stack_does_not_allow_is_refused(
    visit: Visit, stack: LocalProcess, stranger_site: OtherSite, backend: Backend
) -> None:
    """The control for the test above: CORS is what lets the other origin in, not an open door."""
    run_id = f"widget-run-{uuid.uuid4().hex[:12]}"
    token = backend.issue(run_id, "site-user")
    # A copy of the widget on the stranger's own site (as from a CDN); only its calls to the API cross.
    widget_source = httpx.get(f"{stack.endpoint}/v1/widget.js").text
    stranger_site.pages["/widget.js"] = widget_source
    stranger_site.pages["/chat"] = host_html(
        f'<feedback-widget token="{token}" endpoint="{stack.endpoint}"></feedback-widget>', script=False
    ).replace("</head>", '<script src="/widget.js"></script></head>')
    page = visit.page
    page.add_init_script(RECORD_EVENTS)
    page.goto(f"{stranger_site.origin}/chat")
    page.wait_for_function(
        "() => window.feedbackEvents.some((e) => e.type === 'feedback-error')", timeout=TIMEOUT_MS
    )
    error = page.evaluate("window.feedbackEvents.find((e) => e.type === 'feedback-error').detail")
    assert (error["status"], error["code"]) == (0, "network_error")
    expect(page.get_by_role("status")).to_have_text("Your feedback could not be saved. Please try again.")


def test_labels_can_be_translated(open_widget: Callable[..., Widget]) -> None:
    widget = open_widget(' label-good="Bonne réponse" label-bad="Mauvaise réponse" label-group="Votre avis"')
    page = widget.page
    expect(page.get_by_role("button", name="Bonne réponse")).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_role("group", name="Votre avis")).to_be_visible()
    widget.element.evaluate("element => { element.labels = {comment: 'Commentaire', send: 'Envoyer'}; }")
    page.get_by_role("button", name="Mauvaise réponse").click()
    widget.wait_for_events("feedback-submitted", 1)
    expect(page.get_by_label("Commentaire")).to_be_visible()
    expect(page.get_by_role("button", name="Envoyer")).to_be_visible()


def test_theming_with_custom_properties_and_parts(open_widget: Callable[..., Widget]) -> None:
    style = (
        "feedback-widget { --feedback-accent: rgb(10, 120, 40); --feedback-radius: 0px; }"
        " feedback-widget::part(status) { font-style: italic; }"
    )
    widget = open_widget(style=style)
    widget.good.click()
    widget.wait_for_events("feedback-submitted", 1)
    assert widget.good.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(10, 120, 40)"
    assert widget.good.evaluate("b => getComputedStyle(b).borderTopLeftRadius") == "0px"
    assert widget.status.evaluate("p => getComputedStyle(p).fontStyle") == "italic"
    assert_clean(widget.visit)


def test_properties_set_before_the_script_loads(visit: Visit, stack: LocalProcess, backend: Backend) -> None:
    """As a framework renders it: the element exists, with properties, before the widget is defined."""
    run_id = f"widget-run-{uuid.uuid4().hex[:12]}"
    token = backend.issue(run_id, "framework-user")
    page = visit.page
    page.add_init_script(RECORD_EVENTS)
    host_page(page, f"{stack.endpoint}{HOST_PATH}", host_html("", script=False))
    page.goto(HOST_PATH)
    page.evaluate(
        """(token) => {
            const element = document.createElement("feedback-widget");
            element.token = token;
            element.endpoint = "/";
            element.labels = {good: "Looks right"};
            document.querySelector("main").append(element);
            const script = document.createElement("script");
            script.type = "module";
            script.src = "/v1/widget.js";
            document.head.append(script);
        }""",
        token,
    )
    page.wait_for_function("() => window.feedbackEvents.some((e) => e.type === 'feedback-loaded')")
    page.get_by_role("button", name="Looks right").click()
    page.wait_for_function("() => window.feedbackEvents.some((e) => e.type === 'feedback-submitted')")
    stored = backend.stored(run_id, "framework-user")
    assert stored is not None
    assert stored["outcome"] == "positive"
    assert page.evaluate("window.cspViolations") == []


# ---------------------------------------------------------------------------------- accessibility


def test_no_serious_accessibility_violation(open_widget: Callable[..., Widget]) -> None:
    widget = open_widget(" score")
    assert axe_violations(widget.page) == [], describe(axe_violations(widget.page))
    widget.bad.click()
    widget.wait_for_events("feedback-submitted", 1)
    expect(widget.comment).to_be_visible()
    violations = axe_violations(widget.page)
    assert violations == [], describe(violations)
    settled(widget)


# ----------------------------------------------------------------------------------- its serving


def test_the_script_is_revalidated_not_downloaded_again(stack: LocalProcess) -> None:
    first = httpx.get(f"{stack.endpoint}/v1/widget.js", headers={"accept-encoding": "gzip"})
    assert first.status_code == 200
    assert first.headers["content-type"] == "text/javascript; charset=utf-8"
    assert first.headers["content-encoding"] == "gzip"
    again = httpx.get(f"{stack.endpoint}/v1/widget.js", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    version = first.headers["etag"].strip('"')
    versioned = httpx.get(f"{stack.endpoint}/v1/widget.js?v={version}")
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_the_dashboard_route_is_the_templates(stack: LocalProcess) -> None:
    """GET /dashboard reaches the meta function through the gateway, as in AWS, with its files."""
    page = httpx.get(f"{stack.endpoint}/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == STRICT_CSP
    files = re.findall(r'"(dashboard/[\w.-]+\?v=[0-9a-f]{16})"', page.text)
    assert files
    for url in files:
        asset = httpx.get(f"{stack.endpoint}/{url}")
        assert asset.status_code == 200, url
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
