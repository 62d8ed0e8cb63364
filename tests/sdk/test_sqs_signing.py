"""`feedbackctl events tail` signs its SQS requests itself (no boto3): the signature must be exactly what
botocore computes for the same request, so it works against SQS as well as against the emulator."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import respx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from feedbackctl.sqs import AwsCredentials, SqsClient, SqsError, sign

pytestmark = pytest.mark.sdk

NOW = datetime(2026, 11, 23, 22, 30, 5, tzinfo=UTC)


@pytest.mark.parametrize("session_token", [None, "session-token"])
def test_signature_matches_botocore(session_token: str | None) -> None:
    url = "https://sqs.eu-west-1.amazonaws.com/"
    body = b'{"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/q", "MaxNumberOfMessages": 10}'
    headers = {"content-type": "application/x-amz-json-1.0", "x-amz-target": "AmazonSQS.ReceiveMessage"}
    ours = sign(
        "POST",
        url,
        headers,
        body,
        credentials=AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", session_token),
        region="eu-west-1",
        service="sqs",
        now=NOW,
    )
    # botocore's own steps, at the same instant (add_auth would read the clock).
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    request.context["timestamp"] = "20261123T223005Z"
    request.headers["X-Amz-Date"] = "20261123T223005Z"
    if session_token:
        request.headers["X-Amz-Security-Token"] = session_token
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", session_token)
    auth = SigV4Auth(credentials, "sqs", "eu-west-1")
    signature = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    signed_headers = auth.signed_headers(auth.headers_to_sign(request))
    assert ours["authorization"] == (
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{auth.credential_scope(request)}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    assert ours["x-amz-date"] == "20261123T223005Z"
    if session_token:
        assert ours["x-amz-security-token"] == session_token


@respx.mock
def test_deleting_a_message_the_stack_already_trimmed_is_not_an_error() -> None:
    endpoint = "http://127.0.0.1:4566"
    route = respx.post(endpoint + "/").mock(
        side_effect=[
            httpx.Response(
                400, json={"__type": "com.amazonaws.sqs#ReceiptHandleIsInvalid", "message": "gone"}
            ),
            httpx.Response(
                400, json={"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "no queue"}
            ),
        ]
    )
    with httpx.Client() as http:
        sqs = SqsClient(http, endpoint, "us-east-1", AwsCredentials("local", "local"))
        sqs.delete(endpoint + "/123456789012/q", "handle")
        with pytest.raises(SqsError, match="DeleteMessage: QueueDoesNotExist: no queue"):
            sqs.delete(endpoint + "/123456789012/q", "handle")
    first = route.calls[0].request
    assert first.headers["x-amz-target"] == "AmazonSQS.DeleteMessage"
    assert first.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=local/")
    assert "/us-east-1/sqs/aws4_request" in first.headers["authorization"]
