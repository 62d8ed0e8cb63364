"""Reads a DynamoDB stream (moto or DynamoDB Local) and shapes records as Lambda delivers them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

# GetShardIterator/GetRecords errors after which a shard is read again from a known position.
_POSITION_LOST = {"ExpiredIteratorException", "TrimmedDataAccessException"}
_NO_RESUMING = {*_POSITION_LOST, "ValidationException"}  # the checkpoint is not usable: start over


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as it appears in a Lambda event (epoch-seconds time, eventSourceARN)."""
    dynamodb = dict(record["dynamodb"])
    if isinstance(created := dynamodb.get("ApproximateCreationDateTime"), datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    shaped = {"eventVersion": "1.1", "eventSource": "aws:dynamodb", **record, "dynamodb": dynamodb}
    return shaped | {"eventSourceARN": stream_arn}


@dataclass
class StreamReader:
    """Follows every shard of one stream from its start (TRIM_HORIZON), or after the sequence number
    ``start_after`` gives it (a checkpoint). A shard whose position was lost (iterator expired, records
    trimmed) is read again after the last record returned, else from its start."""

    client: DynamoDBStreamsClient
    stream_arn: str
    start_after: dict[str, str] = field(default_factory=dict)
    rediscover_seconds: float = 0.0  # how often DescribeStream looks for new shards (0: every poll)
    _iterators: dict[str, str | None] = field(default_factory=dict)
    _discovered_at: float | None = None
    _last_seen: dict[str, str] = field(default_factory=dict)

    def _iterator(self, shard_id: str, after: str | None) -> str | None:
        if after is not None:
            try:
                return self.client.get_shard_iterator(
                    StreamArn=self.stream_arn,
                    ShardId=shard_id,
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    SequenceNumber=after,
                ).get("ShardIterator")
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in _NO_RESUMING:
                    raise
        return self.client.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        ).get("ShardIterator")

    def _discover(self) -> None:
        description = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard_id in [shard["ShardId"] for shard in description.get("Shards", [])]:
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._iterator(shard_id, self.start_after.get(shard_id))

    def poll(self, limit: int = 1000) -> dict[str, list[dict[str, Any]]]:
        """New records per shard since the last poll, in Lambda's record shape."""
        now = time.monotonic()
        if self._discovered_at is None or now - self._discovered_at >= self.rediscover_seconds:
            self._discover()
            self._discovered_at = now
        found: dict[str, list[dict[str, Any]]] = {}
        for shard_id, iterator in list(self._iterators.items()):
            if iterator is None:
                continue
            try:
                response = self.client.get_records(ShardIterator=iterator, Limit=limit)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in _POSITION_LOST:
                    raise
                after = self._last_seen.get(shard_id) or self.start_after.get(shard_id)
                self._iterators[shard_id] = self._iterator(shard_id, after)
                continue
            self._iterators[shard_id] = response.get("NextShardIterator")
            records = [lambda_record(record, self.stream_arn) for record in response.get("Records", [])]
            if records:
                self._last_seen[shard_id] = str(records[-1]["dynamodb"]["SequenceNumber"])
                found[shard_id] = records
        return found
