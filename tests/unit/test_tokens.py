from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key
from jwt.utils import base64url_decode

from feedback_core.errors import Unauthorized, ValidationFailed
from feedback_core.models import TokenRequest
from feedback_core.tokens import (
    MAX_TOKEN_LENGTH,
    P256_ORDER,
    DelegatedTokenIssuer,
    PublicKeys,
    TokenIssuer,
    TokenVerifier,
    key_id_of,
)
from tests.conftest import AwsCalls
from tests.support.clock import ManualClock
from tests.unit.conftest import new_key

ISSUER = "feedback-test"


def issuer(kms: Any, key_id: str, clock: ManualClock, max_ttl: int = 3600, name: str = ISSUER) -> TokenIssuer:
    return TokenIssuer(kms, key_id, name, max_ttl, clock)


def verifier(kms: Any, allowed: set[str], clock: ManualClock, max_ttl: int = 86400) -> TokenVerifier:
    return TokenVerifier(PublicKeys(kms, frozenset(allowed)), ISSUER, max_ttl, clock)


def request(**fields: Any) -> TokenRequest:
    return TokenRequest.model_validate({"run_id": "run-1", **fields})


def reshape(token: str, header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None) -> str:
    """Edits a token's header or claims while keeping its (now wrong) signature."""
    head, body, signature = token.split(".")
    new_head = json.loads(base64url_decode(head)) | (header or {})
    new_body = json.loads(base64url_decode(body)) | (claims or {})
    return f"{encoded(new_head)}.{encoded(new_body)}.{signature}"


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


@pytest.mark.parametrize(
    "fields",
    [
        {},
        # Claims are UTF-8 JSON (not \u escapes): an outside verifier must read them the same way.
        {"run_id": "run ü €", "user_id": "𝄞 😀", "agent": "bøt", "context": {"ключ": '值 " \\ \u2028'}},
    ],
    ids=["ascii", "non-ascii"],
)
def test_token_verifies_with_the_published_jwks_alone(
    kms: Any, key_id: str, clock: ManualClock, fields: dict[str, Any]
) -> None:
    """PyJWT, an outside implementation given only the JWKS, agrees with our issuer and verifier."""
    token = issuer(kms, key_id, clock).issue("acme", request(**fields)).feedback_token
    jwks = PublicKeys(kms, frozenset({key_id})).jwks()
    assert jwks["keys"][0]["kid"] == key_id and jwks["keys"][0]["crv"] == "P-256"
    public_key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(
        token,
        public_key,
        algorithms=["ES256"],
        audience="feedback",
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "prj"], "verify_exp": False, "verify_iat": False},
    )
    ours = verifier(kms, {key_id}, clock).verify(token)
    assert claims == ours.model_dump(exclude_none=True)
    assert claims["sub"] == fields.get("run_id", "run-1")
    assert claims.get("ctx") == fields.get("context")


@pytest.mark.parametrize(
    "fields",
    [{}, {"run_id": "run ü €", "user_id": "𝄞 😀", "context": {"ключ": '值 " \\ \u2028'}}],
    ids=["ascii", "non-ascii"],
)
def test_delegated_token_verifies_with_the_published_jwks_alone(
    kms: Any, key_id: str, clock: ManualClock, fields: dict[str, Any]
) -> None:
    """SigningMode=delegated: PyJWT, given only the JWKS, checks the chain (the certificate with the KMS
    key it names, the token with the key the certificate holds) and reads the claims our verifier reads."""
    token = (
        DelegatedTokenIssuer(kms, key_id, ISSUER, 3600, clock).issue("acme", request(**fields)).feedback_token
    )
    jwks = PublicKeys(kms, frozenset({key_id})).jwks()
    certificate = jwt.get_unverified_header(token)["cert"]
    kid = jwt.get_unverified_header(certificate)["kid"]
    kms_key = jwt.PyJWK(next(key for key in jwks["keys"] if key["kid"] == kid)).key
    no_clock = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}
    certified = jwt.decode(
        certificate,
        kms_key,
        algorithms=["ES256"],
        issuer=ISSUER,
        options={"require": ["exp", "nbf"], **no_clock},
    )
    assert certified["pur"] == jwt.get_unverified_header(token)["typ"] == "feedback+jwt"
    token_key = jwt.PyJWK(certified["cnf"]["jwk"], algorithm="ES256").key
    claims = jwt.decode(
        token, token_key, algorithms=["ES256"], audience="feedback", issuer=ISSUER, options=no_clock
    )
    assert certified["nbf"] <= claims["iat"] < certified["exp"]  # signed inside the certificate's window
    assert claims == verifier(kms, {key_id}, clock).verify(token).model_dump(exclude_none=True)
    assert claims["sub"] == fields.get("run_id", "run-1")
    with pytest.raises(jwt.InvalidSignatureError):  # the KMS key does not sign the token itself
        jwt.decode(token, kms_key, algorithms=["ES256"], audience="feedback", options=no_clock)


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
        {"header": {"kid": None}},
        {"header": {"alg": "HS256"}},
        {"header": {"alg": "none"}},
        {"header": {"typ": "JWT"}},
        {"header": {"typ": "FEEDBACK+JWT"}},
        {"header": {"crit": ["b64"], "b64": False}},
        {"header": {"jku": "https://attacker.example/jwks.json"}},
        {"claims": {"aud": "other"}},
        {"claims": {"aud": ["feedback"]}},
        {"claims": {"iss": "other"}},
        {"claims": {"exp": True}},
        {"claims": {"exp": 1_900_000_000.5}},
        {"claims": {"iat": "1800000000"}},
        {"claims": {"sub": 42}},
        {"claims": {"sub": ""}},
        {"claims": {"prj": None}},
        {"claims": {"uid": ["u-1"]}},
        {"claims": {"ctx": "not an object"}},
    ],
    ids=[
        "expired",
        "unknown-kid",
        "no-kid",
        "hs256",
        "alg-none",
        "wrong-typ",
        "typ-other-case",
        "crit",
        "extra-header",
        "other-audience",
        "audience-list",
        "other-issuer",
        "exp-boolean",
        "exp-float",
        "iat-string",
        "sub-number",
        "sub-empty",
        "prj-null",
        "uid-list",
        "ctx-string",
    ],
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


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "a.b.c", "x" * 9000, "a.b." + "x" * MAX_TOKEN_LENGTH, "eyJhbGciOiJFUzI1NiJ9..", "ü.ü.ü"],
)
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


# ---- one spelling per token ------------------------------------------------------------------------------

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def padded(segment: str) -> str:
    return segment + "=" * (-len(segment) % 4)


def with_dirty_trailing_bits(segment: str) -> str:
    """The same bytes with a non-zero unused bit in the last character (lenient decoders accept it)."""
    assert len(segment) % 4 in {2, 3}, "this segment has no unused bits"
    last = ALPHABET.index(segment[-1])
    return segment[:-1] + ALPHABET[last | 1]


def spellings(token: str) -> dict[str, str]:
    """Other spellings of `token` that a lenient base64 or JWS parser would read as the same token."""
    segments = dict(zip(("header", "claims", "signature"), token.split("."), strict=True))
    head, body, signature = segments.values()

    def replaced(name: str, new: str) -> str:
        return ".".join(new if other == name else value for other, value in segments.items())

    with_unused_bits = next(name for name, value in segments.items() if len(value) % 4 in {2, 3})
    return {
        # "=" padding where base64 would have it, and on a segment that needs none.
        **{
            f"padded-{name}": replaced(name, padded(value) if len(value) % 4 else value + "==")
            for name, value in segments.items()
        },
        "padded-everywhere": ".".join(
            padded(value) + "=" * (len(value) % 4 == 0) for value in segments.values()
        ),
        "trailing-dot": token + ".",
        "trailing-data": token + ".e30",
        "trailing-newline": token + "\n",
        "trailing-space": token + " ",
        "leading-space": " " + token,
        "leading-dot": "." + token,
        "whitespace-inside": replaced("claims", f"{body[:10]} {body[10:]}"),
        "newline-inside": replaced("claims", f"{body[:10]}\n{body[10:]}"),
        "tab-inside": replaced("header", f"{head[:5]}\t{head[5:]}"),
        "standard-base64": token.replace("-", "+").replace("_", "/"),
        "dirty-trailing-bits": replaced(
            with_unused_bits, with_dirty_trailing_bits(segments[with_unused_bits])
        ),
        "dirty-signature-bits": replaced("signature", with_dirty_trailing_bits(signature)),
        "four-segments": f"{token}.{signature}",
        "two-segments": f"{head}.{body}",
        "empty-header": replaced("header", ""),
        "empty-claims": replaced("claims", ""),
        "empty-signature": replaced("signature", ""),
        "all-empty": "..",
        "length-4n+1": replaced("claims", body + "A" * ((1 - len(body)) % 4)),
        "fullwidth-letter": replaced("header", chr(ord(head[0]) + 0xFEE0) + head[1:]),
    }


SPELLINGS = [
    "padded-header",
    "padded-claims",
    "padded-signature",
    "padded-everywhere",
    "trailing-dot",
    "trailing-data",
    "trailing-newline",
    "trailing-space",
    "leading-space",
    "leading-dot",
    "whitespace-inside",
    "newline-inside",
    "tab-inside",
    "standard-base64",
    "dirty-trailing-bits",
    "dirty-signature-bits",
    "four-segments",
    "two-segments",
    "empty-header",
    "empty-claims",
    "empty-signature",
    "all-empty",
    "length-4n+1",
    "fullwidth-letter",
]


@pytest.fixture
def canonical_token(kms: Any, key_id: str, clock: ManualClock) -> str:
    # "~~~~~~" and "??????" encode to "-" and "_" in any alignment, so the standard-base64 spelling differs.
    token = issuer(kms, key_id, clock).issue("acme", request(run_id="~~~~~~??????")).feedback_token
    assert "-" in token and "_" in token
    return token


def test_the_spellings_cover_every_case(canonical_token: str) -> None:
    variants = spellings(canonical_token)
    assert sorted(variants) == sorted(SPELLINGS)
    assert canonical_token not in variants.values()


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_other_spelling_of_a_token_is_refused_without_aws_calls(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls, canonical_token: str, spelling: str
) -> None:
    cold_verifier = verifier(boto3.client("kms"), {key_id}, clock)
    aws_calls.reset()
    with pytest.raises(Unauthorized, match="malformed"):  # refused for its shape, not its signature
        cold_verifier.verify(spellings(canonical_token)[spelling])
    assert aws_calls.count() == 0
    assert cold_verifier.verify(canonical_token).sub == "~~~~~~??????"  # the canonical form is accepted


def test_lenient_decoders_read_the_other_spellings_as_the_same_token(canonical_token: str) -> None:
    """The refused spellings are not garbage: a lenient parser reads the very same claims from them."""
    _, body, signature = canonical_token.split(".")

    def lenient(segment: str) -> bytes:
        return base64.urlsafe_b64decode(padded(segment.rstrip("=")))

    assert lenient(with_dirty_trailing_bits(signature)) == lenient(signature)
    assert base64.b64decode(padded(body.replace("-", "+").replace("_", "/"))) == lenient(body)
    assert lenient(padded(signature)) == lenient(signature)


def encoded(value: Any) -> str:
    return b64url(value if isinstance(value, bytes) else json.dumps(value).encode())


# Claims that pass every check but the signature: whatever spoils them below is all that refuses them.
VALID_CLAIMS = (
    b'{"iss":"feedback-test","aud":"feedback","sub":"run-1","prj":"acme","iat":1800000000,"exp":1800003600'
)


@pytest.mark.parametrize(
    "claims",
    [
        b"[]",
        b'"a string"',
        b"42",
        b"null",
        VALID_CLAIMS + b',"ctx":{"x":"\xff"}}',  # not UTF-8
        (VALID_CLAIMS + b"}").decode().encode("utf-16"),  # JSON, but not UTF-8
        b"\xef\xbb\xbf" + VALID_CLAIMS + b"}",  # a byte-order mark
        VALID_CLAIMS + b',"sub":"run-2"}',  # which duplicate wins differs between parsers
        VALID_CLAIMS + b',"ctx":{"x":1,"x":2}}',
        VALID_CLAIMS + b',"ctx":{"x":NaN}}',
        VALID_CLAIMS + b',"ctx":{"x":-Infinity}}',
        VALID_CLAIMS,  # truncated
        VALID_CLAIMS + b"} trailing",
        VALID_CLAIMS + b',"ctx":{"x":' + b"[" * 1400 + b"]" * 1400 + b"}}",  # exhausts the parser's recursion
        b'{"exp":' + b"9" * 5000 + b"}",  # an integer Python refuses to parse (and far too long anyway)
    ],
    ids=[
        "array",
        "string",
        "number",
        "null",
        "invalid-utf8",
        "utf16",
        "bom",
        "duplicate-claim",
        "duplicate-key-inside",
        "nan",
        "infinity",
        "truncated",
        "trailing-text",
        "deep-nesting",
        "huge-integer",
    ],
)
def test_undecodable_claims_are_refused_without_aws_calls(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls, claims: bytes
) -> None:
    header = encoded({"alg": "ES256", "typ": "feedback+jwt", "kid": key_id})
    token = f"{header}.{encoded(claims)}.{b64url(bytes(64))}"
    cold_verifier = verifier(boto3.client("kms"), {key_id}, clock)
    aws_calls.reset()
    with pytest.raises(Unauthorized, match="malformed"):
        cold_verifier.verify(token)
    assert aws_calls.count() == 0


@pytest.mark.parametrize(
    "header",
    [
        b'{"alg":"ES256","typ":"feedback+jwt","kid":"%s","alg":"none"}',
        b'{"alg":"ES256","typ":"feedback+jwt","kid":"%s"',
        b'["ES256","feedback+jwt","%s"]',
    ],
    ids=["duplicate-alg", "truncated", "array"],
)
def test_undecodable_headers_are_refused_without_aws_calls(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls, header: bytes
) -> None:
    token = f"{encoded(header % key_id.encode())}.{encoded(VALID_CLAIMS + b'}')}.{b64url(bytes(64))}"
    cold_verifier = verifier(boto3.client("kms"), {key_id}, clock)
    aws_calls.reset()
    with pytest.raises(Unauthorized, match="malformed"):
        cold_verifier.verify(token)
    assert aws_calls.count() == 0


def test_a_long_integer_parses_but_is_no_token(kms: Any, key_id: str, clock: ManualClock) -> None:
    header = encoded({"alg": "ES256", "typ": "feedback+jwt", "kid": key_id})
    claims = b'{"exp":' + b"9" * 2900 + b',"iat":1}'
    with pytest.raises(Unauthorized, match="lives longer than this stack allows"):
        verifier(kms, {key_id}, clock).verify(f"{header}.{encoded(claims)}.{b64url(bytes(64))}")


def test_the_spoiled_claims_above_would_otherwise_reach_the_signature(
    kms: Any, key_id: str, clock: ManualClock
) -> None:
    header = encoded({"alg": "ES256", "typ": "feedback+jwt", "kid": key_id})
    token = f"{header}.{encoded(VALID_CLAIMS + b'}')}.{b64url(bytes(64))}"
    with pytest.raises(Unauthorized, match="invalid"):
        verifier(kms, {key_id}, clock).verify(token)


@pytest.mark.parametrize("size", [0, 63, 65, 72])
def test_signature_must_be_64_raw_bytes(kms: Any, key_id: str, clock: ManualClock, size: int) -> None:
    token = issuer(kms, key_id, clock).issue("acme", request()).feedback_token
    head, body, _ = token.split(".")
    with pytest.raises(Unauthorized, match="malformed"):
        verifier(kms, {key_id}, clock).verify(f"{head}.{body}.{b64url(bytes(size))}")


def test_der_signature_is_refused(kms: Any, key_id: str, clock: ManualClock) -> None:
    """KMS returns DER; a token carrying it instead of r || s is not ours."""
    token = issuer(kms, key_id, clock).issue("acme", request()).feedback_token
    head, body, _ = token.split(".")
    der = kms.sign(
        KeyId=key_id, Message=f"{head}.{body}".encode(), MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"
    )["Signature"]
    with pytest.raises(Unauthorized):
        verifier(kms, {key_id}, clock).verify(f"{head}.{body}.{b64url(der)}")


def test_zero_signature_is_invalid(kms: Any, key_id: str, clock: ManualClock) -> None:
    token = issuer(kms, key_id, clock).issue("acme", request()).feedback_token
    head, body, _ = token.split(".")
    with pytest.raises(Unauthorized, match="invalid"):
        verifier(kms, {key_id}, clock).verify(f"{head}.{body}.{b64url(bytes(64))}")


def test_non_ascii_ids_cost_their_utf8_bytes(kms: Any, key_id: str, clock: ManualClock) -> None:
    ascii_token = issuer(kms, key_id, clock).issue("acme", request(run_id="r" * 256)).feedback_token
    astral_token = issuer(kms, key_id, clock).issue("acme", request(run_id="😀" * 256)).feedback_token

    def claims_bytes(token: str) -> int:
        return len(base64.urlsafe_b64decode(padded(token.split(".")[1])))

    assert claims_bytes(astral_token) - claims_bytes(ascii_token) == 3 * 256  # 4 UTF-8 bytes, not 12


def high_s_twin(token: str) -> str:
    """The same token with its signature's s replaced by n - s: a second valid ECDSA signature."""
    signing_input, _, signature = token.rpartition(".")
    raw = base64.urlsafe_b64decode(padded(signature))
    s = int.from_bytes(raw[32:], "big")
    twin = raw[:32] + (P256_ORDER - s).to_bytes(32, "big")
    return f"{signing_input}.{b64url(twin)}"


def test_the_high_s_twin_of_a_signature_is_refused_without_aws_calls(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls
) -> None:
    tokens = [
        issuer(kms, key_id, clock).issue("acme", request(run_id=f"run-{n}")).feedback_token for n in range(12)
    ]
    public_key = load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    cold_verifier = verifier(boto3.client("kms"), {key_id}, clock)
    for token in tokens:
        signing_input, _, signature = token.rpartition(".")
        raw = base64.urlsafe_b64decode(padded(signature))
        assert int.from_bytes(raw[32:], "big") <= P256_ORDER // 2  # the issuer writes low S only
        twin = high_s_twin(token)
        twin_raw = base64.urlsafe_b64decode(padded(twin.rpartition(".")[2]))
        twin_der = encode_dss_signature(
            int.from_bytes(twin_raw[:32], "big"), int.from_bytes(twin_raw[32:], "big")
        )
        public_key.verify(twin_der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))  # mathematically valid
        aws_calls.reset()
        with pytest.raises(Unauthorized, match="malformed"):
            cold_verifier.verify(twin)
        assert aws_calls.count() == 0
