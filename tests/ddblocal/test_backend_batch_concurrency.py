"""A batch's items written concurrently on DynamoDB Local: distinct records at once, one record's items one
after another and in the request's order, the time budget looked at as each item starts.

Concurrency is shown, not timed: the first writes wait for one another at a barrier before they are sent,
so a batch that wrote one item at a time would fail them (`WritesInFlight`).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from feedback_core.backend import BATCH_RESERVE_MS, BATCH_WORKERS, write_batch
from feedback_core.models import Principal
from feedback_core.store import FeedbackStore
from tests.ddblocal.conftest import Tables
from tests.integration.writes_in_flight import RefusedWrites, WritesInFlight

WRITER = Principal(project="acme", scopes=frozenset({"feedback:write"}))
MAX_UPDATES = 3


@pytest.fixture
def store(ddb_tables: Tables) -> FeedbackStore:
    return FeedbackStore(
        ddb_tables.client,
        ddb_tables.names["FeedbackTable"],
        time_index_shards=2,
        max_updates_per_record=MAX_UPDATES,
    )


def test_distinct_records_are_written_at_once(ddb_tables: Tables, store: FeedbackStore) -> None:
    writes = WritesInFlight(ddb_tables.client.meta.events.register, meet=BATCH_WORKERS)
    items = [
        {"run_id": f"run-{index % 3}", "user_id": f"u{index}", "outcome": "positive", "comment": f"#{index}"}
        for index in range(3 * BATCH_WORKERS)
    ]
    result = write_batch(store, WRITER, items, workers=BATCH_WORKERS)
    assert [(r.index, r.status, r.version) for r in result.results] == [
        (index, "created", 1) for index in range(len(items))
    ]
    assert (result.created, result.updated, result.failed) == (len(items), 0, 0)
    # all the workers' writes were in flight together (they met), never more, one UpdateItem per item
    assert (writes.most, writes.most_per_record, writes.started) == (BATCH_WORKERS, 1, len(items))
    for index, item in enumerate(items):
        record = store.get("acme", item["run_id"], item["user_id"])
        assert record is not None
        assert (record.comment, record.feedback_id) == (f"#{index}", result.results[index].feedback_id)


def test_one_records_items_run_one_after_another_in_the_request_order(
    ddb_tables: Tables, store: FeedbackStore
) -> None:
    # alice's, bob's and carol's first writes are in flight together (they meet); the later ones of
    # alice and bob each wait for that record's earlier write
    writes = WritesInFlight(ddb_tables.client.meta.events.register, meet=3)
    items: list[dict[str, Any]] = [
        {"run_id": "run-1", "user_id": "alice", "outcome": "positive", "score": 1, "agent": "bot"},
        {"run_id": "run-1", "user_id": "bob", "outcome": "negative", "score": -1},
        {"run_id": "run-2", "user_id": "carol", "outcome": "positive"},
        {"run_id": "run-1", "user_id": "alice", "score": 2},
        {"run_id": "run-1", "user_id": "bob", "score": 99},  # invalid: fails alone, writes nothing
        {"run_id": "run-1", "user_id": "bob", "score": -2},
        {"run_id": "run-1", "user_id": "alice", "outcome": "negative", "score": 3},
        {"run_id": "run-1", "user_id": "alice", "score": 4},  # past the record's version cap
    ]
    result = write_batch(store, WRITER, items, workers=BATCH_WORKERS)
    assert [(r.index, r.status, r.version) for r in result.results] == [
        (0, "created", 1),
        (1, "created", 1),
        (2, "created", 1),
        (3, "updated", 2),
        (4, "error", None),
        (5, "updated", 2),
        (6, "updated", 3),
        (7, "error", None),
    ]
    codes = [r.error.code if r.error else None for r in result.results]
    assert (codes[4], codes[7]) == ("validation_error", "too_many_updates")
    assert (writes.most_per_record, writes.started) == (1, 7)
    alice = store.get("acme", "run-1", "alice")
    bob = store.get("acme", "run-1", "bob")
    assert alice is not None and bob is not None
    # each record holds what its items wrote in their order: the last valid one's values on top
    assert (alice.outcome, alice.score, alice.agent, alice.version) == ("negative", 3, "bot", 3)
    assert (bob.outcome, bob.score, bob.version) == ("negative", -2, 2)
    assert {r.feedback_id for r in result.results if r.index in (0, 3, 6)} == {alice.feedback_id}


def test_a_batch_on_one_record_is_never_two_writes_at_once(ddb_tables: Tables, store: FeedbackStore) -> None:
    writes = WritesInFlight(ddb_tables.client.meta.events.register)
    items = [{"run_id": "run-1", "user_id": "alice", "score": score} for score in range(MAX_UPDATES)]
    result = write_batch(store, WRITER, items, workers=BATCH_WORKERS)
    assert [r.version for r in result.results] == [1, 2, 3]
    assert (writes.most, writes.started) == (1, MAX_UPDATES)
    alice = store.get("acme", "run-1", "alice")
    assert alice is not None
    assert alice.score == MAX_UPDATES - 1


class Looks:
    """A remaining time, or a clock, that moves by `step` at each look (like a slow request's)."""

    def __init__(self, start: float, step: float) -> None:
        self.value = start
        self.step = step

    def remaining_ms(self) -> int:
        self.value -= self.step
        return int(self.value)

    def clock(self) -> float:
        self.value += self.step
        return self.value


WORKERS = 4


@pytest.mark.parametrize("spent_by", ["remaining time", "clock"])
def test_items_not_started_within_the_budget_are_not_attempted(
    ddb_tables: Tables, store: FeedbackStore, spent_by: str
) -> None:
    """The budget is looked at as each item starts, in the request's order, while earlier items are in
    flight: the first ones are written (WORKERS of them at once), the rest fail as `not_attempted`."""
    if spent_by == "clock":
        # 2.5 s pass per look: 2.5 ... 17.5 s spent as the first 7 items start, 20 s at the 8th
        budget: dict[str, Any] = {"clock": Looks(0, 2.5).clock}
    else:
        # 10 s left, 1 s spent per look: 9 ... 3 s left as the first 7 items start, then under the reserve
        budget = {"remaining_ms": Looks(BATCH_RESERVE_MS + 7000, 1000).remaining_ms}
    writes = WritesInFlight(ddb_tables.client.meta.events.register, meet=WORKERS)
    items = [{"run_id": "run-slow", "user_id": f"u{index}", "outcome": "positive"} for index in range(12)]
    result = write_batch(store, WRITER, items, workers=WORKERS, **budget)
    statuses = [(r.status, r.error.code if r.error else None) for r in result.results]
    assert statuses == [("created", None)] * 7 + [("error", "not_attempted")] * 5
    assert (result.created, result.failed) == (7, 5)
    assert (writes.started, writes.most) == (7, WORKERS)
    assert store.get("acme", "run-slow", "u6") is not None
    assert store.get("acme", "run-slow", "u7") is None


def test_an_item_waiting_for_its_record_is_not_attempted_when_the_budget_ends_meanwhile(
    ddb_tables: Tables, store: FeedbackStore
) -> None:
    # 5 s left, 1 s per look: the first two items start (4 s, then 3 s left); the third, alice's again,
    # waits for her first write to end and finds 2 s left as it would start
    looks = Looks(BATCH_RESERVE_MS + 2000, 1000)
    items = [
        {"run_id": "run-1", "user_id": "alice", "score": 1},
        {"run_id": "run-1", "user_id": "bob", "score": 1},
        {"run_id": "run-1", "user_id": "alice", "score": 2},
    ]
    result = write_batch(store, WRITER, items, looks.remaining_ms, workers=BATCH_WORKERS)
    assert [(r.status, r.error.code if r.error else None) for r in result.results] == [
        ("created", None),
        ("created", None),
        ("error", "not_attempted"),
    ]
    alice = store.get("acme", "run-1", "alice")
    assert alice is not None
    assert (alice.score, alice.version) == (1, 1)


def test_an_unexpected_failure_of_one_write_fails_the_request_after_the_others_end(
    ddb_tables: Tables, store: FeedbackStore
) -> None:
    """Not a DynamoDB answer (the endpoint unreachable after the SDK's retries): the request fails, as it
    did when items were written one at a time; the writes already in flight end first."""
    RefusedWrites(
        ddb_tables.client.meta.events.register,
        ["bob"],
        lambda: EndpointConnectionError(endpoint_url="http://dynamodb"),
    )
    writes = WritesInFlight(ddb_tables.client.meta.events.register, meet=2)
    items = [
        {"run_id": "run-1", "user_id": user, "outcome": "positive"} for user in ("alice", "carol", "bob")
    ]
    with pytest.raises(EndpointConnectionError):
        write_batch(store, WRITER, items, workers=BATCH_WORKERS)
    assert writes.started == 2
    assert store.get("acme", "run-1", "alice") is not None
    assert store.get("acme", "run-1", "carol") is not None
