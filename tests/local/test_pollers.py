"""The stream pollers do Lambda's part: batches, partial failures, retries, bisection, OnFailure, windows."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from local.harness import Harness
from local.pollers import MappingConfig, StreamPoller, sqs_sender
from tests.conftest import TEST_ENV
from tests.local.fakes import FakeFunction


@dataclass
class Stream:
    dynamodb: Any
    streams: Any
    sqs: Any
    arn: str
    queue_url: str
    queue_arn: str
    table: str

    def write(self, *keys: str) -> None:
        for key in keys:
            self.dynamodb.put_item(TableName=self.table, Item={"pk": {"S": key}, "value": {"S": key}})

    def dead_letters(self) -> list[dict[str, Any]]:
        found = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found


@pytest.fixture
def stream() -> Iterator[Stream]:
    """A table with a stream and a dead-letter queue (unique names: moto mocks may be nested)."""
    name = f"poller-{uuid.uuid4().hex[:8]}"
    with mock.patch.dict(os.environ, TEST_ENV), mock_aws():
        dynamodb = boto3.client("dynamodb")
        table = dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName=f"{name}-dead-letters")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        yield Stream(dynamodb, boto3.client("dynamodbstreams"), sqs, table["LatestStreamArn"], url, arn, name)


def key_of(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["Keys"]["pk"]["S"])


def keys_of(event: dict[str, Any]) -> list[str]:
    return [key_of(record) for record in event["Records"]]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def poller_for(stream: Stream, function: FakeFunction, clock: Clock, **settings: Any) -> StreamPoller:
    properties = {
        "FunctionName": function.arn,
        "EventSourceArn": stream.arn,
        "StartingPosition": "TRIM_HORIZON",
        "DestinationConfig": {"OnFailure": {"Destination": stream.queue_arn}},
        **settings,
    }
    return StreamPoller(
        MappingConfig.from_properties("Mapping", properties),
        function,
        stream.streams,
        send_failure=sqs_sender(stream.sqs),
        clock=clock,
    )


def drive(poller: StreamPoller, clock: Clock, rounds: int = 30) -> None:
    """Poll rounds, letting retry delays pass between them."""
    for _ in range(rounds):
        poller.poll_once()
        clock.now += 5


def test_mapping_settings_from_the_template(template: Harness) -> None:
    template_stack = template.stack
    mappings = {
        logical_id: MappingConfig.from_properties(logical_id, properties)
        for logical_id, properties in template_stack.event_source_mappings.items()
    }
    by_function = {config.function_name.rsplit("-", 2)[-1]: config for config in mappings.values()}
    assert set(by_function) == {"events", "stats"}
    for config in mappings.values():
        assert config.event_source_arn == template_stack.outputs["FeedbackTableStreamArn"]
        assert config.report_batch_item_failures
        assert config.bisect_on_error
        assert config.maximum_retry_attempts >= 0
        assert config.on_failure is not None
        assert config.on_failure.startswith("arn:aws:sqs:")
    assert by_function["stats"].tumbling_window_seconds > 0
    assert by_function["events"].tumbling_window_seconds == 0


def test_records_in_order_in_batches_of_batch_size(stream: Stream) -> None:
    function, clock = FakeFunction("Fn", {"batchItemFailures": []}), Clock()
    poller = poller_for(stream, function, clock, BatchSize=2)
    stream.write("a", "b", "c", "d", "e")
    drive(poller, clock, rounds=2)
    assert [keys_of(event) for event in function.events] == [["a", "b"], ["c", "d"], ["e"]]
    record = function.events[0]["Records"][0]
    assert record["eventSourceARN"] == stream.arn
    assert record["eventName"] == "INSERT"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], float)
    assert set(function.events[0]) == {"Records"}
    assert poller.records_done == 5


def test_batching_window_waits_for_more_records(stream: Stream) -> None:
    function, clock = FakeFunction("Fn", None), Clock()
    poller = poller_for(stream, function, clock, BatchSize=10, MaximumBatchingWindowInSeconds=2)
    stream.write("a")
    poller.poll_once()
    assert function.events == []
    stream.write("b")
    clock.now += 1
    poller.poll_once()
    assert function.events == []
    clock.now += 1.5
    poller.poll_once()
    assert [keys_of(event) for event in function.events] == [["a", "b"]]


def test_partial_failure_retries_from_the_lowest_reported_record_then_dead_letters(stream: Stream) -> None:
    """A poison record is retried MaximumRetryAttempts times, then its batch goes to the OnFailure queue and
    the records written after it are processed."""

    def respond(event: dict[str, Any]) -> dict[str, Any]:
        failed = [r["dynamodb"]["SequenceNumber"] for r in event["Records"] if key_of(r) == "poison"]
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in failed]}

    function, clock = FakeFunction("Fn", respond=respond), Clock()
    poller = poller_for(
        stream,
        function,
        clock,
        BatchSize=3,
        MaximumRetryAttempts=2,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    stream.write("a", "poison", "b")
    drive(poller, clock, rounds=1)
    stream.write("c", "d")
    drive(poller, clock)

    assert [keys_of(event) for event in function.events] == [
        ["a", "poison", "b"],  # a is done; the batch is retried from the poison record
        ["poison", "b", "c"],  # retry 1
        ["poison", "b", "c"],  # retry 2: exhausted, the batch is discarded
        ["d"],
    ]
    (record,) = stream.dead_letters()
    sequences = [r["dynamodb"]["SequenceNumber"] for r in function.events[1]["Records"]]
    info = record["DDBStreamBatchInfo"]
    assert info["shardId"].startswith("shardId-")
    assert info["startSequenceNumber"] == sequences[0]
    assert info["endSequenceNumber"] == sequences[-1]
    assert info["batchSize"] == 3
    assert info["streamArn"] == stream.arn
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert info["approximateArrivalOfLastRecord"].endswith("Z")
    assert record["requestContext"]["functionArn"] == function.arn
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z")
    assert set(record) == {"requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"}


def test_without_report_batch_item_failures_the_report_is_ignored(stream: Stream) -> None:
    function, clock = FakeFunction("Fn", {"batchItemFailures": [{"itemIdentifier": "1"}]}), Clock()
    poller = poller_for(stream, function, clock, BatchSize=10)
    stream.write("a", "b")
    drive(poller, clock, rounds=3)
    assert [keys_of(event) for event in function.events] == [["a", "b"]]
    assert stream.dead_letters() == []


@pytest.mark.parametrize(
    "report", [[{"itemIdentifier": ""}], [{"itemIdentifier": None}], [{"itemIdentifier": "42"}], [{}]]
)
def test_an_invalid_report_fails_the_whole_batch(stream: Stream, report: list[dict[str, Any]]) -> None:
    function, clock = FakeFunction("Fn", {"batchItemFailures": report}), Clock()
    poller = poller_for(
        stream,
        function,
        clock,
        BatchSize=10,
        MaximumRetryAttempts=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    stream.write("a", "b")
    drive(poller, clock, rounds=5)
    assert [keys_of(event) for event in function.events] == [["a", "b"], ["a", "b"]]
    (record,) = stream.dead_letters()
    assert record["DDBStreamBatchInfo"]["batchSize"] == 2


def test_function_errors_bisect_the_batch_to_isolate_the_poison_record(stream: Stream) -> None:
    def respond(event: dict[str, Any]) -> Any:
        return RuntimeError("cannot handle it") if "poison" in keys_of(event) else None

    function, clock = FakeFunction("Fn", respond=respond), Clock()
    poller = poller_for(
        stream, function, clock, BatchSize=4, MaximumRetryAttempts=1, BisectBatchOnFunctionError=True
    )
    stream.write("a", "poison", "b", "c")
    drive(poller, clock)
    assert [keys_of(event) for event in function.events] == [
        ["a", "poison", "b", "c"],
        ["a", "poison"],
        ["a"],
        ["poison"],
        ["poison"],  # one retry (splitting does not count as one), then discarded
        ["b", "c"],
    ]
    (record,) = stream.dead_letters()
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_function_errors_without_bisection_retry_the_whole_batch(stream: Stream) -> None:
    function, clock = FakeFunction("Fn", RuntimeError("down")), Clock()
    poller = poller_for(stream, function, clock, BatchSize=10, MaximumRetryAttempts=2)
    stream.write("a", "b")
    drive(poller, clock)
    assert [keys_of(event) for event in function.events] == [["a", "b"]] * 3
    (record,) = stream.dead_letters()
    assert record["DDBStreamBatchInfo"]["batchSize"] == 2
    function.result = None
    stream.write("c")
    drive(poller, clock, rounds=2)
    assert keys_of(function.events[-1]) == ["c"]


def test_records_older_than_the_maximum_age_are_discarded(stream: Stream) -> None:
    function, clock = FakeFunction("Fn", RuntimeError("down")), Clock()
    poller = poller_for(stream, function, clock, MaximumRecordAgeInSeconds=60, MaximumRetryAttempts=-1)
    stream.write("a")
    poller.poll_once()
    assert len(function.events) == 1
    with mock.patch(
        "local.pollers.time.time",
        return_value=function.events[0]["Records"][0]["dynamodb"]["ApproximateCreationDateTime"] + 61,
    ):
        clock.now += 5
        poller.poll_once()
    (record,) = stream.dead_letters()
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert len(function.events) == 1


def test_two_mappings_read_one_stream_independently(stream: Stream) -> None:
    clock = Clock()
    first, second = FakeFunction("One", None), FakeFunction("Two", None)
    pollers = [poller_for(stream, first, clock), poller_for(stream, second, clock)]
    stream.write("a", "b")
    for poller in pollers:
        drive(poller, clock, rounds=1)
    assert keys_of(first.events[0]) == keys_of(second.events[0]) == ["a", "b"]


def test_tumbling_window_events_carry_shard_window_and_state(stream: Stream) -> None:
    def respond(event: dict[str, Any]) -> dict[str, Any]:
        count = int(event["state"].get("count", 0)) + len(event["Records"])
        return {"state": {"count": count}, "batchItemFailures": []}

    function, clock = FakeFunction("Stats", respond=respond), Clock()
    poller = poller_for(
        stream,
        function,
        clock,
        BatchSize=2,
        TumblingWindowInSeconds=3600,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    stream.write("a", "b", "c")
    drive(poller, clock, rounds=1)
    first, second = function.events
    assert set(first) == {
        "Records",
        "shardId",
        "eventSourceARN",
        "window",
        "state",
        "isFinalInvokeForWindow",
        "isWindowTerminatedEarly",
    }
    assert first["shardId"].startswith("shardId-")
    assert first["eventSourceARN"] == stream.arn
    assert first["state"] == {}
    assert second["state"] == {"count": 2}
    assert first["isFinalInvokeForWindow"] is False
    assert first["isWindowTerminatedEarly"] is False
    assert first["window"]["start"].endswith(":00:00Z")
    assert first["window"]["end"] > first["window"]["start"]

    window_end = int(first["Records"][0]["dynamodb"]["ApproximateCreationDateTime"] // 3600 + 1) * 3600
    with mock.patch("local.pollers.time.time", return_value=window_end + 1):
        poller.poll_once()
    final = function.events[-1]
    assert final["isFinalInvokeForWindow"] is True
    assert final["Records"] == []
    assert final["state"] == {"count": 3}


def test_checkpoints_resume_after_a_restart(stream: Stream) -> None:
    clock = Clock()
    function = FakeFunction("Fn", None)
    saved: dict[str, str] = {}
    poller = poller_for(stream, function, clock)
    poller.on_checkpoint = lambda mapping, shard, sequence: saved.__setitem__(shard, sequence)
    stream.write("a", "b")
    drive(poller, clock, rounds=1)
    assert saved == poller.checkpoints()

    stream.write("c")
    again = FakeFunction("Fn", None)
    restarted = StreamPoller(poller.config, again, stream.streams, checkpoints=saved, clock=clock)
    drive(restarted, clock, rounds=1)
    assert [keys_of(event) for event in again.events] == [["c"]]
