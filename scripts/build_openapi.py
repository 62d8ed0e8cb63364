"""Writes functions/meta/openapi.json: one OpenAPI document merged from every API function's routes.

Run `make openapi` after changing a route or a model; a test fails while the file is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from feedback_core.models import ListQuery, PageQuery
from feedback_core.stats import StatsQuery
from local.functions import import_file

ROOT = Path(__file__).resolve().parents[1]
API_FUNCTIONS = ["issue_token", "submit_feedback", "query", "admin", "meta"]
TARGET = ROOT / "functions" / "meta" / "openapi.json"
QUERY_MODELS: dict[str, type[BaseModel]] = {
    "/v1/feedback": ListQuery,
    "/v1/runs/{run_id}/feedback": PageQuery,
    "/v1/stats": StatsQuery,
}


def _app(name: str) -> Any:
    return import_file(f"openapi_{name}", ROOT / "functions" / name / "app.py").app


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Query strings validated by a model in the handler, described as OpenAPI parameters."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field}
        for name, field in schema["properties"].items()
    ]


def build() -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name in API_FUNCTIONS:
        schema = json.loads(
            _app(name).get_openapi_json_schema(
                title="Feedback service API",
                version="1.0.0",
                description="Collect end-user feedback on AI responses. See docs/API.md.",
            )
        )
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                if name in ("issue_token", "query", "admin"):
                    operation["security"] = [{"apiKey": []}]
                elif name == "submit_feedback":
                    operation["security"] = [{"feedbackToken": []}]
            document.setdefault("paths", {}).setdefault(path, {}).update(operations)
        schemas = schema.get("components", {}).get("schemas", {})
        document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
        document |= {key: value for key, value in schema.items() if key not in ("paths", "components")}
    for path, model in QUERY_MODELS.items():
        document["paths"][path]["get"]["parameters"] = _query_parameters(model)
    document["components"]["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer fbk_..."},
        "feedbackToken": {"type": "apiKey", "in": "header", "name": "X-Feedback-Token"},
    }
    document["paths"] = dict(sorted(document["paths"].items()))
    document["components"]["schemas"] = dict(sorted(document["components"]["schemas"].items()))
    return document


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET.relative_to(ROOT)}", file=sys.stderr)
