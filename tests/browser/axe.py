"""Accessibility checks with axe-core in a Playwright page.

axe-core is vendored (tests/browser/vendor, pinned by axe-core.json; ``make vendor-axe`` updates it), and
its digest is checked before it runs: nothing is fetched at test time. It is injected through DevTools,
so the page's Content-Security-Policy does not stop it, and it reads open shadow roots (the widget's).

    violations = axe_violations(page)            # the whole page, serious and critical only
    assert violations == [], describe(violations)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

VENDOR = Path(__file__).resolve().parent / "vendor"
AXE_FILE = "axe.min.js"
SERIOUS = ("serious", "critical")
"""The impacts a page must be free of; "minor" and "moderate" are advice."""


@dataclass(frozen=True)
class Violation:
    """One rule a page breaks, with the elements that break it (CSS selectors, through shadow roots)."""

    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.impact} {self.rule}: {self.help} ({', '.join(self.targets)})"


@cache
def axe_source() -> str:
    """axe.min.js, once its SHA-256 is the one the manifest pins."""
    manifest = json.loads((VENDOR / "axe-core.json").read_text())
    content = (VENDOR / AXE_FILE).read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if digest != manifest["files"][AXE_FILE]:
        raise RuntimeError(f"{VENDOR / AXE_FILE} is not the pinned axe-core: run `make vendor-axe`")
    return content.decode()


def axe_version() -> str:
    version: str = json.loads((VENDOR / "axe-core.json").read_text())["version"]
    return version


_RUN = """async ([include, impacts]) => {
  const results = await window.axe.run(include ? {include: [include]} : document, {
    resultTypes: ["violations"],
  });
  return results.violations
    .filter((violation) => impacts.includes(violation.impact))
    .map((violation) => ({
      rule: violation.id,
      impact: violation.impact,
      help: violation.help,
      targets: violation.nodes.map((node) => JSON.stringify(node.target)),
    }));
}"""


def axe_violations(
    page: Page, *, include: str | None = None, impacts: Sequence[str] = SERIOUS
) -> list[Violation]:
    """The violations of the page (or of the elements matching the CSS selector ``include``)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    found: list[dict[str, Any]] = page.evaluate(_RUN, [include, list(impacts)])
    return [
        Violation(entry["rule"], entry["impact"], entry["help"], tuple(entry["targets"])) for entry in found
    ]


def describe(violations: Sequence[Violation]) -> str:
    return "\n".join(str(violation) for violation in violations) or "no violation"
