"""DynamoDB's Time to Live, played locally (the emulators never expire an item): the sweeper deletes
expired items and the pollers stamp the TTL identity on their REMOVE records (docs/LOCAL.md)."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from local.template import text
from local.worker import PeriodicWorker

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from local.cloud import Stack

log = logging.getLogger("local.ttl")

# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-streams.html
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
DEFAULT_SWEEP_SECONDS = 60.0
MAX_REMEMBERED_REMOVALS = 100_000  # stamped REMOVE records, for the other pollers of the same stream
MAX_PENDING_PER_TABLE = 100_000


@dataclass(frozen=True)
class TtlTable:
    logical_id: str
    name: str
    key_attributes: tuple[str, ...]
    ttl_attribute: str
    has_stream: bool  # only then are its deletions recorded for the pollers


def ttl_tables(stack: Stack, table_names: Mapping[str, str]) -> list[TtlTable]:
    """The stack's tables with TTL enabled in the template, by the names the functions use."""
    tables = []
    for logical_id in stack.resources_of_type("AWS::DynamoDB::Table"):
        properties = stack.template["Resources"][logical_id]["Properties"]
        specification = stack.resolved.get(logical_id, {}).get("TimeToLiveSpecification") or {}
        if text(specification.get("Enabled", False)) == "true":
            name = table_names.get(logical_id, stack.resources[logical_id])
            keys = tuple(str(key["AttributeName"]) for key in properties["KeySchema"])
            streamed = "StreamSpecification" in properties
            tables.append(TtlTable(logical_id, name, keys, str(specification["AttributeName"]), streamed))
    return tables


def _plain(image: Mapping[str, Any]) -> dict[str, Any]:
    """An item as Python values: equal items compare equal however numbers are spelled (``1``, ``1.0``)."""
    from boto3.dynamodb.types import TypeDeserializer  # noqa: PLC0415 (`python -m local --help` stays light)

    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in image.items()}


def table_of_stream(stream_arn: str) -> str:
    """``arn:...:table/<name>/stream/<label>`` -> ``<name>`` (moto's and DynamoDB Local's ARNs)."""
    return stream_arn.split(":table/", 1)[-1].split("/stream/", 1)[0]


class SweptItems:
    """What the sweeper deleted, for the pollers to stamp, under one lock (the sweeper holds
    :attr:`deleting` until a deletion is recorded). A stamped record's sequence number is remembered, so
    the other mappings of the stream stamp it too."""

    def __init__(self) -> None:
        self.deleting = threading.Lock()
        self._pending: dict[str, deque[tuple[dict[str, Any], dict[str, Any]]]] = {}  # (key, old image)
        self._stamped: OrderedDict[tuple[str, str], None] = OrderedDict()

    def record(self, table: str, key: Mapping[str, Any], old_image: Mapping[str, Any]) -> None:
        """With :attr:`deleting` held."""
        pending = self._pending.setdefault(table, deque(maxlen=MAX_PENDING_PER_TABLE))
        pending.append((_plain(key), _plain(old_image)))

    def pending(self, table: str) -> int:
        """Deletions of this table no REMOVE record has matched yet."""
        with self.deleting:
            return len(self._pending.get(table, []))

    def stamp(self, stream_arn: str, records: Sequence[dict[str, Any]]) -> int:
        """Sets :data:`TTL_IDENTITY` on the REMOVE records of swept items, in place; returns how many."""
        if not any(record.get("eventName") == "REMOVE" for record in records):
            return 0  # no need to wait for a sweep in progress
        table = table_of_stream(stream_arn)
        stamped = 0
        with self.deleting:
            for record in records:
                if record.get("eventName") != "REMOVE":
                    continue
                change = record.get("dynamodb") or {}
                remembered = (table, str(change.get("SequenceNumber")))
                if remembered not in self._stamped:
                    if not self._match(table, change):
                        continue
                    self._stamped[remembered] = None
                    while len(self._stamped) > MAX_REMEMBERED_REMOVALS:
                        self._stamped.popitem(last=False)
                record["userIdentity"] = dict(TTL_IDENTITY)
                stamped += 1
        return stamped

    def _match(self, table: str, change: Mapping[str, Any]) -> bool:
        pending = self._pending.get(table)
        deletion = (_plain(change.get("Keys") or {}), _plain(change.get("OldImage") or {}))
        if pending and deletion in pending:
            pending.remove(deletion)  # the first one: a stream keeps a key's changes in order
            return True
        return False


class TtlSweeper(PeriodicWorker):
    """Deletes the TTL tables' expired items every ``interval`` seconds (:meth:`start`), or once."""

    def __init__(
        self,
        client: DynamoDBClient,
        tables: Sequence[TtlTable],
        swept: SweptItems,
        *,
        interval: float = DEFAULT_SWEEP_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.tables = list(tables)
        self.swept = swept
        self.clock = clock
        super().__init__("ttl-sweeper", interval if self.tables else 0)

    def sweep_once(self) -> int:
        deleted = sum(self._sweep(table) for table in self.tables)
        if deleted:
            log.info("TTL: %d expired item(s) deleted", deleted)
        return deleted

    tick = sweep_once

    def _sweep(self, table: TtlTable) -> int:
        now = int(self.clock())
        names = {"#ttl": table.ttl_attribute}
        names |= {f"#key{index}": name for index, name in enumerate(table.key_attributes)}
        # TTL only reads a Number attribute; any other type never expires an item.
        scan: dict[str, Any] = {
            "TableName": table.name,
            "FilterExpression": "attribute_type(#ttl, :number) AND #ttl < :now",
            "ProjectionExpression": ", ".join(f"#key{index}" for index in range(len(table.key_attributes))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":number": {"S": "N"}, ":now": {"N": str(now)}},
        }
        pages = self.client.get_paginator("scan").paginate(**scan)
        return sum(self._delete(table, key, now) for page in pages for key in page.get("Items", []))

    def _delete(self, table: TtlTable, key: dict[str, Any], now: int) -> int:
        with self.swept.deleting:
            try:
                response = self.client.delete_item(
                    TableName=table.name,
                    Key=key,
                    # Changed since the scan (a new expiry, or already gone): not expired any more.
                    ConditionExpression="#ttl < :now",
                    ExpressionAttributeNames={"#ttl": table.ttl_attribute},
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                    ReturnValues="ALL_OLD",
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                return 0
            old_image = response.get("Attributes")
            if old_image and table.has_stream:
                self.swept.record(table.name, key, old_image)
        return 1 if old_image else 0
