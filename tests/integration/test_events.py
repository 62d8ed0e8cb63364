"""The stream functions of the deployed template: events on the stack's bus and topic, and exact stats."""

from __future__ import annotations

import json
from typing import Any

import boto3

from local.streams import StreamReader
from tests.integration.api import Api


def queue_for(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def run_stream_functions(api: Api, reader: StreamReader, stats_deliveries: int = 1) -> None:
    """What the two event source mappings do: each batch to publish_events, then to stats (more than once
    with `stats_deliveries`: Lambda delivers at least once, and a second delivery must change nothing)."""
    for shard_id, records in reader.poll().items():
        published = api.function("publish_events").invoke({"Records": records})
        assert published == {"batchItemFailures": []}
        window = {"Records": records, "shardId": shard_id, "state": {}, "isFinalInvokeForWindow": False}
        for _delivery in range(stats_deliveries):
            stats = api.function("stats").invoke(window)
            assert stats["batchItemFailures"] == []


def test_events_reach_bus_rules_and_filtered_sns_subscriptions(api: Api, full_key: str) -> None:
    outputs = api.stack.outputs
    sqs, events, sns = boto3.client("sqs"), boto3.client("events"), boto3.client("sns")
    bus_url, bus_arn = queue_for(sqs, "negative-feedback")
    pattern = {"source": ["feedback.service"], "detail": {"feedback": {"outcome": ["negative"]}}}
    events.put_rule(Name="negative", EventBusName=outputs["EventBusName"], EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="negative", EventBusName=outputs["EventBusName"], Targets=[{"Id": "q", "Arn": bus_arn}]
    )
    sns_url, sns_arn = queue_for(sqs, "updates-only")
    sns.subscribe(
        TopicArn=outputs["EventsTopicArn"],
        Protocol="sqs",
        Endpoint=sns_arn,
        Attributes={
            "FilterPolicy": json.dumps({"event_type": ["Updated", "Retracted"]}),
            "RawMessageDelivery": "true",
        },
    )
    stream_arn = outputs["FeedbackTableStreamArn"]
    reader = StreamReader(boto3.client("dynamodbstreams"), stream_arn)

    token = api.token(full_key, run_id="run-1", user_id="alice", agent="bot")
    api.submit(token, {"outcome": "negative", "score": 2})
    api.submit(token, {"outcome": "positive"})
    api.submit(api.token(full_key, run_id="run-2", user_id="bob"), {"outcome": "negative", "comment": "no"})
    assert (
        api.call("submit_feedback", "retract_own_feedback", headers={"x-feedback-token": token}).status == 204
    )
    run_stream_functions(api, reader)

    on_bus = drain(sqs, bus_url)
    assert sorted((e["detail-type"], e["detail"]["user_id"]) for e in on_bus) == [
        ("Feedback Submitted", "alice"),
        ("Feedback Submitted", "bob"),
    ]
    on_sns = sorted(drain(sqs, sns_url), key=lambda e: int(e["detail"]["sequence"]))
    assert [(e["detail-type"], e["detail"]["actor"]) for e in on_sns] == [
        ("Feedback Updated", "user"),
        ("Feedback Retracted", "user"),
    ]
    assert on_sns[0]["detail"]["previous"]["outcome"] == "negative"
    assert on_sns[1]["detail"]["previous"]["outcome"] == "positive"

    listed = api.call("query", "list_feedback", key=full_key, query={})
    assert [item["user_id"] for item in listed.body["items"]] == ["bob"]
    stats = api.call("query", "read_stats", key=full_key, query={"granularity": "total"})
    assert stats.status == 200
    assert stats.body["total"] | {"start": None} == {
        "start": None,
        "positive": 0,
        "negative": 1,
        "score_count": 0,
        "score_sum": 0.0,
        "score_weighted_mean": None,
        "comments": 1,
    }
    by_agent = api.call("query", "read_stats", key=full_key, query={"agent": "bot", "granularity": "total"})
    assert by_agent.body["total"]["negative"] == 0
    assert api.call("query", "read_stats", key=full_key, query={"granularity": "week"}).status == 422
    assert api.call("query", "read_stats", key=full_key, query={"start": "2026-13-01"}).status == 422


def test_event_source_mappings_report_failures_and_dead_letter(api: Api) -> None:
    mappings = boto3.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    by_function = {m["FunctionArn"].rsplit(":", 1)[-1]: m for m in mappings}
    assert set(by_function) == {"feedback-it-publish-events", "feedback-it-stats"}
    for mapping in by_function.values():
        assert mapping["EventSourceArn"] == api.stack.outputs["FeedbackTableStreamArn"]
        assert mapping["StartingPosition"] == "TRIM_HORIZON"
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["BisectBatchOnFunctionError"] is True
        assert mapping["MaximumRetryAttempts"] == 10
        assert mapping["DestinationConfig"]["OnFailure"]["Destination"].startswith("arn:aws:sqs:")
    assert by_function["feedback-it-stats"]["TumblingWindowInSeconds"] == 60
