"""Browser tier: the local stack's pages (``local_stack``) in Debian's headless Chromium (``.ci/run``
installs it), driven by Playwright; it reaches nothing but the stack on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import (
    Browser,
    sync_playwright,
)

from local.process import LocalProcess
from tests.browser.pages import CHROMIUM, CHROMIUM_ARGS, RECORD_CSP_VIOLATIONS, PageLog, Visit


@pytest.fixture(scope="package")
def stack(local_stack: LocalProcess) -> LocalProcess:
    return local_stack


@pytest.fixture(scope="session")
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
