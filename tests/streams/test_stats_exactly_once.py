"""Stats stay exact, and are applied once, under what real DynamoDB does and moto does not on its own:
transactions cancelled by conflicts with other shards, checkpoints moved by another invocation, and
stream sequence numbers longer than a DynamoDB Number can hold."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from feedback_core.stats import CHECKPOINT_PK, CHECKPOINT_TTL_SECONDS, StatsQuery, StatsStore
from feedback_core.streams import apply_stats_batch
from local.template import load_template
from tests.streams.pipeline import Pipeline
from tests.streams.test_events import feedback_records
from tests.support.aws_limits import StrictAws, transaction_conflict

FORTY_DIGITS = 10**39


def cancelled(*codes: str) -> ClientError:
    """A TransactWriteItems cancellation with the given reasons, one per item."""
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


def checkpoint_failed(params: Mapping[str, Any]) -> ClientError:
    """The checkpoint (the last item) failed its condition, as when another invocation committed."""
    return cancelled(*["None"] * (len(params["TransactItems"]) - 1), "ConditionalCheckFailed")


def conflict(params: Mapping[str, Any]) -> ClientError:
    return transaction_conflict(len(params["TransactItems"]))


class Pauses:
    """The store's sleep: records the pauses instead of taking them."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def store_for(pipeline: Pipeline, client: Any = None, **options: Any) -> StatsStore:
    options = {"sleep": Pauses(), "jitter": lambda: 0.5, "clock": pipeline.clock} | options
    return StatsStore(client or pipeline.stats.client, pipeline.stats.table_name, **options)


def submit_batch(pipeline: Pipeline, count: int) -> tuple[str, list[dict[str, Any]]]:
    """`count` records (one positive vote, score 1 each) in one stream batch of one shard."""
    for index in range(count):
        pipeline.clock.advance(1)
        pipeline.store.submit(
            project="acme", run_id=f"run-{index}", user_id="u", fields={"outcome": "positive", "score": 1}
        )
    ((shard_id, records),) = pipeline.poll().items()
    records = feedback_records(records)  # moto also emits a key-only image first; it counts for nothing
    assert len(records) == count
    return shard_id, records


def totals(pipeline: Pipeline) -> tuple[int, int]:
    today = datetime.fromtimestamp(pipeline.clock.now, tz=UTC).date()
    total = pipeline.stats.query("acme", StatsQuery(granularity="total"), today).total
    return total.positive, total.score_count


def stored_checkpoint(pipeline: Pipeline, shard_id: str) -> dict[str, Any]:
    key = {"pk": {"S": CHECKPOINT_PK}, "sk": {"S": shard_id}}
    item: dict[str, Any] = pipeline.dynamodb.get_item(TableName=pipeline.stats.table_name, Key=key)["Item"]
    return item


# ---- transaction conflicts ------------------------------------------------------------------------------


def test_conflicts_are_retried_with_backoff_and_counts_stay_exact(
    pipeline: Pipeline, strict_aws: StrictAws
) -> None:
    shard_id, records = submit_batch(pipeline, 5)
    pauses = Pauses()
    store = store_for(pipeline, sleep=pauses)
    strict_aws.inject("dynamodb", "TransactWriteItems", conflict, times=3)

    response = apply_stats_batch({"Records": records, "shardId": shard_id}, store)

    assert response == {"state": {}, "batchItemFailures": []}
    assert strict_aws.faults[("dynamodb", "TransactWriteItems")] == []  # all three conflicts were met
    assert pauses.seconds == [0.025, 0.05, 0.1]  # half (the jitter) of 50, 100, 200 ms
    assert totals(pipeline) == (5, 5)
    # applied once: the same batch again changes nothing
    assert apply_stats_batch({"Records": records, "shardId": shard_id}, store)["batchItemFailures"] == []
    assert totals(pipeline) == (5, 5)


def test_backoff_grows_to_a_ceiling_and_is_jittered(pipeline: Pipeline) -> None:
    store = store_for(pipeline, jitter=lambda: 0.999, max_attempts=10)
    ceilings = [store._backoff(attempt) / 0.999 for attempt in range(1, 10)]
    assert ceilings == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0])
    assert store_for(pipeline, jitter=lambda: 0.0)._backoff(5) == 0


class ConflictsAfterFirstCommit:
    """A client whose transactions after the first are cancelled by conflicts, `times` times."""

    def __init__(self, client: Any, times: int) -> None:
        self._client = client
        self.commits = 0
        self.conflicts_left = times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> Any:
        if self.commits and self.conflicts_left:
            self.conflicts_left -= 1
            raise transaction_conflict(len(request["TransactItems"]))
        self.commits += 1
        return self._client.transact_write_items(**request)


def test_conflicts_past_the_limit_leave_the_rest_for_lambda_to_retry(pipeline: Pipeline) -> None:
    """60 days of records need two transactions; the second keeps conflicting: the first chunk stays
    applied, the batch is reported from the second chunk's first record, and Lambda's retry of the
    same batch completes it, each record counted once."""
    for index in range(60):
        pipeline.clock.advance(86400)
        pipeline.store.submit(project="acme", run_id=f"r{index}", user_id="u", fields={"outcome": "positive"})
    ((shard_id, records),) = pipeline.poll().items()
    client = ConflictsAfterFirstCommit(pipeline.stats.client, times=8)
    pauses = Pauses()
    store = store_for(pipeline, client, sleep=pauses, max_attempts=8)
    event = {"Records": records, "shardId": shard_id}

    first = apply_stats_batch(event, store)

    applied = pipeline.stats.checkpoint(shard_id)
    assert applied is not None
    unapplied = [r for r in records if int(r["dynamodb"]["SequenceNumber"]) > applied]
    assert unapplied and len(unapplied) < len(records)
    assert first["batchItemFailures"] == [{"itemIdentifier": unapplied[0]["dynamodb"]["SequenceNumber"]}]
    assert len(pauses.seconds) == 7  # 8 attempts, a pause between each
    window = StatsQuery(start=date(2027, 1, 1), end=date(2027, 3, 31), granularity="total")
    today = datetime.fromtimestamp(pipeline.clock.now, tz=UTC).date()
    partial = pipeline.stats.query("acme", window, today).total.positive
    assert partial == 60 - len(feedback_records(unapplied))  # records of moto's key-only images count 0

    assert apply_stats_batch(event, store)["batchItemFailures"] == []  # Lambda retries the batch
    assert pipeline.stats.query("acme", window, today).total.positive == 60
    assert pipeline.stats.checkpoint(shard_id) == int(records[-1]["dynamodb"]["SequenceNumber"])


def test_a_cancellation_for_another_reason_is_raised_as_before(
    pipeline: Pipeline, strict_aws: StrictAws
) -> None:
    shard_id, records = submit_batch(pipeline, 2)
    pauses = Pauses()
    strict_aws.inject(
        "dynamodb", "TransactWriteItems", lambda params: cancelled("ValidationError", "None", "None")
    )
    with pytest.raises(ClientError) as raised:
        apply_stats_batch({"Records": records, "shardId": shard_id}, store_for(pipeline, sleep=pauses))
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert pauses.seconds == []
    assert totals(pipeline) == (0, 0)


# ---- the checkpoint condition ---------------------------------------------------------------------------


class AnotherInvocationCommitsFirst:
    """Before this store's first transaction, another invocation of the same shard applies `records`
    (a retry racing a timed-out run): the checkpoint this store read is no longer the stored one."""

    def __init__(self, pipeline: Pipeline, shard_id: str, records: list[dict[str, Any]]) -> None:
        self._client = pipeline.stats.client
        self._other_store = store_for(pipeline)
        self._other_batch = {"Records": records, "shardId": shard_id}
        self._other_done = False
        self.cancellations: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **request: Any) -> Any:
        if not self._other_done:
            self._other_done = True
            apply_stats_batch(self._other_batch, self._other_store)
        try:
            return self._client.transact_write_items(**request)
        except ClientError as error:
            reasons: list[dict[str, str]] = error.response.get("CancellationReasons", [])  # type: ignore[assignment]
            self.cancellations.append([reason.get("Code", "") for reason in reasons])
            raise


@pytest.mark.parametrize("applied_by_the_other", [2, 5])
def test_a_checkpoint_moved_meanwhile_is_read_again_and_the_rest_applied(
    pipeline: Pipeline, applied_by_the_other: int
) -> None:
    """DynamoDB's own ConditionalCheckFailed (not injected). The old code returned on it, reporting the
    whole batch processed though records after the other invocation's were applied by nobody."""
    shard_id, records = submit_batch(pipeline, 5)
    client = AnotherInvocationCommitsFirst(pipeline, shard_id, records[:applied_by_the_other])
    pauses = Pauses()

    response = apply_stats_batch(
        {"Records": records, "shardId": shard_id}, store_for(pipeline, client, sleep=pauses)
    )

    assert response["batchItemFailures"] == []
    assert client.cancellations[0][-1] == "ConditionalCheckFailed"
    assert pauses.seconds == []  # not a conflict: no backoff, the checkpoint is read again
    assert totals(pipeline) == (5, 5)  # every record once
    assert pipeline.stats.checkpoint(shard_id) == int(records[-1]["dynamodb"]["SequenceNumber"])


def test_a_checkpoint_condition_that_keeps_failing_is_reported_not_acknowledged(
    pipeline: Pipeline, strict_aws: StrictAws
) -> None:
    shard_id, records = submit_batch(pipeline, 3)
    strict_aws.inject("dynamodb", "TransactWriteItems", checkpoint_failed, times=4)

    response = apply_stats_batch(
        {"Records": records, "shardId": shard_id}, store_for(pipeline, max_attempts=4)
    )

    assert response["batchItemFailures"] == [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]
    assert totals(pipeline) == (0, 0)
    assert (
        apply_stats_batch({"Records": records, "shardId": shard_id}, store_for(pipeline))["batchItemFailures"]
        == []
    )
    assert totals(pipeline) == (3, 3)


def test_records_after_an_unreadable_one_wait_and_the_earliest_failure_is_reported(
    pipeline: Pipeline, strict_aws: StrictAws
) -> None:
    shard_id, records = submit_batch(pipeline, 3)
    unreadable = copy.deepcopy(records[2])
    del unreadable["dynamodb"]
    strict_aws.inject("dynamodb", "TransactWriteItems", conflict, times=2)
    store = store_for(pipeline, max_attempts=2)

    response = apply_stats_batch({"Records": [*records[:2], unreadable], "shardId": shard_id}, store)

    # the conflicts outlasted the attempts: the first record, not the unreadable third, is reported
    assert response["batchItemFailures"] == [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]
    assert totals(pipeline) == (0, 0)


# ---- sequence numbers and the checkpoint item -----------------------------------------------------------


def with_sequence_numbers(records: list[dict[str, Any]], numbers: list[int]) -> list[dict[str, Any]]:
    renumbered = copy.deepcopy(records)
    for record, number in zip(renumbered, numbers, strict=True):
        record["dynamodb"]["SequenceNumber"] = str(number)
    return renumbered


def test_forty_digit_sequence_numbers_are_checkpointed_as_strings(
    pipeline: Pipeline, strict_aws: StrictAws
) -> None:
    """Sequence numbers are strings of 21 to 40 digits (https://docs.aws.amazon.com/amazondynamodb/latest/
    APIReference/API_streams_StreamRecord.html); a DynamoDB Number holds 38, so a Number checkpoint
    would be refused (by boto3's serializer, and by DynamoDB and the strict layer) and every retry of
    the batch fail the same way, blocking the shard until its records expire."""
    shard_id, records = submit_batch(pipeline, 3)
    long = with_sequence_numbers(records, [FORTY_DIGITS + 1, FORTY_DIGITS + 2, FORTY_DIGITS + 3])
    assert all(len(r["dynamodb"]["SequenceNumber"]) == 40 for r in long)
    store = store_for(pipeline)

    assert apply_stats_batch({"Records": long, "shardId": shard_id}, store)["batchItemFailures"] == []

    assert strict_aws.refusals == []
    assert totals(pipeline) == (3, 3)
    item = stored_checkpoint(pipeline, shard_id)
    assert item["sequence"] == {"S": str(FORTY_DIGITS + 3)}
    assert item["expires_at"] == {"N": str(int(pipeline.clock.now) + CHECKPOINT_TTL_SECONDS)}
    assert store.checkpoint(shard_id) == FORTY_DIGITS + 3
    # redelivered: nothing changes
    assert apply_stats_batch({"Records": long, "shardId": shard_id}, store)["batchItemFailures"] == []
    assert totals(pipeline) == (3, 3)


def test_sequence_numbers_compare_as_numbers_not_as_text(pipeline: Pipeline) -> None:
    shard_id, records = submit_batch(pipeline, 4)
    store = store_for(pipeline)
    # 21 digits, then 40: as text "9..." would sort after "1...", and the later record be skipped
    first = with_sequence_numbers(records[:2], [10**21 - 2, 10**21 - 1])
    later = with_sequence_numbers(records[2:], [FORTY_DIGITS + 1, FORTY_DIGITS + 2])
    apply_stats_batch({"Records": first, "shardId": shard_id}, store)
    apply_stats_batch({"Records": [*first, *later], "shardId": shard_id}, store)  # overlapping redelivery
    assert totals(pipeline) == (4, 4)
    assert store.checkpoint(shard_id) == FORTY_DIGITS + 2


def test_a_number_checkpoint_of_an_earlier_version_is_read_and_becomes_a_string(pipeline: Pipeline) -> None:
    shard_id, records = submit_batch(pipeline, 5)
    applied_before = records[1]["dynamodb"]["SequenceNumber"]
    pipeline.dynamodb.put_item(
        TableName=pipeline.stats.table_name,
        Item={"pk": {"S": CHECKPOINT_PK}, "sk": {"S": shard_id}, "sequence": {"N": applied_before}},
    )
    store = store_for(pipeline)
    assert store.checkpoint(shard_id) == int(applied_before)

    assert apply_stats_batch({"Records": records, "shardId": shard_id}, store)["batchItemFailures"] == []

    assert totals(pipeline) == (3, 3)  # the two records at or below the old checkpoint are skipped
    item = stored_checkpoint(pipeline, shard_id)
    assert item["sequence"] == {"S": records[-1]["dynamodb"]["SequenceNumber"]}
    assert "expires_at" in item


def test_only_checkpoints_expire(pipeline: Pipeline) -> None:
    """The Stats table's TTL attribute is `expires_at`; checkpoints carry it, counters never do."""
    resources = load_template()["Resources"]
    assert resources["StatsTable"]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at",
        "Enabled": True,
    }
    ttl = pipeline.dynamodb.describe_time_to_live(TableName=pipeline.stats.table_name)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    shard_id, records = submit_batch(pipeline, 2)
    apply_stats_batch({"Records": records, "shardId": shard_id}, store_for(pipeline))
    items = pipeline.dynamodb.scan(TableName=pipeline.stats.table_name)["Items"]
    assert {item["pk"]["S"] for item in items} == {CHECKPOINT_PK, "acme#-", "acme#*"}
    for item in items:
        assert ("expires_at" in item) == (item["pk"]["S"] == CHECKPOINT_PK)
