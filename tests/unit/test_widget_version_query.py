"""`GET /v1/widget.js?v=<version>`: the OpenAPI document declares the cache-busting query parameter the
handler reads, and every value it declares valid is answered with the file."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.handlers import ROOT
from tests.unit.test_web_assets import IMMUTABLE, SHORT, call, widget_version

OPENAPI = ROOT / "functions" / "meta" / "openapi.json"


def widget_parameters() -> list[dict[str, Any]]:
    document = json.loads(OPENAPI.read_text())
    parameters: list[dict[str, Any]] = document["paths"]["/v1/widget.js"]["get"]["parameters"]
    return parameters


def test_the_widget_declares_v_as_an_optional_query_string() -> None:
    (parameter,) = widget_parameters()
    assert (parameter["name"], parameter["in"], parameter["required"]) == ("v", "query", False)
    assert parameter["schema"]["type"] == "string"
    assert "immutable" in parameter["description"]


@pytest.mark.parametrize("value", ["", "1.2.3", "0123456789abcdef,fedcba9876543210", "é" * 40], ids=repr)
def test_any_other_version_gets_the_file_for_a_short_while(value: str) -> None:
    response = call("widget", query={"v": value})
    assert response["statusCode"] == 200
    assert response["headers"]["Cache-Control"] == SHORT


def test_the_current_version_is_cached_for_good_with_the_declared_parameter() -> None:
    response = call("widget", query={"v": widget_version()})
    assert (response["statusCode"], response["headers"]["Cache-Control"]) == (200, IMMUTABLE)
