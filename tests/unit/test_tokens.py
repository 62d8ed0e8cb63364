from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
from jwt.utils import base64url_decode, base64url_encode
from moto import mock_aws

from feedback_core.errors import Unauthorized, ValidationFailed
from feedback_core.models import TokenRequest
from feedback_core.tokens import PublicKeys, TokenIssuer, TokenVerifier, key_id_of
from tests.conftest import AwsCalls
from tests.support.clock import ManualClock

ISSUER = "feedback-test"


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms")


def new_key(kms: Any) -> str:
    key_id: str = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    return key_id


@pytest.fixture
def key_id(kms: Any) -> str:
    return new_key(kms)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000)


def issuer(kms: Any, key_id: str, clock: ManualClock, max_ttl: int = 3600, name: str = ISSUER) -> TokenIssuer:
    return TokenIssuer(kms, key_id, name, max_ttl, clock)


def verifier(kms: Any, allowed: set[str], clock: ManualClock) -> TokenVerifier:
    return TokenVerifier(PublicKeys(kms, frozenset(allowed)), ISSUER, clock)


def request(**fields: Any) -> TokenRequest:
    return TokenRequest.model_validate({"run_id": "run-1", **fields})


def reshape(token: str, header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None) -> str:
    """Edits a token's header or claims while keeping its (now wrong) signature."""
    head, body, signature = token.split(".")
    new_head = json.loads(base64url_decode(head)) | (header or {})
    new_body = json.loads(base64url_decode(body)) | (claims or {})
    encode = lambda value: base64url_encode(json.dumps(value).encode()).decode()  # noqa: E731
    return f"{encode(new_head)}.{encode(new_body)}.{signature}"


def test_issued_token_verifies_and_carries_the_binding(kms: Any, key_id: str, clock: ManualClock) -> None:
    response = issuer(kms, key_id, clock).issue(
        "acme",
        request(user_id="u-1", session_id="s-1", agent="bot", context={"model": "m1"}, ttl_seconds=600),
    )
    claims = verifier(kms, {key_id}, clock).verify(response.feedback_token)
    assert (claims.sub, claims.prj, claims.uid, claims.ses, claims.agt) == (
        "run-1",
        "acme",
        "u-1",
        "s-1",
        "bot",
    )
    assert claims.ctx == {"model": "m1"}
    assert claims.exp - claims.iat == 600
    assert response.expires_at == "2027-01-15T08:10:00.000Z"
    header = jwt.get_unverified_header(response.feedback_token)
    assert header == {"alg": "ES256", "typ": "feedback+jwt", "kid": key_id}


def test_token_verifies_with_the_published_jwks_alone(kms: Any, key_id: str, clock: ManualClock) -> None:
    token = issuer(kms, key_id, clock).issue("acme", request()).feedback_token
    jwks = PublicKeys(kms, frozenset({key_id})).jwks()
    assert jwks["keys"][0]["kid"] == key_id and jwks["keys"][0]["crv"] == "P-256"
    public_key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(
        token,
        public_key,
        algorithms=["ES256"],
        audience="feedback",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == "run-1"


def test_issuing_makes_exactly_one_kms_call(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls
) -> None:
    kms_client = boto3.client("kms")  # created after the counter, so its calls are counted
    token_issuer = issuer(kms_client, key_id, clock)
    aws_calls.reset()
    token_issuer.issue("acme", request())
    assert aws_calls.operations() == {"kms:Sign": 1}


def test_public_key_is_fetched_once_per_process(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls
) -> None:
    tokens = [
        issuer(kms, key_id, clock).issue("acme", request(run_id=f"r{i}")).feedback_token for i in range(5)
    ]
    token_verifier = verifier(boto3.client("kms"), {key_id}, clock)
    aws_calls.reset()
    for token in tokens:
        token_verifier.verify(token)
    assert aws_calls.operations() == {"kms:GetPublicKey": 1}


def test_expiry_has_no_leeway(kms: Any, key_id: str, clock: ManualClock) -> None:
    token = issuer(kms, key_id, clock).issue("acme", request(ttl_seconds=60)).feedback_token
    token_verifier = verifier(kms, {key_id}, clock)
    clock.advance(59)
    assert token_verifier.verify(token).sub == "run-1"
    clock.advance(1)
    with pytest.raises(Unauthorized, match="expired"):
        token_verifier.verify(token)


def test_token_issued_up_to_a_minute_ahead_is_accepted(kms: Any, key_id: str, clock: ManualClock) -> None:
    token = issuer(kms, key_id, clock).issue("acme", request()).feedback_token
    clock.advance(-60)
    assert verifier(kms, {key_id}, clock).verify(token).sub == "run-1"
    clock.advance(-1)
    with pytest.raises(Unauthorized, match="future"):
        verifier(kms, {key_id}, clock).verify(token)


@pytest.mark.parametrize(
    "mutation",
    [
        {"claims": {"exp": 1}},
        {"header": {"kid": "not-an-allowed-key"}},
        {"header": {"alg": "HS256"}},
        {"header": {"alg": "none"}},
        {"header": {"typ": "JWT"}},
    ],
    ids=["expired", "unknown-kid", "hs256", "alg-none", "wrong-typ"],
)
def test_cheaply_invalid_tokens_cost_no_aws_call(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls, mutation: dict[str, Any]
) -> None:
    token = reshape(issuer(kms, key_id, clock).issue("acme", request()).feedback_token, **mutation)
    cold_verifier = verifier(boto3.client("kms"), {key_id}, clock)  # nothing cached yet
    aws_calls.reset()
    with pytest.raises(Unauthorized):
        cold_verifier.verify(token)
    assert aws_calls.count() == 0


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 9000, "eyJhbGciOiJFUzI1NiJ9..", "ü.ü.ü"])
def test_garbage_is_rejected_without_aws_calls(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls, garbage: str
) -> None:
    token_verifier = verifier(boto3.client("kms"), {key_id}, clock)
    aws_calls.reset()
    with pytest.raises(Unauthorized):
        token_verifier.verify(garbage)
    assert aws_calls.count() == 0


@pytest.mark.parametrize(
    "claims",
    [{"sub": "run-2"}, {"prj": "other"}, {"uid": "mallory"}, {"aud": "other"}, {"iss": "other"}],
)
def test_edited_claims_break_the_signature(
    kms: Any, key_id: str, clock: ManualClock, claims: dict[str, Any]
) -> None:
    token = reshape(
        issuer(kms, key_id, clock).issue("acme", request(user_id="u-1")).feedback_token, claims=claims
    )
    with pytest.raises(Unauthorized):
        verifier(kms, {key_id}, clock).verify(token)


def test_other_issuer_is_rejected(kms: Any, key_id: str, clock: ManualClock) -> None:
    token = issuer(kms, key_id, clock, name="another-stack").issue("acme", request()).feedback_token
    with pytest.raises(Unauthorized, match="invalid"):
        verifier(kms, {key_id}, clock).verify(token)


def test_key_of_another_stack_cannot_impersonate_an_allowed_kid(
    kms: Any, key_id: str, clock: ManualClock
) -> None:
    foreign_key = new_key(kms)
    forged = issuer(kms, foreign_key, clock).issue("acme", request()).feedback_token
    forged = reshape(forged, header={"kid": key_id})
    with pytest.raises(Unauthorized, match="invalid"):
        verifier(kms, {key_id}, clock).verify(forged)


def test_rotation_keeps_old_keys_verifiable_while_allowed(kms: Any, key_id: str, clock: ManualClock) -> None:
    new = new_key(kms)
    old_token = issuer(kms, key_id, clock).issue("acme", request()).feedback_token
    new_token = issuer(kms, new, clock).issue("acme", request()).feedback_token
    during = verifier(kms, {key_id, new}, clock)
    assert during.verify(old_token).sub == during.verify(new_token).sub == "run-1"
    after = verifier(kms, {new}, clock)
    assert after.verify(new_token).sub == "run-1"
    with pytest.raises(Unauthorized, match="unknown key"):
        after.verify(old_token)


def test_allow_list_accepts_key_arns(kms: Any, key_id: str, clock: ManualClock) -> None:
    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    assert key_id_of(arn) == key_id
    token = issuer(kms, arn, clock).issue("acme", request()).feedback_token
    assert verifier(kms, {arn}, clock).verify(token).prj == "acme"


def test_ttl_above_the_maximum_is_refused(kms: Any, key_id: str, clock: ManualClock) -> None:
    with pytest.raises(ValidationFailed, match="at most 3600"):
        issuer(kms, key_id, clock).issue("acme", request(ttl_seconds=3601))
