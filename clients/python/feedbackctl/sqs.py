"""A minimal SQS client over httpx: the JSON protocol (``X-Amz-Target: AmazonSQS.<Action>``), signed
with AWS Signature Version 4, so it works against SQS itself and against an emulator alike, without
boto3. Only what ``feedbackctl events tail`` needs: receive and delete."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

CONTENT_TYPE = "application/x-amz-json-1.0"


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: datetime,
) -> dict[str, str]:
    """The headers of a SigV4-signed request (``headers`` plus host, date, token and Authorization)."""
    parts = urlsplit(url)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    signed["host"] = parts.netloc
    signed["x-amz-date"] = stamp
    if credentials.session_token:
        signed["x-amz-security-token"] = credentials.session_token
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            parts.path or "/",
            parts.query,
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + credentials.secret_access_key).encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    signed.pop("host")  # httpx sets it from the URL
    return signed


class SqsError(Exception):
    """An SQS error answer (its ``__type`` and message) or an unreachable endpoint."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Message:
    body: str
    receipt_handle: str


class SqsClient:
    def __init__(
        self,
        http: httpx.Client,
        endpoint: str,
        region: str,
        credentials: AwsCredentials,
    ) -> None:
        self.http = http
        self.endpoint = endpoint.rstrip("/") + "/"
        self.region = region
        self.credentials = credentials

    def call(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        headers = sign(
            "POST",
            self.endpoint,
            {"content-type": CONTENT_TYPE, "x-amz-target": f"AmazonSQS.{action}"},
            body,
            credentials=self.credentials,
            region=self.region,
            service="sqs",
            now=datetime.now(UTC),
        )
        try:
            response = self.http.post(self.endpoint, content=body, headers=headers)
        except httpx.TransportError as error:
            raise SqsError(f"cannot reach {self.endpoint}: {error or type(error).__name__}") from error
        answer: dict[str, Any] = response.json() if response.content else {}
        if response.status_code != 200:
            kind = str(answer.get("__type", f"HTTP {response.status_code}")).rsplit("#", 1)[-1]
            message = answer.get("message") or answer.get("Message") or ""
            raise SqsError(f"{action}: {kind}: {message}".rstrip(": "), kind)
        return answer

    def receive(self, queue_url: str, wait_seconds: int) -> list[Message]:
        answer = self.call(
            "ReceiveMessage",
            {
                "QueueUrl": queue_url,
                "MaxNumberOfMessages": 10,
                "WaitTimeSeconds": wait_seconds,
                "MessageAttributeNames": ["All"],
            },
        )
        return [Message(m["Body"], m["ReceiptHandle"]) for m in answer.get("Messages", [])]

    def delete(self, queue_url: str, receipt_handle: str) -> None:
        try:
            self.call("DeleteMessage", {"QueueUrl": queue_url, "ReceiptHandle": receipt_handle})
        except SqsError as error:
            # Already gone: the local stack trims unread tap messages, received ones included.
            if error.kind != "ReceiptHandleIsInvalid":
                raise
