"""The local stack's AWS emulator as the e2e tests read it: clients, the event taps' queues, waiting."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest


def emulator_client(credentials: dict[str, Any], service: str) -> Any:
    """A boto3 client of the local stack's AWS emulator, as credentials.json describes it."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=credentials["aws_endpoint_url"],
        region_name=credentials["aws_region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


class EventLog:
    """Everything that arrived on the two tap queues (read through the AWS emulator)."""

    def __init__(self, credentials: dict[str, Any]) -> None:
        self.sqs = emulator_client(credentials, "sqs")
        self.queues = {"bus": credentials["events_queue_url"], "sns": credentials["sns_queue_url"]}
        self.received: dict[str, list[dict[str, Any]]] = {"bus": [], "sns": []}

    def drain(self) -> None:
        for source, url in self.queues.items():
            while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
                for message in messages:
                    self.received[source].append(json.loads(message["Body"]))
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def envelopes(self, source: str) -> list[dict[str, Any]]:
        """The EventBridge envelopes (for SNS: the message, which is the same envelope)."""
        if source == "bus":
            return self.received["bus"]
        return [json.loads(message["Message"]) for message in self.received["sns"]]

    def wait_for(
        self,
        predicate: Callable[[EventLog], bool],
        timeout: float = 60,
        describe: Callable[[], str] | None = None,
    ) -> None:
        """Drains the taps until ``predicate`` holds; on failure ``describe`` (default: everything received)
        says what was seen."""

        def seen() -> bool:
            self.drain()
            return predicate(self)

        def message() -> str:
            return f"events not seen: {describe() if describe else json.dumps(self.received)}"

        wait_until(seen, timeout, message=message)


def wait_until(
    check: Callable[[], Any],
    timeout: float = 20,
    interval: float = 0.3,
    message: Callable[[], str] | None = None,
) -> Any:
    """Calls ``check`` until it returns something truthy (bounded), and returns that."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"not met within {timeout} s: {(message() if message else repr(result))[:4000]}")
        time.sleep(interval)
    return result
