"""Compact JWS (ES256) pieces shared by feedback tokens and the certificates of delegated signing keys.

One spelling only: canonical base64url segments (no padding, unused bits zero), strict UTF-8 JSON
objects, and the low-S form of every ECDSA signature. Anything else is refused as malformed, so a token
or certificate is a stable string and no parser disagreement can be smuggled through.
"""

from __future__ import annotations

import base64
import json
import re
from typing import TYPE_CHECKING, Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from feedback_core.errors import Unauthorized
from feedback_core.token_limits import COORDINATE_BYTES

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

ALGORITHM = "ES256"
TOKEN_TYPE = "feedback+jwt"  # noqa: S105 (a media type, not a secret)

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
"""n, the order of P-256. An ECDSA signature (r, s) is equally valid as (r, n - s); signers write the
low-S form and verifiers accept only that, so a signed object has exactly one spelling."""

ES256 = ec.ECDSA(hashes.SHA256())

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_UNUSED_BITS_MASK = {0: 0, 2: 0b1111, 3: 0b11}


def malformed(error: Exception | None = None) -> NoReturn:
    raise Unauthorized("feedback token is malformed") from error


def compact_json(value: Any) -> bytes:
    # ensure_ascii=False: a non-ASCII id costs its UTF-8 bytes (1-4), not 6-12 bytes of \u escapes.
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def encode_segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_segment(segment: str) -> bytes:
    """Bytes of a canonical base64url segment, the one spelling `encode_segment` produces."""
    # A length of 4n + 1 characters encodes no whole number of bytes.
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        malformed()
    # The last character of a 4n + 2 (4n + 3) character segment carries 4 (2) unused bits: zero in the
    # one spelling, else the same bytes would have several.
    unused_mask = _UNUSED_BITS_MASK[len(segment) % 4]
    if unused_mask and _BASE64URL_ALPHABET.index(segment[-1]) & unused_mask:
        malformed()
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins; no signer here writes one.
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("duplicate object key")
    return value


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)
"""Built once: json.loads with hooks builds a decoder per call."""


def decode_object(segment: str, *, canonical: bool = False) -> dict[str, Any]:
    """The JSON object in a header or claims segment: strict UTF-8, strict JSON, an object. With
    `canonical`, also exactly the bytes `compact_json` writes for it (one spelling of the JSON too)."""
    data = decode_segment(segment)
    try:
        value = _STRICT_JSON.decode(data.decode("utf-8"))
    # UnicodeDecodeError, JSONDecodeError and "integer too long" are ValueErrors; deep nesting recurses.
    except (ValueError, RecursionError) as error:
        malformed(error)
    if not isinstance(value, dict) or (canonical and compact_json(value) != data):
        malformed()
    return value


def integer_claim(claims: dict[str, Any], name: str) -> int | None:
    """A claim that is a JSON integer (`true` is not 1 here), else None."""
    value = claims.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def is_low_s(signature: bytes) -> bool:
    s = int.from_bytes(signature[COORDINATE_BYTES:], "big")
    return s <= P256_ORDER // 2


def raw_signature(der: bytes) -> bytes:
    """JWS wants raw r || s (KMS and `cryptography` return DER), in the low-S form."""
    r, s = decode_dss_signature(der)
    s = min(s, P256_ORDER - s)  # (r, n - s) verifies too: only the low-S form is the one spelling
    return r.to_bytes(COORDINATE_BYTES, "big") + s.to_bytes(COORDINATE_BYTES, "big")


def der_signature(raw: bytes) -> bytes:
    return encode_dss_signature(
        int.from_bytes(raw[:COORDINATE_BYTES], "big"), int.from_bytes(raw[COORDINATE_BYTES:], "big")
    )


def kms_sign(kms: KMSClient, key_id: str, message: bytes) -> bytes:
    """One `kms:Sign` of a RAW message (at most KMS_MAX_MESSAGE_BYTES), as a JWS signature."""
    der = kms.sign(KeyId=key_id, Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
    return raw_signature(der["Signature"])
