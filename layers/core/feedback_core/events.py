"""Feedback change events: one per stream record, published to EventBridge and SNS with the same payload.

Types: Submitted (INSERT, or a record replacing an expired one), Updated (MODIFY, with `previous`),
Retracted (REMOVE by the user, or by an admin: `removal_actor` = admin), Expired (REMOVE by DynamoDB TTL),
Erased (REMOVE after `removal_actor` = erasure). The MODIFY that only writes `removal_actor` publishes
nothing: the REMOVE right after it does.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from pydantic import BaseModel

from feedback_core.clock import iso_timestamp
from feedback_core.dynamo import stream_images
from feedback_core.observability import logger
from feedback_core.records import REMOVAL_ACTOR, record_from_item

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import PublishBatchRequestEntryTypeDef

SOURCE = "feedback.service"
EventType = Literal["Submitted", "Updated", "Retracted", "Expired", "Erased"]
Actor = Literal["user", "admin", "retention"]
SUMMARY_DROPS = ("comment", "details")
MAX_ENTRIES_PER_CALL = 10
"""PutEvents and PublishBatch both take at most 10 entries a call."""
MAX_PUT_EVENTS_BYTES = 256 * 1024 - 1
"""The entries of one PutEvents call, measured by AWS's formula (`put_events_entry_size`), must total
less than 256 KB: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html and
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html"""
PUT_EVENTS_TIME_BYTES = 14
"""What an entry's `Time` counts for in that formula, whatever its value."""
MAX_SNS_BATCH_BYTES = 256 * 1024
"""The messages of one PublishBatch call, bodies and attributes, total at most 262,144 bytes:
https://docs.aws.amazon.com/sns/latest/api/API_PublishBatch.html"""
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
    old, new = stream_images(record)
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
    old, new = stream_images(record)
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

_UNSAFE_ON_THE_WIRE = re.compile(r"[\ud800-\udfff\ufffe\uffff]")


def wire_json(value: Any) -> str:
    """Compact JSON with non-ASCII text as UTF-8, not \\u escapes: both services count UTF-8 bytes, and
    an escaped character costs 6-12 bytes instead of 1-4, which would let the largest record's event
    outgrow the 256 KB a call may carry. The few code points SQS (a common subscriber) refuses raw,
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html, stay
    escaped; they occur only inside strings, so escaping them keeps the JSON equal."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return _UNSAFE_ON_THE_WIRE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def put_events_entry_size(entry: PutEventsRequestEntryTypeDef) -> int:
    """An entry's size as EventBridge counts it: 14 bytes for `Time` if given, plus the UTF-8 bytes of
    `Source`, `DetailType`, `Detail` and each of `Resources`
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html)."""
    size = PUT_EVENTS_TIME_BYTES if entry.get("Time") is not None else 0
    for text in (entry.get("Source"), entry.get("DetailType"), entry.get("Detail")):
        size += _utf8_size(text) if text is not None else 0
    return size + sum(_utf8_size(resource) for resource in entry.get("Resources", ()))


def sns_entry_size(entry: PublishBatchRequestEntryTypeDef) -> int:
    """A message's share of a PublishBatch payload: its body and its attributes (name, data type and
    value), https://docs.aws.amazon.com/sns/latest/api/API_PublishBatch.html."""
    size = _utf8_size(entry["Message"])
    for name, attribute in entry.get("MessageAttributes", {}).items():
        size += _utf8_size(name) + _utf8_size(attribute["DataType"])
        size += _utf8_size(attribute.get("StringValue", ""))
    return size


Entry = TypeVar("Entry")


@dataclass(frozen=True)
class Outgoing(Generic[Entry]):
    """One event's request entry for one destination, with its size as that service counts it."""

    event_id: str
    entry: Entry
    size: int


def batches(items: Sequence[Any], size_of: Callable[[Any], int], max_bytes: int) -> Iterable[list[Any]]:
    """Splits items into calls of at most 10 entries and `max_bytes` (an item larger than that alone
    goes alone: callers keep such items out)."""
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
        to_bus = [self._bus_entry(event) for event in events]
        to_topic = [self._topic_entry(event) for event in events]
        return self._retrying("PutEvents", to_bus, self._put_events, MAX_PUT_EVENTS_BYTES) | self._retrying(
            "PublishBatch", to_topic, self._publish_sns, MAX_SNS_BATCH_BYTES
        )

    def _retrying(
        self,
        operation: str,
        outgoing: Sequence[Outgoing[Entry]],
        send: Callable[[list[Outgoing[Entry]]], set[str]],
        max_bytes: int,
    ) -> set[str]:
        # An entry over the limit on its own could never be sent: it is reported (Lambda retries it, then
        # sends it to the dead-letter queue) rather than failing the whole call for its batch. The record
        # limits keep every event well below it (tests/streams/test_event_sizes.py).
        oversized = {item.event_id for item in outgoing if item.size > max_bytes}
        for item in outgoing:
            if item.event_id in oversized:
                logger.error(
                    "event too large to publish",
                    extra={"event_id": item.event_id, "operation": operation, "size": item.size},
                )
        pending = [item for item in outgoing if item.event_id not in oversized]
        for attempt in range(self.max_attempts):
            if not pending:
                break
            if attempt:
                self.sleep(self.base_delay_seconds * 2 ** (attempt - 1))
            failed: set[str] = set()
            for batch in batches(pending, lambda item: item.size, max_bytes):
                failed |= send(batch)
            pending = [item for item in pending if item.event_id in failed]
        return oversized | {item.event_id for item in pending}

    def _bus_entry(self, event: FeedbackEvent) -> Outgoing[PutEventsRequestEntryTypeDef]:
        entry: PutEventsRequestEntryTypeDef = {
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": wire_json(event.detail),
            "Time": datetime.fromisoformat(event.time.replace("Z", "+00:00")),
            "EventBusName": self.bus_name,
        }
        return Outgoing(event.event_id, entry, put_events_entry_size(entry))

    @staticmethod
    def _topic_entry(event: FeedbackEvent) -> Outgoing[PublishBatchRequestEntryTypeDef]:
        entry: PublishBatchRequestEntryTypeDef = {
            "Id": "",  # set per call: ids only need to be unique within one PublishBatch
            "Message": wire_json(event.envelope()),
            "MessageAttributes": {
                name: {"DataType": "String", "StringValue": value}
                for name, value in event.attributes().items()
            },
        }
        return Outgoing(event.event_id, entry, sns_entry_size(entry))

    def _put_events(self, batch: list[Outgoing[PutEventsRequestEntryTypeDef]]) -> set[str]:
        response = self.events_client.put_events(Entries=[item.entry for item in batch])
        if not response.get("FailedEntryCount"):
            return set()
        # Entries answer in request order; a failed one carries an ErrorCode.
        return {
            item.event_id
            for item, entry in zip(batch, response["Entries"], strict=True)
            if entry.get("ErrorCode")
        }

    def _publish_sns(self, batch: list[Outgoing[PublishBatchRequestEntryTypeDef]]) -> set[str]:
        response = self.sns_client.publish_batch(
            TopicArn=self.topic_arn,
            PublishBatchRequestEntries=[item.entry | {"Id": str(index)} for index, item in enumerate(batch)],
        )
        return {batch[int(entry["Id"])].event_id for entry in response.get("Failed", [])}
