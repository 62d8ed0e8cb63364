"""Opaque, URL-safe, tamper-evident pagination cursors.

A cursor is `<payload>.<mac>` in base64url: the position to resume from, authenticated with HMAC-SHA256
over the position and the query it belongs to (project and filters), so it cannot be edited or replayed
against another project or another filter set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from typing import Any

from feedback_core.errors import BadRequest

_MAC_BYTES = 16
_CURSOR = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
"""`<payload>.<mac>`, unpadded base64url; `\\w` would admit other scripts' letters and digits."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def query_scope(**parts: Any) -> str:
    """A stable fingerprint of what a cursor may continue: the project and every filter."""
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("cursor secret must be at least 16 bytes")
        self._secret = secret

    def _mac(self, scope: str, payload: bytes) -> bytes:
        message = scope.encode() + b"\x00" + payload
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, scope: str, position: dict[str, Any]) -> str:
        payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64encode(payload)}.{_b64encode(self._mac(scope, payload))}"

    def decode(self, cursor: str, scope: str) -> dict[str, Any]:
        invalid = BadRequest("cursor is invalid: pass next_cursor back unchanged, with the same filters")
        if not _CURSOR.fullmatch(cursor):
            raise invalid
        payload_text, mac_text = cursor.split(".")
        try:
            payload, mac = _b64decode(payload_text), _b64decode(mac_text)
        except (ValueError, binascii.Error) as error:
            raise invalid from error
        # One spelling per cursor: the decoder ignores the unused bits of a last character.
        if (_b64encode(payload), _b64encode(mac)) != (payload_text, mac_text):
            raise invalid
        if not hmac.compare_digest(mac, self._mac(scope, payload)):
            raise invalid
        try:
            position = json.loads(payload)
        except ValueError as error:  # not UTF-8, not JSON, or an integer too long for int()
            raise invalid from error
        if not isinstance(position, dict):
            raise invalid
        return position
