"""Feedback change events: one per stream record, published to EventBridge and SNS with the same payload.

Types: Submitted (INSERT, or a record replacing an expired one), Updated (MODIFY, with `previous`),
Retracted (REMOVE by the user, or by an admin: `removal_actor` = admin), Expired (REMOVE by DynamoDB TTL),
Erased (REMOVE after `removal_actor` = erasure). The MODIFY that only writes `removal_actor` publishes
nothing: the REMOVE right after it does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from pydantic import BaseModel

from feedback_core.clock import iso_timestamp
from feedback_core.store import REMOVAL_ACTOR, from_dynamo, record_from_item

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

SOURCE = "feedback.service"
EventType = Literal["Submitted", "Updated", "Retracted", "Expired", "Erased"]
Actor = Literal["user", "admin", "retention"]
SUMMARY_DROPS = ("comment", "details")
MAX_ENTRIES_PER_CALL = 10
MAX_PUT_EVENTS_BYTES = 1024 * 1024
MAX_SNS_BATCH_BYTES = 256 * 1024
TTL_PRINCIPAL = "dynamodb.amazonaws.com"


class FeedbackEvent(BaseModel):
    """The envelope shared by EventBridge (source, detail-type, time, detail) and SNS (message body)."""

    source: str = SOURCE
    detail_type: str
    time: str
    detail: dict[str, Any]

    @property
    def event_id(self) -> str:
        return str(self.detail["event_id"])

    def envelope(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "detail-type": self.detail_type,
            "time": self.time,
            "detail": self.detail,
        }

    def attributes(self) -> dict[str, str]:
        """SNS message attributes, for subscription filter policies."""
        state = self.detail.get("feedback") or self.detail.get("previous") or {}
        attributes = {
            "event_type": self.detail_type.removeprefix("Feedback "),
            "project": self.detail["project"],
        }
        if state.get("outcome"):
            attributes["outcome"] = state["outcome"]
        return attributes


def images(record: DynamoDBStreamRecordModel) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(old, new) item of a stream record as plain values (ints, floats), None where absent."""
    old, new = record.dynamodb.OldImage, record.dynamodb.NewImage
    return (
        from_dynamo(old) if isinstance(old, dict) and old else None,
        from_dynamo(new) if isinstance(new, dict) and new else None,
    )


def _public(item: dict[str, Any] | None, detail_level: str) -> dict[str, Any] | None:
    if item is None:
        return None
    state = record_from_item(item).model_dump(mode="json")
    if detail_level == "summary":
        for name in SUMMARY_DROPS:
            state.pop(name, None)
    return state


def _only_marker_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return REMOVAL_ACTOR in new and {k: v for k, v in new.items() if k != REMOVAL_ACTOR} == {
        k: v for k, v in old.items() if k != REMOVAL_ACTOR
    }


def classify(record: DynamoDBStreamRecordModel) -> tuple[EventType, Actor] | None:
    """What a stream record means, or None for a record that publishes nothing."""
    old, new = images(record)
    if not (new or old or {}).get("feedback_id"):
        return None  # not a feedback record (e.g. the key-only image some emulators emit first)
    if record.eventName == "INSERT":
        return "Submitted", "user"
    if record.eventName == "MODIFY":
        if old is None or new is None:
            raise ValueError("MODIFY record without both images: the stream must be NEW_AND_OLD_IMAGES")
        if _only_marker_changed(old, new):
            return None
        if new.get("feedback_id") != old.get("feedback_id"):
            return "Submitted", "user"  # a fresh record replaced an expired one
        return "Updated", "user"
    if old is None:
        raise ValueError("REMOVE record without an old image: the stream must be NEW_AND_OLD_IMAGES")
    identity = record.userIdentity
    if identity is not None and identity.principalId == TTL_PRINCIPAL:
        return "Expired", "retention"
    marker = old.get(REMOVAL_ACTOR)
    if marker == "erasure":
        return "Erased", "admin"
    if marker == "admin":
        return "Retracted", "admin"
    return "Retracted", "user"


def build_event(record: DynamoDBStreamRecordModel, detail_level: str = "full") -> FeedbackEvent | None:
    meaning = classify(record)
    if meaning is None:
        return None
    event_type, actor = meaning
    old, new = images(record)
    current = new if record.eventName != "REMOVE" else None
    replaced_expired = event_type == "Submitted" and record.eventName == "MODIFY"
    previous = None if record.eventName == "INSERT" or replaced_expired else old
    subject = current or previous or {}
    created = record.dynamodb.ApproximateCreationDateTime
    occurred_at = iso_timestamp(
        created.replace(tzinfo=created.tzinfo or UTC).timestamp() if created else time.time()
    )
    detail: dict[str, Any] = {
        "event_id": record.eventID,
        "sequence": record.dynamodb.SequenceNumber,
        "project": subject.get("project"),
        "run_id": subject.get("run_id"),
        "user_id": subject.get("user_id"),
        "session_id": subject.get("session_id"),
        "agent": subject.get("agent"),
        "version": subject.get("version"),
        "context": subject.get("context"),
        "occurred_at": occurred_at,
        "actor": actor,
    }
    if current is not None:
        detail["feedback"] = _public(current, detail_level)
    if previous is not None:
        detail["previous"] = _public(previous, detail_level)
    # EventBridge's `time` has whole seconds; SNS carries the very same value.
    return FeedbackEvent(detail_type=f"Feedback {event_type}", time=occurred_at[:19] + "Z", detail=detail)


# ---- publishing -------------------------------------------------------------------------------------------


def batches(items: Sequence[Any], size_of: Callable[[Any], int], max_bytes: int) -> Iterable[list[Any]]:
    """Splits items into calls of at most 10 entries and `max_bytes`."""
    batch: list[Any] = []
    total = 0
    for item in items:
        size = size_of(item)
        if batch and (len(batch) == MAX_ENTRIES_PER_CALL or total + size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += size
    if batch:
        yield batch


@dataclass
class Publisher:
    """Publishes events to the bus and the topic; failed entries (only those) are retried with backoff."""

    events_client: EventBridgeClient
    sns_client: SNSClient
    bus_name: str
    topic_arn: str
    max_attempts: int = 4
    base_delay_seconds: float = 0.1
    sleep: Callable[[float], None] = time.sleep

    def publish(self, events: Sequence[FeedbackEvent]) -> set[str]:
        """Returns the ids of events that could not be delivered to both destinations."""
        failed = self._retrying(events, self._put_events) | self._retrying(events, self._publish_sns)
        return failed

    def _retrying(
        self, events: Sequence[FeedbackEvent], send: Callable[[list[FeedbackEvent]], set[str]]
    ) -> set[str]:
        pending = list(events)
        for attempt in range(self.max_attempts):
            if attempt:
                self.sleep(self.base_delay_seconds * 2 ** (attempt - 1))
            failed: set[str] = set()
            for batch in batches(pending, _size, self._limit(send)):
                failed |= send(batch)
            pending = [event for event in pending if event.event_id in failed]
            if not pending:
                return set()
        return {event.event_id for event in pending}

    def _limit(self, send: Callable[[list[FeedbackEvent]], set[str]]) -> int:
        return MAX_PUT_EVENTS_BYTES if send == self._put_events else MAX_SNS_BATCH_BYTES

    def _put_events(self, batch: list[FeedbackEvent]) -> set[str]:
        response = self.events_client.put_events(
            Entries=[
                {
                    "Source": event.source,
                    "DetailType": event.detail_type,
                    "Detail": json.dumps(event.detail),
                    "Time": datetime.fromisoformat(event.time.replace("Z", "+00:00")),
                    "EventBusName": self.bus_name,
                }
                for event in batch
            ]
        )
        if not response.get("FailedEntryCount"):
            return set()
        # Entries answer in request order; a failed one carries an ErrorCode.
        return {
            event.event_id
            for event, entry in zip(batch, response["Entries"], strict=True)
            if entry.get("ErrorCode")
        }

    def _publish_sns(self, batch: list[FeedbackEvent]) -> set[str]:
        response = self.sns_client.publish_batch(
            TopicArn=self.topic_arn,
            PublishBatchRequestEntries=[
                {
                    "Id": str(index),
                    "Message": json.dumps(event.envelope()),
                    "MessageAttributes": {
                        name: {"DataType": "String", "StringValue": value}
                        for name, value in event.attributes().items()
                    },
                }
                for index, event in enumerate(batch)
            ],
        )
        return {batch[int(entry["Id"])].event_id for entry in response.get("Failed", [])}


def _size(event: FeedbackEvent) -> int:
    return len(json.dumps(event.envelope()).encode()) + 256
