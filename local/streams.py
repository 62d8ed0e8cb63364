"""Reads a DynamoDB stream (moto or DynamoDB Local) and shapes records as Lambda delivers them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient


def lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as it appears in a Lambda event (epoch-seconds time, eventSourceARN)."""
    shaped = dict(record)
    dynamodb = dict(shaped["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    shaped["dynamodb"] = dynamodb
    shaped["eventSourceARN"] = stream_arn
    shaped.setdefault("eventVersion", "1.1")
    shaped.setdefault("eventSource", "aws:dynamodb")
    return shaped


@dataclass
class StreamReader:
    """Follows every shard of one stream from its start (TRIM_HORIZON), remembering positions."""

    client: DynamoDBStreamsClient
    stream_arn: str
    _iterators: dict[str, str | None] = field(default_factory=dict)

    def _discover(self) -> None:
        description = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]

    def poll(self, limit: int = 1000) -> dict[str, list[dict[str, Any]]]:
        """New records per shard since the last poll, in Lambda's record shape."""
        self._discover()
        found: dict[str, list[dict[str, Any]]] = {}
        for shard_id, iterator in list(self._iterators.items()):
            if iterator is None:
                continue
            response = self.client.get_records(ShardIterator=iterator, Limit=limit)
            self._iterators[shard_id] = response.get("NextShardIterator")
            records = [lambda_record(dict(record), self.stream_arn) for record in response.get("Records", [])]
            if records:
                found[shard_id] = records
        return found
