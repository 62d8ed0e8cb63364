"""Every token the service issues verifies, and what it asks KMS to sign is within what KMS signs.

moto signs messages of any length; AWS refuses a RAW message over 4,096 bytes. Every test runs under the
strict layer (tests/support/aws_limits.py), so a token request that would fail in AWS fails here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from feedback_core.errors import ValidationFailed
from feedback_core.fields import MAX_CONTEXT_BYTES, json_size
from feedback_core.models import FeedbackSubmission, TokenRequest
from feedback_core.tokens import MAX_TOKEN_LENGTH
from tests.conftest import AwsCalls
from tests.support.aws_limits import KMS_MAX_RAW_MESSAGE
from tests.support.clock import ManualClock
from tests.unit.test_tokens import b64url, issuer, verifier


def test_the_longest_token_follows_from_the_kms_limit() -> None:
    signature_length = len(b64url(bytes(64)))
    assert (MAX_TOKEN_LENGTH, signature_length) == (KMS_MAX_RAW_MESSAGE + 1 + signature_length, 86)
    assert FeedbackSubmission.model_validate(
        {"feedback_token": "t" * MAX_TOKEN_LENGTH, "outcome": "positive"}
    )


# ---- the largest request that issues ---------------------------------------------------------------------


def long_request(context_chars: int) -> TokenRequest:
    """Ids at the model's maximum length in 2-, 3- and 4-byte characters, and a context of ASCII."""
    return TokenRequest.model_validate(
        {
            "run_id": "é" * 256,
            "user_id": "€" * 256,
            "session_id": "😀" * 256,
            "agent": "a" * 64,
            "context": {"note": "x" * context_chars},
        }
    )


def largest_that_issues(issues: Callable[[int], bool], low: int, high: int) -> int:
    """The largest n in [low, high) with issues(n), given issues(low) and not issues(high)."""
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if issues(middle) else (low, middle)
    return low


def test_the_largest_request_still_issues_and_one_byte_more_is_a_422(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls
) -> None:
    token_issuer = issuer(kms, key_id, clock)

    def issues(context_chars: int) -> bool:
        try:
            token_issuer.issue("acme", long_request(context_chars))
        except ValidationFailed:
            return False
        return True

    max_context_chars = MAX_CONTEXT_BYTES - json_size({"note": ""})
    assert issues(0) and not issues(max_context_chars)
    largest = largest_that_issues(issues, 0, max_context_chars)

    token = token_issuer.issue("acme", long_request(largest)).feedback_token
    signing_input = token.rsplit(".", 1)[0]
    assert len(signing_input) == KMS_MAX_RAW_MESSAGE  # every byte KMS allows is usable
    assert len(token) == MAX_TOKEN_LENGTH
    assert verifier(kms, {key_id}, clock).verify(token).ctx == {"note": "x" * largest}

    aws_calls.reset()
    with pytest.raises(ValidationFailed) as refusal:
        token_issuer.issue("acme", long_request(largest + 1))
    assert aws_calls.count() == 0  # refused before KMS is asked
    assert refusal.value.status == 422
    assert "shorten" in refusal.value.message and "4096" in refusal.value.message
    for field in ("run_id", "user_id", "session_id", "agent", "context"):
        assert field in refusal.value.message
    details = refusal.value.details or []
    assert [item["field"] for item in details] == ["session_id", "user_id", "run_id", "context", "agent"]
    assert details[0]["message"].startswith("takes 1026 of the ")  # 256 emoji, 4 bytes each, and quotes


def test_an_ascii_request_at_every_model_limit_issues(kms: Any, key_id: str, clock: ManualClock) -> None:
    context = {"note": "x" * (MAX_CONTEXT_BYTES - json_size({"note": ""}))}
    longest = TokenRequest.model_validate(
        {
            "run_id": "r" * 256,
            "user_id": "u" * 256,
            "session_id": "s" * 256,
            "agent": "a" * 64,
            "context": context,
        }
    )
    token = issuer(kms, key_id, clock).issue("p" * 63, longest).feedback_token
    assert verifier(kms, {key_id}, clock).verify(token).ctx == context


# ---- property: issued means verifiable -------------------------------------------------------------------

# Text the models accept: printable (no control characters), valid Unicode (no lone surrogates).
printable = st.characters(exclude_categories=("Cs", "Cc"))
# What costs most in a token: astral characters (4 UTF-8 bytes), and the characters JSON escapes.
costly = st.characters(min_codepoint=0x10000) | st.sampled_from(['"', "\\", "é", "€", "\u2028"])
no_slash = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="/")


def ids(characters: st.SearchStrategy[str], max_size: int) -> st.SearchStrategy[str]:
    """Short and long ids, down to ids at the model's maximum length made only of costly characters."""
    return (
        st.text(characters | costly, min_size=1, max_size=max_size)
        | st.text(costly, min_size=max_size // 2, max_size=max_size)
        | st.text(costly, min_size=max_size, max_size=max_size)
    )


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    """A context filled close to the model's 1 KB limit with text of any cost per character."""
    key = draw(st.text(printable, min_size=1, max_size=8))
    text = draw(st.text(st.characters(codec="utf-8") | costly, max_size=1100))  # control characters too
    room = MAX_CONTEXT_BYTES - json_size({key: ""})
    kept = []
    for character in text:
        cost = json_size(character) - 2  # without the quotes
        if cost > room:
            break
        kept.append(character)
        room -= cost
    return {key: "".join(kept)}


token_requests = st.builds(
    lambda **fields: TokenRequest.model_validate(fields),
    run_id=ids(no_slash, 256),
    user_id=st.none() | ids(no_slash, 256),
    session_id=st.none() | ids(printable, 256),
    agent=st.none() | ids(printable, 64),
    context=st.none()
    | contexts()
    | st.dictionaries(st.text(printable, min_size=1), st.integers(), max_size=3),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token_request=token_requests, project=st.sampled_from(["acme", "p" * 63]))
@example(token_request=long_request(0), project="acme")
@example(token_request=long_request(MAX_CONTEXT_BYTES - json_size({"note": ""})), project="p" * 63)
def test_every_issued_token_verifies_or_the_request_is_refused(
    kms: Any, key_id: str, clock: ManualClock, token_request: TokenRequest, project: str
) -> None:
    refusal: ValidationFailed | None = None
    try:
        response = issuer(kms, key_id, clock).issue(project, token_request)
    except ValidationFailed as error:
        refusal = error
    if refusal is not None:  # too long for KMS: a 422 naming what to shorten, never a KMS error
        event("refused")
        assert refusal.status == 422 and "shorten" in refusal.message and refusal.details
        return
    event("issued")
    assert len(response.feedback_token) <= MAX_TOKEN_LENGTH
    claims = verifier(kms, {key_id}, clock).verify(response.feedback_token)
    assert (claims.sub, claims.uid, claims.ses, claims.agt, claims.prj) == (
        token_request.run_id,
        token_request.user_id,
        token_request.session_id,
        token_request.agent,
        project,
    )
    assert claims.ctx == (token_request.context or None)
