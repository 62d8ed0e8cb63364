"""Public metadata: JWKS, OpenAPI document, API docs page (with its files), web widget, dashboard, health."""

import json
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedback_core import services
from feedback_core.errors import NotFound
from feedback_core.http import FeedbackResolver, json_response
from feedback_core.observability import logger, tracer
from feedback_core.settings import TokenLifetimeSettings, VerifyKeySettings, load_settings
from feedback_core.static_files import StaticFile, static_response

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
# The pages served here (docs, dashboard) load scripts, styles and data from this API only.
PAGE_HEADERS = {
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",  # Swagger UI's icons are data: URIs in its stylesheet
            "connect-src 'self'",  # the OpenAPI document, the dashboard's queries, "Try it out" requests
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    ),
    "X-Content-Type-Options": "nosniff",
}
DOCS_PAGE_HEADERS = PAGE_HEADERS | {"Cache-Control": "public, max-age=300"}
# The widget and the dashboard, built from clients/web by `make web` (see web/manifest.json).
WEB = Path(__file__).with_name("web")
WIDGET = "feedback-widget.js"
DASHBOARD_PAGE = "dashboard.html"


@cache
def _docs_assets() -> dict[str, StaticFile]:
    """The files served under /v1/docs/: those listed in the vendoring manifest, and the page's script."""
    manifest = json.loads((DOCS_UI / "manifest.json").read_text())
    names = [*manifest["files"], DOCS_SCRIPT]
    return {name: StaticFile.read(DOCS_UI / name) for name in names}


@cache
def _docs_page() -> str:
    page = DOCS_PAGE
    for name, asset in _docs_assets().items():
        page = page.replace("{" + name + "}", f"docs/{name}?v={asset.version}")
    return page


@cache
def _web_files() -> dict[str, StaticFile]:
    """The built web files (the widget, the dashboard page and its files), as the manifest lists them."""
    manifest = json.loads((WEB / "manifest.json").read_text())
    return {name: StaticFile.read(WEB / name) for name in manifest["files"]}


def _dashboard_files() -> dict[str, StaticFile]:
    """What /dashboard/<asset> serves: the page's own files (not the page, nor the widget)."""
    return {name: found for name, found in _web_files().items() if name not in (DASHBOARD_PAGE, WIDGET)}


@cache
def _dashboard_page() -> str:
    """The page with each "{file}" replaced by that file's versioned URL, relative to /dashboard."""
    page = _web_files()[DASHBOARD_PAGE].content.decode()
    for name, found in _dashboard_files().items():
        page = page.replace("{" + name + "}", f"dashboard/{name}?v={found.version}")
    return page.replace("{" + WIDGET + "}", f"v1/widget.js?v={_web_files()[WIDGET].version}")


def _serve(found: StaticFile, extra_headers: dict[str, str] | None = None) -> Response[str]:
    event = app.current_event
    return static_response(
        found,
        versioned=event.get_query_string_value("v") == found.version,
        accept_encoding=event.get_header_value("accept-encoding", ""),
        if_none_match=event.get_header_value("if-none-match", ""),
        headers=extra_headers,
    )


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
    return _serve(found)


# Any value is taken: a page cached before a deploy carries the old version, and a site may add a
# cache-buster of its own; either still gets the file, only not for a year.
WidgetVersion = Annotated[
    str | None,
    Query(
        alias="v",
        description="Cache-busting: the widget's current version (the 16 hex digits its ETag holds) makes "
        "the answer cacheable for a year (`immutable`); any other value is served as the plain URL is "
        "(5 minutes, then revalidated by ETag)",
    ),
]


@app.get("/v1/widget.js", summary="The web widget: the custom element <feedback-widget>")
def widget(_version: WidgetVersion = None) -> Response[str]:
    # Any site may load it (a module script is fetched with CORS); API Gateway's CORS settings still
    # decide which origins may then call the API with a token. `?v=` is declared for the OpenAPI document;
    # `_serve` reads it from the request, as for every versioned file.
    return _serve(_web_files()[WIDGET], {"Cross-Origin-Resource-Policy": "cross-origin"})


# The dashboard is a page of this stack, not part of the API: it stays out of the OpenAPI document.
@app.get("/dashboard", include_in_schema=False)
def dashboard() -> Response[str]:
    return Response(
        status_code=HTTPStatus.OK,
        content_type=content_types.TEXT_HTML,
        body=_dashboard_page(),
        headers=PAGE_HEADERS | {"Cache-Control": "no-cache"},
    )


@app.get("/dashboard/<asset>", include_in_schema=False)
def dashboard_asset(asset: str) -> Response[str]:
    found = _dashboard_files().get(asset)
    if found is None:
        raise NotFound("no such file of the dashboard")
    return _serve(found)


@app.get("/v1/health", summary="Liveness check")
def health() -> Response[Any]:
    return json_response(HTTPStatus.OK, {"status": "ok"})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
