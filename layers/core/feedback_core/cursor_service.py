"""The pagination cursor's codec, keyed by a Secrets Manager secret (Powertools' parameters utility)."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

from feedback_core.cursor import CursorCodec
from feedback_core.settings import get_settings

CURSOR_SECRET_MAX_AGE_SECONDS = 3600


def cursor_codec() -> CursorCodec:
    """Cursor signing key from Secrets Manager, cached by Powertools for an hour."""
    secret = parameters.get_secret(get_settings().cursor_secret_arn, max_age=CURSOR_SECRET_MAX_AGE_SECONDS)
    return CursorCodec(str(secret).encode())


def reset() -> None:
    parameters.clear_caches()  # type: ignore[no-untyped-call]
