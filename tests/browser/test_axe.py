"""The accessibility checker the browser tests rely on finds what it should, under a strict CSP too: a
clean result elsewhere means something."""

from __future__ import annotations

from local.process import LocalProcess
from tests.browser.axe import axe_version, axe_violations, describe
from tests.browser.pages import Visit, host_page

BROKEN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Broken</title></head>
<body><main><button id="nameless"></button><img id="no-alt" src="data:,">
<section id="fine"><h1>Fine</h1><button>Named</button></section></main></body></html>"""


def test_axe_reports_serious_violations_under_a_strict_csp(visit: Visit, stack: LocalProcess) -> None:
    page = visit.page
    host_page(page, f"{stack.endpoint}/test/broken", BROKEN)
    page.goto("/test/broken")
    violations = axe_violations(page)
    rules = {violation.rule: violation for violation in violations}
    assert set(rules) == {"button-name", "image-alt"}, describe(violations)
    assert rules["button-name"].impact == "critical"
    assert rules["button-name"].targets == ('["#nameless"]',)
    assert page.evaluate("window.axe.version") == axe_version()
    assert page.evaluate("window.cspViolations") == []


def test_axe_checks_only_the_part_asked_for(visit: Visit, stack: LocalProcess) -> None:
    page = visit.page
    host_page(page, f"{stack.endpoint}/test/broken", BROKEN)
    page.goto("/test/broken")
    assert axe_violations(page, include="#fine") == []
    assert [violation.rule for violation in axe_violations(page, include="#nameless")] == ["button-name"]
