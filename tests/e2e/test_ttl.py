"""TTL locally: with ``--ttl-sweep-seconds 1``, a record whose ``expires_at`` has passed is deleted as
DynamoDB's TTL would, and subscribers see ``Feedback Expired`` (DynamoDB Local, with --persist)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.process import running
from tests.conftest import SKIP_DDBLOCAL_ENV
from tests.e2e.emulator import EventLog, emulator_client, wait_until


def expired_event(log: EventLog, source: str, run_id: str) -> dict[str, Any] | None:
    return next(
        (
            envelope
            for envelope in log.envelopes(source)
            if envelope["detail-type"] == "Feedback Expired" and envelope["detail"]["run_id"] == run_id
        ),
        None,
    )


def test_an_expired_record_is_swept_and_published_as_expired(tmp_path: Path) -> None:
    if os.environ.get(SKIP_DDBLOCAL_ENV) == "1":
        pytest.skip(f"{SKIP_DDBLOCAL_ENV}=1: DynamoDB Local is skipped on request")
    options = ["--persist", str(tmp_path / "data")]
    with running(tmp_path, "dynamodb-local", "--ttl-sweep-seconds", "1", *options) as stack:
        credentials = stack.credentials()
        run_id = f"ttl-{uuid.uuid4().hex[:8]}"
        with httpx.Client(base_url=stack.endpoint, timeout=15) as api:
            issued = api.post(
                "/v1/tokens",
                headers={"Authorization": f"Bearer {credentials['api_key']}"},
                json={"run_id": run_id, "user_id": "erin"},
            )
            assert issued.status_code == 201, issued.text
            token = {"X-Feedback-Token": issued.json()["feedback_token"]}
            submitted = api.post("/v1/feedback", headers=token, json={"outcome": "positive", "comment": "ok"})
            assert submitted.status_code == 201, submitted.text

            # What DynamoDB's TTL would find once the retention has passed: expires_at in the past.
            # The tables are in DynamoDB Local.
            tables = {**credentials, "aws_endpoint_url": credentials["dynamodb_endpoint_url"]}
            dynamodb = emulator_client(tables, "dynamodb")
            dynamodb.update_item(
                TableName=credentials["feedback_table"],
                Key={"pk": {"S": f"{credentials['project']}#{run_id}"}, "sk": {"S": "erin"}},
                UpdateExpression="SET expires_at = :past",
                ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 60)}},
            )

            log = EventLog(credentials)
            log.wait_for(
                lambda seen: all(expired_event(seen, source, run_id) for source in ("bus", "sns")), timeout=30
            )
            for source in ("bus", "sns"):
                event = expired_event(log, source, run_id)
                assert event is not None
                assert event["detail"]["actor"] == "retention"
                assert event["detail"]["user_id"] == "erin"
                assert event["detail"]["previous"]["comment"] == "ok"
            item = dynamodb.get_item(
                TableName=credentials["feedback_table"],
                Key={"pk": {"S": f"{credentials['project']}#{run_id}"}, "sk": {"S": "erin"}},
            )
            assert "Item" not in item
            assert api.get("/v1/feedback/me", headers=token).status_code == 404
            assert wait_until(lambda: "TTL: 1 expired item(s) deleted" in stack.stderr())
        assert stack.terminate() == 0, stack.output()
