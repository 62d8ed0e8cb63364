"""The use cases of a feedback token's holder (submit, read, retract) and of token issuing.

The product team's reads are in `queries`, its deletions in `admin`: each function imports only what its
routes use."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from feedback_core.access import caller_user, token_binding
from feedback_core.errors import PayloadTooLarge, Unauthorized, ValidationFailed
from feedback_core.fields import MAX_DETAILS_BYTES
from feedback_core.models import (
    FeedbackRecord,
    FeedbackSubmission,
    Principal,
    TokenClaims,
    TokenRequest,
    TokenResponse,
)
from feedback_core.observability import logger

if TYPE_CHECKING:
    from feedback_core.store import FeedbackStore
    from feedback_core.tokens import TokenIssuer, TokenVerifier


def verify_token(
    verifier: TokenVerifier, header_token: str | None, body_token: str | None = None
) -> TokenClaims:
    """The claims of the request's feedback token (header X-Feedback-Token or body field)."""
    if header_token and body_token and header_token != body_token:
        raise Unauthorized("X-Feedback-Token and feedback_token disagree; send one")
    token = header_token or body_token
    if not token:
        raise Unauthorized("a feedback token is required (header X-Feedback-Token or body feedback_token)")
    claims = verifier.verify(token)
    logger.append_keys(project=claims.prj, run_id=claims.sub)
    return claims


MAX_VERSION_DIGITS = 9
"""Longest version If-Match may name. A record has at most MaxUpdatesPerRecord versions, which no sane
deployment sets near a billion; the bound keeps huge numbers away from DynamoDB (38 digits at most)."""
_IF_MATCH = re.compile(rf'(?:W/)?(?P<quote>"?)(?P<version>[0-9]{{1,{MAX_VERSION_DIGITS}}})(?P=quote)')
"""`"3"`, `3`, or `W/"3"` (read as `"3"`). ASCII digits spelled out: `\\d` and str.isdigit() accept
other scripts' digits (and `²`), which int() then reads or chokes on."""


def parse_if_match(value: str | None) -> int | None:
    """`If-Match: "3"` (or 3) → 3: the version the caller last saw; 0 means "must not exist yet"."""
    if value is None:
        return None
    match = _IF_MATCH.fullmatch(value.strip(" \t"))  # HTTP's optional whitespace around the value
    if match is None:
        rule = f"must be a non-negative integer version of at most {MAX_VERSION_DIGITS} digits"
        raise ValidationFailed(
            'If-Match must be a record version, e.g. "3"', details=[{"field": "If-Match", "message": rule}]
        )
    return int(match["version"])


def submit(
    store: FeedbackStore,
    claims: TokenClaims,
    submission: FeedbackSubmission,
    expected_version: int | None = None,
) -> tuple[FeedbackRecord, bool]:
    """Upserts the caller's feedback on the token's run. Returns (record, created)."""
    if submission.details_size() > MAX_DETAILS_BYTES:
        raise PayloadTooLarge(f"details must be at most {MAX_DETAILS_BYTES} bytes as JSON")
    user_id = caller_user(claims, submission.user_id)
    return store.submit(
        project=claims.prj,
        run_id=claims.sub,
        user_id=user_id,
        fields=submission.record_fields(),
        session_id=claims.ses,
        agent=claims.agt,
        context=claims.ctx,
        expected_version=expected_version,
        binding=token_binding(claims),
    )


def read_own(store: FeedbackStore, claims: TokenClaims, user_id: str | None) -> FeedbackRecord | None:
    user = caller_user(claims, user_id)
    return store.get(claims.prj, claims.sub, user, binding=token_binding(claims))


def retract_own(store: FeedbackStore, claims: TokenClaims, user_id: str | None) -> FeedbackRecord:
    user = caller_user(claims, user_id)
    return store.retract(claims.prj, claims.sub, user, binding=token_binding(claims))


def issue_token(issuer: TokenIssuer, principal: Principal, request: TokenRequest) -> TokenResponse:
    return issuer.issue(principal.project, request)
