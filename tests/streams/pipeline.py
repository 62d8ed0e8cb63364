"""A feedback table (from template.yaml) with its stream, a bus and a topic, each draining into SQS."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3

from feedback_core.events import SOURCE, Publisher
from feedback_core.stats import StatsStore
from feedback_core.store import FeedbackStore
from feedback_core.streams import apply_stats_batch, publish_batch
from local.functions import lambda_context
from local.streams import StreamReader
from local.tables import create_tables_from_template
from tests.support.clock import ManualClock


def drain_queue(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = []
    while True:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        batch = response.get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@dataclass
class Pipeline:
    dynamodb: Any
    store: FeedbackStore
    stats: StatsStore
    publisher: Publisher
    reader: StreamReader
    sqs: Any
    bus_queue: str
    sns_queue: str
    clock: ManualClock
    delivered_records: list[dict[str, Any]] = field(default_factory=list)

    def poll(self) -> dict[str, list[dict[str, Any]]]:
        batches = self.reader.poll()
        for records in batches.values():
            self.delivered_records += records
        return batches

    def run_consumers(
        self, batches: dict[str, list[dict[str, Any]]], detail: str = "full"
    ) -> list[dict[str, Any]]:
        responses = []
        for shard_id, records in batches.items():
            responses.append(publish_batch({"Records": records}, lambda_context(), self.publisher, detail))
            apply_stats_batch({"Records": records, "shardId": shard_id}, self.stats)
        return responses

    def drain(self, detail: str = "full") -> None:
        for response in self.run_consumers(self.poll(), detail):
            assert response == {"batchItemFailures": []}

    def bus_events(self) -> list[dict[str, Any]]:
        return drain_queue(self.sqs, self.bus_queue)

    def sns_events(self) -> list[dict[str, Any]]:
        return [
            json.loads(message["Message"]) | {"_attributes": message.get("MessageAttributes", {})}
            for message in drain_queue(self.sqs, self.sns_queue)
        ]


def make_pipeline(dynamodb_endpoint: str | None = None, sns_filter: dict[str, Any] | None = None) -> Pipeline:
    """Tables in moto, or in DynamoDB Local when an endpoint is given; bus, topic and queues in moto."""
    dynamodb = boto3.client("dynamodb", endpoint_url=dynamodb_endpoint)
    names = create_tables_from_template(dynamodb, prefix=f"s{uuid.uuid4().hex[:6]}")
    sqs = boto3.client("sqs")
    events = boto3.client("events")
    sns = boto3.client("sns")
    events.create_event_bus(Name="feedback")
    bus_queue = sqs.create_queue(QueueName="bus-events")["QueueUrl"]
    bus_queue_arn = sqs.get_queue_attributes(QueueUrl=bus_queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="all", EventBusName="feedback", EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule="all", EventBusName="feedback", Targets=[{"Id": "q", "Arn": bus_queue_arn}])
    topic = sns.create_topic(Name="feedback-events")["TopicArn"]
    sns_queue = sqs.create_queue(QueueName="sns-events")["QueueUrl"]
    sns_queue_arn = sqs.get_queue_attributes(QueueUrl=sns_queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {"FilterPolicy": json.dumps(sns_filter)} if sns_filter else {}
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sns_queue_arn, Attributes=attributes)
    clock = ManualClock(1_800_000_000)
    stream_arn = dynamodb.describe_table(TableName=names["FeedbackTable"])["Table"]["LatestStreamArn"]
    return Pipeline(
        dynamodb=dynamodb,
        store=FeedbackStore(dynamodb, names["FeedbackTable"], clock=clock, max_updates_per_record=100),
        stats=StatsStore(dynamodb, names["StatsTable"]),
        publisher=Publisher(events, sns, "feedback", topic, sleep=lambda _: None),
        reader=StreamReader(boto3.client("dynamodbstreams", endpoint_url=dynamodb_endpoint), stream_arn),
        sqs=sqs,
        bus_queue=bus_queue,
        sns_queue=sns_queue,
        clock=clock,
    )
