"""``make events``: prints the service's events live, from the local stack's two tap queues.

``feedback-events-local`` gets every event of the EventBridge bus (a rule matching everything);
``feedback-sns-local`` every message of the SNS topic (the same envelope, with the message attributes
subscribers filter on). Both are read through the AWS emulator named in ``.local/credentials.json``.
Messages are deleted once printed: run one tail at a time.

    python -m local.events_tail                  # one line per event, until Ctrl-C
    python -m local.events_tail --json           # the whole message
    python -m local.events_tail --once           # what is queued now, then exit
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_CREDENTIALS = Path(".local/credentials.json")


def read_credentials(path: Path) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"{path} not found: start the local stack first (make run)") from None
    return document


def envelope(source: str, body: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The event envelope (source, detail-type, time, detail) and, for SNS, the message attributes."""
    message: dict[str, Any] = json.loads(body)
    if source == "sns" and isinstance(message.get("Message"), str):
        attributes = {
            name: str(value.get("Value"))
            for name, value in (message.get("MessageAttributes") or {}).items()
            if isinstance(value, dict)
        }
        inner: dict[str, Any] = json.loads(message["Message"])
        return inner, attributes
    return message, {}


def summary(source: str, body: str) -> str:
    """One line: where it came from, the detail-type and who/what it is about."""
    try:
        event, attributes = envelope(source, body)
    except (ValueError, TypeError):
        return f"[{source}] {body}"
    detail = event.get("detail") or {}
    state = detail.get("feedback") or detail.get("previous") or {}
    parts = [
        f"[{source:3}]",
        f"{event.get('detail-type', '?'):<19}",
        f"project={detail.get('project')}",
        f"run={detail.get('run_id')}",
        f"user={detail.get('user_id')}",
        f"outcome={state.get('outcome')}",
        f"version={detail.get('version')}",
        f"actor={detail.get('actor')}",
        f"event_id={detail.get('event_id')}",
    ]
    if attributes:
        parts.append("attributes=" + ",".join(f"{k}:{v}" for k, v in sorted(attributes.items())))
    return " ".join(parts)


def messages(sqs: Any, queues: dict[str, str], wait: int) -> Iterator[tuple[str, str]]:
    """(source, body) of the messages queued now in each queue, deleting them."""
    for source, url in queues.items():
        while True:
            response = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, MessageAttributeNames=["All"]
            )
            batch = response.get("Messages", [])
            for message in batch:
                yield source, str(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if len(batch) < 10:
                break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.events_tail", description="Print the local stack's events as they come."
    )
    parser.add_argument("--credentials", type=Path, default=DEFAULT_CREDENTIALS, help="credentials.json")
    parser.add_argument("--json", action="store_true", help="print each whole message")
    parser.add_argument("--once", action="store_true", help="print what is queued now, then exit")
    args = parser.parse_args(argv)
    credentials = read_credentials(args.credentials)
    sqs = boto3.client(
        "sqs",
        endpoint_url=credentials["aws_endpoint_url"],
        region_name=credentials["aws_region"],
        aws_access_key_id=credentials.get("aws_access_key_id", "local"),
        aws_secret_access_key=credentials.get("aws_secret_access_key", "local"),
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30),
    )
    queues = {
        name: str(credentials[key])
        for name, key in (("bus", "events_queue_url"), ("sns", "sns_queue_url"))
        if credentials.get(key)
    }
    if not queues:
        print("the local stack has no event queues (no bus or topic in the template?)", file=sys.stderr)
        return 1
    if not args.once:
        print(f"watching {', '.join(queues.values())} (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        while True:
            for source, body in messages(sqs, queues, wait=0 if args.once else 1):
                print(body if args.json else summary(source, body), flush=True)
            if args.once:
                return 0
    except KeyboardInterrupt:
        return 0
    except (BotoCoreError, ClientError) as exc:
        print(f"cannot read the queues at {credentials['aws_endpoint_url']}: {exc}", file=sys.stderr)
        print("is the local stack running (make run)?", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
