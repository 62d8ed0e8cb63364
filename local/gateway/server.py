"""The gateway's HTTP/1.1 server: requests parsed to RFC 9112 and HTTP API's quotas, every error of its
own API Gateway's JSON (http.server answers HTML pages, 501 for methods without a ``do_*``, and allows
64 KiB lines)."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.gateway.dispatch import MAX_BODY_BYTES, Gateway
from local.gateway.payload import (
    CONTROL_CHARACTERS,
    HTTP_TOKEN,
    HttpRequest,
    HttpResponse,
    gateway_error,
    request_id,
)

log = logging.getLogger("local.gateway")
access_log = logging.getLogger("local.access")

MAX_REQUEST_HEAD_BYTES = 10240
"""HTTP API's quota on the request line and header values (not adjustable), counted here on the request
line and every header line whole, line endings left out: what fits here fits however AWS counts.
Over it: 414 when the request line alone is too long, else 431."""
_LINGER_SECONDS = 2.0
_REQUEST_TARGET = re.compile(r"[\x21-\x7e]+")  # visible ASCII: a URI, never raw spaces or bytes
_HTTP_VERSION = re.compile(r"HTTP/(\d)\.\d")
_DECIMAL = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(r"[0-9A-Fa-f]{1,16}")


class GatewayServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server handing every request to a :class:`Gateway`; binding happens in the
    constructor, so a busy port is known before anything else starts."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, gateway: Gateway) -> None:
        self.gateway = gateway
        super().__init__((host, port), _RequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def serve_in_thread(self) -> None:
        threading.Thread(target=self.serve_forever, name="gateway", daemon=True).start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away is not an error of the gateway (socketserver would print a traceback)."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("connection from %s ended: %r", client_address, error)
        else:
            log.error("error on the connection from %s", client_address, exc_info=True)


class _Rejected(Exception):
    """The request cannot reach the gateway: the server answers its status itself and closes."""


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "local-apigateway"
    timeout = 60  # idle keep-alive connections
    server: GatewayServer
    _responded = False
    _linger = False
    """Input may be left unread when the connection closes (see :meth:`_drain`)."""

    def handle_one_request(self) -> None:
        self.close_connection = True  # until a well-formed request says otherwise
        self.command, self.path, self.requestline, self.request_version = "", "", "", "HTTP/1.1"
        self._responded = False
        try:
            try:
                if not self._read_head():
                    return  # the client closed the connection between requests
                self._serve()
            except _Rejected as rejected:
                self.send_error(rejected.args[0])
            self.wfile.flush()
        except (ConnectionError, TimeoutError) as exc:  # the client went away, or stayed silent
            log.debug("connection from %s ended: %r", self.client_address[0], exc)
            self.close_connection = True
        except Exception:
            log.error("error serving %r", _excerpt(self.requestline), exc_info=True)
            self.close_connection = True
            if not self._responded:
                self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """API Gateway's JSON error, then the connection closed: what follows a refused request cannot be
        trusted to start the next one."""
        response = gateway_error(code, self.responses.get(code, (message or "Error",))[0])
        response.headers += [("apigw-requestid", request_id()), ("connection", "close")]
        self._close_after_this_request()
        access_log.info('%s "%s" %d -', self.client_address[0], _excerpt(self.requestline), code)
        self._send(response)

    def finish(self) -> None:
        super().finish()
        if self._linger:
            self._drain()

    def _read_head(self) -> bool:
        """Parses the request line and headers (RFC 9112); False if the connection ended before a request."""
        budget = MAX_REQUEST_HEAD_BYTES
        request_line = self._read_line(budget, HTTPStatus.REQUEST_URI_TOO_LONG)
        if request_line == "":  # RFC 9112 §2.2: ignore an empty line before the request line
            request_line = self._read_line(budget, HTTPStatus.REQUEST_URI_TOO_LONG)
        if request_line is None:
            return False
        self.requestline = request_line
        words = request_line.split(" ")  # not three words: also HTTP/0.9's "GET /", which API Gateway refuses
        method, target, version = words if len(words) == 3 else ("", "", "")
        major = _HTTP_VERSION.fullmatch(version)
        if major is not None and major[1] != "1":
            raise _Rejected(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
        if major is None or not HTTP_TOKEN.fullmatch(method) or not _REQUEST_TARGET.fullmatch(target):
            raise _Rejected(HTTPStatus.BAD_REQUEST)
        self.command, self.path, self.request_version = method, target, version
        self.headers = self._read_headers(budget - len(request_line))
        options = set(self._listed("connection"))
        self.close_connection = "keep-alive" not in options if version == "HTTP/1.0" else "close" in options
        if (self.headers.get("expect") or "").lower() == "100-continue" and version != "HTTP/1.0":
            self.handle_expect_100()
        return True

    def _read_headers(self, budget: int) -> HTTPMessage:
        """Header lines up to the empty line, held to ``budget`` bytes in all (else 431)."""
        headers = HTTPMessage()
        while line := self._read_line(budget, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE):
            # A name is a token right before the colon: no space, no obs-fold continuation line.
            name, colon, value = line.partition(":")
            value = value.strip(" \t")
            if not colon or not HTTP_TOKEN.fullmatch(name) or CONTROL_CHARACTERS.search(value):
                raise _Rejected(HTTPStatus.BAD_REQUEST)
            headers[name] = value  # a Message keeps repeated names
            budget -= len(line)
        if line is None:
            raise _Rejected(HTTPStatus.BAD_REQUEST)  # the connection ended within the headers
        return headers

    def _read_line(self, budget: int, too_long: HTTPStatus) -> str | None:
        """One line without its ending (CRLF, or a bare LF as RFC 9112 §2.2 allows), of at most
        ``budget`` bytes (else ``too_long``); None if the connection ended before the line began."""
        limit = budget + 2
        raw = self.rfile.readline(limit)
        if not raw:
            return None
        if not raw.endswith(b"\n"):  # longer than allowed, or cut short by the client closing
            raise _Rejected(too_long if len(raw) == limit else HTTPStatus.BAD_REQUEST)
        line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        if len(line) > budget:
            raise _Rejected(too_long)
        return line.decode("latin-1")  # every byte maps to one character, as http.server reads heads

    def _serve(self) -> None:
        body = self._read_body()
        raw_path, _, raw_query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        request = HttpRequest(self.command, raw_path, raw_query, list(self.headers.items()), body)
        request.source_ip, request.protocol = self.client_address[0], self.request_version
        request.server_host, request.server_port = str(host), int(port)
        response = self.server.gateway.handle(request)
        if self.close_connection:
            response.headers.append(("connection", "close"))
        elif self.request_version == "HTTP/1.0":
            response.headers.append(("connection", "keep-alive"))  # HTTP/1.0 closes unless told otherwise
        self._send(response)

    def _read_body(self) -> bytes:
        """The body, or its first ``MAX_BODY_BYTES + 1`` bytes: enough for the gateway to answer 413, after
        which the connection closes with the rest unread."""
        codings = self._listed("transfer-encoding")
        if codings:
            if codings[-1] != "chunked":
                raise _Rejected(HTTPStatus.BAD_REQUEST)  # RFC 9112 §6.3: the length cannot be known
            if self._listed("content-length"):
                self._close_after_this_request()  # RFC 9112 §6.3: chunked wins, then the connection closes
            return self._read_chunked()
        lengths = set(self._listed("content-length"))
        if not lengths:
            return b""
        declared = lengths.pop()
        if lengths or not _DECIMAL.fullmatch(declared):
            raise _Rejected(HTTPStatus.BAD_REQUEST)  # RFC 9112 §6.3: an invalid or ambiguous length
        return self._read_exactly(int(declared), 0)

    def _listed(self, name: str) -> list[str]:
        """The elements of a comma-separated header, over all its lines."""
        return [
            part.strip().lower() for value in self.headers.get_all(name) or [] for part in value.split(",")
        ]

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            digits = (self._read_line(1024, HTTPStatus.BAD_REQUEST) or "").split(";", 1)[0].strip(" \t")
            if not _CHUNK_SIZE.fullmatch(digits):
                raise _Rejected(HTTPStatus.BAD_REQUEST)
            length = int(digits, 16)
            if length == 0:
                break
            chunks.append(self._read_exactly(length, size))
            size += len(chunks[-1])
            if size > MAX_BODY_BYTES:
                self._close_after_this_request()  # with the rest of the body unread
                return b"".join(chunks)
            if self._read_line(0, HTTPStatus.BAD_REQUEST) != "":  # the CRLF closing the chunk
                raise _Rejected(HTTPStatus.BAD_REQUEST)
        budget = MAX_REQUEST_HEAD_BYTES  # trailer fields: held to the same quota as the headers, then dropped
        while trailer := self._read_line(budget, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE):
            budget -= len(trailer)
        if trailer is None:
            raise _Rejected(HTTPStatus.BAD_REQUEST)
        return b"".join(chunks)

    def _read_exactly(self, length: int, already: int) -> bytes:
        """``length`` bytes of body, cut at one past ``MAX_BODY_BYTES`` (``already`` read included)."""
        wanted = min(length, MAX_BODY_BYTES + 1 - already)
        data = self.rfile.read(wanted)
        if len(data) < wanted:
            raise _Rejected(HTTPStatus.BAD_REQUEST)  # the client stopped before the end of its body
        if wanted < length:
            self._close_after_this_request()  # with the rest of the body unread
        return data

    def _close_after_this_request(self) -> None:
        self.close_connection = True
        self._linger = True

    def _send(self, response: HttpResponse) -> None:
        self._responded = True
        self.send_response(response.status)  # with http.server's reason phrase
        for name, value in response.headers:
            self.send_header(name, _latin1(value))
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def _drain(self) -> None:
        """Drops what the client still sends, for up to two seconds, before closing: a socket closed with
        unread input resets the connection, and a reset before the client reads loses the response."""
        deadline = time.monotonic() + _LINGER_SECONDS
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)  # the client sees the end of the response
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(65536):
                    return

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


def _latin1(value: str) -> str:
    """A header value as http.server writes it (Latin-1); other characters go out as their UTF-8 bytes."""
    return value if all(ord(character) < 256 for character in value) else value.encode().decode("latin-1")


def _excerpt(request_line: str) -> str:
    """A request line fit for one log line: control characters escaped, at most 200 characters."""
    return repr(request_line[:200])[1:-1]
