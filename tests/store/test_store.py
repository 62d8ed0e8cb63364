"""FeedbackStore against moto and against DynamoDB Local (real key conditions, GSIs and conditions)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from feedback_core.cursor import CursorCodec
from feedback_core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyUpdates,
    ValidationFailed,
)
from feedback_core.models import FeedbackSubmission, ListQuery
from feedback_core.store import FeedbackStore
from local.tables import create_tables_from_template
from tests.conftest import AwsCalls
from tests.support.clock import ManualClock

CODEC = CursorCodec(b"store-tests-cursor-secret-32byte")
DAY = 86400


def make_store(tables: Any, clock: ManualClock, **options: Any) -> FeedbackStore:
    client, names = tables
    settings = {"time_index_shards": 4, "retention_days": 90, "max_updates_per_record": 100} | options
    return FeedbackStore(client, names["FeedbackTable"], clock=clock, **settings)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000)


@pytest.fixture
def store(feedback_tables: Any, clock: ManualClock) -> FeedbackStore:
    return make_store(feedback_tables, clock)


def submit(
    store: FeedbackStore, clock: ManualClock, run: str = "run-1", user: str = "u-1", **kwargs: Any
) -> Any:
    clock.advance(1)
    fields = kwargs.pop("fields", {"outcome": "positive"})
    return store.submit(
        project=kwargs.pop("project", "acme"), run_id=run, user_id=user, fields=fields, **kwargs
    )


def test_first_submit_creates_then_updates_keep_created_at(store: FeedbackStore, clock: ManualClock) -> None:
    first, created = submit(store, clock, fields={"outcome": "positive", "score": 5, "comment": "good"})
    assert created and first.version == 1
    assert first.created_at == first.updated_at
    assert first.expires_at == int(clock.now) + 90 * DAY
    assert (first.weight, first.source) == (1.0, "web")
    uuid.UUID(first.feedback_id)

    second, created = submit(store, clock, fields={"outcome": "negative", "comment": None})
    assert not created and second.version == 2
    assert (second.feedback_id, second.created_at) == (first.feedback_id, first.created_at)
    assert second.updated_at > first.updated_at
    assert (second.outcome, second.score, second.comment) == ("negative", 5, None)
    assert store.get("acme", "run-1", "u-1") == second


def test_response_of_a_submit_equals_what_is_stored(store: FeedbackStore, clock: ManualClock) -> None:
    record, _ = submit(
        store,
        clock,
        session_id="s-1",
        agent="bot",
        context={"model": "m1"},
        fields={
            "outcome": "negative",
            "score": -3,
            "weight": 0.25,
            "details": {"a": [1, 2.5]},
            "tags": ["x"],
        },
    )
    assert store.get("acme", "run-1", "u-1") == record
    assert record.details == {"a": [1, 2.5]} and record.weight == 0.25


def test_a_submit_is_exactly_one_dynamodb_call(
    feedback_tables: Any, clock: ManualClock, aws_calls: AwsCalls, dynamodb_client_factory: Any
) -> None:
    _, names = feedback_tables
    counted = make_store((dynamodb_client_factory(), names), clock)
    aws_calls.reset()
    submit(counted, clock)
    submit(counted, clock, fields={"score": 1})
    assert aws_calls.operations() == {"dynamodb:UpdateItem": 2}


def lose_first_answer(client: Any, twin: Any) -> list[str]:
    """The client's next UpdateItem reaches the table but its answer is lost (a read timeout), so
    botocore's own retry sends the very same request again, as on AWS. ``twin`` (another client of the
    same table) delivers the lost attempt. Returns the attempts' record: "lost", then "answered"."""
    attempts: list[str] = []
    sent: list[dict[str, Any]] = []

    def keep_parameters(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    def lose_once(request: Any, **_: Any) -> None:
        if attempts:
            attempts.append("answered")
            return
        attempts.append("lost")
        twin.update_item(**sent[-1])
        raise ReadTimeoutError(endpoint_url=request.url)

    client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", keep_parameters)
    client.meta.events.register("before-send.dynamodb.UpdateItem", lose_once)
    return attempts


@pytest.mark.parametrize("expected_version", [None, 0, 1])
def test_a_write_whose_answer_was_lost_is_answered_as_the_first_attempt(
    feedback_tables: Any, clock: ManualClock, dynamodb_client_factory: Any, expected_version: int | None
) -> None:
    """botocore resends a write whose answer timed out; the resent write must not apply twice: the
    answer is the first attempt's (created or not), the version moves once, an If-Match write is not
    refused by its own first attempt."""
    _, names = feedback_tables
    client = dynamodb_client_factory()
    store = make_store((client, names), clock)
    if expected_version == 1:
        before, _ = submit(store, clock, fields={"outcome": "negative"})
    attempts = lose_first_answer(client, dynamodb_client_factory())
    record, created = submit(store, clock, fields={"outcome": "positive"}, expected_version=expected_version)
    assert attempts == ["lost", "answered"]
    assert created is (expected_version != 1)
    assert (record.outcome, record.version) == ("positive", 1 if created else 2)
    assert store.get("acme", "run-1", "u-1") == record
    if expected_version == 1:
        assert record.feedback_id == before.feedback_id


def test_updates_are_capped_per_record(feedback_tables: Any, clock: ManualClock) -> None:
    store = make_store(feedback_tables, clock, max_updates_per_record=3)
    for _ in range(3):
        submit(store, clock)
    with pytest.raises(TooManyUpdates) as refused:
        submit(store, clock)
    assert int(refused.value.headers["Retry-After"]) > 80 * DAY
    assert store.get("acme", "run-1", "u-1").version == 3  # type: ignore[union-attr]
    store.retract("acme", "run-1", "u-1")
    assert submit(store, clock)[0].version == 1


def test_if_match_versions(store: FeedbackStore, clock: ManualClock) -> None:
    submit(store, clock, expected_version=0)
    with pytest.raises(Conflict):
        submit(store, clock, expected_version=0)
    with pytest.raises(Conflict, match="version 1, not 5"):
        submit(store, clock, expected_version=5)
    assert submit(store, clock, expected_version=1)[0].version == 2
    with pytest.raises(Conflict):
        submit(store, clock, run="never-written", expected_version=1)


def test_expired_records_are_hidden_and_replaced(store: FeedbackStore, clock: ManualClock) -> None:
    old, _ = submit(store, clock, fields={"outcome": "positive", "comment": "old"})
    clock.advance(90 * DAY)  # past expires_at; TTL has not deleted the item yet
    assert store.get("acme", "run-1", "u-1") is None
    assert store.list("acme", ListQuery(), CODEC).items == []
    with pytest.raises(NotFound):
        store.retract("acme", "run-1", "u-1")
    fresh, created = submit(store, clock, fields={"outcome": "negative"})
    assert created and fresh.version == 1 and fresh.comment is None
    assert fresh.feedback_id != old.feedback_id and fresh.created_at > old.created_at


def test_retention_zero_keeps_forever(feedback_tables: Any, clock: ManualClock) -> None:
    store = make_store(feedback_tables, clock, retention_days=0)
    record, _ = submit(store, clock)
    assert record.expires_at is None
    clock.advance(10_000 * DAY)
    assert store.get("acme", "run-1", "u-1") == record


def test_retract_and_admin_remove(store: FeedbackStore, clock: ManualClock) -> None:
    submit(store, clock, user="u-1")
    submit(store, clock, user="u-2")
    assert store.retract("acme", "run-1", "u-1").user_id == "u-1"
    with pytest.raises(NotFound):
        store.retract("acme", "run-1", "u-1")
    assert store.remove("acme", "run-1", "u-2", "admin").user_id == "u-2"
    with pytest.raises(NotFound):
        store.remove("acme", "run-1", "u-2", "admin")
    assert store.list_run("acme", "run-1", limit=10, cursor=None, codec=CODEC).items == []


def test_projects_are_isolated(store: FeedbackStore, clock: ManualClock) -> None:
    submit(store, clock, project="acme", user="u-1")
    submit(store, clock, project="other", user="u-1")
    assert store.get("other", "run-1", "u-1").project == "other"  # type: ignore[union-attr]
    assert [r.project for r in store.list("acme", ListQuery(), CODEC).items] == ["acme"]
    assert [r.project for r in store.list("acme", ListQuery(user_id="u-1"), CODEC).items] == ["acme"]
    assert store.erase_user("acme", "u-1") == (1, True)
    assert store.get("other", "run-1", "u-1") is not None


def test_listing_is_newest_first_across_shards_and_pages_cover_everything(
    store: FeedbackStore, clock: ManualClock
) -> None:
    written = [submit(store, clock, run=f"run-{i}", user=f"u-{i % 3}")[0] for i in range(23)]
    seen, cursor, pages = [], None, 0
    while True:
        page = store.list("acme", ListQuery(limit=5, cursor=cursor), CODEC)
        seen += page.items
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 5
    assert [r.feedback_id for r in seen] == [r.feedback_id for r in reversed(written)]


def test_exact_page_size_has_no_next_cursor(store: FeedbackStore, clock: ManualClock) -> None:
    for i in range(4):
        submit(store, clock, run=f"run-{i}")
    page = store.list("acme", ListQuery(limit=4), CODEC)
    assert len(page.items) == 4 and page.next_cursor is None


def test_filters_use_indexes_and_combine(store: FeedbackStore, clock: ManualClock) -> None:
    submit(store, clock, run="r1", user="alice", session_id="s1", agent="bot", fields={"outcome": "positive"})
    submit(store, clock, run="r2", user="alice", session_id="s2", agent="bot", fields={"outcome": "negative"})
    submit(store, clock, run="r3", user="bob", session_id="s1", agent="other", fields={"outcome": "negative"})
    submit(store, clock, run="r4", user="anonymous", fields={"outcome": "negative", "source": "slack"})

    def runs(**filters: Any) -> list[str]:
        return [r.run_id for r in store.list("acme", ListQuery(**filters), CODEC).items]

    assert runs() == ["r4", "r3", "r2", "r1"]
    assert runs(user_id="alice") == ["r2", "r1"]
    assert runs(user_id="anonymous") == ["r4"]
    assert runs(session_id="s1") == ["r3", "r1"]
    assert runs(session_id="s1", user_id="alice") == ["r1"]
    assert runs(outcome="negative") == ["r4", "r3", "r2"]
    assert runs(agent="bot", outcome="negative") == ["r2"]
    assert runs(source="slack") == ["r4"]


def test_time_window_start_inclusive_end_exclusive(store: FeedbackStore, clock: ManualClock) -> None:
    records = [submit(store, clock, run=f"r{i}")[0] for i in range(4)]
    window = ListQuery(start=records[1].created_at, end=records[3].created_at)
    assert [r.run_id for r in store.list("acme", window, CODEC).items] == ["r2", "r1"]
    with pytest.raises(ValidationFailed, match="start: must be before end"):
        store.list("acme", ListQuery(start=records[3].created_at, end=records[1].created_at), CODEC)
    with pytest.raises(ValidationFailed, match="start: must be before end"):
        store.list("acme", ListQuery(start=records[1].created_at, end=records[1].created_at), CODEC)
    with pytest.raises(ValidationError, match="ISO 8601"):
        ListQuery(start="yesterday")


def test_time_window_in_any_zone_is_the_same_window(store: FeedbackStore, clock: ManualClock) -> None:
    records = [submit(store, clock, run=f"r{i}")[0] for i in range(3)]
    utc = datetime.fromisoformat(records[1].created_at)
    in_utc = ListQuery(start=records[1].created_at)
    elsewhere = ListQuery(start=utc.astimezone(timezone(timedelta(hours=-5))).isoformat())
    assert elsewhere.start == in_utc.start
    assert [r.run_id for r in store.list("acme", elsewhere, CODEC).items] == ["r2", "r1"]


def test_filtered_pages_are_full_even_when_matches_are_sparse(
    store: FeedbackStore, clock: ManualClock
) -> None:
    for i in range(30):
        submit(store, clock, run=f"r{i}", fields={"outcome": "negative" if i % 6 == 0 else "positive"})
    first = store.list("acme", ListQuery(outcome="negative", limit=3), CODEC)
    assert [r.run_id for r in first.items] == ["r24", "r18", "r12"]
    second = store.list("acme", ListQuery(outcome="negative", limit=3, cursor=first.next_cursor), CODEC)
    assert [r.run_id for r in second.items] == ["r6", "r0"] and second.next_cursor is None


def test_cursor_cannot_be_reused_with_other_filters(store: FeedbackStore, clock: ManualClock) -> None:
    for i in range(3):
        submit(store, clock, run=f"r{i}")
    cursor = store.list("acme", ListQuery(limit=1), CODEC).next_cursor
    with pytest.raises(BadRequest):
        store.list("acme", ListQuery(limit=1, outcome="positive", cursor=cursor), CODEC)
    with pytest.raises(BadRequest):
        store.list("other", ListQuery(limit=1, cursor=cursor), CODEC)


def test_run_listing_pages_by_user(store: FeedbackStore, clock: ManualClock) -> None:
    for user in ["a", "b", "c", "d", "e"]:
        submit(store, clock, user=user)
    submit(store, clock, run="run-2", user="z")
    first = store.list_run("acme", "run-1", limit=3, cursor=None, codec=CODEC)
    second = store.list_run("acme", "run-1", limit=3, cursor=first.next_cursor, codec=CODEC)
    assert [r.user_id for r in first.items + second.items] == ["a", "b", "c", "d", "e"]
    assert second.next_cursor is None


def test_erasure_removes_every_record_of_the_user(store: FeedbackStore, clock: ManualClock) -> None:
    for run in ["r1", "r2", "r3"]:
        submit(store, clock, run=run, user="alice", session_id="s")
        submit(store, clock, run=run, user="bob")
    assert store.erase_user("acme", "alice") == (3, True)
    assert store.list("acme", ListQuery(user_id="alice"), CODEC).items == []
    assert store.list("acme", ListQuery(session_id="s"), CODEC).items == []
    assert len(store.list("acme", ListQuery(), CODEC).items) == 3
    assert store.erase_user("acme", "alice") == (0, True)
    with pytest.raises(ValidationFailed):
        store.erase_user("acme", "anonymous")


def test_erasure_stops_when_out_of_time_and_resumes(store: FeedbackStore, clock: ManualClock) -> None:
    for index in range(7):
        submit(store, clock, run=f"r{index}", user="heavy")
    budget = iter([False, False, True])  # time for two records, then the request must answer
    assert store.erase_user("acme", "heavy", lambda: next(budget)) == (2, False)
    assert len(store.list("acme", ListQuery(user_id="heavy"), CODEC).items) == 5
    assert store.erase_user("acme", "heavy") == (5, True)  # the repeated request finishes the job
    assert store.list("acme", ListQuery(user_id="heavy"), CODEC).items == []


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**45), max_value=10**45)
    | st.floats()
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)
submissions = st.fixed_dictionaries(
    {"outcome": st.sampled_from(["positive", "negative"])},
    optional={
        "score": st.integers(-12, 12),
        "weight": st.floats(),
        "comment": st.text(max_size=50),
        "details": st.dictionaries(st.text(max_size=8), json_values, max_size=5),
        "tags": st.lists(st.text(max_size=70), max_size=11),
        "source": st.text(max_size=70),
    },
)


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=submissions)
# An integral float too large for exact binary: stored as the decimal it was written as, read as an int.
@example(body={"outcome": "positive", "details": {"n": 5.691274337083033e16, "m": 2.0}, "weight": 1.0})
def test_every_valid_submission_is_storable(
    store: FeedbackStore, clock: ManualClock, body: dict[str, Any]
) -> None:
    """The request models refuse exactly what DynamoDB would refuse (checked on DynamoDB Local), and the
    record a submit returns is the one a read returns."""
    try:
        submission = FeedbackSubmission.model_validate(body)
    except ValidationError:
        return
    run = f"run-{uuid.uuid4()}"  # a fresh record per example: repeats would reach the update cap
    record, _ = submit(store, clock, run=run, fields=submission.record_fields())
    assert store.get("acme", run, "u-1") == record


@pytest.mark.ddblocal
def test_concurrent_submits_to_one_record_get_distinct_versions(ddb_local: Any) -> None:
    """Twenty requests racing on one record: one creation, every version exactly once. Real DynamoDB
    semantics only: moto is not atomic across threads (it writes a new item's key before its attributes)."""
    client = ddb_local.client()
    names = create_tables_from_template(client, prefix=f"c{uuid.uuid4().hex[:8]}")
    store = FeedbackStore(client, names["FeedbackTable"], max_updates_per_record=100)

    def vote(index: int) -> tuple[int, bool]:
        outcome = "positive" if index % 2 else "negative"
        record, created = store.submit(project="acme", run_id="hot", user_id="u", fields={"outcome": outcome})
        return record.version, created

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(vote, range(20)))
    assert sorted(version for version, _ in results) == list(range(1, 21))
    assert [created for _, created in results].count(True) == 1
    assert store.get("acme", "hot", "u").version == 20  # type: ignore[union-attr]


# ---- owned records: what a user-bound token wrote, an unbound token may not read, change or retract -------


def raw_item(store: FeedbackStore, run: str = "run-1", user: str = "alice") -> dict[str, Any]:
    """The item as stored, internal attributes included."""
    response = store._client.get_item(
        TableName=store.table_name, Key={"pk": {"S": f"acme#{run}"}, "sk": {"S": user}}, ConsistentRead=True
    )
    return dict(response.get("Item", {}))


def test_an_unbound_token_cannot_touch_a_record_a_bound_token_wrote(
    store: FeedbackStore, clock: ManualClock
) -> None:
    owned, _ = submit(store, clock, user="alice", binding="bound", fields={"outcome": "positive"})
    assert raw_item(store)["owner_bound"] == {"BOOL": True}
    assert "owner_bound" not in owned.model_dump()

    with pytest.raises(Forbidden, match="bound to its user"):
        store.get("acme", "run-1", "alice", binding="unbound")
    for expected_version in (None, 0, 1, 7):
        with pytest.raises(Forbidden):
            submit(store, clock, user="alice", binding="unbound", expected_version=expected_version)
    with pytest.raises(Forbidden):
        store.retract("acme", "run-1", "alice", binding="unbound")

    assert store.get("acme", "run-1", "alice") == owned  # unchanged, and the service itself still reads it
    assert store.get("acme", "run-1", "alice", binding="bound") == owned


def test_unbound_tokens_keep_anonymous_and_unowned_records(store: FeedbackStore, clock: ManualClock) -> None:
    submit(store, clock, user="anonymous", binding="unbound")
    submit(store, clock, user="bob", binding="unbound")
    assert submit(store, clock, user="bob", binding="unbound", fields={"score": 3})[0].version == 2
    assert store.get("acme", "run-1", "bob", binding="unbound").score == 3  # type: ignore[union-attr]
    assert "owner_bound" not in raw_item(store, user="bob")
    assert store.retract("acme", "run-1", "bob", binding="unbound").user_id == "bob"
    # A token bound to the user name "anonymous" does not take the shared anonymous record.
    submit(store, clock, user="anonymous", binding="bound")
    assert "owner_bound" not in raw_item(store, user="anonymous")
    assert submit(store, clock, user="anonymous", binding="unbound")[0].version == 3
    assert store.retract("acme", "run-1", "anonymous", binding="unbound").version == 3


def test_a_bound_token_takes_over_an_unowned_record(store: FeedbackStore, clock: ManualClock) -> None:
    first, _ = submit(store, clock, user="alice", binding="unbound", fields={"outcome": "negative"})
    taken, created = submit(store, clock, user="alice", binding="bound", fields={"comment": "mine"})
    assert not created and taken.version == 2 and taken.feedback_id == first.feedback_id
    with pytest.raises(Forbidden):
        submit(store, clock, user="alice", binding="unbound")
    assert store.get("acme", "run-1", "alice") == taken
    assert store.retract("acme", "run-1", "alice", binding="bound") == taken
    # Once retracted the record is gone: an unbound token may start a fresh, unowned one.
    assert submit(store, clock, user="alice", binding="unbound")[1] is True


def test_an_owned_record_past_its_expiry_is_gone_for_everyone(
    store: FeedbackStore, clock: ManualClock
) -> None:
    submit(store, clock, user="alice", binding="bound")
    clock.advance(91 * DAY)  # expired; TTL has not deleted the item yet
    assert store.get("acme", "run-1", "alice", binding="unbound") is None
    with pytest.raises(NotFound):
        store.retract("acme", "run-1", "alice", binding="unbound")
    fresh, created = submit(store, clock, user="alice", binding="unbound")
    assert created and fresh.version == 1
    assert "owner_bound" not in raw_item(store)


def test_ownership_checks_cost_no_extra_call(
    feedback_tables: Any, clock: ManualClock, aws_calls: AwsCalls, dynamodb_client_factory: Any
) -> None:
    _, names = feedback_tables
    counted = make_store((dynamodb_client_factory(), names), clock)
    submit(counted, clock, user="alice", binding="bound")
    aws_calls.reset()
    for call in (
        lambda: submit(counted, clock, user="alice", binding="unbound"),
        lambda: counted.retract("acme", "run-1", "alice", binding="unbound"),
        lambda: counted.get("acme", "run-1", "alice", binding="unbound"),
    ):
        with pytest.raises(Forbidden):
            call()
    assert aws_calls.operations() == {
        "dynamodb:UpdateItem": 1,
        "dynamodb:DeleteItem": 1,
        "dynamodb:GetItem": 1,
    }


@pytest.mark.ddblocal
def test_no_unbound_write_lands_after_a_bound_one(ddb_local: Any) -> None:
    """Unbound submits and retracts racing one bound submit: the ownership check is part of each write's
    condition, so once the bound write is in, every later unbound write is refused (none slips between a
    check and the write). Real DynamoDB semantics only, as above."""
    client = ddb_local.client()
    names = create_tables_from_template(client, prefix=f"o{uuid.uuid4().hex[:8]}")
    store = FeedbackStore(client, names["FeedbackTable"], max_updates_per_record=1000)

    def act(index: int) -> tuple[str, int | None]:
        try:
            if index == 10:
                record, _ = store.submit(
                    project="acme", run_id="r", user_id="alice", fields={"comment": "mine"}, binding="bound"
                )
                return "bound", record.version
            record, _ = store.submit(
                project="acme", run_id="r", user_id="alice", fields={"score": index % 10}, binding="unbound"
            )
            return "unbound", record.version
        except Forbidden:
            return "refused", None

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(act, range(30)))
    [bound_version] = [version for kind, version in results if kind == "bound"]
    accepted = [version for kind, version in results if kind == "unbound"]
    assert all(version is not None and version < bound_version for version in accepted)
    assert len(accepted) + results.count(("refused", None)) == 29
    assert store.get("acme", "r", "alice").version == bound_version  # type: ignore[union-attr]


def test_listings_read_the_current_records_behind_the_key_only_indexes(
    store: FeedbackStore, clock: ManualClock
) -> None:
    first, _ = submit(store, clock, run="r1", user="alice", session_id="s1", agent="bot")
    submit(store, clock, run="r2", user="alice", session_id="s1", agent="bot")
    changed, _ = submit(
        store, clock, run="r1", user="alice", session_id="s1", agent="bot", fields={"outcome": "negative"}
    )
    assert changed.version == 2 and changed.created_at == first.created_at
    for query in (ListQuery(), ListQuery(user_id="alice"), ListQuery(session_id="s1")):
        assert store.list("acme", query, CODEC).items == [
            store.get("acme", "r2", "alice"),
            store.get("acme", "r1", "alice"),
        ]
    # The outcome is not in the indexes: its filter applies to the record read, never to a stale copy.
    assert [r.run_id for r in store.list("acme", ListQuery(outcome="negative"), CODEC).items] == ["r1"]
    assert [r.run_id for r in store.list("acme", ListQuery(outcome="positive"), CODEC).items] == ["r2"]


def test_a_listing_page_is_its_shard_queries_and_one_batch_read(
    feedback_tables: Any, clock: ManualClock, aws_calls: AwsCalls, dynamodb_client_factory: Any
) -> None:
    _, names = feedback_tables
    counted = make_store((dynamodb_client_factory(), names), clock)
    for number in range(8):
        submit(counted, clock, run=f"r{number}", user="alice")
    aws_calls.reset()
    page = counted.list("acme", ListQuery(limit=5), CODEC)
    assert [r.run_id for r in page.items] == ["r7", "r6", "r5", "r4", "r3"] and page.next_cursor
    assert aws_calls.operations() == {"dynamodb:Query": 4, "dynamodb:BatchGetItem": 1}
    aws_calls.reset()
    assert counted.erase_user("acme", "alice") == (8, True)
    # Erasure needs only keys: one index query, then the mark and the delete of each record.
    assert aws_calls.operations() == {"dynamodb:Query": 1, "dynamodb:UpdateItem": 8, "dynamodb:DeleteItem": 8}


class ThrottledBatchReads:
    """A real client whose BatchGetItem leaves all but the first key unprocessed the first `times`
    calls, as DynamoDB does under throttling; everything else goes straight to the client."""

    def __init__(self, client: Any, times: int) -> None:
        self._client = client
        self.times = times
        self.batch_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.batch_calls += 1
        if self.batch_calls > self.times:
            return dict(self._client.batch_get_item(RequestItems=RequestItems))
        ((table, request),) = RequestItems.items()
        served = self._client.batch_get_item(RequestItems={table: request | {"Keys": request["Keys"][:1]}})
        return {"Responses": served["Responses"], "UnprocessedKeys": {table: {"Keys": request["Keys"][1:]}}}


def test_unprocessed_keys_are_read_again_then_fail_as_a_throttle(
    feedback_tables: Any, clock: ManualClock
) -> None:
    client, names = feedback_tables
    writer = make_store(feedback_tables, clock)
    for number in range(7):
        submit(writer, clock, run=f"r{number}")
    throttled = ThrottledBatchReads(client, times=2)
    reader = make_store((throttled, names), clock)
    assert [r.run_id for r in reader.list("acme", ListQuery(), CODEC).items] == [
        f"r{n}" for n in range(6, -1, -1)
    ]
    assert throttled.batch_calls == 3  # one key served per throttled call, the last one the rest
    # Seven keys, one served per call: five tries are not enough.
    always = make_store((ThrottledBatchReads(client, times=99), names), clock)
    with pytest.raises(ClientError) as refused:
        always.list("acme", ListQuery(), CODEC)
    assert refused.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
