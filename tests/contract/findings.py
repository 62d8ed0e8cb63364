"""Contract findings still open, as (operation, failure code) pairs.

``test_schemathesis_finds_nothing_else`` tolerates exactly these pairs; each one also has a strict
xfail test that turns red once the pair no longer fails, so that its entry is removed and the pair is
guarded again. Failure codes are schemathesis's (``schemathesis run`` prints them; ``st explain STxxx``).
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
    """What fails and why: (a) the document, (b) the service, (c) a check that cannot apply here."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.operation, self.code)


UNROUTED_METHOD = (
    "(c) unsupported_method: TRACE, a method the document does not list for this path, gets API Gateway's "
    'own 404 {"message": "Not Found"}; HTTP APIs route method and path together and never answer 405'
)

OPEN_FINDINGS: tuple[OpenFinding, ...] = (
    OpenFinding("GET /.well-known/jwks.json", "ST204", UNROUTED_METHOD),
    OpenFinding("GET /v1/docs", "ST204", UNROUTED_METHOD),
    OpenFinding("GET /v1/feedback/me", "ST204", UNROUTED_METHOD),
    OpenFinding("GET /v1/health", "ST204", UNROUTED_METHOD),
    OpenFinding("GET /v1/stats", "ST204", UNROUTED_METHOD),
    OpenFinding("POST /v1/feedback", "ST204", UNROUTED_METHOD),
    OpenFinding("POST /v1/tokens", "ST204", UNROUTED_METHOD),
    OpenFinding(
        "DELETE /v1/users/{user_id}/feedback",
        "ST201",
        '(b) a path user_id over the documented 256 characters answers 200 {"deleted": 0}, not 422',
    ),
    OpenFinding(
        "GET /v1/feedback",
        "ST202",
        "(a) the served start/end have no pattern, so `start=` (empty) is schema-valid yet 422 (the current "
        "scripts/build_openapi.py adds one: regenerate); (c) a made-up cursor is schema-valid yet 400",
    ),
    OpenFinding(
        "GET /v1/runs/{run_id}/feedback",
        "ST202",
        "(c) a made-up cursor is schema-valid yet 400: cursors are tamper-evident, no schema can tell a "
        "genuine one",
    ),
    OpenFinding(
        "GET /v1/stats",
        "ST202",
        "(c) `start=2000-01-01` alone is schema-valid yet 422: the window is over 366 days, a rule across "
        "parameters that JSON Schema cannot state",
    ),
    OpenFinding(
        "POST /v1/feedback",
        "ST202",
        "(a) header If-Match has no pattern: an empty or non-numeric value is schema-valid yet 422",
    ),
    OpenFinding(
        "POST /v1/tokens",
        "ST202",
        "(a) TokenRequest.ttl_seconds has no maximum (the stack's TokenTtlSeconds, 86400): a larger value "
        "is schema-valid yet 422",
    ),
)
