"""The web widget and the dashboard: the committed build matches clients/web, the widget stays small, and
the meta function serves them with the right types, caching, CSP and revalidation."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from typing import Any

import pytest

from local.functions import lambda_context
from scripts.build_web import MANIFEST, TARGET, WIDGET, render, size_table, with_size_table
from tests.support.handlers import ROOT, http_event, invoke_http, load_function

WIDGET_GZIP_LIMIT = 10 * 1024
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
BUILT = json.loads((TARGET / MANIFEST).read_text())


def call(
    sample: str,
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str | None] | None = None,
    path_params: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The meta function's raw answer (body possibly base64 and gzip)."""
    event = http_event(sample, query=query, headers=headers, path_params=path_params)
    response: dict[str, Any] = load_function("meta").lambda_handler(event, lambda_context("meta"))
    return response


def body_bytes(response: dict[str, Any]) -> bytes:
    body = response["body"]
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return gzip.decompress(raw) if response["headers"].get("Content-Encoding") == "gzip" else raw


def widget_version() -> str:
    return hashlib.sha256((TARGET / WIDGET).read_bytes()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------- the build


def test_committed_build_is_current() -> None:
    expected = render()
    on_disk = {path.name: path.read_bytes() for path in TARGET.iterdir()}
    names = expected.keys() | on_disk.keys()
    stale = sorted(name for name in names if expected.get(name) != on_disk.get(name))
    assert stale == [], f"functions/meta/web is stale ({', '.join(stale)}): run `make web` and commit it"


def test_manifest_pins_each_file() -> None:
    assert BUILT["minifier"].startswith("rjsmin ")
    assert WIDGET in BUILT["files"]
    for name, entry in BUILT["files"].items():
        content = (TARGET / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(content).hexdigest(), name
        assert entry["bytes"] == len(content), name
        assert (ROOT / entry["source"]).is_file(), name


def test_widget_is_minified_and_small() -> None:
    source = (ROOT / "clients" / "web" / WIDGET).read_bytes()
    built = (TARGET / WIDGET).read_bytes()
    compressed = len(gzip.compress(built, compresslevel=9, mtime=0))
    assert compressed <= WIDGET_GZIP_LIMIT, f"{WIDGET} is {compressed} bytes gzipped, over 10 KB"
    assert compressed == BUILT["files"][WIDGET]["gzip_bytes"]
    assert len(built) < len(source)
    assert b"\n  " not in built, "the built widget keeps its indentation: not minified"


def test_widget_size_is_the_one_in_the_benchmarks() -> None:
    benchmarks = (ROOT / "docs" / "BENCHMARKS.md").read_text()
    assert "## Web widget size" in benchmarks
    expected = with_size_table(benchmarks, size_table(render()))
    assert benchmarks == expected, "docs/BENCHMARKS.md shows other sizes: run `make web`"


def test_make_web_builds_into_the_function() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^web: setup\n\t\$\(BIN\)/python scripts/build_web.py$", makefile, re.MULTILINE)
    packaging = (ROOT / "functions" / "meta" / "Makefile").read_text()
    assert re.search(r"cp -R .*\bweb\b", packaging), "sam build would leave the web files out"


# ---------------------------------------------------------------------------------- /v1/widget.js


def test_widget_is_served_as_javascript_with_an_etag() -> None:
    response = call("widget")
    headers = response["headers"]
    assert response["statusCode"] == 200
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["ETag"] == f'"{widget_version()}"'
    assert headers["Cache-Control"] == SHORT
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert body_bytes(response) == (TARGET / WIDGET).read_bytes()


def test_versioned_widget_url_is_cached_for_good() -> None:
    assert call("widget", query={"v": widget_version()})["headers"]["Cache-Control"] == IMMUTABLE
    for stale in ("", "0123456789abcdef", "x" * 300):
        assert call("widget", query={"v": stale})["headers"]["Cache-Control"] == SHORT


@pytest.mark.parametrize("if_none_match", ['"{v}"', 'W/"{v}"', '"0000000000000000", "{v}"', "*"], ids=str)
def test_current_etag_is_304_without_body(if_none_match: str) -> None:
    response = call("widget", headers={"if-none-match": if_none_match.format(v=widget_version())})
    assert response["statusCode"] == 304
    assert response["body"] == ""
    assert response["headers"]["ETag"] == f'"{widget_version()}"'
    assert "Content-Encoding" not in response["headers"]


def test_other_etag_gets_the_file() -> None:
    response = call("widget", headers={"if-none-match": '"0000000000000000"'})
    assert response["statusCode"] == 200
    assert body_bytes(response) == (TARGET / WIDGET).read_bytes()


def test_widget_is_gzipped_when_accepted() -> None:
    response = call("widget", headers={"accept-encoding": "gzip, br"})
    assert response["headers"]["Content-Encoding"] == "gzip"
    assert response["isBase64Encoded"] is True
    assert len(base64.b64decode(response["body"])) <= WIDGET_GZIP_LIMIT
    assert body_bytes(response) == (TARGET / WIDGET).read_bytes()


# ------------------------------------------------------------------------------------ /dashboard


def test_dashboard_page_loads_versioned_files_of_its_own_under_a_strict_csp() -> None:
    result = invoke_http("meta", http_event("dashboard"))
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/html")
    assert result.headers["content-security-policy"] == PAGE_CSP
    page = str(result.body)
    assert not re.findall(r"\{[\w.-]+\}", page), "a file placeholder is left"
    urls = re.findall(r'<(?:script|img)\b[^>]*\bsrc="([^"]+)"|<link\b[^>]*\bhref="([^"]+)"', page)
    loaded = [url for pair in urls for url in pair if url and not url.startswith("data:")]
    assert loaded, "the dashboard loads no file"
    for url in loaded:
        match = re.fullmatch(r"(dashboard/([\w.-]+)|v1/widget\.js)\?v=([0-9a-f]{16})", url)
        assert match, f"the dashboard loads {url}, not a versioned file of this API"
        if match[2]:
            response = call("dashboard_asset", path_params={"asset": match[2]}, query={"v": match[3]})
            assert response["statusCode"] == 200, url
            assert response["headers"]["Cache-Control"] == IMMUTABLE, url


@pytest.mark.parametrize("name", sorted(set(BUILT["files"]) - {"dashboard.html", WIDGET}))
def test_dashboard_files_are_served(name: str) -> None:
    response = call("dashboard_asset", path_params={"asset": name})
    assert response["statusCode"] == 200
    assert body_bytes(response) == (TARGET / name).read_bytes()
    expected_type = {".js": "text/javascript", ".css": "text/css"}.get(name[name.rfind(".") :], "text/plain")
    assert response["headers"]["Content-Type"].startswith(expected_type)


@pytest.mark.parametrize(
    "name", ["dashboard.html", WIDGET, MANIFEST, "app.py", "..", "openapi.json", "index.html", "x"]
)
def test_other_files_are_not_dashboard_files(name: str) -> None:
    response = call("dashboard_asset", path_params={"asset": name})
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"]["code"] == "not_found"


@pytest.mark.parametrize("sample", ["widget", "dashboard", "dashboard_asset"])
def test_sample_events_are_answered(sample: str) -> None:
    assert call(sample)["statusCode"] == 200
