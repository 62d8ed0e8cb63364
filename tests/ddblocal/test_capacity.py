"""What a submission costs in DynamoDB write units, as DynamoDB Local reports them (ReturnConsumedCapacity).

A write is billed once for the table and once for every global secondary index whose projection the
item lands in; the cost of a submission, and any change of the indexes or their projections, rests on
these counts, so they are pinned here (deterministic) rather than estimated.
"""

from __future__ import annotations

from typing import Any

import pytest

from feedback_core.store import FeedbackStore
from tests.ddblocal.conftest import Tables


class ConsumedCapacity:
    """Asks every write and read of one client for its consumed capacity, per index, and keeps the answers."""

    OPERATIONS = ("UpdateItem", "PutItem", "DeleteItem", "GetItem", "Query", "TransactWriteItems")

    def __init__(self, client: Any) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        for operation in self.OPERATIONS:
            client.meta.events.register(f"before-parameter-build.dynamodb.{operation}", self._ask)
            client.meta.events.register(f"after-call.dynamodb.{operation}", self._keep)

    @staticmethod
    def _ask(params: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "INDEXES"

    def _keep(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        consumed = parsed.get("ConsumedCapacity")
        for entry in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            self.seen.append((model.name, entry))

    def units(self) -> list[tuple[str, float, dict[str, float]]]:
        """(operation, total units, units per table part: "table" and each index name) per call."""
        return [
            (
                operation,
                entry["CapacityUnits"],
                {"table": entry.get("Table", {}).get("CapacityUnits", 0.0)}
                | {
                    name: part["CapacityUnits"]
                    for name, part in entry.get("GlobalSecondaryIndexes", {}).items()
                },
            )
            for operation, entry in self.seen
        ]


@pytest.fixture
def capacity(ddb_tables: Tables) -> ConsumedCapacity:
    return ConsumedCapacity(ddb_tables.client)


def test_a_submission_writes_the_table_and_both_indexes(
    ddb_tables: Tables, capacity: ConsumedCapacity
) -> None:
    store = FeedbackStore(ddb_tables.client, ddb_tables.names["FeedbackTable"])
    store.submit(project="acme", run_id="run-1", user_id="alice", fields={"outcome": "positive"})
    store.submit(project="acme", run_id="run-1", user_id="alice", fields={"outcome": "negative", "score": 2})
    per_index = {"table": 1.0, "user-index": 1.0, "time-index": 1.0}
    assert capacity.units() == [("UpdateItem", 3.0, per_index), ("UpdateItem", 3.0, per_index)]


def test_reading_one_s_own_feedback_is_one_read_unit(ddb_tables: Tables, capacity: ConsumedCapacity) -> None:
    store = FeedbackStore(ddb_tables.client, ddb_tables.names["FeedbackTable"])
    store.submit(project="acme", run_id="run-1", user_id="alice", fields={"outcome": "positive"})
    capacity.seen.clear()
    assert store.get("acme", "run-1", "alice") is not None
    # Strongly consistent (a user reads back the vote just sent), under 4 KB: one unit.
    assert capacity.units() == [("GetItem", 1.0, {"table": 1.0})]
