"""Raw bodies of every kind, over HTTP through the local gateway to the real handlers: never a 5xx and
never an error that is not JSON. The integration tier proves the same of the handlers alone."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from local.process import LocalProcess

ROUTES = ["/v1/feedback", "/v1/tokens"]
bodies = (
    st.binary(max_size=80)
    | st.text(max_size=60).map(str.encode)
    | st.integers(1, 400).map(lambda depth: b"[" * depth + b"]" * depth)
    | st.integers(30, 6000).map(lambda digits: b'{"score": ' + b"9" * digits + b"}")
    | st.just(b'{"outcome": "positive", "comment": "\xff"}')
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/octet-stream",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), body=bodies, content_type=content_types)
def test_no_raw_body_through_the_gateway_makes_a_server_error(
    stack: LocalProcess, credentials: dict[str, Any], route: str, body: bytes, content_type: str | None
) -> None:
    token = getattr(stack, "_raw_token", None)
    if token is None:
        answer = httpx.post(
            f"{stack.endpoint}/v1/tokens",
            headers={"Authorization": f"Bearer {credentials['api_key']}"},
            json={"run_id": "raw-run", "user_id": "raw-user"},
        )
        token = stack._raw_token = answer.json()["feedback_token"]  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {credentials['api_key']}", "X-Feedback-Token": token}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = httpx.post(f"{stack.endpoint}{route}", headers=headers, content=body, timeout=15)
    event(f"{route} {response.status_code}")
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code >= 400:
        assert response.json()["error"]["message"]
