"""What the local gateway's HTTP server answers by itself, over a real socket: API Gateway's JSON errors,
any method routed, HTTP API's quota on the request line and headers, and clients that misbehave."""

from __future__ import annotations

import json
import logging
import socket
import string
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any, BinaryIO

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from local.gateway import MAX_BODY_BYTES, MAX_REQUEST_HEAD_BYTES, ApiDefinition, Gateway, GatewayServer
from tests.local.fakes import FakeFunction, GatewayUnderTest

ORIGIN = "http://localhost:3000"
HEALTH = b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@contextmanager
def serving(gateway: Gateway) -> Iterator[GatewayServer]:
    """A running server on a free port; on exit it stops and waits for every connection's thread, so
    what those threads log is in by then."""
    server = GatewayServer("127.0.0.1", 0, gateway)
    server.daemon_threads = False  # server_close() joins the connections' threads
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def read_reply(stream: BinaryIO, *, head: bool = False) -> Reply:
    """The next response on a connection (an interim 100 Continue skipped)."""
    status = 100
    while status < 200:
        status_line = stream.readline()
        assert status_line, "the connection ended without an answer"
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
    length = 0 if head or status == 204 else int(headers.get("content-length", "0"))
    return Reply(status, headers, stream.read(length))


def exchange(port: int, raw: bytes, *, head: bool = False) -> Reply:
    """Sends ``raw`` on a new connection, ends the sending side, and reads the first response."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock, sock.makefile("rb") as stream:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)  # the server reads no further request: it closes after answering
        return read_reply(stream, head=head)


def assert_gateway_error(reply: Reply, status: int) -> None:
    """API Gateway's own error: the status, JSON ``{"message": <reason phrase>}``, a request id."""
    assert reply.status == status, reply
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"message": HTTPStatus(status).phrase}
    assert reply.headers["apigw-requestid"]


def fake_functions(api: ApiDefinition) -> dict[str, FakeFunction]:
    """Every route's function answers 200 ``{}`` (JSON); every authorizer allows."""
    answer = {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}
    functions = {route.function: FakeFunction(route.function, answer) for route in api.routes}
    for authorizer in api.authorizers.values():
        functions[authorizer.function] = FakeFunction(authorizer.function, {"isAuthorized": True})
    return functions


@pytest.fixture
def server(gateway: GatewayUnderTest) -> Iterator[GatewayServer]:
    with serving(gateway.gateway) as running:
        yield running


def head_of_size(size: int) -> bytes:
    """A GET /v1/health whose request line and header lines (without line endings) total ``size`` bytes."""
    request_line, host = "GET /v1/health HTTP/1.1", "Host: 127.0.0.1"
    filler = "X-Filler: "
    padding = size - len(request_line) - len(host) - len(filler)
    assert padding >= 0
    return f"{request_line}\r\n{host}\r\n{filler}{'a' * padding}\r\n\r\n".encode()


# ------------------------------------------------------------------------------ malformed requests


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="one-word"),
        pytest.param(b"GET /v1/health\r\n\r\n", 400, id="http-0.9"),
        pytest.param(b"GET /v1/health HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, id="four-words"),
        pytest.param(b"GET  /v1/health HTTP/1.1\r\n\r\n", 400, id="double-space"),
        pytest.param(b"G(T /v1/health HTTP/1.1\r\n\r\n", 400, id="method-not-a-token"),
        pytest.param(b"GET /v1/h\xe9alth HTTP/1.1\r\n\r\n", 400, id="raw-byte-in-target"),
        pytest.param(b"GET /v1/health HTTP/1.x\r\n\r\n", 400, id="malformed-version"),
        pytest.param(b"GET /v1/health http/1.1\r\n\r\n", 400, id="lower-case-version"),
        pytest.param(b"GET /v1/health HTTP/2.0\r\n\r\n", 505, id="http-2"),
        pytest.param(b"GET /v1/health HTTP/3.0\r\n\r\n", 505, id="http-3"),
        pytest.param(b"GET /v1/health HTTP/0.9\r\n\r\n", 505, id="http-0.9-with-version"),
        pytest.param(b"GET /v1/hea", 400, id="request-line-cut-short"),
        pytest.param(b"GET /v1/health HTTP/1.1\r\nHost: x", 400, id="headers-cut-short"),
        pytest.param(b"GET /v1/health HTTP/1.1\r\nHost x\r\n\r\n", 400, id="header-without-colon"),
        pytest.param(b"GET /v1/health HTTP/1.1\r\nHost : x\r\n\r\n", 400, id="space-before-colon"),
        pytest.param(b"GET /v1/health HTTP/1.1\r\nX-A: 1\r\n  2\r\n\r\n", 400, id="obs-fold"),
        pytest.param(b"GET /v1/health HTTP/1.1\r\nX-A: a\x01b\r\n\r\n", 400, id="control-in-value"),
        pytest.param(
            b"POST /v1/feedback HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, id="length-not-a-number"
        ),
        pytest.param(b"POST /v1/feedback HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, id="negative-length"),
        pytest.param(b"POST /v1/feedback HTTP/1.1\r\nContent-Length: +2\r\n\r\nab", 400, id="signed-length"),
        pytest.param(
            b"POST /v1/feedback HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
            400,
            id="conflicting-lengths",
        ),
        pytest.param(
            b"POST /v1/feedback HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 400, id="body-shorter-than-length"
        ),
        pytest.param(
            b"POST /v1/feedback HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400, id="length-unknowable"
        ),
        pytest.param(
            b"POST /v1/feedback HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            400,
            id="chunk-size-not-hex",
        ),
        pytest.param(
            b"POST /v1/feedback HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
            400,
            id="negative-chunk-size",
        ),
        pytest.param(
            b"POST /v1/feedback HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc",
            400,
            id="chunk-cut-short",
        ),
        pytest.param(
            b"POST /v1/feedback HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
            400,
            id="chunk-longer-than-its-size",
        ),
    ],
)
def test_malformed_requests_get_json_errors(
    server: GatewayServer, gateway: GatewayUnderTest, raw: bytes, status: int
) -> None:
    reply = exchange(server.port, raw)
    assert_gateway_error(reply, status)
    assert reply.headers["connection"] == "close"
    assert not any(function.events for function in gateway.functions.values())
    assert exchange(server.port, HEALTH).status == 200


def test_a_refused_head_request_has_no_body(server: GatewayServer) -> None:
    reply = exchange(server.port, b"HEAD /v1/health HTTP/1.1\r\nHost x\r\n\r\n", head=True)
    assert (reply.status, reply.body) == (400, b"")
    assert int(reply.headers["content-length"]) == len(b'{"message": "Bad Request"}')


# ------------------------------------------------------------------------------------------ methods


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "BREW", "M-SEARCH", "get", "PATCH", "HEAD"])
def test_any_method_is_routed_and_one_no_route_takes_is_404(
    server: GatewayServer, gateway: GatewayUnderTest, method: str
) -> None:
    raw = f"{method} /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    reply = exchange(server.port, raw, head=method == "HEAD")
    assert reply.status == 404
    assert reply.headers["content-type"] == "application/json"
    if method != "HEAD":
        assert reply.json() == {"message": "Not Found"}
    assert "connection" not in reply.headers  # a routed request keeps the connection open
    assert not any(function.events for function in gateway.functions.values())


def test_connect_with_an_authority_is_routed_too(server: GatewayServer) -> None:
    reply = exchange(server.port, b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n")
    assert (reply.status, reply.json()) == (404, {"message": "Not Found"})


def test_cors_preflight_over_the_socket(server: GatewayServer) -> None:
    raw = (
        f"OPTIONS /v1/feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {ORIGIN}\r\n"
        "Access-Control-Request-Method: POST\r\n\r\n"
    ).encode()
    reply = exchange(server.port, raw)
    assert (reply.status, reply.body) == (204, b"")
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    # Without Access-Control-Request-Method it is no preflight: an OPTIONS no route takes.
    plain = exchange(server.port, f"OPTIONS /v1/feedback HTTP/1.1\r\nOrigin: {ORIGIN}\r\n\r\n".encode())
    assert (plain.status, plain.json()) == (404, {"message": "Not Found"})
    assert plain.headers["access-control-allow-origin"] == ORIGIN


# ------------------------------------------------------------------------------------------ limits


def test_request_line_and_headers_up_to_the_quota_are_served(server: GatewayServer) -> None:
    reply = exchange(server.port, head_of_size(MAX_REQUEST_HEAD_BYTES))
    assert (reply.status, reply.json()) == (200, {})


def test_request_line_and_headers_over_the_quota_are_431(server: GatewayServer) -> None:
    assert_gateway_error(exchange(server.port, head_of_size(MAX_REQUEST_HEAD_BYTES + 1)), 431)
    assert exchange(server.port, HEALTH).status == 200


def test_many_small_headers_within_the_quota_are_served(server: GatewayServer) -> None:
    """http.server stops at 100 headers; HTTP API's quota is on bytes only."""
    headers = "".join(f"X-H{index}: {index}\r\n" for index in range(300))
    reply = exchange(server.port, f"GET /v1/health HTTP/1.1\r\n{headers}\r\n".encode())
    assert reply.status == 200


def test_a_request_line_over_the_quota_is_414(server: GatewayServer) -> None:
    prefix, suffix = "GET /v1/health?q=", " HTTP/1.1"
    fits = prefix + "a" * (MAX_REQUEST_HEAD_BYTES - len(prefix) - len(suffix)) + suffix
    assert exchange(server.port, f"{fits}\r\n\r\n".encode()).status == 200
    too_long = prefix + "a" * (MAX_REQUEST_HEAD_BYTES + 1 - len(prefix) - len(suffix)) + suffix
    assert_gateway_error(exchange(server.port, f"{too_long}\r\n\r\n".encode()), 414)
    assert_gateway_error(exchange(server.port, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n"), 414)
    assert exchange(server.port, HEALTH).status == 200


def test_a_body_over_the_payload_limit_is_413_and_the_rest_is_not_read(
    server: GatewayServer, gateway: GatewayUnderTest
) -> None:
    declared = 1024 * MAX_BODY_BYTES  # far more than is sent: the server stops reading after the limit
    raw = f"POST /v1/feedback HTTP/1.1\r\nContent-Length: {declared}\r\n\r\n".encode()
    reply = exchange(server.port, raw + b"x" * (MAX_BODY_BYTES + 1))
    assert_gateway_error(reply, 413)
    assert reply.headers["connection"] == "close"
    assert not any(function.events for function in gateway.functions.values())


def test_a_chunked_body_reaches_the_function(server: GatewayServer, gateway: GatewayUnderTest) -> None:
    raw = (
        b"POST /v1/feedback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b'6;ext=1\r\n{"a": \r\n2\r\n1}\r\n0\r\nX-Trailer: t\r\n\r\n'
    )
    assert exchange(server.port, raw).status == 200
    route = gateway.gateway.api.find_route("POST", "/v1/feedback")  # type: ignore[union-attr]
    assert route is not None
    assert gateway.function(route[0].function).events[-1]["body"] == '{"a": 1}'


def test_requests_on_one_connection_are_served_in_turn(server: GatewayServer) -> None:
    body = b'{"outcome": "positive"}'
    post = f"POST /v1/feedback HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock,
        sock.makefile("rb") as stream,
    ):
        sock.sendall(post + HEALTH + b"TRACE / HTTP/1.1\r\n\r\n" + HEALTH)
        assert [read_reply(stream).status for _ in range(4)] == [200, 200, 404, 200]


def test_http_1_0_keeps_the_connection_only_when_asked(server: GatewayServer) -> None:
    assert exchange(server.port, b"GET /v1/health HTTP/1.0\r\n\r\n").headers["connection"] == "close"
    keep = b"GET /v1/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock,
        sock.makefile("rb") as stream,
    ):
        sock.sendall(keep + keep)
        replies = [read_reply(stream), read_reply(stream)]
    assert [(reply.status, reply.headers["connection"]) for reply in replies] == [(200, "keep-alive")] * 2


def test_a_client_expecting_100_continue_gets_it_before_sending_the_body(server: GatewayServer) -> None:
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock,
        sock.makefile("rb") as stream,
    ):
        sock.sendall(b"POST /v1/feedback HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert stream.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert stream.readline() == b"\r\n"
        sock.sendall(b"{}")
        assert read_reply(stream).status == 200


# ----------------------------------------------------------------------------- function responses


def test_a_header_line_break_from_the_function_is_500_not_a_header(
    server: GatewayServer, gateway: GatewayUnderTest
) -> None:
    gateway.function("MetaFunction").result = {"statusCode": 200, "headers": {"X-A": "1\r\nX-Injected: 2"}}
    reply = exchange(server.port, HEALTH)
    assert (reply.status, reply.json()) == (500, {"message": "Internal Server Error"})
    assert "x-injected" not in reply.headers


def test_a_header_value_outside_latin1_goes_out_as_utf8(
    server: GatewayServer, gateway: GatewayUnderTest
) -> None:
    gateway.function("MetaFunction").result = {"statusCode": 200, "headers": {"X-Smile": "😀"}, "body": "{}"}
    reply = exchange(server.port, HEALTH)
    assert reply.status == 200
    assert reply.headers["x-smile"].encode("latin-1") == "😀".encode()


# -------------------------------------------------------------------------------- misbehaving clients


def test_clients_that_misbehave_leave_no_traceback_and_the_server_serving(
    gateway: GatewayUnderTest, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    def connect(port: int) -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=30)

    def reset(sock: socket.socket) -> None:
        """Closes with a TCP reset instead of a orderly close."""
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    caplog.set_level(logging.DEBUG, logger="local")
    with serving(gateway.gateway) as server:
        connect(server.port).close()  # connects, sends nothing
        with connect(server.port) as sock:
            sock.sendall(b"GET /v1/hea")  # closes within the request line
        with connect(server.port) as sock:
            sock.sendall(b"POST /v1/feedback HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort")
        with connect(server.port) as sock:
            sock.sendall(bytes(range(256)) * 4)  # garbage, then gone without reading the answer
        sock = connect(server.port)
        sock.sendall(HEALTH * 50)  # many requests, then a reset before reading any answer
        reset(sock)
        sock = connect(server.port)
        sock.sendall(b"POST /v1/feedback HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort")
        reset(sock)  # a reset while the server waits for the body
        assert exchange(server.port, HEALTH).status == 200
    # The server has stopped and every connection's thread has ended: all they logged is here.
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING or record.exc_info]
    assert "Traceback" not in capfd.readouterr().err


# -------------------------------------------------------------------------------- property: anything


@pytest.fixture(scope="module")
def fuzz_server(template_api: ApiDefinition) -> Iterator[GatewayServer]:
    """One server for all examples; no throttling, which would answer 429 after the stage's burst."""
    api = replace(template_api, throttle=None)
    gateway = Gateway()
    gateway.configure(api, fake_functions(api))
    with serving(gateway) as server:
        yield server


# Mostly well-formed parts (so that requests reach the routes, the authorizer, CORS and the quota) mixed
# with arbitrary ones; sampled_from weighs a value by how often it is listed.
latin1_text = st.text(st.characters(max_codepoint=255), max_size=16)
token_text = st.text(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~", min_size=1, max_size=12)
known_methods = st.sampled_from(["GET", "POST", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "CONNECT", "get"])
methods = st.one_of(known_methods, known_methods, known_methods, token_text, latin1_text).filter(
    lambda method: method != "HEAD"  # a HEAD answer has no body to check (tested above)
)
known_targets = st.sampled_from(
    ["/v1/health", "/v1/feedback", "/v1/feedback/me", "/v1/tokens", "/v1/runs/r/feedback", "/v1/stats", "*"]
)
targets = st.one_of(known_targets, known_targets, known_targets, known_targets, latin1_text)
versions = st.sampled_from(
    ["HTTP/1.1"] * 12 + ["HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "HTTP/1.x", "http/1.1", ""]
)
separators = st.sampled_from([" "] * 12 + ["  ", "\t"])
known_names = st.sampled_from(
    [
        "Host",
        "Origin",
        "Access-Control-Request-Method",
        "Authorization",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Expect",
        "X-Filler",
    ]
)
header_names = st.one_of(*[known_names] * 8, latin1_text)
known_values = st.sampled_from([ORIGIN, "POST", "Bearer k", "chunked", "close", "100-continue", "3", "0"])
sizes = st.sampled_from(
    [1000, MAX_REQUEST_HEAD_BYTES // 2, MAX_REQUEST_HEAD_BYTES - 100, MAX_REQUEST_HEAD_BYTES]
)
header_values = st.one_of(*[known_values] * 6, latin1_text, sizes.map(lambda size: "a" * size))


@settings(max_examples=150, deadline=None)
@given(
    method=methods,
    target=targets,
    version=versions,
    separator=separators,
    headers=st.lists(st.tuples(header_names, header_values), max_size=6),
    body=st.binary(max_size=40),
)
def test_every_answer_is_json_and_the_server_keeps_serving(
    fuzz_server: GatewayServer,
    method: str,
    target: str,
    version: str,
    separator: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    head = separator.join([method, target, version]) + "\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    reply = exchange(fuzz_server.port, head.encode("latin-1") + body)
    event(str(reply.status))
    # 505 is the answer to an HTTP version other than 1.x; the functions here never fail.
    assert reply.status < 500 or reply.status == 505, reply
    if reply.status == 204:  # a CORS preflight
        assert reply.body == b""
    else:
        assert reply.headers["content-type"] == "application/json", reply
        answer = reply.json()
        if reply.status != 200:  # not a function's answer ({}): the gateway's or the server's
            assert isinstance(answer["message"], str), reply
    health = exchange(fuzz_server.port, HEALTH)
    assert (health.status, health.json()) == (200, {})
