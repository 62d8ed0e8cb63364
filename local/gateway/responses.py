"""HTTP responses: API Gateway's own errors, and what it makes of a payload format 2.0 function result."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from local.gateway.payload import joined_header

HTTP_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2: methods and header names
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 §5.5: not in a header value
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return joined_header(self.headers, name)

    def json(self) -> Any:
        return json.loads(self.body)


def gateway_error(status: int, message: str) -> HttpResponse:
    """API Gateway's own error format: ``{"message": "..."}``."""
    return HttpResponse(
        status, [("content-type", "application/json")], json.dumps({"message": message}).encode()
    )


class InvalidResponse(ValueError):
    """The function's result is not a valid HTTP API response."""


def translate_response(result: Any) -> HttpResponse:
    """The HTTP response API Gateway makes of a payload format 2.0 function result."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Format 2.0 infers the response: 200, JSON, the result as the body.
        return HttpResponse(200, [("content-type", "application/json")], json.dumps(result).encode())
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise InvalidResponse(f"statusCode {status!r} is not an HTTP status")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        if isinstance(value, (dict, list)) or value is None:
            raise InvalidResponse(f"header {name} has a non-scalar value")
        headers.append((str(name), _scalar(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if not isinstance(values, list):
            raise InvalidResponse(f"multiValueHeaders.{name} is not a list")
        if str(name).lower() not in {key.lower() for key, _ in headers}:  # headers wins, as in API Gateway
            headers += [(str(name), _scalar(value)) for value in values]
    headers += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
    for name, value in headers:
        # HTTP/1.1 cannot carry them (a line break would even start a header of its own).
        if not HTTP_TOKEN.fullmatch(name):
            raise InvalidResponse(f"header name {name!r} is not an HTTP token")
        if CONTROL_CHARACTERS.search(value):
            raise InvalidResponse(f"header {name} has a control character")
    headers = [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]
    body = "" if result.get("body") is None else result["body"]
    if not isinstance(body, str):
        raise InvalidResponse("body is not a string")
    if result.get("isBase64Encoded") is not True:
        return HttpResponse(status, headers, body.encode("utf-8"))
    try:
        return HttpResponse(status, headers, base64.b64decode(body, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InvalidResponse("isBase64Encoded but the body is not base64") from exc


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
