"""What each operation costs in DynamoDB capacity units, as DynamoDB Local reports them
(ReturnConsumedCapacity INDEXES), including what the stream consumers write for it.

A write is billed once for the table and once for every global secondary index it changes: the indexes
project keys only, so an index entry costs 1 unit whatever the record's size, and an update that changes
no key writes the table alone. A listing reads the index keys, then the records with BatchGetItem. The
stats function's TransactWriteItems costs two units per item and KB. docs/COST.md turns these counts into
dollars, so they are pinned here (deterministic) rather than estimated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any, NamedTuple

import pytest
from moto import mock_aws

from feedback_core.cursor import CursorCodec
from feedback_core.models import FeedbackRecord, ListQuery
from feedback_core.stats import StatsQuery
from feedback_core.store import FeedbackStore
from local.ddblocal import DynamoDBLocal
from tests.streams.pipeline import Pipeline, make_pipeline

CODEC = CursorCodec(b"capacity-tests-cursor-secret-32b")
WEB_VOTE = {"outcome": "positive"}
"""A widget's first click."""


class Call(NamedTuple):
    """One DynamoDB call's consumed capacity: the operation, the table's short name, the total units,
    and the units per part ("table" and each index name)."""

    operation: str
    table: str
    units: float
    parts: dict[str, float]


class ConsumedCapacity:
    """Asks every call of one client for its consumed capacity, per index, and keeps the answers."""

    OPERATIONS = (
        "UpdateItem",
        "PutItem",
        "DeleteItem",
        "GetItem",
        "Query",
        "BatchGetItem",
        "TransactWriteItems",
    )

    def __init__(self, client: Any, short_names: dict[str, str]) -> None:
        self.calls: list[Call] = []
        self.transaction_items: list[int] = []
        """How many items each TransactWriteItems call wrote (see `billed_transaction_units`)."""
        self._short_names = short_names
        for operation in self.OPERATIONS:
            client.meta.events.register(f"before-parameter-build.dynamodb.{operation}", self._ask)
            client.meta.events.register(f"after-call.dynamodb.{operation}", self._keep)

    def _ask(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "INDEXES"
        if model.name == "TransactWriteItems":
            self.transaction_items.append(len(params["TransactItems"]))

    def _keep(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity")
        for entry in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            parts = {"table": entry.get("Table", {}).get("CapacityUnits", 0.0)} | {
                name: part["CapacityUnits"] for name, part in entry.get("GlobalSecondaryIndexes", {}).items()
            }
            table = self._short_names[entry["TableName"]]
            self.calls.append(Call(model.name, table, entry["CapacityUnits"], parts))

    def during(self, action: Callable[[], object]) -> list[Call]:
        self.calls.clear()
        self.transaction_items.clear()
        action()
        return list(self.calls)


class Stack(NamedTuple):
    pipeline: Pipeline
    capacity: ConsumedCapacity

    @property
    def store(self) -> FeedbackStore:
        return self.pipeline.store

    def submit(self, run_id: str, user_id: str = "alice", **fields: Any) -> tuple[FeedbackRecord, bool]:
        self.pipeline.clock.advance(1)
        return self.store.submit(
            project="acme",
            run_id=run_id,
            user_id=user_id,
            session_id="chat-1",
            agent="support-bot",
            fields=fields or WEB_VOTE,
        )

    def stream_consumers(self) -> list[Call]:
        """What the stats function spends on the changes made since the last call (publish_events
        touches no table)."""
        return self.capacity.during(self.pipeline.drain)

    def bus_and_topic_messages(self) -> tuple[int, int]:
        return len(self.pipeline.bus_events()), len(self.pipeline.sns_events())


@pytest.fixture
def stack(ddb_local: DynamoDBLocal) -> Iterator[Stack]:
    with mock_aws():
        pipeline = make_pipeline(ddb_local.endpoint_url)
        names = {
            pipeline.store.table_name: "Feedback",
            pipeline.stats.table_name: "Stats",
        }
        yield Stack(pipeline, ConsumedCapacity(pipeline.dynamodb, names))


def table_write(operation: str, table: float, indexes: float = 0.0) -> Call:
    """A Feedback write: `table` units for the item, 1 for each of the three index entries it changes."""
    parts = {"table": table}
    if indexes:
        parts |= {"user-index": indexes, "time-index": indexes, "session-index": indexes}
    return Call(operation, "Feedback", table + 3 * indexes, parts)


CHECKPOINT_READ = Call("GetItem", "Stats", 1.0, {"table": 1.0})
"""The stats function reads its shard's checkpoint, strongly consistent, once per batch."""
STATS_TRANSACTION_AS_REPORTED = Call("TransactWriteItems", "Stats", 2.0, {"table": 2.0})
"""DynamoDB Local reports 2 units for a TransactWriteItems of small items however many it writes;
DynamoDB bills 2 units per item and KB (`billed_transaction_units`)."""


def billed_transaction_units(capacity: ConsumedCapacity, stats_items: list[dict[str, Any]]) -> list[int]:
    """What DynamoDB bills for each transaction seen: "two write request units per 1 KB item"
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling).
    Every Stats item is under 1 KB (asserted from the stored items), so a transaction costs 2 per item."""
    assert stats_items and all(dynamodb_item_size(item) < 1024 for item in stats_items)
    return [2 * items for items in capacity.transaction_items]


def dynamodb_item_size(item: dict[str, Any]) -> int:
    """An upper bound of an item's billed size: attribute names and String values in UTF-8 bytes, at
    most 21 bytes per Number
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        size += len(value["S"].encode()) if "S" in value else 21
    return size


def test_a_first_vote_writes_the_table_and_its_three_index_entries(stack: Stack) -> None:
    assert stack.capacity.during(lambda: stack.submit("run-1")) == [table_write("UpdateItem", 1.0, 1.0)]
    # Anonymous feedback is in no user's index.
    assert stack.capacity.during(lambda: stack.submit("run-2", user_id="anonymous")) == [
        Call("UpdateItem", "Feedback", 3.0, {"table": 1.0, "time-index": 1.0, "session-index": 1.0})
    ]
    # An index entry is 1 unit whatever the record's size: the keys are all it holds.
    long_comment = {"outcome": "negative", "comment": "x" * 3000}
    assert stack.capacity.during(lambda: stack.submit("run-3", **long_comment)) == [
        table_write("UpdateItem", 4.0, 1.0)
    ]


def test_a_change_writes_the_table_only(stack: Stack) -> None:
    stack.submit("run-1")
    changed = stack.capacity.during(lambda: stack.submit("run-1", outcome="negative", score=-3, comment="no"))
    assert changed == [table_write("UpdateItem", 1.0)]


def test_a_retraction_deletes_the_item_and_its_index_entries(stack: Stack) -> None:
    stack.submit("run-1")
    assert stack.capacity.during(lambda: stack.store.retract("acme", "run-1", "alice")) == [
        table_write("DeleteItem", 1.0, 1.0)
    ]
    stack.submit("run-2")
    # An admin removal first marks who removes the record (the table only), then deletes it.
    assert stack.capacity.during(lambda: stack.store.remove("acme", "run-2", "alice", "admin")) == [
        table_write("UpdateItem", 1.0),
        table_write("DeleteItem", 1.0, 1.0),
    ]


def test_erasure_costs_one_index_query_and_a_removal_per_record(stack: Stack) -> None:
    for number in range(3):
        stack.submit(f"run-{number}")
    stack.stream_consumers()
    assert stack.capacity.during(lambda: stack.store.erase_user("acme", "alice")) == [
        Call("Query", "Feedback", 0.5, {"table": 0.0, "user-index": 0.5}),
        *[table_write("UpdateItem", 1.0), table_write("DeleteItem", 1.0, 1.0)] * 3,
    ]
    # The three removals reach the stats function in one batch: one transaction of three items.
    assert stack.stream_consumers() == [CHECKPOINT_READ, STATS_TRANSACTION_AS_REPORTED]
    assert billed_transaction_units(stack.capacity, stats_items(stack)) == [6]
    assert stack.bus_and_topic_messages() == (6, 6)  # three Submitted, three Erased


def test_reading_one_s_own_feedback_is_one_read_unit(stack: Stack) -> None:
    stack.submit("run-1")
    # Strongly consistent (a user reads back the vote just sent), under 4 KB: one unit.
    assert stack.capacity.during(lambda: stack.store.get("acme", "run-1", "alice")) == [
        Call("GetItem", "Feedback", 1.0, {"table": 1.0})
    ]


def test_a_listing_page_is_four_key_queries_and_a_unit_per_record(stack: Stack) -> None:
    for number in range(30):
        stack.submit(f"run-{number}", user_id=f"user-{number}")
    page = stack.capacity.during(lambda: stack.store.list("acme", ListQuery(limit=20), CODEC))
    # One Query per time-index shard (keys only: under 4 KB, half a unit eventually consistent), then
    # the page's 20 records and the one that tells a next page exists, one unit each (strongly
    # consistent, so that a record the index lists is never missed for a lagging replica).
    shard_query = Call("Query", "Feedback", 0.5, {"table": 0.0, "time-index": 0.5})
    assert page == [shard_query] * 4 + [Call("BatchGetItem", "Feedback", 21.0, {"table": 21.0})]
    assert sum(call.units for call in page) == 23.0
    by_run = stack.capacity.during(
        lambda: stack.store.list_run("acme", "run-7", limit=20, cursor=None, codec=CODEC)
    )
    assert by_run == [Call("Query", "Feedback", 0.5, {"table": 0.5})]


def test_a_stats_read_is_one_query(stack: Stack) -> None:
    stack.submit("run-1")
    stack.stream_consumers()
    today = date.fromtimestamp(stack.pipeline.clock())
    read = stack.capacity.during(lambda: stack.pipeline.stats.query("acme", StatsQuery(), today))
    assert read == [Call("Query", "Stats", 0.5, {"table": 0.5})]


def stats_items(stack: Stack) -> list[dict[str, Any]]:
    # A test-only look at every item of the test's own Stats table.
    return list(stack.pipeline.dynamodb.scan(TableName=stack.pipeline.stats.table_name)["Items"])


def test_the_stats_function_writes_three_items_per_batch_transactionally(stack: Stack) -> None:
    stack.submit("run-1")
    assert stack.stream_consumers() == [CHECKPOINT_READ, STATS_TRANSACTION_AS_REPORTED]
    # The counters under the record's agent and under all agents, and the shard's checkpoint.
    assert stack.capacity.transaction_items == [3]
    assert billed_transaction_units(stack.capacity, stats_items(stack)) == [6]
    assert stack.bus_and_topic_messages() == (1, 1)

    # A batch of ten changes of one project, agent and day costs the same: the deltas merge.
    for number in range(2, 12):
        stack.submit(f"run-{number}", outcome="negative", score=4)
    assert stack.stream_consumers() == [CHECKPOINT_READ, STATS_TRANSACTION_AS_REPORTED]
    assert billed_transaction_units(stack.capacity, stats_items(stack)) == [6]
    assert stack.bus_and_topic_messages() == (10, 10)


def test_every_change_is_one_stats_transaction_when_batches_hold_one_record(stack: Stack) -> None:
    """Quiet traffic: each change is a batch of its own (the stats function's batching window is 1 s)."""
    steps: list[Callable[[], object]] = [
        lambda: stack.submit("run-1"),
        lambda: stack.submit("run-1", outcome="negative"),
        lambda: stack.store.retract("acme", "run-1", "alice"),
    ]
    for step in steps:
        step()
        assert stack.stream_consumers() == [CHECKPOINT_READ, STATS_TRANSACTION_AS_REPORTED]
        assert billed_transaction_units(stack.capacity, stats_items(stack)) == [6]
    assert stack.bus_and_topic_messages() == (3, 3)
