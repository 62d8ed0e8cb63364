"""``feedbackctl events tail``: the local stack's events, read from its two tap queues.

``feedback-events-local`` gets every event of the EventBridge bus (a rule matching everything);
``feedback-sns-local`` every message of the SNS topic (the same envelope, with the message attributes
subscribers filter on). Both live in the stack's AWS emulator, named in ``.local/credentials.json``.
Messages are deleted once printed: run one tail at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from feedbackctl.sqs import AwsCredentials, SqsClient

DEFAULT_CREDENTIALS = Path(".local/credentials.json")
QUEUE_KEYS = (("bus", "events_queue_url"), ("sns", "sns_queue_url"))


class LocalStackMissing(Exception):
    """No credentials file, or one without event queues."""


def read_credentials(path: Path) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LocalStackMissing(f"{path} not found: start the local stack first (make run)") from None
    except ValueError as error:
        raise LocalStackMissing(f"{path} is not JSON: {error}") from None
    return document


def tap_queues(credentials: dict[str, Any]) -> dict[str, str]:
    queues = {name: str(credentials[key]) for name, key in QUEUE_KEYS if credentials.get(key)}
    if not queues or not credentials.get("aws_endpoint_url"):
        raise LocalStackMissing("the local stack has no event queues (no bus or topic in the template?)")
    return queues


def emulator_credentials(credentials: dict[str, Any]) -> AwsCredentials:
    return AwsCredentials(
        str(credentials.get("aws_access_key_id") or "local"),
        str(credentials.get("aws_secret_access_key") or "local"),
    )


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


def as_json(source: str, body: str) -> str:
    """One JSON line: the source queue and the whole message (parsed when it is JSON)."""
    try:
        message: Any = json.loads(body)
    except ValueError:
        message = body
    return json.dumps({"source": source, "message": message}, separators=(",", ":"))


def messages(sqs: SqsClient, queues: dict[str, str], wait_seconds: int) -> Iterator[tuple[str, str]]:
    """(source, body) of the messages queued now in each queue, deleting each once handed out."""
    for source, url in queues.items():
        while True:
            batch = sqs.receive(url, wait_seconds)
            for message in batch:
                yield source, message.body
                sqs.delete(url, message.receipt_handle)
            if len(batch) < 10:
                break
