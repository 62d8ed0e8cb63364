"""The docs page and its vendored Swagger UI: committed files as the manifest pins them, served by the meta
function with the right types, caching and CSP, and nothing else under /v1/docs/."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from local.functions import lambda_context
from tests.support.handlers import ROOT, HttpResult, http_event, invoke_http, load_function

DOCS_UI = ROOT / "functions" / "meta" / "docs_ui"
MANIFEST = json.loads((DOCS_UI / "manifest.json").read_text())
PAGE_SCRIPT = "init.js"
EXPECTED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
IMMUTABLE = "public, max-age=31536000, immutable"


class PageLinks(HTMLParser):
    """The URLs a page loads (script src, link href, img src) and the text of inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src") or (attributes.get("href") if tag == "link" else None)
        if url:
            self.urls.append(url)
        self._in_script_without_src = tag == "script" and not attributes.get("src")
        assert not any(name.startswith("on") for name in attributes), f"inline handler on <{tag}>"
        assert "style" not in attributes, f"inline style on <{tag}>"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script_without_src = False

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts.append(data)


def docs_page() -> HttpResult:
    return invoke_http("meta", http_event("docs"))


def asset(name: str, *, version: str | None = None, accept_encoding: str | None = None) -> dict[str, Any]:
    """The meta function's raw answer (body possibly base64 and gzip) for GET /v1/docs/<name>."""
    event = http_event(
        "docs_asset",
        path_params={"asset": name},
        query={"v": version} if version is not None else {},
        headers={"accept-encoding": accept_encoding},
    )
    if version is None:
        event.pop("queryStringParameters")
    response: dict[str, Any] = load_function("meta").lambda_handler(event, lambda_context("meta"))
    return response


def body_bytes(response: dict[str, Any]) -> bytes:
    body = response["body"]
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return gzip.decompress(raw) if response["headers"].get("Content-Encoding") == "gzip" else raw


def page_asset_urls() -> dict[str, str]:
    """{file name: version} of every asset the page loads."""
    links = PageLinks()
    links.feed(str(docs_page().body))
    found = {}
    for url in links.urls:
        if url.startswith("data:"):
            continue
        match = re.fullmatch(r"docs/([\w.-]+)\?v=([0-9a-f]{16})", url)
        assert match, f"the page loads {url}, not a versioned file of /v1/docs/"
        found[match[1]] = match[2]
    return found


# ------------------------------------------------------------------------------ vendored files


def test_committed_files_match_the_manifest() -> None:
    assert MANIFEST["package"] == "swagger-ui-dist"
    assert re.fullmatch(r"\d+\.\d+\.\d+", MANIFEST["version"]), "pin an exact version"
    assert MANIFEST["integrity"].startswith("sha512-")
    assert MANIFEST["license_file"] in MANIFEST["files"]
    for name, digest in MANIFEST["files"].items():
        assert hashlib.sha256((DOCS_UI / name).read_bytes()).hexdigest() == digest, (
            f"docs_ui/{name} differs from the manifest: run `make vendor-docs-ui`"
        )
    on_disk = {path.name for path in DOCS_UI.iterdir()}
    assert on_disk == {*MANIFEST["files"], "manifest.json", PAGE_SCRIPT}


def test_vendoring_target_fetches_the_listed_files() -> None:
    makefile = (ROOT / "Makefile").read_text()
    listed = re.search(r"^DOCS_UI_FILES := (.+)$", makefile, re.MULTILINE)
    assert listed, "Makefile lost DOCS_UI_FILES"
    assert sorted(listed[1].split()) == sorted(MANIFEST["files"])
    assert re.search(r"^vendor-docs-ui:", makefile, re.MULTILINE)


# ------------------------------------------------------------------------------------ the page


def test_page_loads_only_versioned_files_of_its_own_and_no_inline_script() -> None:
    result = docs_page()
    links = PageLinks()
    links.feed(str(result.body))
    assert links.inline_scripts == []
    urls = page_asset_urls()
    assert set(urls) == {"swagger-ui.css", "swagger-ui-bundle.js", PAGE_SCRIPT}
    for name, version in urls.items():
        served = asset(name, version=version)
        assert served["headers"]["Cache-Control"] == IMMUTABLE, name
    # The spec URL is relative too (the page script reads it from the page).
    assert 'data-spec-url="openapi.json"' in str(result.body)


def test_page_has_a_restrictive_csp() -> None:
    result = docs_page()
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/html")
    assert result.headers["content-security-policy"] == EXPECTED_CSP
    assert result.headers["x-content-type-options"] == "nosniff"


def test_page_script_asks_for_nothing_off_this_api() -> None:
    script = (DOCS_UI / PAGE_SCRIPT).read_text()
    assert "validatorUrl: null" in script
    assert not re.search(r"https?://", script)


# ---------------------------------------------------------------------------------- the assets


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
        (PAGE_SCRIPT, "text/javascript; charset=utf-8"),
        ("LICENSE", "text/plain; charset=utf-8"),
        ("NOTICE", "text/plain; charset=utf-8"),
        ("swagger-ui-bundle.js.LICENSE.txt", "text/plain; charset=utf-8"),
    ],
)
def test_asset_is_served_with_its_type(name: str, content_type: str) -> None:
    response = asset(name, version=page_asset_urls().get(name))
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == content_type
    assert response["headers"]["X-Content-Type-Options"] == "nosniff"
    assert body_bytes(response) == (DOCS_UI / name).read_bytes()


def test_gzip_when_accepted() -> None:
    name = "swagger-ui-bundle.js"
    compressed = asset(name, accept_encoding="gzip, deflate, br")
    assert compressed["headers"]["Content-Encoding"] == "gzip"
    assert compressed["headers"]["Vary"] == "Accept-Encoding"
    assert compressed["isBase64Encoded"] is True
    assert len(base64.b64decode(compressed["body"])) < (DOCS_UI / name).stat().st_size / 2
    assert body_bytes(compressed) == (DOCS_UI / name).read_bytes()
    for refused in (None, "identity", "br", "gzip;q=0", "GZIP; q=0.0"):
        plain = asset(name, accept_encoding=refused)
        assert "Content-Encoding" not in plain["headers"], refused
        assert plain["isBase64Encoded"] is False
        assert plain["headers"]["Vary"] == "Accept-Encoding"
    assert asset(name, accept_encoding="GZip;q=0.5")["headers"]["Content-Encoding"] == "gzip"


@pytest.mark.parametrize("version", [None, "", "0123456789abcdef", MANIFEST["version"]])
def test_unversioned_or_stale_url_is_cached_briefly(version: str | None) -> None:
    response = asset("swagger-ui.css", version=version)
    assert response["statusCode"] == 200
    assert response["headers"]["Cache-Control"] == "public, max-age=300"


@pytest.mark.parametrize(
    "name",
    ["manifest.json", "app.py", "openapi.json", "../app.py", "docs_ui", "swagger-ui.js", "index.html", "x"],
)
def test_files_outside_the_manifest_are_404(name: str) -> None:
    response = asset(name)
    assert response["statusCode"] == 404
    assert response["headers"]["Content-Type"] == "application/json"
    assert json.loads(response["body"])["error"]["code"] == "not_found"


def test_sample_event_is_an_asset_request() -> None:
    sample = json.loads((ROOT / "events" / "http_docs_asset.json").read_text())
    assert sample["pathParameters"]["asset"] in MANIFEST["files"]
    response = load_function("meta").lambda_handler(http_event("docs_asset"), lambda_context("meta"))
    assert response["statusCode"] == 200
