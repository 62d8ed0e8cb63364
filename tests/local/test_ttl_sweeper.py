"""The local TTL sweeper: expired items deleted as DynamoDB's TTL does, their REMOVE records stamped with
DynamoDB's service identity on the way to the real publish_events and stats functions."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from feedback_core import services
from feedback_core.stats import StatsQuery, StatsStore
from feedback_core.store import FeedbackStore
from local.cloud import Stack, deploy_stack
from local.functions import LocalFunction
from local.pollers import MappingConfig, StreamPoller
from local.ttl import TTL_IDENTITY, SweptItems, TtlSweeper, ttl_tables
from tests.conftest import TEST_ENV

RETENTION_DAYS = 1
DAY = 86_400
PROJECT = "acme"


@dataclass
class Recorded:
    """A real function, with the stream records it was given."""

    function: LocalFunction
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return self.function.arn

    def invoke(self, event: Any) -> Any:
        self.records.extend(event["Records"])
        return self.function.invoke(event)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    stack: Stack
    store: FeedbackStore
    stats: StatsStore
    sweeper: TtlSweeper
    swept: SweptItems
    pollers: list[StreamPoller]
    functions: dict[str, Recorded]
    poll_clock: Clock
    sweep_clock: Clock
    queue_url: str

    def deliver(self) -> None:
        """Lambda's part: every poller sends what is due (the batching window let pass)."""
        for _ in range(3):
            for poller in self.pollers:
                poller.poll_once()
            self.poll_clock.now += 5

    def events(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        bodies = []
        while messages := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return sorted(bodies, key=lambda event: int(event["detail"]["sequence"]))

    def totals(self) -> dict[str, Any]:
        today = datetime.now(UTC).date()
        query = StatsQuery(start=date.fromordinal(today.toordinal() - 2), granularity="total")
        return self.stats.query(PROJECT, query, today).total.model_dump(exclude={"start"})

    def set_expiry(self, user_id: str, expires_at: int) -> None:
        """What DynamoDB's TTL would see of a record: its ``expires_at`` written directly in the table."""
        boto3.client("dynamodb").update_item(
            TableName=self.store.table_name,
            Key={"pk": {"S": f"{PROJECT}#run-1"}, "sk": {"S": user_id}},
            UpdateExpression="SET expires_at = :at",
            ExpressionAttributeValues={":at": {"N": str(expires_at)}},
        )


@pytest.fixture
def world() -> Iterator[World]:
    """The template in moto (RetentionDays=1), its two stream functions run by pollers sharing the
    sweeper's record of deletions, and a queue receiving every event of the bus."""
    with mock.patch.dict(os.environ, TEST_ENV), mock_aws():
        stack = deploy_stack(stack_name="ttl-test", parameters={"RetentionDays": str(RETENTION_DAYS)})
        stream_functions = ("PublishEventsFunction", "StatsFunction")
        functions = {
            logical_id: Recorded(
                LocalFunction.from_configuration(
                    logical_id,
                    stack.code[logical_id],
                    stack.function_configuration(logical_id),
                    stack.function_environment(logical_id),
                )
            )
            for logical_id in stream_functions
        }
        sqs, events = boto3.client("sqs"), boto3.client("events")
        queue_url = sqs.create_queue(QueueName="ttl-test-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bus = stack.outputs["EventBusName"]
        events.put_rule(
            Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["feedback.service"]})
        )
        events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])

        swept, poll_clock, sweep_clock = SweptItems(), Clock(), Clock()
        by_name = {function.function.name: function for function in functions.values()}
        pollers = [
            StreamPoller(
                config,
                by_name[config.function_name],
                boto3.client("dynamodbstreams"),
                swept=swept,
                clock=poll_clock,
            )
            for config in (
                MappingConfig.from_properties(logical_id, properties)
                for logical_id, properties in stack.event_source_mappings.items()
            )
        ]
        client = boto3.client("dynamodb")
        table_names = {
            logical_id: stack.resources[logical_id]
            for logical_id in stack.resources_of_type("AWS::DynamoDB::Table")
        }
        sweeper = TtlSweeper(client, ttl_tables(stack, table_names), swept, clock=sweep_clock)
        store = FeedbackStore(client, stack.outputs["FeedbackTableName"], retention_days=RETENTION_DAYS)
        stats = StatsStore(client, table_names["StatsTable"])
        yield World(
            stack, store, stats, sweeper, swept, pollers, functions, poll_clock, sweep_clock, queue_url
        )
        services.reset()


def submit(world: World, user_id: str, **fields: Any) -> int:
    record, _ = world.store.submit(project=PROJECT, run_id="run-1", user_id=user_id, fields=fields)
    assert record.expires_at is not None
    return int(record.expires_at)


def removals(recorded: Recorded) -> list[tuple[str, Any]]:
    return [
        (record["dynamodb"]["Keys"]["sk"]["S"], record.get("userIdentity"))
        for record in recorded.records
        if record["eventName"] == "REMOVE"
    ]


def test_the_template_s_ttl_tables_are_swept(world: World) -> None:
    tables = {table.logical_id: table for table in world.sweeper.tables}
    assert set(tables) == {"FeedbackTable", "StatsTable"}
    assert tables["FeedbackTable"].ttl_attribute == "expires_at"
    assert tables["FeedbackTable"].key_attributes == ("pk", "sk")
    assert tables["FeedbackTable"].has_stream
    assert not tables["StatsTable"].has_stream


def test_an_expired_record_is_swept_as_dynamodb_ttl_and_a_retract_stays_the_user_s(world: World) -> None:
    expires_at = submit(world, "alice", outcome="positive", score=4, comment="fine")
    submit(world, "bob", outcome="negative")
    submit(world, "carol", outcome="positive")
    assert expires_at - time.time() == pytest.approx(RETENTION_DAYS * DAY, abs=60)
    world.deliver()
    assert world.totals()["positive"] == 2
    world.events()

    # The retention has passed for every record; carol's changed meanwhile (her expiry moved on), as
    # DynamoDB's TTL would see it; bob retracts his, in the same stream batch as alice's expiry.
    world.sweep_clock.now = expires_at + 1
    world.set_expiry("carol", expires_at + 5 * DAY)
    world.store.retract(PROJECT, "run-1", "bob")
    assert world.sweeper.sweep_once() == 1
    assert world.swept.pending(world.store.table_name) == 1
    world.deliver()
    assert world.swept.pending(world.store.table_name) == 0

    for recorded in world.functions.values():
        assert removals(recorded) == [("bob", None), ("alice", TTL_IDENTITY)]
    publish_batches = [
        r["dynamodb"]["SequenceNumber"] for r in world.functions["PublishEventsFunction"].records
    ]
    assert len(publish_batches) == len(set(publish_batches))

    events = world.events()
    assert [(e["detail-type"], e["detail"]["user_id"], e["detail"]["actor"]) for e in events] == [
        ("Feedback Updated", "carol", "user"),  # the direct write of her new expiry
        ("Feedback Retracted", "bob", "user"),
        ("Feedback Expired", "alice", "retention"),
    ]
    expired = events[2]["detail"]
    assert expired["previous"]["comment"] == "fine"
    assert "feedback" not in expired
    assert world.totals() | {"score_weighted_mean": None} == {
        "positive": 1,  # carol's
        "negative": 0,
        "score_count": 0,
        "score_sum": 0.0,
        "score_weighted_mean": None,
        "comments": 0,
    }
    assert world.store.get(PROJECT, "run-1", "carol") is not None

    # A later sweep has nothing left to do; carol's record expires at its new time.
    assert world.sweeper.sweep_once() == 0
    world.sweep_clock.now = expires_at + 5 * DAY + 1
    assert world.sweeper.sweep_once() == 1
    world.deliver()
    assert [(e["detail-type"], e["detail"]["user_id"]) for e in world.events()] == [
        ("Feedback Expired", "carol")
    ]
    assert world.totals()["positive"] == 0


def test_a_user_retract_is_never_taken_for_a_ttl_removal(world: World) -> None:
    """A deletion matches only the REMOVE of its key with its old image: alice's expired record is
    swept, she submits again and retracts; that retract is hers."""
    expires_at = submit(world, "alice", outcome="positive")
    world.sweep_clock.now = expires_at + 1
    assert world.sweeper.sweep_once() == 1
    submit(world, "alice", outcome="negative")
    world.store.retract(PROJECT, "run-1", "alice")
    world.deliver()
    for recorded in world.functions.values():
        assert removals(recorded) == [("alice", TTL_IDENTITY), ("alice", None)]
    assert [(e["detail-type"], e["detail"]["actor"]) for e in world.events()] == [
        ("Feedback Submitted", "user"),
        ("Feedback Expired", "retention"),
        ("Feedback Submitted", "user"),
        ("Feedback Retracted", "user"),
    ]


def test_an_unswept_removal_with_the_key_of_a_recorded_deletion_is_not_stamped() -> None:
    swept = SweptItems()
    key = {"pk": {"S": "p#r"}, "sk": {"S": "u"}}
    with swept.deleting:
        swept.record("table", key, {**key, "version": {"N": "2"}, "expires_at": {"N": "10"}})
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/table/stream/2026"

    def remove(sequence: str, version: str) -> dict[str, Any]:
        image = {**key, "version": {"N": version}, "expires_at": {"N": "10"}}
        return {
            "eventName": "REMOVE",
            "dynamodb": {"SequenceNumber": sequence, "Keys": key, "OldImage": image},
        }

    other_version, same = remove("1", "3"), remove("2", "2.0")
    assert swept.stamp(arn, [other_version, same]) == 1
    assert "userIdentity" not in other_version
    assert same["userIdentity"] == TTL_IDENTITY
    # Another mapping reading the same stream gets the same record stamped; a repeat of it elsewhere not.
    again = remove("2", "2")
    assert swept.stamp(arn, [again]) == 1
    assert swept.stamp(arn.replace("table/table", "table/other"), [remove("2", "2")]) == 0
