"""DynamoDB storage of feedback records.

Key schema (see docs/ARCHITECTURE.md):
- table: pk = "<project>#<run_id>", sk = "<user_id>" — one record per run and user;
- time-index: time_pk = "<project>#<shard>", time_sk = "<created_at>#<feedback_id>";
- session-index (sparse): session_pk = "<project>#<session_id>", time_sk;
- user-index (sparse, named users only): user_pk = "<project>#<user_id>", time_sk.
Every index sorts by time_sk, which is unique, so one kind of cursor serves every listing.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from feedback_core.clock import Clock, iso_format, iso_timestamp, system_clock
from feedback_core.cursor import CursorCodec, query_scope
from feedback_core.errors import Conflict, Forbidden, NotFound, TooManyUpdates, ValidationFailed
from feedback_core.models import (
    ANONYMOUS,
    FeedbackPage,
    FeedbackRecord,
    ListQuery,
    TokenBinding,
    window_refusal,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

TIME_INDEX = "time-index"
SESSION_INDEX = "session-index"
USER_INDEX = "user-index"
REMOVAL_ACTOR = "removal_actor"
"""Set just before an admin delete or an erasure, so the stream's REMOVE says who removed the record."""
OWNER_BOUND = "owner_bound"
"""True once a token bound to the record's user has written it: from then on tokens with no user bound are
refused (403). Part of the write and delete conditions, so the check and the write are one atomic step."""
INTERNAL_ATTRIBUTES = ("pk", "sk", "time_pk", "time_sk", "session_pk", "user_pk", REMOVAL_ACTOR, OWNER_BOUND)
"""Stored for keys, indexes and bookkeeping; never part of a record in a response, an event or the stats."""
DEFAULTS: dict[str, Any] = {"weight": 1.0, "source": "web"}
SECONDS_PER_DAY = 86400

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]
RemovalActor = Literal["admin", "erasure"]


def to_dynamo(value: Any) -> Any:
    """Plain values to what boto3's serializer accepts: floats become exact Decimals, recursively."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: to_dynamo(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(item) for item in value]
    return value


def from_dynamo(value: Any) -> Any:
    """Decimals back to int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: from_dynamo(item) for key, item in value.items()}
    if isinstance(value, list | set):
        return [from_dynamo(item) for item in value]
    return value


def serialize(item: Item) -> dict[str, AttributeValueTypeDef]:
    return {key: _serializer.serialize(to_dynamo(value)) for key, value in item.items()}


def deserialize(image: dict[str, Any]) -> Item:
    return {key: from_dynamo(_deserializer.deserialize(value)) for key, value in image.items()}


def record_from_item(item: Item) -> FeedbackRecord:
    return FeedbackRecord.model_validate({k: v for k, v in item.items() if k not in INTERNAL_ATTRIBUTES})


def table_key(project: str, run_id: str, user_id: str) -> Item:
    return {"pk": f"{project}#{run_id}", "sk": user_id}


def time_shard(run_id: str, shards: int) -> int:
    """Spreads the time index over `shards` partitions by run, stable across processes."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big") % shards


def _used(placeholders: dict[str, Any], *expressions: str) -> dict[str, Any]:
    """Only the placeholders the expressions use: DynamoDB refuses unused ones."""
    tokens = set(re.findall(r"[#:][A-Za-z0-9_]+", " ".join(expressions)))
    return {name: value for name, value in placeholders.items() if name in tokens}


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _item_at_refusal(error: ClientError) -> Item | None:
    """The item a refused conditional write saw (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""
    return deserialize(dict(error.response.get("Item", {}))) or None  # type: ignore[call-overload]


def _owned_refusal() -> Forbidden:
    return Forbidden(
        "this feedback was given through a token bound to its user; "
        "a token with no user bound cannot read, change or retract it"
    )


@dataclass
class _Write:
    """One submit as data: the update expression and the resulting item both derive from it."""

    sets: Item = field(default_factory=dict)
    defaults: Item = field(default_factory=dict)
    """Set only when absent (if_not_exists)."""
    removes: set[str] = field(default_factory=set)

    def expression(self) -> tuple[str, dict[str, str], dict[str, Any]]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {":one": 1, ":zero": 0}
        clauses = []
        for index, (name, value) in enumerate(sorted(self.sets.items())):
            names[f"#s{index}"] = name
            values[f":s{index}"] = value
            clauses.append(f"#s{index} = :s{index}")
        for index, (name, value) in enumerate(sorted(self.defaults.items())):
            names[f"#d{index}"] = name
            values[f":d{index}"] = value
            clauses.append(f"#d{index} = if_not_exists(#d{index}, :d{index})")
        names["#version"] = "version"
        clauses.append("#version = if_not_exists(#version, :zero) + :one")
        expression = "SET " + ", ".join(clauses)
        if self.removes:
            for index, name in enumerate(sorted(self.removes)):
                names[f"#r{index}"] = name
            expression += " REMOVE " + ", ".join(f"#r{index}" for index in range(len(self.removes)))
        return expression, names, values

    def apply(self, old: Item | None) -> Item:
        """The item as DynamoDB holds it after this write, numbers as a read returns them
        (an integral float such as ``2.0`` or ``5.7e16`` reads back as an int)."""
        item = dict(old or {})
        for name in self.removes:
            item.pop(name, None)
        for name, value in self.defaults.items():
            item.setdefault(name, value)
        item.update(from_dynamo(to_dynamo(self.sets)))
        item["version"] = int((old or {}).get("version", 0)) + 1
        return item


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
    ) -> tuple[FeedbackRecord, bool]:
        """Creates or updates the record with one conditional UpdateItem. Returns (record, created).

        `binding`: a write through a token bound to the user makes the record that user's own; one
        through a token with no user bound is refused on an owned record (Forbidden); None (API-key and
        service writes) neither claims nor is refused.
        """
        now = self._clock()
        write = self._write_for(
            project=project,
            run_id=run_id,
            user_id=user_id,
            fields=fields,
            session_id=session_id,
            agent=agent,
            context=context,
            now=now,
        )
        if binding == "bound" and user_id != ANONYMOUS:
            write.sets[OWNER_BOUND] = True  # the shared anonymous record never becomes anyone's own
        expression, names, values = write.expression()
        names |= {"#pk": "pk", "#expires_at": "expires_at"}
        values |= {":cap": self._max_updates, ":now_epoch": int(now)}
        live = "(attribute_not_exists(#expires_at) OR #expires_at > :now_epoch)"
        if expected_version is None:
            condition = f"attribute_not_exists(#pk) OR (#version < :cap AND {live})"
        elif expected_version == 0:
            condition = "attribute_not_exists(#pk)"
        else:
            values[":expected"] = expected_version
            condition = f"#version = :expected AND #version < :cap AND {live}"
        if binding == "unbound":
            names["#owner_bound"] = OWNER_BOUND
            condition = f"({condition}) AND attribute_not_exists(#owner_bound)"
        names, values = _used(names, expression, condition), _used(values, expression, condition)
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
            if not _is_conditional_failure(error):
                raise
            old = _item_at_refusal(error)
            return self._after_refusal(write, old, expected_version, now, binding), True
        old = deserialize(response.get("Attributes", {})) or None
        return record_from_item(write.apply(old)), old is None

    def _write_for(
        self,
        *,
        project: str,
        run_id: str,
        user_id: str,
        fields: Item,
        session_id: str | None,
        agent: str | None,
        context: dict[str, Any] | None,
        now: float,
    ) -> _Write:
        timestamp = iso_timestamp(now)
        feedback_id = str(uuid.uuid4())
        write = _Write(
            sets={
                "project": project,
                "run_id": run_id,
                "user_id": user_id,
                "updated_at": timestamp,
                "time_pk": f"{project}#{time_shard(run_id, self._shards)}",
            },
            defaults={
                "created_at": timestamp,
                "feedback_id": feedback_id,
                "time_sk": f"{timestamp}#{feedback_id}",
            },
        )
        optional: Item = {
            "session_id": session_id,
            "agent": agent,
            "context": context or None,
            "session_pk": f"{project}#{session_id}" if session_id else None,
            "user_pk": f"{project}#{user_id}" if user_id != ANONYMOUS else None,
            "expires_at": int(now) + self._retention_days * SECONDS_PER_DAY if self._retention_days else None,
        }
        for name, value in optional.items():
            if value is None:
                write.removes.add(name)
            else:
                write.sets[name] = value
        for name, value in fields.items():
            if value is not None:
                write.sets[name] = value
            elif name in DEFAULTS:
                write.sets[name] = DEFAULTS[name]
            else:
                write.removes.add(name)
        for name, value in DEFAULTS.items():
            if name not in fields:
                write.defaults[name] = value
        return write

    def _after_refusal(
        self,
        write: _Write,
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
        if not self._is_live(old, now):
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

    def _replace_expired(self, write: _Write, old: Item, now: float) -> FeedbackRecord:
        item = write.apply(None)
        try:
            self._client.put_item(
                TableName=self._table,
                Item=serialize(item | table_key(item["project"], item["run_id"], item["user_id"])),
                ConditionExpression="#expires_at = :old_expiry",
                ExpressionAttributeNames={"#expires_at": "expires_at"},
                ExpressionAttributeValues=serialize({":old_expiry": old["expires_at"]}),
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                raise Conflict("feedback changed concurrently; try again") from error
            raise
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
        key = serialize(table_key(project, run_id, user_id))
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET #actor = :actor",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#actor": REMOVAL_ACTOR},
                ExpressionAttributeValues=serialize({":actor": actor}),
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                raise NotFound("no such feedback") from error
            raise
        old = self._delete(project, run_id, user_id, live_only=False)
        if old is None:
            raise NotFound("no such feedback")
        return record_from_item(old)

    def _delete(
        self, project: str, run_id: str, user_id: str, *, live_only: bool, unowned_only: bool = False
    ) -> Item | None:
        """Deletes the item if the conditions hold; None if there is nothing (live) to delete."""
        now = int(self._clock())
        condition = "attribute_exists(pk)"
        values: Item = {}
        if live_only:
            condition += " AND (attribute_not_exists(expires_at) OR expires_at > :now_epoch)"
            values[":now_epoch"] = now
        if unowned_only:
            condition += f" AND attribute_not_exists({OWNER_BOUND})"
        try:
            response = self._client.delete_item(
                TableName=self._table,
                Key=serialize(table_key(project, run_id, user_id)),
                ConditionExpression=condition,
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **({"ExpressionAttributeValues": serialize(values)} if values else {}),  # type: ignore[arg-type]
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            old = _item_at_refusal(error)
            if unowned_only and old is not None and self._is_live(old, now) and old.get(OWNER_BOUND):
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
        pages = self._pages(
            {
                "TableName": self._table,
                "IndexName": USER_INDEX,
                "KeyConditionExpression": "user_pk = :user_pk",
                "ExpressionAttributeValues": serialize({":user_pk": f"{project}#{user_id}"}),
                "ProjectionExpression": "run_id",
            }
        )
        deleted = 0
        for item in pages:
            if out_of_time():
                return deleted, False
            try:
                self.remove(project, item["run_id"], user_id, "erasure")
            except NotFound:
                continue  # removed meanwhile by someone else: nothing left to erase
            deleted += 1
        return deleted, True

    # ---- reads ------------------------------------------------------------------------------------------

    def _is_live(self, item: Item, now: float | None = None) -> bool:
        """TTL deletion lags by up to days, so an expired item is treated as gone."""
        expires = item.get("expires_at")
        return expires is None or int(expires) > int(self._clock() if now is None else now)

    def get(
        self, project: str, run_id: str, user_id: str, binding: TokenBinding | None = None
    ) -> FeedbackRecord | None:
        """The live record, or None; through a token with no user bound, Forbidden on an owned record."""
        response = self._client.get_item(
            TableName=self._table, Key=serialize(table_key(project, run_id, user_id)), ConsistentRead=True
        )
        item = deserialize(response.get("Item", {}))
        if not item or not self._is_live(item):
            return None
        if binding == "unbound" and item.get(OWNER_BOUND):
            raise _owned_refusal()
        return record_from_item(item)

    def _pages(self, request: QueryInputTypeDef) -> Iterator[Item]:
        """Items of a query, page after page, lazily."""
        while True:
            response = self._client.query(**request)
            for image in response.get("Items", []):
                yield deserialize(image)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request = {**request, "ExclusiveStartKey": last}

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
        items = (item for item in self._pages(request) if self._is_live(item))
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
                index=index,
                key_name=key,
                key_value=value,
                low=low,
                high=high,
                filters=filters,
                limit=query.limit,
            )
            for index, key, value in partitions
        ]
        merged = heapq.merge(*streams, key=lambda item: str(item["time_sk"]), reverse=True)
        items = (item for item in merged if item["time_sk"] != before)
        return self._page(items, query.limit, lambda last: codec.encode(scope, {"before": last["time_sk"]}))

    def _index_stream(
        self,
        *,
        index: str,
        key_name: str,
        key_value: str,
        low: str | None,
        high: str | None,
        filters: Item,
        limit: int,
    ) -> Iterator[Item]:
        values: Item = {":key": key_value, ":now_epoch": int(self._clock())}
        names = {"#key": key_name, "#sk": "time_sk", "#expires_at": "expires_at"}
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
        filter_parts = ["(attribute_not_exists(#expires_at) OR #expires_at > :now_epoch)"]
        for index_no, (name, value) in enumerate(sorted(filters.items())):
            if value is not None:
                names[f"#f{index_no}"] = name
                values[f":f{index_no}"] = value
                filter_parts.append(f"#f{index_no} = :f{index_no}")
        filter_expression = " AND ".join(filter_parts)
        return self._pages(
            {
                "TableName": self._table,
                "IndexName": index,
                "KeyConditionExpression": condition,
                "FilterExpression": filter_expression,
                "ExpressionAttributeNames": _used(names, condition, filter_expression),
                "ExpressionAttributeValues": serialize(_used(values, condition, filter_expression)),
                "ScanIndexForward": False,
                "Limit": limit + 1,
            }
        )

    @staticmethod
    def _page(items: Iterable[Item], limit: int, cursor_for: Callable[[Item], str]) -> FeedbackPage:
        """Takes limit + 1 items, lazily: the extra one only says that another page exists."""
        taken = list(itertools.islice(items, limit + 1))
        page = taken[:limit]
        next_cursor = cursor_for(page[-1]) if len(taken) > limit else None
        return FeedbackPage(items=[record_from_item(item) for item in page], next_cursor=next_cursor)
