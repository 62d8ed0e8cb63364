"""Events and stats from a scripted history, on moto's real stream, bus, topic and queues."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest

from feedback_core.cursor import CursorCodec
from feedback_core.dynamo import deserialize
from feedback_core.events import SOURCE, Publisher
from feedback_core.models import ListQuery
from feedback_core.stats import StatsQuery, StatsStore, contribution, merge
from feedback_core.streams import apply_stats_batch, publish_batch
from local.functions import lambda_context
from tests.streams.pipeline import Pipeline, drain_queue

TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def feedback_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that carry feedback (moto first emits a key-only INSERT for an UpdateItem upsert)."""
    return [
        r
        for r in records
        if "feedback_id" in r["dynamodb"].get("NewImage", r["dynamodb"].get("OldImage", {}))
    ]


def submit(pipeline: Pipeline, run: str, user: str, **fields: Any) -> None:
    pipeline.clock.advance(1)
    pipeline.store.submit(
        project="acme", run_id=run, user_id=user, fields=fields, agent="bot", session_id="s"
    )


def expire(pipeline: Pipeline, run: str, user: str) -> None:
    """What DynamoDB TTL does: delete the item as the service principal (moto never expires items)."""
    pipeline.dynamodb.delete_item(
        TableName=pipeline.store.table_name, Key={"pk": {"S": f"acme#{run}"}, "sk": {"S": user}}
    )
    batches = pipeline.poll()
    for records in batches.values():
        for record in records:
            if record["eventName"] == "REMOVE" and record["dynamodb"]["Keys"]["sk"]["S"] == user:
                record["userIdentity"] = TTL_IDENTITY
    for response in pipeline.run_consumers(batches):
        assert response == {"batchItemFailures": []}


def script(pipeline: Pipeline) -> None:
    submit(pipeline, "run-1", "alice", outcome="positive", score=5, comment="clear")
    submit(pipeline, "run-1", "alice", outcome="negative")
    submit(pipeline, "run-1", "bob", outcome="positive")
    pipeline.store.retract("acme", "run-1", "bob")
    submit(pipeline, "run-2", "carol", outcome="positive", score=-2, weight=0.5)
    pipeline.store.remove("acme", "run-2", "carol", "admin")
    submit(pipeline, "run-3", "dave", outcome="negative", comment="wrong")
    pipeline.drain()
    expire(pipeline, "run-3", "dave")
    submit(pipeline, "run-4", "erin", outcome="positive", score=3, weight=0.25, comment="ok")
    submit(pipeline, "run-5", "alice", score=-4)
    assert pipeline.store.erase_user("acme", "alice") == (2, True)
    pipeline.drain()


def test_every_change_is_one_event_on_the_bus_and_on_sns(pipeline: Pipeline) -> None:
    script(pipeline)
    bus = sorted(pipeline.bus_events(), key=lambda e: int(e["detail"]["sequence"]))
    sns = sorted(pipeline.sns_events(), key=lambda e: int(e["detail"]["sequence"]))
    summary = [
        (e["detail-type"], e["detail"]["user_id"], e["detail"]["run_id"], e["detail"]["actor"]) for e in bus
    ]
    assert summary == [
        ("Feedback Submitted", "alice", "run-1", "user"),
        ("Feedback Updated", "alice", "run-1", "user"),
        ("Feedback Submitted", "bob", "run-1", "user"),
        ("Feedback Retracted", "bob", "run-1", "user"),
        ("Feedback Submitted", "carol", "run-2", "user"),
        ("Feedback Retracted", "carol", "run-2", "admin"),
        ("Feedback Submitted", "dave", "run-3", "user"),
        ("Feedback Expired", "dave", "run-3", "retention"),
        ("Feedback Submitted", "erin", "run-4", "user"),
        ("Feedback Submitted", "alice", "run-5", "user"),
        ("Feedback Erased", "alice", "run-1", "admin"),
        ("Feedback Erased", "alice", "run-5", "admin"),
    ]
    assert [e["source"] for e in bus] == [SOURCE] * 12
    # SNS carries the same envelope; the marker writes before admin removals published nothing.
    assert [{k: v for k, v in e.items() if k != "_attributes"} for e in sns] == [
        {k: e[k] for k in ("source", "detail-type", "time", "detail")} for e in bus
    ]
    # ids are the stream's: unique, and the ones the stream delivered
    stream_ids = {r["eventID"] for r in pipeline.delivered_records}
    assert len({e["detail"]["event_id"] for e in bus}) == 12
    assert {e["detail"]["event_id"] for e in bus} <= stream_ids

    updated = bus[1]["detail"]
    assert (updated["previous"]["outcome"], updated["feedback"]["outcome"]) == ("positive", "negative")
    assert updated["feedback"]["score"] == updated["previous"]["score"] == 5
    assert (updated["version"], updated["previous"]["version"]) == (2, 1)
    assert "previous" not in bus[0]["detail"]
    for removal in (bus[3], bus[5], bus[7], bus[10]):
        assert "feedback" not in removal["detail"]
        assert removal["detail"]["previous"]["user_id"] == removal["detail"]["user_id"]
    assert bus[10]["detail"]["previous"]["outcome"] == "negative"
    assert "removal_actor" not in bus[10]["detail"]["previous"]
    assert sns[1]["_attributes"]["event_type"]["Value"] == "Updated"
    assert sns[1]["_attributes"]["outcome"]["Value"] == "negative"
    assert sns[1]["_attributes"]["project"]["Value"] == "acme"


def test_stats_equal_a_recount_of_the_table(pipeline: Pipeline) -> None:
    script(pipeline)
    items = [deserialize(i) for i in pipeline.dynamodb.scan(TableName=pipeline.store.table_name)["Items"]]
    recount = merge(contribution(item) for item in items)
    assert {key[0:2] for key in recount} == {("acme", "bot"), ("acme", "*")}
    day = items[0]["created_at"][:10]
    stats = pipeline.stats.query(
        "acme", StatsQuery(start=day, end=day, granularity="total"), _today(pipeline)
    )
    expected = recount[("acme", "*", day)]
    assert stats.total.positive == expected.get("positive", 0) == 1
    assert stats.total.negative == expected.get("negative", 0) == 0
    assert stats.total.score_count == 1
    assert stats.total.score_sum == 3
    assert stats.total.score_weighted_mean == 3.0
    assert stats.total.comments == 1
    by_agent = pipeline.stats.query("acme", StatsQuery(start=day, end=day, agent="bot"), _today(pipeline))
    assert by_agent.buckets[0].model_dump() == stats.total.model_dump()


def test_summary_detail_drops_comment_and_details(pipeline: Pipeline) -> None:
    pipeline.store.submit(
        project="acme",
        run_id="r",
        user_id="u",
        fields={"outcome": "positive", "comment": "c", "details": {"a": 1}},
    )
    pipeline.drain(detail="summary")
    (event,) = pipeline.bus_events()
    assert event["detail"]["feedback"]["outcome"] == "positive"
    assert "comment" not in event["detail"]["feedback"]
    assert "details" not in event["detail"]["feedback"]


def test_redelivered_batch_leaves_stats_unchanged(pipeline: Pipeline) -> None:
    for index in range(5):
        submit(pipeline, f"run-{index}", "u", outcome="positive", score=index)
    batches = pipeline.poll()
    ((shard_id, records),) = batches.items()
    event = {"Records": records, "shardId": shard_id}
    apply_stats_batch(event, pipeline.stats)
    first = pipeline.stats.query("acme", StatsQuery(granularity="total"), today=_today(pipeline))
    # the same batch again (a retry after a crash between the commit and the return), and a shifted one
    apply_stats_batch(copy.deepcopy(event), pipeline.stats)
    apply_stats_batch({"Records": records[2:], "shardId": shard_id}, pipeline.stats)
    again = pipeline.stats.query("acme", StatsQuery(granularity="total"), today=_today(pipeline))
    assert again == first
    assert first.total.positive == 5
    assert first.total.score_sum == 10


def _today(pipeline: Pipeline) -> date:
    return datetime.fromtimestamp(pipeline.clock.now, tz=UTC).date()


class FlakyEntries:
    """Wraps a real client: a random 30 % of entries fail (as the services report partial failures)."""

    def __init__(self, client: Any, rng: random.Random) -> None:
        self._client = client
        self._rng = rng
        self.calls: list[list[str]] = []
        self.failed: list[set[str]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        ids = [json.loads(entry["Detail"])["event_id"] for entry in Entries]
        failing = {i for i in range(len(Entries)) if self._rng.random() < 0.3}
        self.calls.append(ids)
        self.failed.append({ids[i] for i in failing})
        passing = [entry for i, entry in enumerate(Entries) if i not in failing]
        if passing:
            self._client.put_events(Entries=passing)
        results = [
            {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}
            if i in failing
            else {"EventId": "x"}
            for i in range(len(Entries))
        ]
        return {"FailedEntryCount": len(failing), "Entries": results}

    def publish_batch(
        self, TopicArn: str, PublishBatchRequestEntries: list[dict[str, Any]]
    ) -> dict[str, Any]:
        ids = [json.loads(e["Message"])["detail"]["event_id"] for e in PublishBatchRequestEntries]
        failing = {i for i in range(len(ids)) if self._rng.random() < 0.3}
        self.calls.append(ids)
        self.failed.append({ids[i] for i in failing})
        passing = [e for i, e in enumerate(PublishBatchRequestEntries) if i not in failing]
        if passing:
            self._client.publish_batch(TopicArn=TopicArn, PublishBatchRequestEntries=passing)
        failed = [
            {"Id": PublishBatchRequestEntries[i]["Id"], "Code": "Throttled", "SenderFault": False}
            for i in failing
        ]
        return {"Successful": [{"Id": e["Id"]} for e in passing], "Failed": failed}


def test_partial_publish_failures_are_retried_entry_by_entry(pipeline: Pipeline) -> None:
    for index in range(40):
        submit(pipeline, f"run-{index}", "u", outcome="positive")
    rng = random.Random(7)
    flaky_bus = FlakyEntries(pipeline.publisher.events_client, rng)
    flaky_sns = FlakyEntries(pipeline.publisher.sns_client, rng)
    delays: list[float] = []
    publisher = Publisher(
        flaky_bus, flaky_sns, "feedback", pipeline.publisher.topic_arn, max_attempts=10, sleep=delays.append
    )  # type: ignore[arg-type]
    (records,) = pipeline.poll().values()
    records = feedback_records(records)
    assert publish_batch({"Records": records}, lambda_context(), publisher, "full") == {
        "batchItemFailures": []
    }

    for flaky in (flaky_bus, flaky_sns):
        assert sum(len(failed) for failed in flaky.failed) > 0
        # first round: every event once, in calls of at most 10; later rounds: only what failed before
        assert max(len(call) for call in flaky.calls) <= 10
        attempted = Counter(event_id for call in flaky.calls for event_id in call)
        failed = Counter(event_id for failed in flaky.failed for event_id in failed)
        assert set(attempted) == {r["eventID"] for r in records}
        assert all(attempted[event_id] == failed[event_id] + 1 for event_id in attempted)
    assert delays[0] == 0.1
    assert all(delay in (0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6) for delay in delays)
    bus_ids = [e["detail"]["event_id"] for e in pipeline.bus_events()]
    sns_ids = [e["detail"]["event_id"] for e in pipeline.sns_events()]
    assert sorted(bus_ids) == sorted(sns_ids) == sorted(r["eventID"] for r in records)


def test_what_still_fails_is_reported_for_retry(pipeline: Pipeline) -> None:
    for index in range(3):
        submit(pipeline, f"run-{index}", "u", outcome="positive")
    records = feedback_records(next(iter(pipeline.poll().values())))

    broken = records[1]["eventID"]

    class Down(FlakyEntries):
        """The bus refuses one event every time, whatever its position in the call."""

        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            refused = [json.loads(e["Detail"])["event_id"] == broken for e in Entries]
            passing = [e for e, no in zip(Entries, refused, strict=True) if not no]
            if passing:
                self._client.put_events(Entries=passing)
            results = [{"ErrorCode": "InternalFailure"} if no else {"EventId": "x"} for no in refused]
            return {"FailedEntryCount": sum(refused), "Entries": results}

    publisher = Publisher(
        Down(pipeline.publisher.events_client, random.Random(1)),
        pipeline.publisher.sns_client,
        "feedback",
        pipeline.publisher.topic_arn,
        sleep=lambda _: None,
    )  # type: ignore[arg-type]
    response = publish_batch({"Records": records}, lambda_context(), publisher, "full")
    assert response == {"batchItemFailures": [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}]}


def test_a_poison_record_is_reported_and_the_rest_published(pipeline: Pipeline) -> None:
    for index in range(3):
        submit(pipeline, f"run-{index}", "u", outcome="positive")
    records = feedback_records(next(iter(pipeline.poll().values())))
    poison = copy.deepcopy(records[1])
    poison["eventName"] = "TRUNCATE"
    response = publish_batch(
        {"Records": [records[0], poison, records[2]]}, lambda_context(), pipeline.publisher, "full"
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": poison["dynamodb"]["SequenceNumber"]}]}
    assert len(pipeline.bus_events()) == 2


def test_anonymous_feedback_is_published_and_listed(pipeline: Pipeline) -> None:
    submit(pipeline, "run-1", "anonymous", outcome="positive")
    pipeline.drain()
    assert [e["detail"]["user_id"] for e in pipeline.bus_events()] == ["anonymous"]
    assert len(pipeline.store.list("acme", ListQuery(), CursorCodec(b"x" * 32)).items) == 1


class CrashAfterCommit:
    """A client whose first TransactWriteItems commits and then fails, as if the function died right after."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.crashed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> Any:
        response = self._client.transact_write_items(**request)
        if not self.crashed:
            self.crashed = True
            raise ConnectionResetError("the invocation died after the commit")
        return response


def test_replay_after_a_crash_between_commit_and_return_counts_once(pipeline: Pipeline) -> None:
    for index in range(4):
        submit(pipeline, f"run-{index}", "u", outcome="negative", score=-index)
    ((shard_id, records),) = pipeline.poll().items()
    crashing = StatsStore(CrashAfterCommit(pipeline.stats.client), pipeline.stats.table_name)  # type: ignore[arg-type]
    with pytest.raises(ConnectionResetError):
        apply_stats_batch({"Records": records, "shardId": shard_id}, crashing)
    apply_stats_batch({"Records": records, "shardId": shard_id}, crashing)  # Lambda retries the batch
    stats = pipeline.stats.query("acme", StatsQuery(granularity="total"), _today(pipeline))
    assert (stats.total.negative, stats.total.score_count, stats.total.score_sum) == (4, 4, -6)


def test_a_batch_touching_many_days_commits_in_chunks_of_at_most_100_items(pipeline: Pipeline) -> None:
    calls: list[int] = []
    client = pipeline.stats.client

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

        def transact_write_items(self, **request: Any) -> Any:
            calls.append(len(request["TransactItems"]))
            return client.transact_write_items(**request)

    for index in range(60):  # 60 days x (agent row + all-agents row) = 120 counter items
        pipeline.clock.advance(86400)
        pipeline.store.submit(project="acme", run_id=f"r{index}", user_id="u", fields={"outcome": "positive"})
    ((shard_id, records),) = pipeline.poll().items()
    store = StatsStore(Recording(), pipeline.stats.table_name)  # type: ignore[arg-type]
    apply_stats_batch({"Records": records, "shardId": shard_id}, store)
    assert len(calls) == 2
    assert max(calls) <= 100
    assert sum(calls) == 120 + 2  # every counter item once, plus one checkpoint per transaction
    last = pipeline.stats.checkpoint(shard_id)
    assert last == int(records[-1]["dynamodb"]["SequenceNumber"])
    window = StatsQuery(start=date(2027, 1, 1), end=date(2027, 3, 31), granularity="total")
    everything = pipeline.stats.query("acme", window, _today(pipeline))
    assert everything.total.positive == 60


def subscribe_queue(pipeline: Pipeline, name: str, attributes: dict[str, str]) -> str:
    """An SQS queue subscribed to the topic with the given subscription attributes; returns its URL."""
    url = pipeline.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = pipeline.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns = pipeline.publisher.sns_client
    sns.subscribe(TopicArn=pipeline.publisher.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return url


def test_sns_filter_policies_on_attributes_and_on_the_body_select_the_same_events(pipeline: Pipeline) -> None:
    """The documented attribute policy and its message-body equivalent (docs/EVENTS.md#subscribing)."""
    on_attributes = subscribe_queue(
        pipeline,
        "negative-by-attributes",
        {
            "RawMessageDelivery": "true",
            "FilterPolicy": json.dumps(
                {"event_type": ["Submitted", "Updated"], "project": ["acme"], "outcome": ["negative"]}
            ),
        },
    )
    on_body = subscribe_queue(
        pipeline,
        "negative-by-body",
        {
            "RawMessageDelivery": "true",
            "FilterPolicyScope": "MessageBody",
            "FilterPolicy": json.dumps(
                {
                    "detail-type": ["Feedback Submitted", "Feedback Updated"],
                    "detail": {"project": ["acme"], "feedback": {"outcome": ["negative"]}},
                }
            ),
        },
    )
    script(pipeline)
    selected = {
        name: sorted((e["detail-type"], e["detail"]["user_id"]) for e in drain_queue(pipeline.sqs, url))
        for name, url in (("attributes", on_attributes), ("body", on_body))
    }
    assert selected == {
        "attributes": [("Feedback Submitted", "dave"), ("Feedback Updated", "alice")],
        "body": [("Feedback Submitted", "dave"), ("Feedback Updated", "alice")],
    }
