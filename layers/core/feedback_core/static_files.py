"""Files served as they are (pages' scripts, stylesheets, the web widget): type, version, caching, gzip.

Each file is read once per execution environment. Its version is the start of its SHA-256, used both in
versioned URLs (``?v=<version>``, cached for a year since the content behind them never changes) and as
its ETag (so an unversioned URL is revalidated with a 304 instead of downloaded again).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus
from pathlib import Path

from aws_lambda_powertools.event_handler import Response

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
}
PLAIN_TEXT = "text/plain; charset=utf-8"  # LICENSE, NOTICE, *.txt
VERSIONED_CACHE = "public, max-age=31536000, immutable"
UNVERSIONED_CACHE = "public, max-age=300"


@dataclass(frozen=True)
class StaticFile:
    """One file's content and what serving it needs."""

    name: str
    content: bytes

    @classmethod
    def read(cls, path: Path) -> StaticFile:
        return cls(path.name, path.read_bytes())

    @cached_property
    def version(self) -> str:
        """A new content gets a new version, so a URL carrying it never serves a stale copy."""
        return hashlib.sha256(self.content).hexdigest()[:16]

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(Path(self.name).suffix, PLAIN_TEXT)

    @cached_property
    def gzipped_base64(self) -> str:
        # Compressed once per execution environment, not per request.
        return base64.b64encode(gzip.compress(self.content, mtime=0)).decode()


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip;q=0`` refuses it)."""
    for entry in accept_encoding.lower().split(","):
        coding, *parameters = (part.strip() for part in entry.split(";"))
        if coding == "gzip":
            return not any(re.fullmatch(r"q=0(\.0*)?", parameter) for parameter in parameters)
    return False


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match header names this ETag (weak comparison, as RFC 9110 asks for GET)."""
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def static_response(
    found: StaticFile,
    *,
    versioned: bool,
    accept_encoding: str,
    if_none_match: str = "",
    headers: dict[str, str] | None = None,
) -> Response[str]:
    """200 with the file (gzip when accepted), or 304 when the caller's copy is current."""
    all_headers = {
        "Cache-Control": VERSIONED_CACHE if versioned else UNVERSIONED_CACHE,
        "ETag": found.etag,
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
        **(headers or {}),
    }
    if if_none_match and etag_matches(if_none_match, found.etag):
        return Response(HTTPStatus.NOT_MODIFIED, None, "", all_headers)
    if not accepts_gzip(accept_encoding):
        return Response(HTTPStatus.OK, found.content_type, found.content.decode(), all_headers)
    all_headers["Content-Encoding"] = "gzip"
    response = Response(HTTPStatus.OK, found.content_type, found.gzipped_base64, all_headers)
    # The body is already base64 text: bytes would not pass the resolver's response validation.
    response.base64_encoded = True
    return response
