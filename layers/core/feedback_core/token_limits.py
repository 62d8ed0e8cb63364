"""Sizes of a feedback token, in a module of its own so that request models can bound the token
(`models` cannot import `tokens`, which imports `models`)."""

from __future__ import annotations

KMS_MAX_MESSAGE_BYTES = 4096
"""KMS `Sign` with `MessageType=RAW` takes at most 4,096 bytes of message (`Message`, "Messages can be
0-4096 bytes"): https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html. The signing input
(`header.claims`) is the RAW message, so it is bounded by this; longer requests are refused with 422.
A certificate of a delegated signing key is a RAW message too. A delegated token, signed locally, keeps
the same bound (its header carries the certificate, so its claims get less room): one token size limit
whatever the SigningMode."""
COORDINATE_BYTES = 32
"""P-256 coordinates and ECDSA r, s are 32 bytes each."""
SIGNATURE_BYTES = 2 * COORDINATE_BYTES
"""A JWS ES256 signature is raw r || s (RFC 7518, section 3.4), not DER."""


def encoded_length(byte_count: int) -> int:
    """Length of the unpadded base64url encoding of `byte_count` bytes."""
    return (4 * byte_count + 2) // 3


SIGNATURE_LENGTH = encoded_length(SIGNATURE_BYTES)  # 86
MAX_TOKEN_LENGTH = KMS_MAX_MESSAGE_BYTES + 1 + SIGNATURE_LENGTH
"""The longest token the issuer can produce in either mode (signing input, dot, signature): 4,183
characters. Anything longer is refused before it is parsed; request models bound `feedback_token` with it
too."""
