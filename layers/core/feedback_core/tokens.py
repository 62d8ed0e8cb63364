"""Feedback tokens: compact JWS (ES256) signed by KMS, verified locally with the cached public key.

Verification never calls AWS for a token that is malformed, expired, for another audience or names a key
outside the allow-list; a valid token costs one `kms:GetPublicKey` per key per process, then nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from jwt.algorithms import ECAlgorithm
from jwt.utils import base64url_encode, der_to_raw_signature
from pydantic import ValidationError

from feedback_core.clock import Clock, iso_timestamp, system_clock
from feedback_core.errors import Unauthorized, ValidationFailed
from feedback_core.models import TokenClaims, TokenRequest, TokenResponse

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

ALGORITHM = "ES256"
TOKEN_TYPE = "feedback+jwt"  # noqa: S105 (a media type, not a secret)
AUDIENCE = "feedback"
MAX_TOKEN_LENGTH = 8192
IAT_SKEW_SECONDS = 60
REQUIRED_CLAIMS = ["iss", "aud", "sub", "prj", "iat", "exp"]


def key_id_of(key: str) -> str:
    """The bare key id of a KMS key id or key ARN (the token's `kid`)."""
    return key.rsplit("key/", 1)[-1]


def _segment(value: dict[str, Any]) -> bytes:
    return base64url_encode(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


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
            "sub": request.run_id,
            "prj": project,
            "iat": now,
            "exp": now + ttl,
        }
        optional = {"uid": request.user_id, "ses": request.session_id, "agt": request.agent}
        claims |= {name: value for name, value in optional.items() if value is not None}
        if request.context:
            claims["ctx"] = request.context
        header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": self._kid}
        signing_input = _segment(header) + b"." + _segment(claims)
        signature = self._kms.sign(
            KeyId=self._key_id,
            Message=signing_input,
            MessageType="RAW",
            SigningAlgorithm="ECDSA_SHA_256",
        )["Signature"]
        raw = der_to_raw_signature(signature, ec.SECP256R1())
        token = (signing_input + b"." + base64url_encode(raw)).decode()
        return TokenResponse(feedback_token=token, expires_at=iso_timestamp(now + ttl))


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
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise TypeError(f"KMS key {kid} is not an elliptic-curve key")
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
    """Checks a token with no AWS call once the key is cached; cheap checks run before any key lookup."""

    def __init__(self, keys: PublicKeys, issuer: str, clock: Clock = system_clock) -> None:
        self._keys = keys
        self._issuer = issuer
        self._clock = clock

    def verify(self, token: str) -> TokenClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("feedback token is missing or malformed")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise Unauthorized("feedback token is malformed") from error
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
            raise Unauthorized("feedback token has the wrong type or algorithm")
        if not isinstance(kid, str) or kid not in self._keys.allowed:
            raise Unauthorized("feedback token is signed by an unknown key")
        self._check_times(unverified)
        try:
            claims = jwt.decode(
                token,
                self._keys.get(kid),
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                # Times are checked against the injected clock in _check_times, with no leeway on exp.
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
            )
            return TokenClaims.model_validate(claims)
        except (jwt.PyJWTError, ValidationError) as error:
            raise Unauthorized("feedback token is invalid") from error

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        expires, issued = claims.get("exp"), claims.get("iat")
        if not isinstance(expires, int) or not isinstance(issued, int):
            raise Unauthorized("feedback token lacks exp or iat")
        if now >= expires:
            raise Unauthorized("feedback token has expired")
        if issued > now + IAT_SKEW_SECONDS:
            raise Unauthorized("feedback token is issued in the future")
