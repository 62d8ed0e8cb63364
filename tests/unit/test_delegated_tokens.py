"""SigningMode=delegated: tokens signed by an in-memory key whose certificate KMS signs (moto KMS)."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.utils import base64url_decode

from feedback_core import certificates, services, tokens
from feedback_core.certificates import (
    CERTIFICATE_LIFETIME_SECONDS,
    CertificateCache,
    certificate_header_segment,
    issue_certificate,
)
from feedback_core.clock import iso_timestamp
from feedback_core.errors import Unauthorized, ValidationFailed
from feedback_core.fields import MAX_CONTEXT_BYTES, json_size
from feedback_core.jws import ES256, compact_json, encode_segment, kms_sign, raw_signature
from feedback_core.models import TokenRequest
from feedback_core.settings import ConfigurationError, TokenIssueSettings, function_environment, load_settings
from feedback_core.tokens import (
    MAX_TOKEN_LENGTH,
    DelegatedTokenIssuer,
    TokenIssuer,
    delegated_header_segment,
)
from tests.conftest import AwsCalls
from tests.support.clock import ManualClock
from tests.unit.conftest import new_key
from tests.unit.test_token_limits import largest_that_issues
from tests.unit.test_tokens import SPELLINGS, b64url, high_s_twin, issuer, request, spellings, verifier

ISSUER = "feedback-test"
MAX_CONTEXT_CHARS = MAX_CONTEXT_BYTES - json_size({"note": ""})


def delegated(kms: Any, key_id: str, clock: ManualClock, max_ttl: int = 86400) -> DelegatedTokenIssuer:
    return DelegatedTokenIssuer(kms, key_id, ISSUER, max_ttl, clock)


def decoded(segment: str) -> Any:
    return json.loads(base64url_decode(segment))


def certificate_of(token: str) -> str:
    certificate: str = decoded(token.split(".", maxsplit=1)[0])["cert"]
    return certificate


def certify(
    kms: Any, key_id: str, clock: ManualClock, name: str = ISSUER
) -> tuple[str, ec.EllipticCurvePrivateKey]:
    """A certificate KMS signs for a key the test holds: tokens of its choosing chain to the KMS key."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    certificate = issue_certificate(
        kms, key_id, kid=key_id, issuer=name, public_key=private_key.public_key(), now=int(clock())
    )
    return certificate, private_key


def signed_token(certificate: str, private_key: ec.EllipticCurvePrivateKey, **claims: Any) -> str:
    """A delegated token as the issuer writes it, with the claims given (and defaults for the rest)."""
    body = {"iss": ISSUER, "aud": "feedback", "sub": "run-1", "prj": "acme"} | claims
    signing_input = f"{delegated_header_segment(certificate)}.{encode_segment(compact_json(body))}"
    signature = raw_signature(private_key.sign(signing_input.encode(), ES256))
    return f"{signing_input}.{encode_segment(signature)}"


def kms_signed(kms: Any, key_id: str, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Any header and claims, signed by the KMS key itself (only the issuer's role can do this)."""
    signing_input = f"{encode_segment(compact_json(header))}.{encode_segment(compact_json(claims))}"
    return f"{signing_input}.{encode_segment(kms_sign(kms, key_id, signing_input.encode()))}"


# ---- issue and verify ------------------------------------------------------------------------------------


def test_delegated_token_verifies_and_carries_its_certificate(
    kms: Any, key_id: str, clock: ManualClock
) -> None:
    response = delegated(kms, key_id, clock).issue(
        "acme",
        request(user_id="u-1", session_id="s-1", agent="bot", context={"model": "m1"}, ttl_seconds=600),
    )
    token = response.feedback_token
    claims = verifier(kms, {key_id}, clock).verify(token)
    assert (claims.sub, claims.prj, claims.uid, claims.ses, claims.agt, claims.ctx) == (
        "run-1",
        "acme",
        "u-1",
        "s-1",
        "bot",
        {"model": "m1"},
    )
    assert claims.exp - claims.iat == 600  # never longer than asked
    assert response.expires_at == "2027-01-15T08:10:00.000Z"

    header = decoded(token.split(".")[0])
    assert header.keys() == {"alg", "typ", "cert"} and (header["alg"], header["typ"]) == (
        "ES256",
        "feedback+jwt",
    )
    cert_header, cert_claims, cert_signature = header["cert"].split(".")
    assert decoded(cert_header) == {"alg": "ES256", "kid": key_id, "typ": "feedback-cert+jwt"}
    body = decoded(cert_claims)
    assert body.keys() == {"cnf", "exp", "iat", "iss", "nbf", "pur"}
    assert (body["iss"], body["pur"], body["iat"], body["nbf"]) == (ISSUER, "feedback+jwt", clock(), clock())
    assert body["exp"] - body["nbf"] == CERTIFICATE_LIFETIME_SECONDS == 3600
    assert body["cnf"]["jwk"].keys() == {"crv", "kty", "x", "y"}
    assert len(base64url_decode(cert_signature)) == 64
    assert len(token) < MAX_TOKEN_LENGTH


def test_a_token_issued_at_the_end_of_its_certificate_window_lives_its_full_ttl(
    kms: Any, key_id: str, clock: ManualClock
) -> None:
    token_issuer = delegated(kms, key_id, clock)
    start = int(clock())
    first = token_issuer.issue("acme", request()).feedback_token
    clock.advance(CERTIFICATE_LIFETIME_SECONDS - 1)  # the last second the first certificate lets its key sign
    response = token_issuer.issue("acme", request())
    assert certificate_of(response.feedback_token) == certificate_of(first)
    token_verifier = verifier(kms, {key_id}, clock)
    late = token_verifier.verify(response.feedback_token)
    assert (late.iat, late.exp) == (start + 3599, start + 3599 + 86400)  # the whole TokenTtlSeconds
    assert response.expires_at == iso_timestamp(late.exp)

    clock.advance(86400 - 1)  # the certificate's window ended a day ago; the token is not expired yet
    assert token_verifier.verify(response.feedback_token).sub == "run-1"  # its certificate cached
    assert verifier(kms, {key_id}, clock).verify(response.feedback_token).sub == "run-1"  # and not
    clock.advance(1)
    with pytest.raises(Unauthorized, match="expired"):
        token_verifier.verify(response.feedback_token)


def test_the_issuer_certifies_a_new_key_when_the_window_ends(
    kms: Any, key_id: str, clock: ManualClock
) -> None:
    token_issuer = delegated(kms, key_id, clock)
    first = certificate_of(token_issuer.issue("acme", request()).feedback_token)
    clock.advance(CERTIFICATE_LIFETIME_SECONDS)  # the window is [nbf, exp): exp is outside it
    renewed = token_issuer.issue("acme", request(ttl_seconds=5)).feedback_token
    assert certificate_of(renewed) != first
    claims = verifier(kms, {key_id}, clock).verify(renewed)
    assert (claims.iat, claims.exp - claims.iat) == (int(clock()), 5)  # never longer than asked
    assert decoded(certificate_of(renewed).split(".")[1])["nbf"] == claims.iat
    clock.advance(-1)  # a clock set back before the new certificate: another one, so iat stays inside
    assert certificate_of(token_issuer.issue("acme", request()).feedback_token) not in {
        first,
        certificate_of(renewed),
    }


@pytest.mark.parametrize(
    "issued_at",
    [-1, CERTIFICATE_LIFETIME_SECONDS, CERTIFICATE_LIFETIME_SECONDS + 600],
    ids=["before-nbf", "at-exp", "after-exp"],
)
def test_a_token_issued_outside_its_certificate_window_is_refused(
    kms: Any, key_id: str, clock: ManualClock, issued_at: int
) -> None:
    """What a leaked ephemeral key cannot do: sign tokens dated outside its certificate's window. The
    clock is at the token's iat, so nothing but the window refuses it."""
    certificate, private_key = certify(kms, key_id, clock)
    start = int(clock())
    clock.advance(issued_at)
    token = signed_token(certificate, private_key, iat=start + issued_at, exp=start + issued_at + 60)
    with pytest.raises(Unauthorized, match="outside its certificate's window"):
        verifier(kms, {key_id}, clock).verify(token)


def test_a_leaked_key_mints_nothing_alive_after_its_certificate_exp_plus_the_longest_lifetime(
    kms: Any, key_id: str, clock: ManualClock
) -> None:
    certificate, private_key = certify(kms, key_id, clock)
    last_iat = int(clock()) + CERTIFICATE_LIFETIME_SECONDS - 1
    longest = signed_token(certificate, private_key, iat=last_iat, exp=last_iat + 86400)
    clock.advance(CERTIFICATE_LIFETIME_SECONDS - 1 + 86400 - 1)
    assert verifier(kms, {key_id}, clock).verify(longest).exp == last_iat + 86400
    clock.advance(1)  # the certificate's exp + the longest lifetime - 1 is its tokens' last second
    with pytest.raises(Unauthorized, match="expired"):
        verifier(kms, {key_id}, clock).verify(longest)
    too_long = signed_token(certificate, private_key, iat=last_iat, exp=last_iat + 86401)
    with pytest.raises(Unauthorized, match="lives longer than this stack allows"):
        verifier(kms, {key_id}, clock).verify(too_long)


@pytest.mark.parametrize("kind", ["delegated", "kms"])
def test_a_token_living_longer_than_the_verifier_allows_is_refused(
    kms: Any, key_id: str, clock: ManualClock, kind: str
) -> None:
    """exp - iat above the verifier's TokenTtlSeconds, signed by a delegated key or by KMS itself (as
    someone holding the issuer's role could): refused before any signature check."""
    start = int(clock())
    claims = {"iss": ISSUER, "aud": "feedback", "sub": "run-1", "prj": "acme", "iat": start}
    if kind == "delegated":
        certificate, private_key = certify(kms, key_id, clock)

        def token(lifetime: int) -> str:
            return signed_token(certificate, private_key, iat=start, exp=start + lifetime)
    else:
        header = {"alg": "ES256", "typ": "feedback+jwt", "kid": key_id}

        def token(lifetime: int) -> str:
            return kms_signed(kms, key_id, header, claims | {"exp": start + lifetime})

    token_verifier = verifier(kms, {key_id}, clock, max_ttl=3600)
    assert token_verifier.verify(token(3600)).sub == "run-1"
    with pytest.raises(Unauthorized, match="lives longer than this stack allows"):
        token_verifier.verify(token(3601))
    # An issuer allowing longer tokens than its verifiers: what it issues beyond their limit is refused.
    issued = delegated(kms, key_id, clock, max_ttl=7200).issue("acme", request()).feedback_token
    with pytest.raises(Unauthorized, match="lives longer"):
        token_verifier.verify(issued)


# ---- AWS calls ---------------------------------------------------------------------------------------------


def test_kms_signs_once_per_certificate_not_per_token(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls
) -> None:
    token_issuer = delegated(boto3.client("kms"), key_id, clock)
    aws_calls.reset()
    certificates_seen = set()
    for _ in range(120):  # two hours, a token a minute, each asking for the whole day
        certificates_seen.add(certificate_of(token_issuer.issue("acme", request()).feedback_token))
        clock.advance(60)
    # One certificate per hour-long window: at 0 and 60 minutes. Every token lives its full day.
    assert aws_calls.operations() == {"kms:Sign": 2} and len(certificates_seen) == 2


def test_concurrent_first_requests_certify_one_key(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls
) -> None:
    token_issuer = delegated(boto3.client("kms"), key_id, clock)
    aws_calls.reset()
    with ThreadPoolExecutor(max_workers=8) as pool:
        issued = list(pool.map(lambda n: token_issuer.issue("acme", request(run_id=f"r{n}")), range(32)))
    assert aws_calls.operations() == {"kms:Sign": 1}
    assert len({certificate_of(response.feedback_token) for response in issued}) == 1


def test_verifying_costs_one_public_key_fetch_and_one_certificate_check(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_issuer = delegated(kms, key_id, clock)
    issued = [token_issuer.issue("acme", request(run_id=f"r{n}")).feedback_token for n in range(5)]
    certificate_reads = []
    read_certificate = tokens.read_certificate
    monkeypatch.setattr(
        tokens, "read_certificate", lambda *args: certificate_reads.append(args) or read_certificate(*args)
    )
    token_verifier = verifier(boto3.client("kms"), {key_id}, clock)
    aws_calls.reset()
    assert [token_verifier.verify(token).sub for token in issued * 2] == [f"r{n}" for n in range(5)] * 2
    assert aws_calls.operations() == {"kms:GetPublicKey": 1}
    assert len(certificate_reads) == 1  # the certificate is read and its signature checked once


def test_cheaply_invalid_certificates_cost_no_aws_call(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls
) -> None:
    other_stack, other_stack_key = certify(kms, key_id, clock, name="another-stack")
    unknown_key = new_key(kms)
    unknown, unknown_private = certify(kms, unknown_key, clock)
    start = int(clock())
    bad = [
        signed_token(other_stack, other_stack_key, iat=start, exp=start + 60),
        signed_token(unknown, unknown_private, iat=start, exp=start + 60),
    ]
    cold_verifier = verifier(boto3.client("kms"), {key_id}, clock)
    aws_calls.reset()
    for token in bad:
        with pytest.raises(Unauthorized):
            cold_verifier.verify(token)
    assert aws_calls.count() == 0


# ---- rotation ----------------------------------------------------------------------------------------------


def test_rotation_keeps_certificates_of_previous_keys_verifiable_while_allowed(
    kms: Any, key_id: str, clock: ManualClock
) -> None:
    new = new_key(kms)
    old_token = delegated(kms, key_id, clock).issue("acme", request()).feedback_token
    new_token = delegated(kms, new, clock).issue("acme", request()).feedback_token
    during = verifier(kms, {key_id, new}, clock)
    assert during.verify(old_token).sub == during.verify(new_token).sub == "run-1"
    after = verifier(kms, {new}, clock)
    assert after.verify(new_token).sub == "run-1"
    with pytest.raises(Unauthorized, match="unknown key"):
        after.verify(old_token)


def test_kms_and_delegated_tokens_verify_side_by_side(kms: Any, key_id: str, clock: ManualClock) -> None:
    """Switching SigningMode leaves the tokens already handed out valid."""
    token_verifier = verifier(kms, {key_id}, clock)
    kms_token = issuer(kms, key_id, clock).issue("acme", request(run_id="by-kms")).feedback_token
    delegated_token = delegated(kms, key_id, clock).issue("acme", request(run_id="delegated")).feedback_token
    assert token_verifier.verify(kms_token).sub == "by-kms"
    assert token_verifier.verify(delegated_token).sub == "delegated"
    assert len(kms_token) < len(delegated_token)


# ---- forgeries ---------------------------------------------------------------------------------------------


def test_forged_certificate_is_refused(kms: Any, key_id: str, clock: ManualClock) -> None:
    """A certificate signed by another KMS key, relabelled with the allowed key id."""
    certificate, private_key = certify(kms, new_key(kms), clock)
    forged = ".".join([certificate_header_segment(key_id), *certificate.split(".")[1:]])
    start = int(clock())
    with pytest.raises(Unauthorized, match="invalid"):
        verifier(kms, {key_id}, clock).verify(signed_token(forged, private_key, iat=start, exp=start + 60))


def test_self_signed_certificate_is_refused(kms: Any, key_id: str, clock: ManualClock) -> None:
    """A certificate signed by the very key it certifies, not by KMS."""
    genuine, _ = certify(kms, key_id, clock)
    private_key = ec.generate_private_key(ec.SECP256R1())
    head, body, _ = genuine.split(".")
    claims = decoded(body) | {"cnf": {"jwk": certificates.public_jwk(private_key.public_key())}}
    signing_input = f"{head}.{encode_segment(compact_json(claims))}"
    self_signed = (
        f"{signing_input}.{encode_segment(raw_signature(private_key.sign(signing_input.encode(), ES256)))}"
    )
    start = int(clock())
    with pytest.raises(Unauthorized, match="invalid"):
        verifier(kms, {key_id}, clock).verify(
            signed_token(self_signed, private_key, iat=start, exp=start + 60)
        )


def test_token_signed_by_another_key_than_its_certificate_names_is_refused(
    kms: Any, key_id: str, clock: ManualClock
) -> None:
    certificate, _ = certify(kms, key_id, clock)
    impostor = ec.generate_private_key(ec.SECP256R1())
    start = int(clock())
    with pytest.raises(Unauthorized, match="invalid"):
        verifier(kms, {key_id}, clock).verify(signed_token(certificate, impostor, iat=start, exp=start + 60))


def test_a_certificate_is_not_a_token(kms: Any, key_id: str, clock: ManualClock) -> None:
    certificate = certificate_of(delegated(kms, key_id, clock).issue("acme", request()).feedback_token)
    with pytest.raises(Unauthorized, match="wrong type"):
        verifier(kms, {key_id}, clock).verify(certificate)
    # Not even one whose claims read like a token's: the type tells them apart.
    claims = {
        "iss": ISSUER,
        "aud": "feedback",
        "sub": "run-1",
        "prj": "acme",
        "iat": int(clock()),
        "exp": int(clock()) + 60,
    }
    lookalike = kms_signed(kms, key_id, {"alg": "ES256", "kid": key_id, "typ": "feedback-cert+jwt"}, claims)
    with pytest.raises(Unauthorized, match="wrong type"):
        verifier(kms, {key_id}, clock).verify(lookalike)


def test_a_token_is_not_a_certificate(kms: Any, key_id: str, clock: ManualClock) -> None:
    """A KMS-signed token (a kms-mode token) in the certificate field, shaped like a certificate."""
    start = int(clock())
    private_key = ec.generate_private_key(ec.SECP256R1())
    claims = {
        "cnf": {"jwk": certificates.public_jwk(private_key.public_key())},
        "exp": start + 600,
        "iat": start,
        "iss": ISSUER,
        "nbf": start,
        "pur": "feedback+jwt",
    }
    as_token = kms_signed(kms, key_id, {"alg": "ES256", "kid": key_id, "typ": "feedback+jwt"}, claims)
    with pytest.raises(Unauthorized, match="invalid certificate"):
        verifier(kms, {key_id}, clock).verify(signed_token(as_token, private_key, iat=start, exp=start + 60))
    genuine = kms_signed(kms, key_id, {"alg": "ES256", "kid": key_id, "typ": "feedback-cert+jwt"}, claims)
    assert verifier(kms, {key_id}, clock).verify(
        signed_token(genuine, private_key, iat=start, exp=start + 60)
    )


def test_certificate_of_another_stack_is_refused(kms: Any, key_id: str, clock: ManualClock) -> None:
    """Same KMS key (say, shared by two stacks), but certified for another issuer."""
    certificate, private_key = certify(kms, key_id, clock, name="another-stack")
    start = int(clock())
    with pytest.raises(Unauthorized, match="invalid certificate"):
        verifier(kms, {key_id}, clock).verify(
            signed_token(certificate, private_key, iat=start, exp=start + 60)
        )
    other_issuer = DelegatedTokenIssuer(kms, key_id, "another-stack", 3600, clock)
    with pytest.raises(Unauthorized):
        verifier(kms, {key_id}, clock).verify(other_issuer.issue("acme", request()).feedback_token)


Claims = dict[str, Any]


def jwk_with(**members: Any) -> Callable[[Claims], Claims]:
    return lambda claims: claims | {"cnf": {"jwk": claims["cnf"]["jwk"] | members}}


def without(name: str) -> Callable[[Claims], Claims]:
    return lambda claims: {key: value for key, value in claims.items() if key != name}


CERTIFICATE_CLAIM_EDITS: dict[str, Callable[[Claims], Claims]] = {
    "longer-than-an-hour": lambda claims: claims | {"exp": claims["nbf"] + 3601},
    "ends-as-it-starts": lambda claims: claims | {"exp": claims["nbf"]},
    "issued-after-nbf": lambda claims: claims | {"iat": claims["nbf"] + 1},
    "other-issuer": lambda claims: claims | {"iss": "another-stack"},
    "issuer-number": lambda claims: claims | {"iss": 42},
    "other-purpose": lambda claims: claims | {"pur": "feedback-cert+jwt"},
    "no-purpose": without("pur"),
    "no-exp": without("exp"),
    "extra-claim": lambda claims: claims | {"aud": "feedback"},
    "exp-float": lambda claims: claims | {"exp": float(claims["exp"])},
    "nbf-string": lambda claims: claims | {"nbf": str(claims["nbf"])},
    "iat-boolean": lambda claims: claims | {"iat": True},
    "jwk-extra-member": jwk_with(kid="x"),
    "jwk-other-curve": jwk_with(crv="P-384"),
    "jwk-other-type": jwk_with(kty="OKP"),
    "jwk-short-x": jwk_with(x=b64url(bytes(31))),
    "jwk-not-on-curve": jwk_with(y=b64url(bytes(31) + b"\x01")),
    "jwk-number": jwk_with(x=1),
    "jwk-string": lambda claims: claims | {"cnf": {"jwk": "key"}},
    "cnf-extra": lambda claims: claims | {"cnf": claims["cnf"] | {"jkt": "x"}},
    "cnf-string": lambda claims: claims | {"cnf": "x"},
}


@pytest.mark.parametrize("edit", list(CERTIFICATE_CLAIM_EDITS.values()), ids=list(CERTIFICATE_CLAIM_EDITS))
def test_certificates_unlike_the_issuers_are_refused_even_when_kms_signed_them(
    kms: Any, key_id: str, clock: ManualClock, edit: Callable[[Claims], Claims]
) -> None:
    start = int(clock())
    private_key = ec.generate_private_key(ec.SECP256R1())
    claims = {
        "cnf": {"jwk": certificates.public_jwk(private_key.public_key())},
        "exp": start + 600,
        "iat": start,
        "iss": ISSUER,
        "nbf": start,
        "pur": "feedback+jwt",
    }
    header = {"alg": "ES256", "kid": key_id, "typ": "feedback-cert+jwt"}
    certificate = kms_signed(kms, key_id, header, edit(claims))
    with pytest.raises(Unauthorized, match="certificate"):
        verifier(kms, {key_id}, clock).verify(
            signed_token(certificate, private_key, iat=start, exp=start + 60)
        )
    unedited = kms_signed(kms, key_id, header, claims)
    assert verifier(kms, {key_id}, clock).verify(
        signed_token(unedited, private_key, iat=start, exp=start + 60)
    )


def test_tampered_certificate_claims_break_its_signature(kms: Any, key_id: str, clock: ManualClock) -> None:
    certificate, private_key = certify(kms, key_id, clock)
    head, body, signature = certificate.split(".")
    longer = decoded(body) | {"exp": int(clock()) + 1800, "nbf": int(clock()) - 1800}  # still one hour
    tampered = f"{head}.{encode_segment(compact_json(longer))}.{signature}"
    start = int(clock())
    with pytest.raises(Unauthorized, match="invalid"):
        verifier(kms, {key_id}, clock).verify(signed_token(tampered, private_key, iat=start, exp=start + 60))


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "JWT"},
        {"alg": "ES384"},
        {"kid": "KEY"},  # both a kid and a certificate
        {"jwk": {"kty": "EC"}},
        {"cert": 42},
        {"cert": "a.b"},
        {"cert": ""},
    ],
    ids=[
        "wrong-typ",
        "wrong-alg",
        "kid-too",
        "extra-field",
        "cert-number",
        "cert-two-segments",
        "cert-empty",
    ],
)
def test_tampered_token_headers_are_refused_without_aws_calls(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls, header: dict[str, Any]
) -> None:
    token = delegated(kms, key_id, clock).issue("acme", request()).feedback_token
    head, body, signature = token.split(".")
    new_header = decoded(head) | {name: key_id if value == "KEY" else value for name, value in header.items()}
    cold_verifier = verifier(boto3.client("kms"), {key_id}, clock)
    aws_calls.reset()
    with pytest.raises(Unauthorized):
        cold_verifier.verify(f"{encode_segment(compact_json(new_header))}.{body}.{signature}")
    assert aws_calls.count() == 0


# ---- one spelling ------------------------------------------------------------------------------------------


@pytest.fixture
def delegated_token(kms: Any, key_id: str, clock: ManualClock) -> str:
    token = delegated(kms, key_id, clock).issue("acme", request(run_id="~~~~~~??????")).feedback_token
    assert "-" in token and "_" in token
    return token


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_other_spelling_of_a_delegated_token_is_refused(
    kms: Any, key_id: str, clock: ManualClock, delegated_token: str, spelling: str
) -> None:
    token_verifier = verifier(kms, {key_id}, clock)
    with pytest.raises(Unauthorized, match="malformed"):
        token_verifier.verify(spellings(delegated_token)[spelling])
    assert token_verifier.verify(delegated_token).sub == "~~~~~~??????"


def test_other_spellings_of_the_header_and_certificate_are_refused(
    kms: Any, key_id: str, clock: ManualClock, delegated_token: str
) -> None:
    head, body, signature = delegated_token.split(".")
    header = decoded(head)
    certificate = header["cert"]
    cert_head, cert_body, cert_signature = certificate.split(".")

    def with_certificate(new: str) -> str:
        return f"{encode_segment(compact_json(header | {'cert': new}))}.{body}.{signature}"

    def with_header(data: bytes) -> str:
        return f"{encode_segment(data)}.{body}.{signature}"

    reordered = dict(reversed(list(header.items())))
    cert_claims = decoded(cert_body)
    variants = {
        "spaced-header": with_header(json.dumps(header).encode()),
        "reordered-header": with_header(json.dumps(reordered, separators=(",", ":")).encode()),
        "escaped-header": with_header(compact_json(header).replace(b"ES256", b"ES25\\u0036")),
        "spaced-certificate-claims": with_certificate(
            f"{cert_head}.{encode_segment(json.dumps(cert_claims).encode())}.{cert_signature}"
        ),
        "reordered-certificate-claims": with_certificate(
            f"{cert_head}.{encode_segment(json.dumps(dict(reversed(list(cert_claims.items())))).encode())}"
            f".{cert_signature}"
        ),
        "padded-certificate": with_certificate(f"{certificate}=="),
        "high-s-certificate": with_certificate(high_s_twin(certificate)),
        "certificate-trailing-dot": with_certificate(f"{certificate}."),
    }
    token_verifier = verifier(kms, {key_id}, clock)
    for name, variant in variants.items():
        assert variant != delegated_token, name
        with pytest.raises(Unauthorized, match=r"malformed|invalid certificate"):
            token_verifier.verify(variant)
    assert token_verifier.verify(delegated_token).sub == "~~~~~~??????"


def test_high_s_twin_of_a_delegated_token_is_refused(kms: Any, key_id: str, clock: ManualClock) -> None:
    token_issuer = delegated(kms, key_id, clock)
    for n in range(8):
        token = token_issuer.issue("acme", request(run_id=f"run-{n}")).feedback_token
        with pytest.raises(Unauthorized, match="malformed"):
            verifier(kms, {key_id}, clock).verify(high_s_twin(token))


# ---- size, cache and settings ---------------------------------------------------------------------------


def test_a_delegated_token_signs_at_most_what_kms_signs(
    kms: Any, key_id: str, clock: ManualClock, aws_calls: AwsCalls
) -> None:
    """One bound on the signed part whatever the mode, so a token is at most MAX_TOKEN_LENGTH either way;
    the certificate in the header leaves less room for ids and context, and the 422 says how much."""
    token_issuer = delegated(boto3.client("kms"), key_id, clock)

    def issues(context_chars: int) -> bool:
        return _issues(token_issuer, sized_request(context_chars))

    assert issues(0) and not issues(MAX_CONTEXT_CHARS)
    aws_calls.reset()
    largest = largest_that_issues(issues, 0, MAX_CONTEXT_CHARS)
    token = token_issuer.issue("acme", sized_request(largest)).feedback_token
    assert 4096 - 3 <= len(token.rsplit(".", 1)[0]) <= 4096 and len(token) <= MAX_TOKEN_LENGTH
    with pytest.raises(ValidationFailed, match="at most 4096") as refusal:
        token_issuer.issue("acme", sized_request(largest + 1))
    assert refusal.value.status == 422 and "context" in refusal.value.message
    assert aws_calls.count() == 0  # the certificate was there already; a refusal signs nothing
    assert verifier(kms, {key_id}, clock).verify(token).ctx == {"note": "x" * largest}
    # What the certificate costs: a KMS-signed token still has room for this request.
    assert _issues(issuer(kms, key_id, clock), sized_request(largest + 1))


def sized_request(context_chars: int) -> TokenRequest:
    """Long ids (some of 2- and 3-byte characters) and a context of ASCII: the certificate leaves room
    for less than the longest request a KMS-signed token carries (tests/unit/test_token_limits.py)."""
    return TokenRequest.model_validate(
        {
            "run_id": "é" * 256,
            "user_id": "€" * 256,
            "session_id": "s" * 256,
            "agent": "a" * 64,
            "context": {"note": "x" * context_chars},
        }
    )


def _issues(token_issuer: TokenIssuer, token_request: TokenRequest) -> bool:
    try:
        token_issuer.issue("acme", token_request)
    except ValidationFailed:
        return False
    return True


def test_the_certificate_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = CertificateCache(size=2)
    entries = {name: object() for name in "abc"}
    cache.put("a", entries["a"])  # type: ignore[arg-type]
    cache.put("b", entries["b"])  # type: ignore[arg-type]
    assert cache.get("a") is entries["a"]  # "a" is now the most recent
    cache.put("c", entries["c"])  # type: ignore[arg-type]
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (entries["a"], None, entries["c"])
    assert len(cache) == 2


def test_a_verifier_keeps_at_most_its_cache_size_of_certificates(
    kms: Any, key_id: str, clock: ManualClock
) -> None:
    token_verifier = verifier(kms, {key_id}, clock)
    token_verifier._certificates = CertificateCache(size=3)
    issued = [delegated(kms, key_id, clock).issue("acme", request()).feedback_token for _ in range(5)]
    for token in issued + issued:
        assert token_verifier.verify(token).sub == "run-1"
    assert len(token_verifier._certificates) == 3


@pytest.mark.parametrize(("mode", "kind"), [("kms", TokenIssuer), ("delegated", DelegatedTokenIssuer)])
def test_signing_mode_selects_the_issuer(kms: Any, key_id: str, mode: str, kind: type[TokenIssuer]) -> None:
    variables = {"TOKEN_KEY_ID": key_id, "TOKEN_ISSUER": ISSUER, "SIGNING_MODE": mode}
    with function_environment(variables):
        assert type(services.token_issuer()) is kind


def test_an_unknown_signing_mode_is_a_configuration_error() -> None:
    variables = {"TOKEN_KEY_ID": "k", "TOKEN_ISSUER": "i", "SIGNING_MODE": "local"}
    with function_environment(variables), pytest.raises(ConfigurationError, match="SIGNING_MODE is invalid"):
        load_settings(TokenIssueSettings)
