"""Exact feedback counters per project, agent and UTC day, maintained from the table's stream.

Each stream record changes the counters by contribution(new image) - contribution(old image), so a
changed vote moves between outcomes and a removal takes its contribution back. Exactly once: per stream
shard, the last applied sequence number is stored and checked in the same TransactWriteItems as the
counter updates, so a redelivered batch (or a retry after a crash between commit and return) changes
nothing the second time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from feedback_core.events import images
from feedback_core.models import DATE_SUMMARY, DateOrDateTime, ShortText, window_refusal
from feedback_core.store import deserialize, serialize

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

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
MAX_TRANSACTION_ITEMS = 100
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
    old, new = images(record)
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


@dataclass
class StatsStore:
    client: DynamoDBClient
    table_name: str

    # ---- writes (stats function only) ---------------------------------------------------------------------

    def checkpoint(self, shard_id: str) -> int | None:
        response = self.client.get_item(
            TableName=self.table_name,
            Key=serialize({"pk": CHECKPOINT_PK, "sk": shard_id}),
            ConsistentRead=True,
        )
        item = deserialize(response.get("Item", {}))
        return int(item["sequence"]) if item else None

    def apply(self, shard_id: str, records: Sequence[DynamoDBStreamRecordModel]) -> int:
        """Applies the records not applied yet; returns how many were applied now."""
        last = self.checkpoint(shard_id)
        fresh = [r for r in records if last is None or int(r.dynamodb.SequenceNumber) > last]
        applied = 0
        for chunk, delta in self._chunks(fresh):
            if not self._commit(shard_id, last, int(chunk[-1].dynamodb.SequenceNumber), delta):
                return applied  # another invocation applied them meanwhile; the checkpoint says so
            last = int(chunk[-1].dynamodb.SequenceNumber)
            applied += len(chunk)
        return applied

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
        self, shard_id: str, last: int | None, sequence: int, delta: dict[CounterKey, Counters]
    ) -> bool:
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
        condition = "attribute_not_exists(#seq)" if last is None else "#seq = :last"
        checkpoint_values: dict[str, Any] = {":seq": sequence} | ({":last": last} if last is not None else {})
        items.append(
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": serialize({"pk": CHECKPOINT_PK, "sk": shard_id}),
                    "UpdateExpression": "SET #seq = :seq",
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#seq": "sequence"},
                    "ExpressionAttributeValues": serialize(checkpoint_values),
                }
            }
        )
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                reasons = error.response.get("CancellationReasons", [])
                if reasons and reasons[-1].get("Code") == "ConditionalCheckFailed":
                    return False
            raise
        return True

    # ---- reads (GET /v1/stats) ---------------------------------------------------------------------------

    def query(self, project: str, query: StatsQuery, today: date) -> StatsResponse:
        """One Query over the days of the window."""
        start, end = query.window(today)
        rows: dict[str, dict[str, Any]] = {}
        request: dict[str, Any] = {
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
        while True:
            response = self.client.query(**request)
            for image in response.get("Items", []):
                item = deserialize(image)
                rows[item["sk"]] = item
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        total = merge(
            {("", "", ""): {c: Decimal(str(row.get(c, 0))) for c in COUNTERS}} for row in rows.values()
        )
        total_bucket = _bucket(start.isoformat(), total.get(("", "", ""), {}))
        if query.granularity == "total":
            return StatsResponse(total=total_bucket, buckets=[total_bucket])
        days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
        buckets = [_bucket(day.isoformat(), rows.get(day.isoformat(), {})) for day in days]
        return StatsResponse(total=total_bucket, buckets=buckets)
