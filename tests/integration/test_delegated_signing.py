"""The template with SigningMode=delegated: the real issue_token, submit_feedback and meta functions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.utils import base64url_decode

from feedback_core.certificates import CERTIFICATE_LIFETIME_SECONDS, issue_certificate
from feedback_core.jws import ES256, compact_json, encode_segment, raw_signature
from feedback_core.tokens import delegated_header_segment, key_id_of
from local.harness import Harness, in_process
from tests.conftest import AwsCalls
from tests.integration.api import PARAMETERS, Api
from tests.support.aws_limits import StrictAws

STACK_NAME = "feedback-it"


@pytest.fixture
def harness() -> Iterator[Harness]:
    with in_process(STACK_NAME, PARAMETERS | {"SigningMode": "delegated"}) as deployed:
        yield deployed


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(base64url_decode(token.split(".", 1)[0]))
    return header


def signed_token(certificate: str, private_key: ec.EllipticCurvePrivateKey, run_id: str = "run-1") -> str:
    now = int(time.time())
    claims = {"iss": STACK_NAME, "aud": "feedback", "sub": run_id, "prj": "acme", "iat": now, "exp": now + 60}
    signing_input = f"{delegated_header_segment(certificate)}.{encode_segment(compact_json(claims))}"
    return f"{signing_input}.{encode_segment(raw_signature(private_key.sign(signing_input.encode(), ES256)))}"


def test_the_issuer_runs_in_delegated_mode_with_the_same_key_policy(api: Api) -> None:
    assert api.function("issue_token").environment is not None
    assert api.function("issue_token").environment["SIGNING_MODE"] == "delegated"


def test_tokens_are_signed_locally_after_one_certificate(
    api: Api, full_key: str, aws_calls: AwsCalls
) -> None:
    authorizer_context = api.authorize(f"Bearer {full_key}")
    operations = []
    tokens = []
    for run in ["a", "b", "c"]:
        aws_calls.reset()
        response = api.call("issue_token", "issue_token", body={"run_id": run}, authorizer=authorizer_context)
        assert response.status == 201, response.body
        tokens.append(response.body["feedback_token"])
        operations.append(dict(aws_calls.operations()))
    assert operations == [{"kms:Sign": 1}, {}, {}]
    assert len({header_of(token)["cert"] for token in tokens}) == 1

    # The verifier: one public key fetch for the first token, then a write and nothing else.
    aws_calls.reset()
    assert api.submit(tokens[0], {"outcome": "positive"}).status == 201
    assert aws_calls.operations() == {"kms:GetPublicKey": 1, "dynamodb:UpdateItem": 1}
    for token in tokens[1:]:
        aws_calls.reset()
        assert api.submit(token, {"outcome": "negative"}).status == 201
        assert aws_calls.operations() == {"dynamodb:UpdateItem": 1}
    mine = api.call("submit_feedback", "read_own_feedback", headers={"x-feedback-token": tokens[1]})
    assert (mine.status, mine.body["run_id"], mine.body["outcome"]) == (200, "b", "negative")


def test_a_delegated_token_lives_what_it_asked_for_and_no_longer(api: Api, full_key: str) -> None:
    before = time.time()
    short = api.call("issue_token", "issue_token", key=full_key, body={"run_id": "r", "ttl_seconds": 120})
    longest = api.call("issue_token", "issue_token", key=full_key, body={"run_id": "r"})  # TokenTtlSeconds
    after = time.time()

    def lifetime(response: Any) -> float:
        assert response.status == 201, response.body
        return datetime.fromisoformat(response.body["expires_at"]).replace(tzinfo=UTC).timestamp()

    assert int(before) + 120 <= lifetime(short) <= after + 120
    certificate = jwt.decode(
        header_of(longest.body["feedback_token"])["cert"], options={"verify_signature": False}
    )
    claims = jwt.decode(longest.body["feedback_token"], options={"verify_signature": False})
    assert lifetime(longest) == claims["exp"] == claims["iat"] + 3600  # TokenTtlSeconds, not capped
    assert certificate["exp"] - certificate["nbf"] == CERTIFICATE_LIFETIME_SECONDS
    assert certificate["nbf"] <= claims["iat"] < certificate["exp"]  # signed inside its window


def test_the_published_jwks_verifies_the_chain(api: Api, full_key: str) -> None:
    token = api.token(full_key, run_id="chained")
    jwks = api.call("meta", "jwks").body
    certificate = header_of(token)["cert"]
    kid = jwt.get_unverified_header(certificate)["kid"]
    kms_key = jwt.PyJWK(next(key for key in jwks["keys"] if key["kid"] == kid)).key
    certified = jwt.decode(certificate, kms_key, algorithms=["ES256"], issuer=STACK_NAME)
    claims = jwt.decode(
        token,
        jwt.PyJWK(certified["cnf"]["jwk"], algorithm="ES256").key,
        algorithms=["ES256"],
        audience="feedback",
    )
    assert (claims["sub"], claims["iss"], certified["pur"]) == ("chained", STACK_NAME, "feedback+jwt")


def test_bad_chains_are_401_with_the_usual_error_and_no_aws_call(
    api: Api, full_key: str, aws_calls: AwsCalls, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = api.token(full_key)
    assert api.submit(good, {"outcome": "positive"}).status == 201  # warms the public key
    certificate = header_of(good)["cert"]
    impostor = ec.generate_private_key(ec.SECP256R1())
    head, body, signature = certificate.split(".")
    longer = json.loads(base64url_decode(body)) | {"exp": json.loads(base64url_decode(body))["exp"] + 600}
    tampered_certificate = f"{head}.{encode_segment(compact_json(longer))}.{signature}"
    bad = {
        "certificate-as-token": certificate,
        "impostor-key": signed_token(certificate, impostor),
        "tampered-certificate": signed_token(tampered_certificate, impostor),
        "tampered-header": ".".join(
            [encode_segment(compact_json(header_of(good) | {"typ": "JWT"})), *good.split(".")[1:]]
        ),
    }
    for name, token in bad.items():
        aws_calls.reset()
        response = api.submit(token, {"outcome": "negative"})
        assert response.status == 401, (name, response.body)
        assert response.body["error"]["code"] == "unauthorized" and response.body["error"]["message"], name
        assert aws_calls.count() == 0, name

    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600)  # the token's lifetime: TokenTtlSeconds
    aws_calls.reset()
    expired = api.submit(good, {"outcome": "negative"})
    assert (expired.status, expired.body["error"]["code"]) == (401, "unauthorized")
    assert "expired" in expired.body["error"]["message"]
    assert aws_calls.count() == 0


def test_a_certificate_of_another_stack_is_401(api: Api, full_key: str, aws_calls: AwsCalls) -> None:
    """Signed by this stack's own KMS key, but for another issuer name: refused before any AWS call."""
    with api.environment("issue_token"):
        from feedback_core import aws  # noqa: PLC0415 (the function's client, in its environment)

        key_id = api.function("issue_token").environment["TOKEN_KEY_ID"]  # type: ignore[index]
        private_key = ec.generate_private_key(ec.SECP256R1())
        foreign = issue_certificate(
            aws.kms(),
            key_id,
            kid=key_id_of(key_id),
            issuer="another-stack",
            public_key=private_key.public_key(),
            now=int(time.time()),
        )
    aws_calls.reset()
    response = api.submit(signed_token(foreign, private_key), {"outcome": "positive"})
    assert response.status == 401 and response.body["error"]["code"] == "unauthorized"
    assert "certificate" in response.body["error"]["message"]
    assert aws_calls.count() == 0


def test_a_throttled_certificate_is_a_429_and_the_next_request_certifies(
    api: Api, full_key: str, strict_aws: StrictAws, aws_calls: AwsCalls
) -> None:
    """KMS throttling the one Sign of a certificate is the same retryable 429 as in kms mode; no key is
    kept without a certificate, so the retry certifies one."""

    def throttled(_: Mapping[str, Any]) -> ClientError:
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        return ClientError(error, "Sign")  # type: ignore[arg-type]  # a plain dict, as botocore builds it

    authorizer_context = api.authorize(f"Bearer {full_key}")
    strict_aws.inject("kms", "Sign", throttled)
    refused = api.call("issue_token", "issue_token", body={"run_id": "r"}, authorizer=authorizer_context)
    assert (refused.status, refused.body["error"]["code"], refused.headers["retry-after"]) == (
        429,
        "throttled",
        "1",
    )
    aws_calls.reset()
    issued = api.call("issue_token", "issue_token", body={"run_id": "r"}, authorizer=authorizer_context)
    assert issued.status == 201 and aws_calls.operations() == {"kms:Sign": 1}
    assert api.submit(issued.body["feedback_token"], {"outcome": "positive"}).status == 201
