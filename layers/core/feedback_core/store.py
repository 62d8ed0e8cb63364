"""DynamoDB storage of feedback records: conditional writes and deletes, reads, and the listings over
the table and its indexes (item layout in `records`)."""

from __future__ import annotations

import heapq
import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from feedback_core.clock import Clock, iso_format, system_clock
from feedback_core.cursor import CursorCodec, query_scope
from feedback_core.dynamo import (
    BATCH_GET_MAX_KEYS,
    LIVE_CONDITION,
    Item,
    batch_get,
    deserialize,
    is_conditional_failure,
    is_live,
    item_at_refusal,
    live_placeholders,
    query_pages,
    refused_as,
    serialize,
    used_placeholders,
)
from feedback_core.errors import Conflict, Forbidden, NotFound, TooManyUpdates, ValidationFailed
from feedback_core.fields import ANONYMOUS, TokenBinding, window_refusal
from feedback_core.models import FeedbackPage, FeedbackRecord, ListQuery
from feedback_core.records import (
    LAST_WRITE,
    OWNER_BOUND,
    REMOVAL_ACTOR,
    SESSION_INDEX,
    TIME_INDEX,
    USER_INDEX,
    RecordWrite,
    RemovalActor,
    record_from_item,
    submission_write,
    table_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryInputTypeDef


def _owned_refusal() -> Forbidden:
    return Forbidden(
        "this feedback was given through a token bound to its user; "
        "a token with no user bound cannot read, change or retract it"
    )


class FeedbackStore:
    """All reads and writes of the Feedback table."""

    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        time_index_shards: int = 4,
        retention_days: int = 90,
        max_updates_per_record: int = 100,
        clock: Clock = system_clock,
    ) -> None:
        self._client = client
        self._table = table_name
        self._shards = time_index_shards
        self._retention_days = retention_days
        self._max_updates = max_updates_per_record
        self._clock = clock

    @property
    def table_name(self) -> str:
        return self._table

    # ---- writes -----------------------------------------------------------------------------------------

    def submit(
        self,
        *,
        project: str,
        run_id: str,
        user_id: str,
        fields: Item,
        session_id: str | None = None,
        agent: str | None = None,
        context: dict[str, Any] | None = None,
        expected_version: int | None = None,
        binding: TokenBinding | None = None,
        unchanged: frozenset[str] = frozenset(),
    ) -> tuple[FeedbackRecord, bool]:
        """Creates or updates the record with one conditional UpdateItem. Returns (record, created).

        `binding`: a write through a token bound to the user makes the record that user's own; one
        through a token with no user bound is refused on an owned record (Forbidden); None (API-key and
        service writes) neither claims nor is refused. `unchanged`: see `submission_write`.
        """
        now = self._clock()
        write = submission_write(
            project=project,
            run_id=run_id,
            user_id=user_id,
            fields=fields,
            session_id=session_id,
            agent=agent,
            context=context,
            now=now,
            time_index_shards=self._shards,
            retention_days=self._retention_days,
            unchanged=unchanged,
        )
        if binding == "bound" and user_id != ANONYMOUS:
            write.sets[OWNER_BOUND] = True  # the shared anonymous record never becomes anyone's own
        write_id = write.sets[LAST_WRITE] = str(uuid.uuid4())
        expression, names, values = write.expression()
        live_names, live_values = live_placeholders(now)
        names |= {"#pk": "pk"} | live_names
        values |= {":cap": self._max_updates} | live_values
        if expected_version is None:
            condition = f"attribute_not_exists(#pk) OR (#version < :cap AND {LIVE_CONDITION})"
        elif expected_version == 0:
            condition = "attribute_not_exists(#pk)"
        else:
            values[":expected"] = expected_version
            condition = f"#version = :expected AND #version < :cap AND {LIVE_CONDITION}"
        if binding == "unbound":
            names["#owner_bound"] = OWNER_BOUND
            condition = f"({condition}) AND attribute_not_exists(#owner_bound)"
        names["#last_write"], values[":last_write"] = LAST_WRITE, write_id
        condition = f"({condition}) AND (attribute_not_exists(#last_write) OR #last_write <> :last_write)"
        names = used_placeholders(names, expression, condition)
        values = used_placeholders(values, expression, condition)
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=serialize(table_key(project, run_id, user_id)),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=serialize(values),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            old = item_at_refusal(error)
            if old is not None and old.get(LAST_WRITE) == write_id:
                # An earlier attempt of this very request wrote it; its answer was lost.
                return record_from_item(old), old.get("feedback_id") == write.defaults["feedback_id"]
            return self._after_refusal(write, old, expected_version, now, binding), True
        old = deserialize(response.get("Attributes", {})) or None
        return record_from_item(write.apply(old)), old is None

    def _after_refusal(
        self,
        write: RecordWrite,
        old: Item | None,
        expected_version: int | None,
        now: float,
        binding: TokenBinding | None,
    ) -> FeedbackRecord:
        """Explains a failed submit condition, or replaces an expired record that TTL has not removed yet.
        Ownership is told first, so a caller refused for it learns nothing about the record's version."""
        if old is None:
            raise Conflict(f"no feedback exists at version {expected_version}")
        if "version" not in old:
            raise Conflict("feedback is being written concurrently; try again")
        if not is_live(old, now):
            if expected_version not in (None, 0):
                raise Conflict(f"no feedback exists at version {expected_version}")
            return self._replace_expired(write, old, now)
        if binding == "unbound" and old.get(OWNER_BOUND):
            raise _owned_refusal()
        version = int(old.get("version", 0))
        if expected_version is not None and version != expected_version:
            raise Conflict(
                f"feedback is at version {version}, not {expected_version}",
                details=[{"field": "version", "message": f"current version is {version}"}],
            )
        if version < self._max_updates:
            raise Conflict("feedback changed concurrently; try again")
        retry = {}
        if old.get("expires_at"):
            retry["Retry-After"] = str(max(1, int(old["expires_at"]) - int(now)))
        raise TooManyUpdates(
            f"this feedback was already changed {version} times, the most allowed; retract it to start over",
            headers=retry,
        )

    def _replace_expired(self, write: RecordWrite, old: Item, now: float) -> FeedbackRecord:
        item = write.apply(None)
        with refused_as(Conflict("feedback changed concurrently; try again")):
            self._client.put_item(
                TableName=self._table,
                Item=serialize(item | table_key(item["project"], item["run_id"], item["user_id"])),
                ConditionExpression="#expires_at = :old_expiry",
                ExpressionAttributeNames={"#expires_at": "expires_at"},
                ExpressionAttributeValues=serialize({":old_expiry": old["expires_at"]}),
            )
        return record_from_item(item)

    def retract(
        self, project: str, run_id: str, user_id: str, binding: TokenBinding | None = None
    ) -> FeedbackRecord:
        """The user takes their feedback back (one conditional DeleteItem); through a token with no user
        bound, only if no bound token has written the record (else Forbidden)."""
        old = self._delete(project, run_id, user_id, live_only=True, unowned_only=binding == "unbound")
        if old is None:
            raise NotFound("no feedback to retract")
        return record_from_item(old)

    def remove(self, project: str, run_id: str, user_id: str, actor: RemovalActor) -> FeedbackRecord:
        """An administrator removes a record: mark who removes it, then delete it."""
        with refused_as(NotFound("no such feedback")):
            self._client.update_item(
                TableName=self._table,
                Key=serialize(table_key(project, run_id, user_id)),
                UpdateExpression="SET #actor = :actor",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#actor": REMOVAL_ACTOR},
                ExpressionAttributeValues=serialize({":actor": actor}),
            )
        old = self._delete(project, run_id, user_id, live_only=False)
        if old is None:
            raise NotFound("no such feedback")
        return record_from_item(old)

    def _delete(
        self, project: str, run_id: str, user_id: str, *, live_only: bool, unowned_only: bool = False
    ) -> Item | None:
        """Deletes the item if the conditions hold; None if there is nothing (live) to delete."""
        now = self._clock()
        condition = "attribute_exists(pk)"
        placeholders: dict[str, Any] = {}
        if live_only:
            condition += f" AND {LIVE_CONDITION}"
            names, values = live_placeholders(now)
            placeholders = {"ExpressionAttributeNames": names, "ExpressionAttributeValues": serialize(values)}
        if unowned_only:
            condition += f" AND attribute_not_exists({OWNER_BOUND})"
        try:
            response = self._client.delete_item(
                TableName=self._table,
                Key=serialize(table_key(project, run_id, user_id)),
                ConditionExpression=condition,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **placeholders,
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            old = item_at_refusal(error)
            if unowned_only and old is not None and is_live(old, now) and old.get(OWNER_BOUND):
                raise _owned_refusal() from error
            return None
        return deserialize(response.get("Attributes", {}))

    def erase_user(
        self, project: str, user_id: str, out_of_time: Callable[[], bool] = lambda: False
    ) -> tuple[int, bool]:
        """Deletes the records of one named user in the project until none is left or `out_of_time()`
        says to stop. Returns (how many were deleted, whether none is left)."""
        if user_id == ANONYMOUS:
            raise ValidationFailed(
                "anonymous feedback is not linked to a person and cannot be erased by user",
                details=[{"field": "user_id", "message": "must name a user"}],
            )
        pages = query_pages(
            self._client,
            {
                "TableName": self._table,
                "IndexName": USER_INDEX,
                "KeyConditionExpression": "user_pk = :user_pk",
                "ExpressionAttributeValues": serialize({":user_pk": f"{project}#{user_id}"}),
            },
        )
        deleted = 0
        for entry in pages:  # the index holds keys only: the run is the table key's part after the project
            if out_of_time():
                return deleted, False
            try:
                self.remove(project, str(entry["pk"]).removeprefix(f"{project}#"), user_id, "erasure")
            except NotFound:
                continue  # removed meanwhile by someone else: nothing left to erase
            deleted += 1
        return deleted, True

    # ---- reads ------------------------------------------------------------------------------------------

    def get(
        self, project: str, run_id: str, user_id: str, binding: TokenBinding | None = None
    ) -> FeedbackRecord | None:
        """The live record, or None; through a token with no user bound, Forbidden on an owned record."""
        response = self._client.get_item(
            TableName=self._table, Key=serialize(table_key(project, run_id, user_id)), ConsistentRead=True
        )
        item = deserialize(response.get("Item", {}))
        if not item or not is_live(item, self._clock()):
            return None
        if binding == "unbound" and item.get(OWNER_BOUND):
            raise _owned_refusal()
        return record_from_item(item)

    def list_run(
        self, project: str, run_id: str, limit: int, cursor: str | None, codec: CursorCodec
    ) -> FeedbackPage:
        """Every user's feedback on one run, by user id."""
        scope = query_scope(kind="run", project=project, run_id=run_id)
        request: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": serialize({":pk": f"{project}#{run_id}"}),
            "Limit": limit + 1,
        }
        if cursor is not None:  # an empty cursor is no cursor of ours: 400 like any other
            after = codec.decode(cursor, scope).get("after")
            if not isinstance(after, str):
                raise ValidationFailed("cursor does not belong to this listing")
            request["ExclusiveStartKey"] = serialize(table_key(project, run_id, after))
        now = self._clock()
        items = (item for item in query_pages(self._client, request) if is_live(item, now))
        return self._page(items, limit, lambda last: codec.encode(scope, {"after": last["sk"]}))

    def list(self, project: str, query: ListQuery, codec: CursorCodec) -> FeedbackPage:
        """Feedback of the project, newest created first, across the shards of the chosen index."""
        # start and end as the time_sk prefixes they compare with (end is exclusive: "…Z" < "…Z#id").
        low = iso_format(query.start) if query.start else None
        high = iso_format(query.end) if query.end else None
        if low and high and low >= high:
            raise window_refusal("must be before end")
        filters_in_scope = query.model_dump(mode="json", exclude={"cursor", "limit"})
        scope = query_scope(kind="list", project=project, **filters_in_scope)
        before = None
        if query.cursor is not None:
            before = codec.decode(query.cursor, scope).get("before")
            if not isinstance(before, str):
                raise ValidationFailed("cursor does not belong to this listing")
            high = min(high, before) if high else before
        filters: Item = {"outcome": query.outcome, "agent": query.agent, "source": query.source}
        if query.user_id and query.user_id != ANONYMOUS:
            partitions = [(USER_INDEX, "user_pk", f"{project}#{query.user_id}")]
            filters["session_id"] = query.session_id
        elif query.session_id:
            partitions = [(SESSION_INDEX, "session_pk", f"{project}#{query.session_id}")]
            filters["user_id"] = query.user_id
        else:
            partitions = [(TIME_INDEX, "time_pk", f"{project}#{shard}") for shard in range(self._shards)]
            filters["user_id"] = query.user_id
        streams = [
            self._index_stream(
                index=index, key_name=key, key_value=value, low=low, high=high, limit=query.limit
            )
            for index, key, value in partitions
        ]
        merged = heapq.merge(*streams, key=lambda entry: str(entry["time_sk"]), reverse=True)
        entries = (entry for entry in merged if entry["time_sk"] != before)
        items = self._records_of(entries, filters, chunk=min(query.limit + 1, BATCH_GET_MAX_KEYS))
        return self._page(items, query.limit, lambda last: codec.encode(scope, {"before": last["time_sk"]}))

    def _index_stream(
        self, *, index: str, key_name: str, key_value: str, low: str | None, high: str | None, limit: int
    ) -> Iterator[Item]:
        """One index partition's entries (keys only), newest first, within [low, high]."""
        values: Item = {":key": key_value}
        names = {"#key": key_name, "#sk": "time_sk"}
        condition = "#key = :key"
        if low and high:
            condition += " AND #sk BETWEEN :low AND :high"
            values |= {":low": low, ":high": high}
        elif high:
            condition += " AND #sk <= :high"
            values[":high"] = high
        elif low:
            condition += " AND #sk >= :low"
            values[":low"] = low
        return query_pages(
            self._client,
            {
                "TableName": self._table,
                "IndexName": index,
                "KeyConditionExpression": condition,
                "ExpressionAttributeNames": used_placeholders(names, condition),
                "ExpressionAttributeValues": serialize(values),
                "ScanIndexForward": False,
                "Limit": limit + 1,
            },
        )

    def _records_of(self, entries: Iterator[Item], filters: Item, chunk: int) -> Iterator[Item]:
        """The records behind index entries, in the entries' order, read `chunk` at a time with
        BatchGetItem (the indexes project keys only, so that an update writes only the table); the
        listing's filters and expiry apply to the records read, current ones (strongly consistent). An
        entry whose record is gone, or was replaced by a newer one (another `time_sk`, listed under its
        own entry), yields nothing."""
        wanted = {name: value for name, value in filters.items() if value is not None}
        now = self._clock()
        while batch := list(itertools.islice(entries, chunk)):
            found = batch_get(self._client, self._table, [{"pk": e["pk"], "sk": e["sk"]} for e in batch])
            for entry in batch:
                item = found.get((str(entry["pk"]), str(entry["sk"])))
                if (
                    item is not None
                    and item.get("time_sk") == entry["time_sk"]
                    and is_live(item, now)
                    and all(item.get(name) == value for name, value in wanted.items())
                ):
                    yield item

    @staticmethod
    def _page(items: Iterable[Item], limit: int, cursor_for: Callable[[Item], str]) -> FeedbackPage:
        """Takes limit + 1 items, lazily: the extra one only says that another page exists."""
        taken = list(itertools.islice(items, limit + 1))
        page = taken[:limit]
        next_cursor = cursor_for(page[-1]) if len(taken) > limit else None
        return FeedbackPage(items=[record_from_item(item) for item in page], next_cursor=next_cursor)
