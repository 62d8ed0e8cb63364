"""Feedback tokens: compact JWS (ES256) signed by KMS or by a KMS-certified key, verified locally.

`SigningMode=kms`: each token is signed with `kms:Sign`. `SigningMode=delegated`: tokens are signed by an
ephemeral key held in the issuer's memory and carry its certificate (feedback_core.certificates), which
KMS signs once per certificate lifetime. Either way the token chains to a KMS public key of the JWKS, and
lives at most the stack's longest token lifetime (`TokenTtlSeconds`), which issuer and verifier both know.

Verification never calls AWS for a token that is malformed, expired, for another audience or names a key
outside the allow-list; a valid token costs one `kms:GetPublicKey` per key per process, then nothing.

A token has one spelling: three canonical base64url segments (no padding, no whitespace, unused bits
zero) and nothing else. Every other spelling of the same bytes is refused, so a token is a stable string
(for logs, caches and comparisons) and no parser disagreement can be smuggled through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import ValidationError

from feedback_core.certificates import (
    CERTIFICATE_FIELD,
    CERTIFICATE_LIFETIME_SECONDS,
    Certificate,
    CertificateCache,
    certificate_header_segment,
    issue_certificate,
    read_certificate,
)
from feedback_core.clock import Clock, iso_timestamp, system_clock
from feedback_core.errors import Unauthorized, ValidationFailed
from feedback_core.jws import (
    ALGORITHM,
    ES256,
    P256_ORDER,
    TOKEN_TYPE,
    compact_json,
    decode_object,
    decode_segment,
    der_signature,
    encode_segment,
    integer_claim,
    is_low_s,
    kms_sign,
    malformed,
    raw_signature,
)
from feedback_core.models import TokenClaims, TokenRequest, TokenResponse
from feedback_core.observability import logger
from feedback_core.token_limits import KMS_MAX_MESSAGE_BYTES, MAX_TOKEN_LENGTH, SIGNATURE_BYTES

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

AUDIENCE = "feedback"
IAT_SKEW_SECONDS = 60

HEADER_FIELDS = frozenset({"alg", "typ", "kid"})
"""Exactly the header the issuer writes with `SigningMode=kms`; `crit`, `b64`, `jku`, `x5u` and the like
are refused."""
DELEGATED_HEADER_FIELDS = frozenset({"alg", "typ", CERTIFICATE_FIELD})
"""Exactly the header the issuer writes with `SigningMode=delegated`: the certificate instead of `kid`."""
TOKEN_REQUEST_FIELDS = {"run_id": "sub", "user_id": "uid", "session_id": "ses", "agent": "agt"}
"""Request fields and the claims that carry them (plus `context` as `ctx`)."""

__all__ = [
    "ALGORITHM",
    "AUDIENCE",
    "IAT_SKEW_SECONDS",
    "KMS_MAX_MESSAGE_BYTES",
    "MAX_TOKEN_LENGTH",
    "P256_ORDER",
    "TOKEN_TYPE",
    "DelegatedTokenIssuer",
    "PublicKeys",
    "TokenIssuer",
    "TokenVerifier",
    "key_id_of",
]


def key_id_of(key: str) -> str:
    """The bare key id of a KMS key id or key ARN (the token's `kid`)."""
    return key.rsplit("key/", 1)[-1]


def issued_header_segment(kid: str) -> str:
    """The header segment the issuer writes for a key: one spelling per key."""
    return encode_segment(compact_json({"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": kid}))


def delegated_header_segment(certificate: str) -> str:
    """The header segment of tokens signed by a certified key: one spelling per certificate."""
    return encode_segment(compact_json({"alg": ALGORITHM, CERTIFICATE_FIELD: certificate, "typ": TOKEN_TYPE}))


@dataclass(frozen=True)
class _Signer:
    """What signs the tokens issued now: their header and the signing function."""

    header_segment: str
    sign: Callable[[bytes], bytes]


class TokenIssuer:
    """Signs tokens with `kms:Sign`, one call per token (`SigningMode=kms`)."""

    def __init__(
        self, kms: KMSClient, key_id: str, issuer: str, max_ttl_seconds: int, clock: Clock = system_clock
    ) -> None:
        self._kms = kms
        self._key_id = key_id
        self._kid = key_id_of(key_id)
        self._issuer = issuer
        self._max_ttl = max_ttl_seconds
        self._clock = clock
        self._kms_signer = _Signer(
            issued_header_segment(self._kid), lambda message: kms_sign(self._kms, self._key_id, message)
        )

    def issue(self, project: str, request: TokenRequest) -> TokenResponse:
        ttl = request.ttl_seconds or self._max_ttl
        if ttl > self._max_ttl:
            raise ValidationFailed(
                f"ttl_seconds must be at most {self._max_ttl}",
                details=[{"field": "ttl_seconds", "message": f"must be between 1 and {self._max_ttl}"}],
            )
        now = int(self._clock())
        signer = self._signer(now)
        # With a certified key too: its certificate bounds when the key signs, not how long tokens live.
        expires = now + ttl
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "prj": project,
            "iat": now,
            "exp": expires,
        }
        claims |= {
            claim: value for claim, value in self._request_values(request).values() if value is not None
        }
        claims_json = compact_json(claims)
        signing_input = f"{signer.header_segment}.{encode_segment(claims_json)}".encode("ascii")
        if len(signing_input) > KMS_MAX_MESSAGE_BYTES:
            raise self._too_long(request, signer.header_segment, claims_json)
        token = f"{signing_input.decode('ascii')}.{encode_segment(signer.sign(signing_input))}"
        return TokenResponse(feedback_token=token, expires_at=iso_timestamp(expires))

    def _signer(self, now: int) -> _Signer:
        return self._kms_signer

    @staticmethod
    def _request_values(request: TokenRequest) -> dict[str, tuple[str, Any]]:
        """Request field -> (claim, value) for every part of the request the token carries."""
        values = {field: (claim, getattr(request, field)) for field, claim in TOKEN_REQUEST_FIELDS.items()}
        values["context"] = ("ctx", request.context or None)  # an empty context is left out
        return values

    def _too_long(self, request: TokenRequest, header_segment: str, claims_json: bytes) -> ValidationFailed:
        """The 422 for a request whose token would sign more than KMS signs, naming what to shorten."""
        sizes = {
            field: len(compact_json(value))
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
            f"at most {allowance} fit in a feedback token (a token signs at most {KMS_MAX_MESSAGE_BYTES} "
            "bytes, what KMS signs); shorten them",
            details=[
                {"field": field, "message": f"takes {size} of the {allowance} bytes these fields share"}
                for field, size in sorted(sizes.items(), key=lambda item: -item[1])
            ],
        )


class DelegatedTokenIssuer(TokenIssuer):
    """Signs tokens with an ephemeral P-256 key held in this process's memory, certified by KMS
    (`SigningMode=delegated`): one `kms:Sign` per certificate, none per token.

    A new key and certificate are made on first use and when the certificate's window ends, so every
    token's `iat` lies inside its certificate's [nbf, exp) (the same clock reading decides both) and a
    token lives its full ttl whenever it is issued. The key never leaves memory: a new execution
    environment certifies a key of its own.
    """

    def __init__(
        self, kms: KMSClient, key_id: str, issuer: str, max_ttl_seconds: int, clock: Clock = system_clock
    ) -> None:
        super().__init__(kms, key_id, issuer, max_ttl_seconds, clock)
        self._delegate: _Signer | None = None
        self._window = range(0)  # the seconds the current certificate lets its key sign: [nbf, exp)
        self._renewal = threading.Lock()  # concurrent first requests certify one key, not one each

    def _signer(self, now: int) -> _Signer:
        with self._renewal:
            # Also when the clock went back before nbf: a token's iat must lie inside its certificate.
            if self._delegate is None or now not in self._window:
                self._delegate = self._certified_signer(now)
                self._window = range(now, now + CERTIFICATE_LIFETIME_SECONDS)
            return self._delegate

    def _certified_signer(self, now: int) -> _Signer:
        private_key = ec.generate_private_key(ec.SECP256R1())
        certificate = issue_certificate(
            self._kms,
            self._key_id,
            kid=self._kid,
            issuer=self._issuer,
            public_key=private_key.public_key(),
            now=now,
        )

        # One line per kms:Sign of this mode: how often certificates are renewed, and by whom.
        logger.info(
            "certified a new token signing key",
            extra={"kid": self._kid, "expires_at": iso_timestamp(now + CERTIFICATE_LIFETIME_SECONDS)},
        )

        def sign(message: bytes) -> bytes:
            return raw_signature(private_key.sign(message, ES256))

        return _Signer(delegated_header_segment(certificate), sign)


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
        # PyJWT writes the JWK; imported here, as only the JWKS route needs it (a third of the first
        # token check's time in the other functions).
        from jwt.algorithms import ECAlgorithm  # noqa: PLC0415

        keys = []
        for kid in sorted(self.allowed):
            jwk = ECAlgorithm.to_jwk(self.get(kid), as_dict=True)
            keys.append(jwk | {"kid": kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": keys}


class TokenVerifier:
    """Checks a token with no AWS call once the key is cached; cheap checks run before any key lookup.

    One pass: split, strict-decode, parse; then header, claims, times (not expired, issued at most a
    minute ahead, living at most `max_ttl_seconds`), audience and issuer (and for a delegated token its
    certificate's issuer, purpose and window, which must hold the token's `iat`); only then the KMS public
    key (cached, else one `kms:GetPublicKey`) and the signatures. Both kinds of token are accepted whatever
    the stack's SigningMode, so changing it leaves the tokens already handed out valid.
    """

    def __init__(
        self, keys: PublicKeys, issuer: str, max_ttl_seconds: int, clock: Clock = system_clock
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._max_ttl = max_ttl_seconds
        self._clock = clock
        # The issuer's own header spellings, checked once here instead of decoded on every token.
        self._issued_headers = {issued_header_segment(kid): kid for kid in keys.allowed}
        self._certificate_headers = {certificate_header_segment(kid): kid for kid in keys.allowed}
        self._certificates = CertificateCache()

    def verify(self, token: str) -> TokenClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthorized("feedback token is missing or malformed")
        segments = token.split(".")
        if len(segments) != 3:
            malformed()
        header_segment, claims_segment, signature_segment = segments
        signer: str | Certificate | None = self._issued_headers.get(header_segment)
        if signer is None:
            signer = self._certificates.get(header_segment)
        known = signer is not None
        if signer is None:
            signer = self._read_header(header_segment)
        unverified = decode_object(claims_segment)
        signature = decode_segment(signature_segment)
        if len(signature) != SIGNATURE_BYTES or not is_low_s(signature):
            malformed()
        self._check_times(unverified)
        claims = self._check_claims(unverified)
        if isinstance(signer, Certificate):
            self._check_certificate_window(signer, claims)
            if not known:  # checked once, then cached
                self._check_signature(self._keys.get(signer.kid), signer.signing_input, signer.signature)
                self._certificates.put(header_segment, signer)
            public_key = signer.public_key
        else:
            public_key = self._keys.get(signer)
        self._check_signature(public_key, f"{header_segment}.{claims_segment}".encode("ascii"), signature)
        return claims

    def _read_header(self, header_segment: str) -> str | Certificate:
        """The `kid` of a KMS-signed token, or the certificate a delegated token carries."""
        header = decode_object(header_segment)
        if CERTIFICATE_FIELD not in header:
            return self._check_header(header)
        if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
            raise Unauthorized("feedback token has the wrong type or algorithm")
        if header.keys() != DELEGATED_HEADER_FIELDS:
            raise Unauthorized("feedback token has unexpected header fields")
        certificate = header[CERTIFICATE_FIELD]
        # One spelling: the header segment is the issuer's for this certificate, so it keys the cache.
        if not isinstance(certificate, str) or delegated_header_segment(certificate) != header_segment:
            malformed()
        return read_certificate(certificate, self._issuer, self._certificate_headers)

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
        expires, issued = integer_claim(claims, "exp"), integer_claim(claims, "iat")
        if expires is None or issued is None:
            raise Unauthorized("feedback token lacks exp or iat")
        if now >= expires:  # no leeway: issuer and verifier share one clock
            raise Unauthorized("feedback token has expired")
        if issued > now + IAT_SKEW_SECONDS:
            raise Unauthorized("feedback token is issued in the future")
        # What the issuer enforces, checked again: a key that signs outside the issuer (a delegated key
        # read from memory, or kms:Sign called with the issuer's role) cannot mint longer-lived tokens.
        if expires - issued > self._max_ttl:
            raise Unauthorized("feedback token lives longer than this stack allows")

    @staticmethod
    def _check_certificate_window(certificate: Certificate, claims: TokenClaims) -> None:
        """The token was signed while its certificate let its key sign: nbf <= iat < exp. The certificate
        need not be valid now; its tokens live on until their own exp (checked, like iat, with the token's
        times), so a certified key's tokens are all dead by the certificate's exp + the longest lifetime."""
        if not certificate.not_before <= claims.iat < certificate.expires:
            raise Unauthorized("feedback token was issued outside its certificate's window")

    def _check_claims(self, claims: dict[str, Any]) -> TokenClaims:
        """Required claims with their JSON types (strict: no coercion), for our audience and issuer."""
        try:
            checked = TokenClaims.model_validate(claims, strict=True)
        except ValidationError as error:
            raise Unauthorized("feedback token is invalid") from error
        if checked.aud != AUDIENCE or checked.iss != self._issuer:
            raise Unauthorized("feedback token is invalid")
        return checked

    @staticmethod
    def _check_signature(
        public_key: ec.EllipticCurvePublicKey, signing_input: bytes, signature: bytes
    ) -> None:
        try:
            public_key.verify(der_signature(signature), signing_input, ES256)
        except InvalidSignature as error:
            raise Unauthorized("feedback token is invalid") from error
