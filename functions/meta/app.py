"""Public metadata: JWKS, OpenAPI document, API docs page and health."""

import json
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedback_core import services
from feedback_core.http import FeedbackResolver, json_response
from feedback_core.observability import logger, tracer

app = FeedbackResolver()
OPENAPI_FILE = Path(__file__).with_name("openapi.json")
# The spec and its docs page are public on purpose: they describe the API and hold no secrets.
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Feedback service API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "openapi.json", dom_id: "#ui"});</script>
</body></html>
"""


@cache
def _openapi() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_FILE.read_text())
    return document


@app.get("/.well-known/jwks.json", summary="Public keys that verify feedback tokens")
def jwks() -> Response[Any]:
    return json_response(
        HTTPStatus.OK, services.public_keys().jwks(), {"Cache-Control": "public, max-age=300"}
    )


@app.get("/v1/openapi.json", summary="This API's OpenAPI document")
def openapi() -> Response[Any]:
    return json_response(HTTPStatus.OK, _openapi(), {"Cache-Control": "public, max-age=300"})


@app.get("/v1/docs", summary="Interactive API documentation")
def docs() -> Response[str]:
    return Response(status_code=HTTPStatus.OK, content_type=content_types.TEXT_HTML, body=DOCS_PAGE)


@app.get("/v1/health", summary="Liveness check")
def health() -> Response[Any]:
    return json_response(HTTPStatus.OK, {"status": "ok"})


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
