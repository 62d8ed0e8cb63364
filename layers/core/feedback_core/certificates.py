"""Certificates of delegated signing keys (`SigningMode=delegated`).

The issuer keeps an ephemeral P-256 key in memory and has KMS sign, once per certificate lifetime, a
certificate for its public key: a compact JWS whose header is `{"alg":"ES256","kid":<KMS key id>,
"typ":"feedback-cert+jwt"}` and whose claims are exactly

    {"cnf":{"jwk":{"crv":"P-256","kty":"EC","x":..,"y":..}},"exp":..,"iat":..,"iss":<stack>,"nbf":..,
     "pur":"feedback+jwt"}

(`cnf.jwk` as in RFC 7800; `pur`: the key signs feedback tokens and nothing else). Tokens signed by that
key carry the certificate in their header field `cert`. A certificate has one spelling: the issuer's
exact header for its key, claims in canonical JSON (sorted keys, no spaces), a low-S signature.

Its own `typ` keeps a certificate from being accepted as a token and a token from being accepted as a
certificate. A certificate bounds when its key may sign, not how long a token lives (the signing-time
model of code signing with timestamps): a token is valid when its `iat` lies in the certificate's
[nbf, exp) window, which lasts at most CERTIFICATE_LIFETIME_SECONDS whatever the certificate says, and the
token itself has not expired; so the tokens of a key are all dead by the certificate's exp plus the
longest token lifetime (docs/TOKENS.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import ec

from feedback_core.errors import Unauthorized
from feedback_core.jws import (
    ALGORITHM,
    TOKEN_TYPE,
    compact_json,
    decode_object,
    decode_segment,
    encode_segment,
    integer_claim,
    is_low_s,
    kms_sign,
    malformed,
)
from feedback_core.token_limits import COORDINATE_BYTES, KMS_MAX_MESSAGE_BYTES, SIGNATURE_BYTES

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

CERTIFICATE_TYPE = "feedback-cert+jwt"
CERTIFICATE_FIELD = "cert"
"""The token header field that carries the certificate."""
CERTIFICATE_LIFETIME_SECONDS = 3600
"""The longest signing window of a certificate (DESIGN.md: at most an hour); verifiers refuse longer
ones. The issuer certifies a new key when its certificate's window ends."""
CERTIFICATE_CACHE_SIZE = 1024
"""Verified certificates kept per verifier. A certificate's tokens stay valid up to the longest token
lifetime after its window, so one issuing instance has up to 25 certificates in use with a one-day
lifetime; one pushed out only costs another ECDSA verify when it comes back."""

CERTIFICATE_CLAIMS = frozenset({"cnf", "exp", "iat", "iss", "nbf", "pur"})
JWK_FIELDS = frozenset({"crv", "kty", "x", "y"})


def certificate_header_segment(kid: str) -> str:
    """The header segment of a certificate signed by a KMS key: one spelling per key."""
    return encode_segment(compact_json({"alg": ALGORITHM, "kid": kid, "typ": CERTIFICATE_TYPE}))


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The key as a JWK holding only what identifies it (RFC 7638's members, one spelling)."""
    numbers = public_key.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": encode_segment(numbers.x.to_bytes(COORDINATE_BYTES, "big")),
        "y": encode_segment(numbers.y.to_bytes(COORDINATE_BYTES, "big")),
    }


def issue_certificate(
    kms: KMSClient, key_id: str, *, kid: str, issuer: str, public_key: ec.EllipticCurvePublicKey, now: int
) -> str:
    """A certificate for `public_key`, valid from `now` for CERTIFICATE_LIFETIME_SECONDS: one kms:Sign."""
    claims = {
        "cnf": {"jwk": public_jwk(public_key)},
        "exp": now + CERTIFICATE_LIFETIME_SECONDS,
        "iat": now,
        "iss": issuer,
        "nbf": now,
        "pur": TOKEN_TYPE,
    }
    signing_input = f"{certificate_header_segment(kid)}.{encode_segment(compact_json(claims))}".encode()
    if len(signing_input) > KMS_MAX_MESSAGE_BYTES:  # only an issuer name of thousands of bytes gets here
        raise ValueError(f"the token issuer name is too long for a certificate: {issuer[:64]}...")
    signature = kms_sign(kms, key_id, signing_input)
    return f"{signing_input.decode('ascii')}.{encode_segment(signature)}"


@dataclass(frozen=True)
class Certificate:
    """A certificate read from a token header. The verifier checks its signature once (then caches it),
    and with every token that the token was issued within `not_before`..`expires` (its signing window)."""

    kid: str
    not_before: int
    expires: int
    public_key: ec.EllipticCurvePublicKey
    signing_input: bytes
    signature: bytes


def _invalid() -> Unauthorized:
    return Unauthorized("feedback token has an invalid certificate")


def read_certificate(text: str, issuer: str, headers: Mapping[str, str]) -> Certificate:
    """The certificate's content, once it is exactly what our issuer writes for one of `headers` (issued
    header segment -> allowed kid). Neither the clock nor the signature is checked here (see Certificate)."""
    segments = text.split(".")
    if len(segments) != 3:
        malformed()
    header_segment, claims_segment, signature_segment = segments
    kid = headers.get(header_segment)
    if kid is None:
        header = decode_object(header_segment)
        if header.get("typ") == CERTIFICATE_TYPE and header.get("kid") not in headers.values():
            raise Unauthorized("feedback token's certificate is signed by an unknown key")
        raise _invalid()
    claims = decode_object(claims_segment, canonical=True)
    signature = decode_segment(signature_segment)
    if len(signature) != SIGNATURE_BYTES or not is_low_s(signature):
        malformed()
    if claims.keys() != CERTIFICATE_CLAIMS or claims["iss"] != issuer or claims["pur"] != TOKEN_TYPE:
        raise _invalid()
    issued, not_before, expires = (integer_claim(claims, name) for name in ("iat", "nbf", "exp"))
    if issued is None or not_before is None or expires is None:
        raise _invalid()
    if not issued <= not_before < expires <= not_before + CERTIFICATE_LIFETIME_SECONDS:
        raise _invalid()
    return Certificate(
        kid=kid,
        not_before=not_before,
        expires=expires,
        public_key=_certified_key(claims["cnf"]),
        signing_input=f"{header_segment}.{claims_segment}".encode("ascii"),
        signature=signature,
    )


def _certified_key(confirmation: Any) -> ec.EllipticCurvePublicKey:
    if not isinstance(confirmation, dict) or confirmation.keys() != {"jwk"}:
        raise _invalid()
    jwk = confirmation["jwk"]
    if not isinstance(jwk, dict) or jwk.keys() != JWK_FIELDS or (jwk["crv"], jwk["kty"]) != ("P-256", "EC"):
        raise _invalid()
    if not isinstance(jwk["x"], str) or not isinstance(jwk["y"], str):
        raise _invalid()
    x, y = decode_segment(jwk["x"]), decode_segment(jwk["y"])
    if len(x) != COORDINATE_BYTES or len(y) != COORDINATE_BYTES:
        raise _invalid()
    try:
        return ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError as error:  # not a point on the curve
        raise _invalid() from error


class CertificateCache:
    """Verified certificates, least recently used first out, keyed by the token header segment that
    carries them (which spells exactly one certificate): a token whose certificate is known costs one
    dictionary lookup here, not a header decode and a second ECDSA verify. Thread-safe (the local stack
    shares a verifier between concurrent invocations)."""

    def __init__(self, size: int = CERTIFICATE_CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[str, Certificate] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, header_segment: str) -> Certificate | None:
        with self._lock:
            certificate = self._entries.get(header_segment)
            if certificate is not None:
                self._entries.move_to_end(header_segment)
            return certificate

    def put(self, header_segment: str, certificate: Certificate) -> None:
        with self._lock:
            self._entries[header_segment] = certificate
            self._entries.move_to_end(header_segment)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
