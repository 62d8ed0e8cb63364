"""What a page of the local stack does in the browser: its requests, and every sign of trouble."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import (
    ConsoleMessage,
    Error,
    Page,
    Request,
    Response,
    Route,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Any host name the browser itself would look up fails: only the stack's 127.0.0.1 is reachable.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
LOCAL_HOST = "127.0.0.1"


# Recorded in every page before its own scripts run; a CSP cannot block it (DevTools injects it).
RECORD_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


@dataclass
class PageLog:
    """What a page did: every request, and every sign of trouble."""

    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    error_responses: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def on_request_failed(self, request: Request) -> None:
        self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.error_responses.append(f"{response.status} {response.request.method} {response.url}")

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")

    def on_page_error(self, error: Error) -> None:
        self.page_errors.append(str(error))

    def guard(self, route: Route) -> None:
        """Lets requests to the stack through; refuses (and records) anything else."""
        if urlsplit(route.request.url).hostname == LOCAL_HOST:
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort("blockedbyclient")


@dataclass
class Visit:
    page: Page
    log: PageLog


STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""What a careful site would send: scripts, styles and requests from its own origin only."""


def host_page(page: Page, url: str, html: str, csp: str = STRICT_CSP) -> None:
    """Answers ``url`` (on the stack's origin, say) with ``html`` under ``csp``: a host page for a test,
    as a site embedding the widget would serve it. Everything else the page loads is real."""

    def fulfil(route: Route) -> None:
        route.fulfill(
            status=200,
            content_type="text/html; charset=utf-8",
            headers={"content-security-policy": csp, "cache-control": "no-store"},
            body=html,
        )

    page.route(url, fulfil)
