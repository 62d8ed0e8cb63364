"""GET /v1/docs in a real browser: Swagger UI renders the API from files served by the stack itself,
under the page's Content-Security-Policy, with no request leaving 127.0.0.1."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from local.process import LocalProcess
from tests.browser.pages import LOCAL_HOST, Visit

RENDER_TIMEOUT_MS = 30_000
EXPECTED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def test_docs_render_offline_under_the_csp(visit: Visit, stack: LocalProcess) -> None:
    page, log = visit.page, visit.log
    response = page.goto("/v1/docs")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-security-policy"] == EXPECTED_CSP

    feedback_operations = page.locator('.opblock-summary-path[data-path="/v1/feedback"]')
    expect(feedback_operations.first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    expect(page.locator(".info .title")).to_contain_text("Feedback service API")
    # Both operations on /v1/feedback (GET and POST) are listed.
    expect(feedback_operations).to_have_count(2)
    # Opening one renders its schemas and a highlighted example body: more of Swagger UI under the CSP.
    submit = page.locator(".opblock-post").filter(has=feedback_operations)
    submit.locator(".opblock-summary").click()
    expect(submit.locator(".highlight-code").first).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    page.wait_for_load_state("networkidle")

    assert page.evaluate("window.cspViolations") == []
    assert log.console == []
    assert log.page_errors == []
    assert log.failed == []
    assert log.error_responses == []
    assert log.refused == []
    assert {url.split("?")[0].removeprefix(stack.endpoint) for url in log.requests} >= {
        "/v1/docs",
        "/v1/docs/swagger-ui.css",
        "/v1/docs/swagger-ui-bundle.js",
        "/v1/docs/init.js",
        "/v1/openapi.json",
    }
    assert all(re.match(rf"http://{re.escape(LOCAL_HOST)}:\d+/", url) for url in log.requests), log.requests


def test_docs_assets_are_compressed_and_cached_for_good(visit: Visit) -> None:
    page = visit.page
    with page.expect_response(re.compile(r"/v1/docs/swagger-ui-bundle\.js\?v=")) as bundle:
        page.goto("/v1/docs")
    headers = bundle.value.all_headers()
    assert bundle.value.status == 200
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert headers["content-encoding"] == "gzip"
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert headers["x-content-type-options"] == "nosniff"


def test_the_csp_is_enforced(visit: Visit) -> None:
    """The control: an inline script is refused and reported, so a clean run above means something."""
    page = visit.page
    page.goto("/v1/docs")
    with page.expect_console_message(lambda message: "Content Security Policy" in message.text) as refusal:
        page.evaluate(
            """() => {
                const script = document.createElement("script");
                script.textContent = "window.inlineScriptRan = true";
                document.body.append(script);
            }"""
        )
    assert "script-src 'self'" in refusal.value.text
    page.wait_for_function("window.cspViolations.length > 0", timeout=RENDER_TIMEOUT_MS)
    assert page.evaluate("window.cspViolations") == ["script-src-elem blocked inline"]
    assert page.evaluate("window.inlineScriptRan") is None
