"""Public metadata: JWKS, OpenAPI document, API docs page (with its files) and health."""

import base64
import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache, cached_property
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedback_core import services
from feedback_core.errors import NotFound
from feedback_core.http import FeedbackResolver, json_response
from feedback_core.observability import logger, tracer
from feedback_core.settings import TokenLifetimeSettings, VerifyKeySettings, load_settings

app = FeedbackResolver(requires=(TokenLifetimeSettings, VerifyKeySettings))
OPENAPI_FILE = Path(__file__).with_name("openapi.json")
# The spec and its docs page are public on purpose: they describe the API and hold no secrets.
# The page is self-contained: Swagger UI is vendored in docs_ui/ (see its manifest.json and
# `make vendor-docs-ui`) and served by this function, so it works offline and under a strict CSP.
DOCS_UI = Path(__file__).with_name("docs_ui")
# The page's own code, served next to the vendored files (the CSP allows no inline script).
DOCS_SCRIPT = "init.js"
# URLs relative to /v1/docs (no trailing slash), so they resolve under /v1/ with or without a stage.
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Feedback service API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{swagger-ui.css}"></head>
<body><div id="ui" data-spec-url="openapi.json"></div>
<script src="{swagger-ui-bundle.js}"></script>
<script src="{init.js}"></script>
</body></html>
"""
DOCS_PAGE_HEADERS = {
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",  # Swagger UI's icons are data: URIs in its stylesheet
            "connect-src 'self'",  # the OpenAPI document, and "Try it out" requests to this API
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=300",
}
ASSET_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
PLAIN_TEXT = "text/plain; charset=utf-8"  # LICENSE, NOTICE, *.txt
# An asset URL carrying the file's current version never changes content, so browsers keep it a year.
VERSIONED_CACHE = "public, max-age=31536000, immutable"
UNVERSIONED_CACHE = "public, max-age=300"


@dataclass(frozen=True)
class DocsAsset:
    """One file the docs page loads, read once per execution environment."""

    name: str
    content: bytes

    @cached_property
    def version(self) -> str:
        """The start of the file's SHA-256: a new file gets a new URL, so a cached one never goes stale."""
        return hashlib.sha256(self.content).hexdigest()[:16]

    @property
    def url(self) -> str:
        return f"docs/{self.name}?v={self.version}"

    @property
    def content_type(self) -> str:
        return ASSET_CONTENT_TYPES.get(Path(self.name).suffix, PLAIN_TEXT)

    @cached_property
    def gzipped_base64(self) -> str:
        # Compressed once per execution environment: the bundle shrinks from 1.7 MB to under 0.5 MB.
        return base64.b64encode(gzip.compress(self.content, mtime=0)).decode()


@cache
def _docs_assets() -> dict[str, DocsAsset]:
    """The files served under /v1/docs/: those listed in the vendoring manifest, and the page's script."""
    manifest = json.loads((DOCS_UI / "manifest.json").read_text())
    names = [*manifest["files"], DOCS_SCRIPT]
    return {name: DocsAsset(name, (DOCS_UI / name).read_bytes()) for name in names}


@cache
def _docs_page() -> str:
    page = DOCS_PAGE
    for name, asset in _docs_assets().items():
        page = page.replace("{" + name + "}", asset.url)
    return page


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip;q=0`` refuses it)."""
    for entry in accept_encoding.lower().split(","):
        coding, *parameters = (part.strip() for part in entry.split(";"))
        if coding == "gzip":
            return not any(re.fullmatch(r"q=0(\.0*)?", parameter) for parameter in parameters)
    return False


@cache
def _openapi(token_ttl_seconds: int) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_FILE.read_text())
    # The longest token lifetime is this stack's TokenTtlSeconds, known only once deployed.
    ttl = document["components"]["schemas"]["TokenRequest"]["properties"]["ttl_seconds"]["anyOf"][0]
    ttl["maximum"] = token_ttl_seconds
    return document


@app.get("/.well-known/jwks.json", summary="Public keys that verify feedback tokens")
def jwks() -> Response[Any]:
    return json_response(
        HTTPStatus.OK, services.public_keys().jwks(), {"Cache-Control": "public, max-age=300"}
    )


@app.get("/v1/openapi.json", summary="This API's OpenAPI document")
def openapi() -> Response[Any]:
    ttl_seconds = load_settings(TokenLifetimeSettings).token_ttl_seconds
    return json_response(HTTPStatus.OK, _openapi(ttl_seconds), {"Cache-Control": "public, max-age=300"})


@app.get("/v1/docs", summary="Interactive API documentation")
def docs() -> Response[str]:
    return Response(
        status_code=HTTPStatus.OK,
        content_type=content_types.TEXT_HTML,
        body=_docs_page(),
        headers=DOCS_PAGE_HEADERS,
    )


# Part of the docs page rather than of the API, so it stays out of the OpenAPI document.
@app.get("/v1/docs/<asset>", include_in_schema=False)
def docs_asset(asset: str) -> Response[str]:
    found = _docs_assets().get(asset)
    if found is None:
        raise NotFound("no such file of the docs page")
    event = app.current_event
    versioned = event.get_query_string_value("v") == found.version
    headers = {
        "Cache-Control": VERSIONED_CACHE if versioned else UNVERSIONED_CACHE,
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    if not _accepts_gzip(event.get_header_value("accept-encoding", "")):
        body = found.content.decode()
        return Response(HTTPStatus.OK, found.content_type, body, headers)
    headers["Content-Encoding"] = "gzip"
    response = Response(HTTPStatus.OK, found.content_type, found.gzipped_base64, headers)
    # The body is already base64 text: bytes would not pass the resolver's response validation.
    response.base64_encoded = True
    return response


@app.get("/v1/health", summary="Liveness check")
def health() -> Response[Any]:
    return json_response(HTTPStatus.OK, {"status": "ok"})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
