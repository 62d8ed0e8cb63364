"""A site on another origin (its own HTTP server on 127.0.0.1, another port) that embeds the widget, as a
customer's frontend would; and the API seen from a product backend (API key: tokens, stored records)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit

import httpx


@dataclass
class OtherSite:
    """Serves the pages put in ``pages`` ({path: html}) under ``csp``; 404 for anything else."""

    pages: dict[str, str] = field(default_factory=dict)
    csp: str = ""
    requests: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> OtherSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                site.requests.append(path)
                page = site.pages.get(path)
                body = (page or "not found").encode()
                self.send_response(200 if page is not None else 404)
                self.send_header("content-type", "text/html; charset=utf-8" if page else "text/plain")
                self.send_header("content-length", str(len(body)))
                self.send_header("cache-control", "no-store")
                if page is not None and site.csp:
                    self.send_header("content-security-policy", site.csp)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="other-site", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class Backend:
    """What a product backend does with its API key: issue tokens, read what users stored."""

    client: httpx.Client
    api_key: str

    @property
    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"}

    def issue(self, run_id: str, user_id: str, **fields: Any) -> str:
        body = {"run_id": run_id, "user_id": user_id, **fields}
        response = self.client.post("/v1/tokens", headers=self._headers, json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["feedback_token"])

    def stored(self, run_id: str, user_id: str) -> dict[str, Any] | None:
        """The record as the API has it (GET /v1/runs/{run_id}/feedback/{user_id}), or None."""
        path = f"/v1/runs/{quote(run_id, safe='')}/feedback/{quote(user_id, safe='')}"
        response = self.client.get(path, headers=self._headers)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        record: dict[str, Any] = response.json()
        return record
