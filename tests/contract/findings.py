"""Contract findings still open, as (operation, failure code) pairs.

``test_schemathesis_finds_nothing_else`` tolerates exactly these pairs; each one also has a strict
xfail test that turns red once the pair no longer fails, so that its entry is removed and the pair is
guarded again. Failure codes are schemathesis's (``schemathesis run`` prints them; ``st explain STxxx``).

An entry is a fault of (a) the document or (b) the service, listed until it is fixed there. What a check
cannot tell here (a route API Gateway answers itself, a rule no JSON Schema states) is settled once in
schemathesis.toml, with its reason, not listed here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpenFinding:
    operation: str
    """Schemathesis's label for the operation: ``"<METHOD> <path template>"``."""
    code: str
    """The failure code schemathesis reports, e.g. ``ST202`` (check positive_data_acceptance)."""
    finding: str
    """What fails and why: (a) the document or (b) the service."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.operation, self.code)


EMPTY_CURSOR = (
    "(b) `cursor=` (empty) does not match the documented cursor pattern yet answers 200 with the first "
    "page: the listing takes an empty cursor for none (store.py `if cursor:`) instead of a bad cursor, 400"
)

OPEN_FINDINGS: tuple[OpenFinding, ...] = (
    OpenFinding("GET /v1/feedback", "ST201", EMPTY_CURSOR),
    OpenFinding("GET /v1/runs/{run_id}/feedback", "ST201", EMPTY_CURSOR),
)
