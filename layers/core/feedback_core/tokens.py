"""Feedback tokens: compact JWS (ES256) signed by KMS, verified locally with the cached public key.

Verification never calls AWS for a token that is malformed, expired, for another audience or names a key
outside the allow-list; a valid token costs one `kms:GetPublicKey` per key per process, then nothing.

A token has one spelling: three canonical base64url segments (no padding, no whitespace, unused bits
zero) and nothing else. Every other spelling of the same bytes is refused, so a token is a stable string
(for logs, caches and comparisons) and no parser disagreement can be smuggled through.
"""

from __future__ import annotations

import base64
import json
import re
from typing import TYPE_CHECKING, Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key
from jwt.algorithms import ECAlgorithm
from pydantic import ValidationError

from feedback_core.clock import Clock, iso_timestamp, system_clock
from feedback_core.errors import Unauthorized, ValidationFailed
from feedback_core.models import TokenClaims, TokenRequest, TokenResponse
from feedback_core.token_limits import (
    COORDINATE_BYTES,
    KMS_MAX_MESSAGE_BYTES,
    MAX_TOKEN_LENGTH,
    SIGNATURE_BYTES,
)

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

ALGORITHM = "ES256"
TOKEN_TYPE = "feedback+jwt"  # noqa: S105 (a media type, not a secret)
AUDIENCE = "feedback"
IAT_SKEW_SECONDS = 60

HEADER_FIELDS = frozenset({"alg", "typ", "kid"})
"""Exactly the header the issuer writes; `crit`, `b64`, `jku`, `x5u` and the like are refused."""
TOKEN_REQUEST_FIELDS = {"run_id": "sub", "user_id": "uid", "session_id": "ses", "agent": "agt"}
"""Request fields and the claims that carry them (plus `context` as `ctx`)."""

__all__ = [
    "ALGORITHM",
    "AUDIENCE",
    "IAT_SKEW_SECONDS",
    "KMS_MAX_MESSAGE_BYTES",
    "MAX_TOKEN_LENGTH",
    "TOKEN_TYPE",
    "PublicKeys",
    "TokenIssuer",
    "TokenVerifier",
    "key_id_of",
]

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def key_id_of(key: str) -> str:
    """The bare key id of a KMS key id or key ARN (the token's `kid`)."""
    return key.rsplit("key/", 1)[-1]


def issued_header_segment(kid: str) -> str:
    """The header segment the issuer writes for a key: one spelling per key."""
    return _encode_segment(_compact_json({"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": kid}))


def _compact_json(value: Any) -> bytes:
    # ensure_ascii=False: a non-ASCII id costs its UTF-8 bytes (1-4), not 6-12 bytes of \u escapes.
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def _encode_segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _malformed(error: Exception | None = None) -> NoReturn:
    raise Unauthorized("feedback token is malformed") from error


_BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_UNUSED_BITS_MASK = {0: 0, 2: 0b1111, 3: 0b11}


def _decode_segment(segment: str) -> bytes:
    """Bytes of a canonical base64url segment, the one spelling `_encode_segment` produces."""
    # A length of 4n + 1 characters encodes no whole number of bytes.
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        _malformed()
    # The last character of a 4n + 2 (4n + 3) character segment carries 4 (2) unused bits: zero in the
    # one spelling, else the same bytes would have several.
    unused_mask = _UNUSED_BITS_MASK[len(segment) % 4]
    if unused_mask and _BASE64URL_ALPHABET.index(segment[-1]) & unused_mask:
        _malformed()
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins; the issuer never writes one.
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("duplicate object key")
    return value


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)
"""Built once: json.loads with hooks builds a decoder per call."""


def _decode_object(segment: str) -> dict[str, Any]:
    """The JSON object in a header or claims segment: strict UTF-8, strict JSON, an object."""
    data = _decode_segment(segment)
    try:
        value = _STRICT_JSON.decode(data.decode("utf-8"))
    # UnicodeDecodeError, JSONDecodeError and "integer too long" are ValueErrors; deep nesting recurses.
    except (ValueError, RecursionError) as error:
        _malformed(error)
    if not isinstance(value, dict):
        _malformed()
    return value


def _integer_claim(claims: dict[str, Any], name: str) -> int | None:
    """A claim that is a JSON integer (`true` is not 1 here), else None."""
    value = claims.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
"""n, the order of P-256. An ECDSA signature (r, s) is equally valid as (r, n - s); the issuer writes
the low-S form and the verifier accepts only that, so a token has exactly one spelling."""


_ES256 = ec.ECDSA(hashes.SHA256())


def _is_low_s(signature: bytes) -> bool:
    s = int.from_bytes(signature[COORDINATE_BYTES:], "big")
    return s <= P256_ORDER // 2


class TokenIssuer:
    """Signs tokens with `kms:Sign` (one call per token)."""

    def __init__(
        self, kms: KMSClient, key_id: str, issuer: str, max_ttl_seconds: int, clock: Clock = system_clock
    ) -> None:
        self._kms = kms
        self._key_id = key_id
        self._kid = key_id_of(key_id)
        self._issuer = issuer
        self._max_ttl = max_ttl_seconds
        self._clock = clock

    def issue(self, project: str, request: TokenRequest) -> TokenResponse:
        ttl = request.ttl_seconds or self._max_ttl
        if ttl > self._max_ttl:
            raise ValidationFailed(
                f"ttl_seconds must be at most {self._max_ttl}",
                details=[{"field": "ttl_seconds", "message": f"must be between 1 and {self._max_ttl}"}],
            )
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "prj": project,
            "iat": now,
            "exp": now + ttl,
        }
        claims |= {
            claim: value for claim, value in self._request_values(request).values() if value is not None
        }
        header_segment = issued_header_segment(self._kid)
        claims_json = _compact_json(claims)
        signing_input = f"{header_segment}.{_encode_segment(claims_json)}".encode("ascii")
        if len(signing_input) > KMS_MAX_MESSAGE_BYTES:
            raise self._too_long(request, header_segment, claims_json)
        signature = self._kms.sign(
            KeyId=self._key_id,
            Message=signing_input,
            MessageType="RAW",
            SigningAlgorithm="ECDSA_SHA_256",
        )["Signature"]
        r, s = decode_dss_signature(signature)  # KMS returns DER; JWS wants raw r || s
        s = min(s, P256_ORDER - s)  # (r, n - s) verifies too: only the low-S form is the token's spelling
        raw = r.to_bytes(COORDINATE_BYTES, "big") + s.to_bytes(COORDINATE_BYTES, "big")
        token = f"{signing_input.decode('ascii')}.{_encode_segment(raw)}"
        return TokenResponse(feedback_token=token, expires_at=iso_timestamp(now + ttl))

    @staticmethod
    def _request_values(request: TokenRequest) -> dict[str, tuple[str, Any]]:
        """Request field -> (claim, value) for every part of the request the token carries."""
        values = {field: (claim, getattr(request, field)) for field, claim in TOKEN_REQUEST_FIELDS.items()}
        values["context"] = ("ctx", request.context or None)  # an empty context is left out
        return values

    def _too_long(self, request: TokenRequest, header_segment: str, claims_json: bytes) -> ValidationFailed:
        """The 422 for a request whose token KMS would refuse to sign, naming what to shorten."""
        sizes = {
            field: len(_compact_json(value))
            for field, (_, value) in self._request_values(request).items()
            if value is not None
        }
        # The claims JSON whose base64url still fits beside the header, less what the request cannot change.
        max_claims_bytes = (KMS_MAX_MESSAGE_BYTES - len(header_segment) - 1) * 3 // 4
        allowance = max_claims_bytes - (len(claims_json) - sum(sizes.values()))
        used = sum(sizes.values())
        names = ", ".join(TOKEN_REQUEST_FIELDS) + " and context"
        return ValidationFailed(
            f"the token request is too long: {names} take {used} bytes together as UTF-8 JSON, "
            f"at most {allowance} fit in a feedback token (KMS signs at most {KMS_MAX_MESSAGE_BYTES} "
            "bytes); shorten them",
            details=[
                {"field": field, "message": f"takes {size} of the {allowance} bytes these fields share"}
                for field, size in sorted(sizes.items(), key=lambda item: -item[1])
            ],
        )


class PublicKeys:
    """KMS public keys of the allowed key ids, each fetched once per process."""

    def __init__(self, kms: KMSClient, allowed_key_ids: frozenset[str]) -> None:
        self._kms = kms
        self.allowed = frozenset(key_id_of(key) for key in allowed_key_ids)
        self._cache: dict[str, ec.EllipticCurvePublicKey] = {}

    def get(self, kid: str) -> ec.EllipticCurvePublicKey:
        if kid not in self._cache:
            der = self._kms.get_public_key(KeyId=kid)["PublicKey"]
            key = load_der_public_key(der)
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
                raise TypeError(f"KMS key {kid} is not a P-256 (ECC_NIST_P256) key")
            self._cache[kid] = key
        return self._cache[kid]

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The allowed keys as a JSON Web Key Set."""
        keys = []
        for kid in sorted(self.allowed):
            jwk = ECAlgorithm.to_jwk(self.get(kid), as_dict=True)
            keys.append(jwk | {"kid": kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": keys}


class TokenVerifier:
    """Checks a token with no AWS call once the key is cached; cheap checks run before any key lookup.

    One pass: split, strict-decode, parse; then header, claims, times, audience and issuer; only then the
    public key (cached, else one `kms:GetPublicKey`) and the signature.
    """

    def __init__(self, keys: PublicKeys, issuer: str, clock: Clock = system_clock) -> None:
        self._keys = keys
        self._issuer = issuer
        self._clock = clock
        # The issuer's own header spellings, checked once here instead of decoded on every token.
        self._issued_headers = {issued_header_segment(kid): kid for kid in keys.allowed}

    def verify(self, token: str) -> TokenClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("feedback token is missing or malformed")
        segments = token.split(".")
        if len(segments) != 3:
            _malformed()
        header_segment, claims_segment, signature_segment = segments
        kid = self._issued_headers.get(header_segment)
        if kid is None:
            kid = self._check_header(_decode_object(header_segment))
        unverified = _decode_object(claims_segment)
        signature = _decode_segment(signature_segment)
        if len(signature) != SIGNATURE_BYTES or not _is_low_s(signature):
            _malformed()
        self._check_times(unverified)
        claims = self._check_claims(unverified)
        self._check_signature(kid, f"{header_segment}.{claims_segment}".encode("ascii"), signature)
        return claims

    def _check_header(self, header: dict[str, Any]) -> str:
        """The header's `kid`, once the header is exactly what the issuer writes with an allowed key."""
        if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
            raise Unauthorized("feedback token has the wrong type or algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in self._keys.allowed:
            raise Unauthorized("feedback token is signed by an unknown key")
        if header.keys() != HEADER_FIELDS:
            raise Unauthorized("feedback token has unexpected header fields")
        return kid

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        expires, issued = _integer_claim(claims, "exp"), _integer_claim(claims, "iat")
        if expires is None or issued is None:
            raise Unauthorized("feedback token lacks exp or iat")
        if now >= expires:  # no leeway: issuer and verifier share one clock
            raise Unauthorized("feedback token has expired")
        if issued > now + IAT_SKEW_SECONDS:
            raise Unauthorized("feedback token is issued in the future")

    def _check_claims(self, claims: dict[str, Any]) -> TokenClaims:
        """Required claims with their JSON types (strict: no coercion), for our audience and issuer."""
        try:
            checked = TokenClaims.model_validate(claims, strict=True)
        except ValidationError as error:
            raise Unauthorized("feedback token is invalid") from error
        if checked.aud != AUDIENCE or checked.iss != self._issuer:
            raise Unauthorized("feedback token is invalid")
        return checked

    def _check_signature(self, kid: str, signing_input: bytes, signature: bytes) -> None:
        r = int.from_bytes(signature[:COORDINATE_BYTES], "big")
        s = int.from_bytes(signature[COORDINATE_BYTES:], "big")
        try:
            self._keys.get(kid).verify(encode_dss_signature(r, s), signing_input, _ES256)
        except InvalidSignature as error:
            raise Unauthorized("feedback token is invalid") from error
