"""Invoke the real Lambda handlers in-process with events built from the samples in events/."""

from __future__ import annotations

import base64
import copy
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from local.functions import import_file, lambda_context
from tests.support.aws_limits import LAMBDA_MAX_RESPONSE_BYTES

ROOT = Path(__file__).resolve().parents[2]


def load_function(name: str) -> ModuleType:
    """functions/<name>/app.py as a module of its own, imported once."""
    module_name = f"function_{name}_app"
    return sys.modules.get(module_name) or import_file(module_name, ROOT / "functions" / name / "app.py")


def sample_event(name: str) -> dict[str, Any]:
    return dict(json.loads((ROOT / "events" / f"{name}.json").read_text()))


def http_event(
    sample: str,
    *,
    body: Any = None,
    raw_body: str | bytes | None = None,
    headers: dict[str, str | None] | None = None,
    query: dict[str, str] | None = None,
    path_params: dict[str, str] | None = None,
    raw_path: str | None = None,
    authorizer: dict[str, Any] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event: the sample events/http_<sample>.json, edited."""
    event = copy.deepcopy(sample_event(f"http_{sample}"))
    for name, value in (headers or {}).items():
        if value is None:
            event["headers"].pop(name.lower(), None)
        else:
            event["headers"][name.lower()] = value
    if raw_body is None and body is not None:
        raw_body = json.dumps(body)
    if isinstance(raw_body, bytes):  # bytes arrive base64-encoded, as API Gateway sends non-text bodies
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw_body).decode(), True
    elif raw_body is not None:
        event["body"] = base64.b64encode(raw_body.encode()).decode() if base64_body else raw_body
        event["isBase64Encoded"] = base64_body
    if query is not None:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{key}={value}" for key, value in query.items())
    if path_params is not None:
        event["pathParameters"] = path_params
        path = event["routeKey"].split(" ", 1)[1]
        for key, value in path_params.items():
            path = path.replace("{" + key + "}", value)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
    if raw_path is not None:
        event["rawPath"] = event["requestContext"]["http"]["path"] = raw_path
    if authorizer is not None:
        event["requestContext"]["authorizer"] = {"lambda": authorizer}
    return event


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any

    @classmethod
    def parse(cls, status: int, headers: dict[str, str], text: str) -> HttpResult:
        """Headers lowercased; a JSON body decoded."""
        headers = {key.lower(): value for key, value in headers.items()}
        body = json.loads(text) if text and "json" in headers.get("content-type", "") else text
        return cls(status, headers, body)


def http_result(response: dict[str, Any]) -> HttpResult:
    """A handler's HTTP API response, checked against Lambda's response size limit."""
    size = len(json.dumps(response).encode())
    assert size <= LAMBDA_MAX_RESPONSE_BYTES, f"the handler answered {size} bytes; Lambda refuses over 6 MB"
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    return HttpResult.parse(response["statusCode"], response.get("headers") or {}, text)


def invoke_http(function: str, event: dict[str, Any]) -> HttpResult:
    return http_result(load_function(function).lambda_handler(event, lambda_context(function)))
