"""Events of the largest records reach the bus and the topic within AWS's request limits.

PutEvents carries at most 10 entries whose sizes, by EventBridge's formula, total less than 256 KB
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html); PublishBatch at most 10
messages of 262,144 bytes in all, attributes included
(https://docs.aws.amazon.com/sns/latest/api/API_PublishBatch.html). The strict layer (tests/support/
aws_limits.py) refuses any call beyond them, as AWS does.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel

from feedback_core import events
from feedback_core.events import (
    MAX_PUT_EVENTS_BYTES,
    MAX_SNS_BATCH_BYTES,
    Publisher,
    build_event,
    put_events_entry_size,
    sns_entry_size,
    wire_json,
)
from feedback_core.fields import MAX_CONTEXT_BYTES, MAX_DETAILS_BYTES, json_size
from feedback_core.models import FeedbackSubmission, TokenRequest
from feedback_core.streams import publish_batch
from local.functions import lambda_context
from tests.streams.pipeline import Pipeline
from tests.streams.test_events import feedback_records
from tests.support.aws_limits import StrictAws, event_entry_size, sns_message_size

ASTRAL = "\U0001f600"
"""4 bytes of UTF-8 (12 as a JSON \\u escape pair): the most a printable character can cost."""


def largest_number_list(limit: int) -> dict[str, Any]:
    """The JSON object of at most `limit` bytes that grows most on its way through DynamoDB: 1e37 is
    5 characters in the request and comes back as a 38-digit integer."""
    count = (limit - json_size({"n": []}) + 1) // len("1e+37,")
    value = {"n": [1e37] * count}
    assert json_size(value) <= limit
    return value


def largest_token() -> TokenRequest:
    return TokenRequest.model_validate(
        {
            "run_id": ASTRAL * 256,
            "user_id": ASTRAL * 255 + "u",
            "session_id": ASTRAL * 256,
            "agent": ASTRAL * 64,
            "context": largest_number_list(MAX_CONTEXT_BYTES),
        }
    )


def largest_submission(outcome: str) -> FeedbackSubmission:
    """Every field at its limit, in the characters that cost the most bytes on the wire: control
    characters (allowed in comments) become 6-byte escapes; U+FFFF is kept escaped for SQS."""
    submission = FeedbackSubmission.model_validate(
        {
            "outcome": outcome,
            "score": -10,
            "weight": 0.12345678901234568,
            "comment": "\x00\uffff" * 2500,
            "details": largest_number_list(MAX_DETAILS_BYTES),
            "tags": [ASTRAL * 63 + str(index) for index in range(10)],
            "source": ASTRAL * 64,
        }
    )
    assert submission.details_size() <= MAX_DETAILS_BYTES
    return submission


def store_largest_record(pipeline: Pipeline, project: str) -> None:
    """Submitted, then changed: the Updated event carries the record twice (`feedback`, `previous`)."""
    token = largest_token()
    for outcome in ("positive", "negative"):
        pipeline.clock.advance(1)
        pipeline.store.submit(
            project=project,
            run_id=token.run_id,
            user_id=str(token.user_id),
            fields=largest_submission(outcome).record_fields(),
            session_id=token.session_id,
            agent=token.agent,
            context=token.context,
        )


MAXIMUM_FIELDS = {
    "comment": "c" * 5000,
    "details": {"text": "d" * (MAX_DETAILS_BYTES - json_size({"text": ""}))},
}


def maximum_comment_and_details_record(pipeline: Pipeline, index: int, outcome: str = "positive") -> None:
    pipeline.clock.advance(1)
    fields = MAXIMUM_FIELDS | {"outcome": outcome}
    pipeline.store.submit(project="acme", run_id=f"run-{index}", user_id="u", fields=fields)


def test_stream_batches_of_maximum_size_records_are_published_within_the_limits(
    pipeline: Pipeline, strict_aws: StrictAws
) -> None:
    assert json_size(MAXIMUM_FIELDS["details"]) == MAX_DETAILS_BYTES
    delivered: list[dict[str, Any]] = []
    # first every record submitted, then every one changed: Updated events carry the record twice
    for outcome in ("positive", "negative"):
        for index in range(30):
            maximum_comment_and_details_record(pipeline, index, outcome)
        (records,) = pipeline.poll().values()
        records = feedback_records(records)
        assert len(records) == 30
        response = publish_batch({"Records": records}, lambda_context(), pipeline.publisher, "full")
        assert response == {"batchItemFailures": []}
        delivered += records

    assert strict_aws.refusals == []
    bus = pipeline.bus_events()
    sns = pipeline.sns_events()
    assert sorted(e["detail"]["event_id"] for e in bus) == sorted(r["eventID"] for r in delivered)
    assert sorted(e["detail"]["event_id"] for e in sns) == sorted(r["eventID"] for r in delivered)
    updated = [e for e in bus if e["detail-type"] == "Feedback Updated"]
    assert len(updated) == 30
    assert all(len(e["detail"]["previous"]["comment"]) == 5000 for e in updated)


def test_the_largest_possible_record_makes_an_event_one_call_can_carry(
    pipeline: Pipeline, strict_aws: StrictAws
) -> None:
    store_largest_record(pipeline, project="p" * 63)
    (records,) = pipeline.poll().values()
    *_, modify = feedback_records(records)
    event = build_event(pipeline_record(modify))
    assert event is not None and event.detail_type == "Feedback Updated"

    bus_entry = pipeline.publisher._bus_entry(event)
    topic_entry = pipeline.publisher._topic_entry(event)
    assert bus_entry.size == put_events_entry_size(bus_entry.entry)
    assert topic_entry.size == sns_entry_size(topic_entry.entry)
    # Well within one call, with room to spare.
    assert bus_entry.size < MAX_PUT_EVENTS_BYTES * 0.85
    assert topic_entry.size < MAX_SNS_BATCH_BYTES * 0.85

    response = publish_batch({"Records": [modify]}, lambda_context(), pipeline.publisher, "full")
    assert response == {"batchItemFailures": []}
    assert strict_aws.refusals == []
    (on_bus,) = pipeline.bus_events()
    (on_topic,) = pipeline.sns_events()
    assert on_bus["detail"] == event.detail
    assert on_topic["detail"] == event.detail
    assert on_bus["detail"]["feedback"]["comment"] == "\x00\uffff" * 2500
    assert on_bus["detail"]["context"]["n"][0] == 10**37


def pipeline_record(raw: dict[str, Any]) -> DynamoDBStreamRecordModel:
    return DynamoDBStreamRecordModel.model_validate(raw)


def test_wire_json_escapes_only_what_sqs_refuses_raw() -> None:
    value = {"text": 'é\U0001f600\x00\ufffe\uffff"\\', "n": [1, 2.5, None, True]}
    text = wire_json(value)
    assert json.loads(text) == value
    assert "é\U0001f600" in text
    assert "\\u0000" in text and "\\ufffe" in text and "\\uffff" in text
    assert "\ufffe" not in text and "\uffff" not in text
    assert " " not in text  # compact


def test_an_event_too_large_for_any_call_is_reported_for_the_dead_letter_queue(
    pipeline: Pipeline, strict_aws: StrictAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records the service writes cannot make one (see above); a record written around the service
    could. It is not sent (AWS would refuse the whole call), the log says why, and the stream record
    is reported, so Lambda retries it and then hands it to the OnFailure queue."""
    for index in range(3):
        maximum_comment_and_details_record(pipeline, index)
    (records,) = pipeline.poll().values()
    records = feedback_records(records)
    assert len(records) == 3
    huge = copy.deepcopy(records[1])
    huge["dynamodb"]["NewImage"]["comment"] = {"S": "x" * MAX_PUT_EVENTS_BYTES}
    logged: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(events.logger, "error", lambda message, extra: logged.append((message, extra)))

    response = publish_batch(
        {"Records": [records[0], huge, *records[2:]]}, lambda_context(), pipeline.publisher, "full"
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": huge["dynamodb"]["SequenceNumber"]}]}
    assert strict_aws.refusals == []
    delivered = {e["detail"]["event_id"] for e in pipeline.bus_events()}
    assert delivered == {r["eventID"] for r in records} - {huge["eventID"]}
    assert [(message, extra["event_id"], extra["operation"]) for message, extra in logged] == [
        ("event too large to publish", huge["eventID"], "PutEvents"),
        ("event too large to publish", huge["eventID"], "PublishBatch"),
    ]


def test_publisher_sizes_match_the_strict_layer(pipeline: Pipeline) -> None:
    """The publisher's formula and the strict layer's, written apart from each other, agree."""
    store_largest_record(pipeline, project="acme")
    (records,) = pipeline.poll().values()
    for raw in feedback_records(records):
        event = build_event(pipeline_record(raw))
        assert event is not None
        bus_entry = pipeline.publisher._bus_entry(event)
        topic_entry = pipeline.publisher._topic_entry(event)
        assert bus_entry.size == event_entry_size(bus_entry.entry)
        assert topic_entry.size == sns_message_size(topic_entry.entry)


def test_publisher_splits_calls_by_entry_count_and_bytes(pipeline: Pipeline) -> None:
    calls: dict[str, list[int]] = {"bus": [], "topic": []}
    bus, topic = pipeline.publisher.events_client, pipeline.publisher.sns_client

    class CountingBus:
        def put_events(self, Entries: list[dict[str, Any]]) -> Any:
            calls["bus"].append(sum(put_events_entry_size(entry) for entry in Entries))  # type: ignore[arg-type]
            return bus.put_events(Entries=Entries)

    class CountingTopic:
        def publish_batch(self, TopicArn: str, PublishBatchRequestEntries: list[dict[str, Any]]) -> Any:
            calls["topic"].append(len(PublishBatchRequestEntries))
            return topic.publish_batch(
                TopicArn=TopicArn, PublishBatchRequestEntries=PublishBatchRequestEntries
            )

    for index in range(12):
        pipeline.clock.advance(1)
        pipeline.store.submit(
            project="acme", run_id=f"small-{index}", user_id="u", fields={"outcome": "positive"}
        )
    (records,) = pipeline.poll().values()
    records = feedback_records(records)
    publisher = Publisher(
        CountingBus(), CountingTopic(), "feedback", pipeline.publisher.topic_arn, sleep=lambda _: None
    )  # type: ignore[arg-type]
    assert publish_batch({"Records": records}, lambda_context(), publisher, "full") == {
        "batchItemFailures": []
    }
    assert len(calls["bus"]) == 2  # small events: the 10-entry rule splits them
    assert calls["topic"] == [10, 2]
