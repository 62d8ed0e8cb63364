"""A backend's batch write on DynamoDB Local: real condition expressions, indexes and write costs."""

from __future__ import annotations

from typing import Any

import pytest

from feedback_core.backend import write_batch
from feedback_core.errors import Forbidden
from feedback_core.models import Principal
from feedback_core.records import OWNER_BOUND
from feedback_core.store import FeedbackStore
from tests.ddblocal.conftest import Tables
from tests.ddblocal.test_capacity import ConsumedCapacity

WRITER = Principal(project="acme", scopes=frozenset({"feedback:write"}))
MAX_UPDATES = 3


@pytest.fixture
def store(ddb_tables: Tables) -> FeedbackStore:
    return FeedbackStore(
        ddb_tables.client, ddb_tables.names["FeedbackTable"], time_index_shards=2, max_updates_per_record=3
    )


def test_a_batch_writes_each_item_in_order_and_fails_items_alone(
    ddb_tables: Tables, store: FeedbackStore
) -> None:
    capacity = ConsumedCapacity(ddb_tables.client, {store.table_name: "Feedback"})
    items: list[dict[str, Any]] = [
        {"run_id": "run-1", "user_id": "alice", "outcome": "positive", "session_id": "s-1", "agent": "bot"},
        {"run_id": "run-1", "user_id": "bob", "outcome": "negative", "score": -3},
        {"run_id": "run-1", "user_id": "alice", "score": 5},  # the first item's record again
        {"run_id": "run-1", "user_id": "carol", "outcome": "good"},
        {"run_id": "run-2", "user_id": "anonymous", "comment": "ok"},
    ]
    results = []
    calls = capacity.during(lambda: results.append(write_batch(store, WRITER, items)))
    result = results[0]
    assert [(r.index, r.status) for r in result.results] == [
        (0, "created"),
        (1, "created"),
        (2, "updated"),
        (3, "error"),
        (4, "created"),
    ]
    assert (result.created, result.updated, result.failed) == (3, 1, 1)
    error = result.results[3].error
    assert error is not None
    assert error.code == "validation_error"
    assert [detail["field"] for detail in error.details or []] == ["outcome"]

    alice = store.get("acme", "run-1", "alice")
    assert alice is not None
    assert (alice.outcome, alice.score, alice.version, alice.session_id, alice.agent, alice.source) == (
        "positive",
        5,
        2,
        "s-1",
        "bot",
        "backend",
    )
    assert result.results[0].feedback_id == result.results[2].feedback_id == alice.feedback_id
    assert store.get("acme", "run-1", "carol") is None

    # one UpdateItem per valid item; each lands in the table and the indexes its keys put it in
    assert [call.operation for call in calls] == ["UpdateItem"] * 4
    parts = [sorted(call.parts) for call in calls]
    assert parts[0] == ["session-index", "table", "time-index", "user-index"]
    assert parts[1] == ["table", "time-index", "user-index"]
    assert parts[3] == ["table", "time-index"]  # anonymous: no user index entry

    # the indexes find what the batch wrote (session kept across the second write of alice)
    item = ddb_tables.client.query(
        TableName=ddb_tables.names["FeedbackTable"],
        IndexName="session-index",
        KeyConditionExpression="session_pk = :s",
        ExpressionAttributeValues={":s": {"S": "acme#s-1"}},
    )["Items"]
    assert [entry["sk"]["S"] for entry in item] == ["alice"]  # keys only: the user is the sort key


def test_backend_records_of_named_users_are_owned_and_capped(
    ddb_tables: Tables, store: FeedbackStore
) -> None:
    write_batch(store, WRITER, [{"run_id": "run-1", "user_id": "alice", "outcome": "positive"}])
    raw = ddb_tables.client.get_item(
        TableName=store.table_name, Key={"pk": {"S": "acme#run-1"}, "sk": {"S": "alice"}}
    )["Item"]
    assert raw[OWNER_BOUND] == {"BOOL": True}
    # the condition DynamoDB evaluates refuses a token with no user bound ...
    with pytest.raises(Forbidden):
        store.submit(project="acme", run_id="run-1", user_id="alice", fields={"score": 1}, binding="unbound")
    # ... but not the backend, up to the record's version cap, which fails only that item
    items = [{"run_id": "run-1", "user_id": "alice", "score": n} for n in range(MAX_UPDATES)]
    items.insert(1, {"run_id": "run-1", "user_id": "bob", "outcome": "negative"})
    result = write_batch(store, WRITER, items)
    assert [r.status for r in result.results] == ["updated", "created", "updated", "error"]
    assert [r.version for r in result.results] == [2, 1, 3, None]
    last = result.results[-1].error
    assert last is not None
    assert last.code == "too_many_updates"
