"""Exact feedback counters per project, agent and UTC day, maintained from the table's stream.

Each stream record changes the counters by contribution(new image) - contribution(old image), so a
changed vote moves between outcomes and a removal takes its contribution back. Exactly once: per stream
shard, the last applied sequence number is stored and checked in the same TransactWriteItems as the
counter updates, so a redelivered batch (or a retry after a crash between commit and return) changes
nothing the second time.

Counter items are shared by every shard, so transactions of different shards collide: DynamoDB cancels
one with reason `TransactionConflict`, and it is retried here with jittered exponential backoff rather
than failing the batch. A checkpoint that moved meanwhile (another invocation of the same shard applied
some records) is read again, and only the records nobody applied are applied.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from feedback_core.dynamo import query_pages, serialize, stream_images
from feedback_core.fields import DATE_SUMMARY, DateOrDateTime, ShortText, window_refusal

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
    )

ALL_AGENTS = "*"
NO_AGENT = "-"
COUNTERS = (
    "positive",
    "negative",
    "score_count",
    "score_sum",
    "score_weight_sum",
    "weighted_score_sum",
    "comments",
)
CHECKPOINT_PK = "checkpoint"
CHECKPOINT_TTL_SECONDS = 7 * 24 * 3600
"""Checkpoint items carry `expires_at` (the Stats table's TTL attribute; counters never do). A stream
keeps records 24 hours and its shards roll over every few hours
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html), so a week after its
last commit no record of a shard can come back, and its checkpoint may go."""
MAX_TRANSACTION_ITEMS = 100
"""https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html"""
DEFAULT_DAYS = 30
MAX_DAYS = 366

Counters = dict[str, Decimal]
CounterKey = tuple[str, str, str]
"""(project, agent or "*", day)."""


def contribution(image: dict[str, Any] | None) -> dict[CounterKey, Counters]:
    """What one record state adds to the counters: under its agent and under all agents, on its day."""
    if not image or not image.get("project") or not image.get("created_at"):
        return {}
    counters: Counters = defaultdict(Decimal)
    if image.get("outcome") in ("positive", "negative"):
        counters[image["outcome"]] += 1
    score = image.get("score")
    if score is not None:
        weight = Decimal(str(image.get("weight", 1)))
        counters["score_count"] += 1
        counters["score_sum"] += Decimal(str(score))
        counters["score_weight_sum"] += weight
        counters["weighted_score_sum"] += weight * Decimal(str(score))
    if image.get("comment"):
        counters["comments"] += 1
    day = str(image["created_at"])[:10]
    agent = str(image.get("agent") or NO_AGENT)
    return {
        (image["project"], agent, day): dict(counters),
        (image["project"], ALL_AGENTS, day): dict(counters),
    }


def record_delta(record: DynamoDBStreamRecordModel) -> dict[CounterKey, Counters]:
    old, new = stream_images(record)
    delta: dict[CounterKey, Counters] = defaultdict(lambda: defaultdict(Decimal))
    for key, counters in contribution(new).items():
        for name, value in counters.items():
            delta[key][name] += value
    for key, counters in contribution(old).items():
        for name, value in counters.items():
            delta[key][name] -= value
    return {
        key: {n: v for n, v in counters.items() if v}
        for key, counters in delta.items()
        if any(counters.values())
    }


def merge(deltas: Iterable[dict[CounterKey, Counters]]) -> dict[CounterKey, Counters]:
    total: dict[CounterKey, Counters] = defaultdict(lambda: defaultdict(Decimal))
    for delta in deltas:
        for key, counters in delta.items():
            for name, value in counters.items():
                total[key][name] += value
    return {key: {n: v for n, v in c.items() if v} for key, c in total.items() if any(c.values())}


class StatsBucket(BaseModel):
    start: str
    positive: int = 0
    negative: int = 0
    score_count: int = 0
    score_sum: float = 0
    score_weighted_mean: float | None = None
    comments: int = 0


class StatsResponse(BaseModel):
    total: StatsBucket
    buckets: list[StatsBucket]


class StatsQuery(BaseModel):
    """Query string of GET /v1/stats."""

    model_config = {"extra": "forbid"}

    start: DateOrDateTime | None = Field(
        None, description=f"First UTC day, inclusive (a date-time: its UTC day). {DATE_SUMMARY}"
    )
    end: DateOrDateTime | None = Field(
        None, description=f"Last UTC day, inclusive (a date-time: its UTC day). {DATE_SUMMARY}"
    )
    agent: ShortText | None = None
    granularity: Literal["day", "total"] = "day"

    def window(self, today: date) -> tuple[date, date]:
        """The UTC days asked for, both ends included: by default the 30 days up to today."""
        end = self.end.date() if self.end else today  # validated values are in UTC
        start = self.start.date() if self.start else end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise window_refusal("must not be after end")
        if (end - start).days >= MAX_DAYS:
            raise window_refusal(
                f"must be at most {MAX_DAYS - 1} days before end (a window spans {MAX_DAYS} days)"
            )
        return start, end


def _cancellation(error: ClientError) -> Commit:
    """Why DynamoDB cancelled the transaction, from its cancellation reasons (one per item, in request
    order; the checkpoint is the last item):
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html and
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html
    (transaction conflict handling). Any other reason is raised, as before."""
    reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
    if reasons and reasons[-1] == "ConditionalCheckFailed":
        return Commit.CHECKPOINT_MOVED
    if "TransactionConflict" in reasons and set(reasons) <= {"TransactionConflict", "None", None}:
        return Commit.CONFLICT
    raise error


def _bucket(start: str, counters: dict[str, Any]) -> StatsBucket:
    weight = Decimal(str(counters.get("score_weight_sum", 0)))
    weighted = Decimal(str(counters.get("weighted_score_sum", 0)))
    return StatsBucket(
        start=start,
        positive=int(counters.get("positive", 0)),
        negative=int(counters.get("negative", 0)),
        score_count=int(counters.get("score_count", 0)),
        score_sum=float(counters.get("score_sum", 0)),
        score_weighted_mean=float(weighted / weight) if weight else None,
        comments=int(counters.get("comments", 0)),
    )


def sequence_number(record: DynamoDBStreamRecordModel) -> int:
    """A stream sequence number as an integer: it is a string of 21 to 40 digits
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_StreamRecord.html),
    ordered numerically, and may exceed what a DynamoDB Number holds (38 digits,
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html)."""
    return int(record.dynamodb.SequenceNumber)


@dataclass(frozen=True)
class Checkpoint:
    """A shard's last applied sequence number, and the attribute exactly as stored, which the next
    commit's condition must find unchanged. New checkpoints are Strings; a Number written by an earlier
    version is read the same way and replaced by a String at the next commit."""

    sequence: int | None
    stored: AttributeValueTypeDef | None

    def applied(self, record: DynamoDBStreamRecordModel) -> bool:
        return self.sequence is not None and sequence_number(record) <= self.sequence


class Commit(Enum):
    DONE = "done"
    CONFLICT = "conflict"
    """Cancelled because a concurrent transaction touched one of its items: nothing was written."""
    CHECKPOINT_MOVED = "checkpoint moved"
    """Cancelled by the checkpoint condition: another invocation of the shard committed meanwhile."""


@dataclass(frozen=True)
class StatsApplied:
    """What `StatsStore.apply` did with a batch."""

    applied: int
    """Records applied by this call (records applied earlier, by anyone, are skipped)."""
    unapplied_from: str | None = None
    """Sequence number of the first record left unapplied (retries ran out): report it, so Lambda
    retries the batch from it; None when every record is applied."""
    conflicts: int = 0
    """Transaction conflicts met and retried."""


@dataclass
class StatsStore:
    client: DynamoDBClient
    table_name: str
    max_attempts: int = 8
    """Tries per transaction when it keeps being cancelled by conflicts, or finds the checkpoint moved."""
    base_delay_seconds: float = 0.05
    max_delay_seconds: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    """A fraction in [0, 1) of the backoff ceiling to wait ("full jitter")."""
    clock: Callable[[], float] = time.time

    # ---- writes (stats function only) ---------------------------------------------------------------------

    def checkpoint(self, shard_id: str) -> int | None:
        return self._read_checkpoint(shard_id).sequence

    def _read_checkpoint(self, shard_id: str) -> Checkpoint:
        response = self.client.get_item(
            TableName=self.table_name,
            Key=serialize({"pk": CHECKPOINT_PK, "sk": shard_id}),
            ConsistentRead=True,
        )
        stored = response.get("Item", {}).get("sequence")
        if stored is None:
            return Checkpoint(None, None)
        # A String (this version) or a Number (written before): both hold the digits.
        digits = stored.get("S") or stored.get("N")
        return Checkpoint(int(str(digits)), stored)

    def apply(self, shard_id: str, records: Sequence[DynamoDBStreamRecordModel]) -> StatsApplied:
        """Applies, in stream order, the records nobody has applied yet. A transaction cancelled by a
        conflict is retried after a jittered, exponentially growing pause; one that finds the checkpoint
        moved re-reads it and goes on from there. When either keeps happening past `max_attempts`, the
        records from the first unapplied one are left for Lambda to retry (never acknowledged unapplied)."""
        checkpoint = self._read_checkpoint(shard_id)
        applied = conflicts = 0
        attempts = 0  # of the transaction now being tried
        while True:
            fresh = [record for record in records if not checkpoint.applied(record)]
            if not fresh:
                return StatsApplied(applied, None, conflicts)
            chunk, delta = next(iter(self._chunks(fresh)))
            sequence = chunk[-1].dynamodb.SequenceNumber
            outcome = self._commit(shard_id, checkpoint, sequence, delta)
            if outcome is Commit.DONE:
                checkpoint = Checkpoint(int(sequence), {"S": sequence})
                applied += len(chunk)
                attempts = 0
                continue
            attempts += 1
            if attempts >= self.max_attempts:
                return StatsApplied(applied, fresh[0].dynamodb.SequenceNumber, conflicts)
            if outcome is Commit.CONFLICT:
                conflicts += 1
                self.sleep(self._backoff(attempts))
            else:
                checkpoint = self._read_checkpoint(shard_id)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, as AWS recommends for retries
        (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html): conflicting
        shards that waited the same time would collide again."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2.0 ** (attempt - 1))
        return ceiling * self.jitter()

    @staticmethod
    def _chunks(
        records: Sequence[DynamoDBStreamRecordModel],
    ) -> Iterable[tuple[list[DynamoDBStreamRecordModel], dict[CounterKey, Counters]]]:
        """Consecutive records whose merged delta fits one transaction beside the checkpoint."""
        chunk: list[DynamoDBStreamRecordModel] = []
        delta: dict[CounterKey, Counters] = {}
        for record in records:
            candidate = merge([delta, record_delta(record)])
            if chunk and len(candidate) > MAX_TRANSACTION_ITEMS - 1:
                yield chunk, delta
                chunk, candidate = [], record_delta(record)
            chunk.append(record)
            delta = candidate
        if chunk:
            yield chunk, delta

    def _commit(
        self, shard_id: str, checkpoint: Checkpoint, sequence: str, delta: dict[CounterKey, Counters]
    ) -> Commit:
        items: list[TransactWriteItemTypeDef] = []
        for (project, agent, day), counters in sorted(delta.items()):
            names = {f"#c{i}": name for i, name in enumerate(counters)}
            values = {f":c{i}": value for i, value in enumerate(counters.values())}
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": serialize({"pk": f"{project}#{agent}", "sk": day}),
                        "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counters))),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": serialize(values),
                    }
                }
            )
        # The sequence is stored as a String (a Number cannot hold 40 digits). Ordering is decided in
        # code; the condition only requires the checkpoint to be exactly what was read, so a commit of
        # another invocation in between cancels this one.
        checkpoint_values: dict[str, AttributeValueTypeDef] = {
            ":seq": {"S": sequence},
            ":expires": {"N": str(int(self.clock()) + CHECKPOINT_TTL_SECONDS)},
        }
        if checkpoint.stored is None:
            condition = "attribute_not_exists(#seq)"
        else:
            condition = "#seq = :last"
            checkpoint_values[":last"] = checkpoint.stored
        items.append(
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": serialize({"pk": CHECKPOINT_PK, "sk": shard_id}),
                    "UpdateExpression": "SET #seq = :seq, #expires = :expires",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#seq": "sequence", "#expires": "expires_at"},
                    "ExpressionAttributeValues": checkpoint_values,
                }
            }
        )
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            return _cancellation(error)
        return Commit.DONE

    # ---- reads (GET /v1/stats) ---------------------------------------------------------------------------

    def query(self, project: str, query: StatsQuery, today: date) -> StatsResponse:
        """One Query over the days of the window."""
        start, end = query.window(today)
        rows: dict[str, dict[str, Any]] = {}
        request: QueryInputTypeDef = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :start AND :end",
            "ExpressionAttributeValues": serialize(
                {
                    ":pk": f"{project}#{query.agent or ALL_AGENTS}",
                    ":start": start.isoformat(),
                    ":end": end.isoformat(),
                }
            ),
        }
        for item in query_pages(self.client, request):
            rows[item["sk"]] = item
        total = merge(
            {("", "", ""): {c: Decimal(str(row.get(c, 0))) for c in COUNTERS}} for row in rows.values()
        )
        total_bucket = _bucket(start.isoformat(), total.get(("", "", ""), {}))
        if query.granularity == "total":
            return StatsResponse(total=total_bucket, buckets=[total_bucket])
        days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
        buckets = [_bucket(day.isoformat(), rows.get(day.isoformat(), {})) for day in days]
        return StatsResponse(total=total_bucket, buckets=buckets)
