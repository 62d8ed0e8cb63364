"""Browser tier: the local stack's pages (``stack``) in Debian's headless Chromium (``.ci/run``
installs it), driven by Playwright; it reaches nothing but 127.0.0.1: the stack, and a site on another
origin that embeds the widget (allowed by the stack's AllowedOrigins, as a customer's frontend would be)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from local.process import LocalProcess
from tests.browser.pages import CHROMIUM, CHROMIUM_ARGS, RECORD_CSP_VIOLATIONS, PageLog, Visit
from tests.browser.sites import Backend, OtherSite
from tests.conftest import tier_stack_fixture

# The stack shares the machine with the browser and the tests: a result a page shows after a request
# through the gateway and a function may take longer than Playwright's default 5 s to appear.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="package")
def other_site() -> Iterator[OtherSite]:
    """A site on another origin; started first, so that the stack can allow its origin."""
    site = OtherSite().start()
    yield site
    site.stop()


@pytest.fixture(scope="package")
def stack_args(other_site: OtherSite) -> list[str]:
    """``other_site`` among the stack's AllowedOrigins (the stack adds its own origins)."""
    return ["--parameter", f"AllowedOrigins={other_site.origin}"]


stack = tier_stack_fixture("stack")


@pytest.fixture(scope="package")
def backend(stack: LocalProcess) -> Iterator[Backend]:
    with httpx.Client(base_url=stack.endpoint, timeout=15) as client:
        yield Backend(client, stack.credentials()["api_key"])


# Package scope: Playwright's sync API runs an event loop in this thread until it stops, and later
# tiers call asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tier runs Debian's Chromium "
            "(`apt-get install chromium`; .ci/run installs it)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def visit(browser: Browser, stack: LocalProcess) -> Iterator[Visit]:
    """A fresh browser context on the stack, its page watched by a PageLog."""
    context = browser.new_context(base_url=stack.endpoint)
    log = PageLog()
    context.route("**/*", log.guard)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    page = context.new_page()
    page.on("request", log.on_request)
    page.on("requestfailed", log.on_request_failed)
    page.on("response", log.on_response)
    page.on("console", log.on_console)
    page.on("pageerror", log.on_page_error)
    try:
        yield Visit(page, log)
    finally:
        context.close()
