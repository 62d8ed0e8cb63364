"""DynamoDB idioms every table of the service shares: the value codec, conditional writes, record
expiry, paginated queries and stream images."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

Item = dict[str, Any]

LIVE_CONDITION = "(attribute_not_exists(#expires_at) OR #expires_at > :now_epoch)"
"""True of an item that has not expired; needs `live_placeholders`. TTL deletion lags by up to days, so
an expired item is treated as gone."""

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


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


def stream_images(record: DynamoDBStreamRecordModel) -> tuple[Item | None, Item | None]:
    """(old, new) item of a stream record as plain values (ints, floats), None where absent."""
    old, new = record.dynamodb.OldImage, record.dynamodb.NewImage
    return (
        from_dynamo(old) if isinstance(old, dict) and old else None,
        from_dynamo(new) if isinstance(new, dict) and new else None,
    )


def used_placeholders(placeholders: dict[str, Any], *expressions: str) -> dict[str, Any]:
    """Only the placeholders the expressions use: DynamoDB refuses unused ones."""
    tokens = set(re.findall(r"[#:][A-Za-z0-9_]+", " ".join(expressions)))
    return {name: value for name, value in placeholders.items() if name in tokens}


def live_placeholders(now: float) -> tuple[dict[str, str], Item]:
    """The names and values `LIVE_CONDITION` uses, at `now` (epoch seconds)."""
    return {"#expires_at": "expires_at"}, {":now_epoch": int(now)}


def is_live(item: Item, now: float) -> bool:
    """`LIVE_CONDITION`, for an item already read."""
    expires = item.get("expires_at")
    return expires is None or int(expires) > int(now)


def is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def item_at_refusal(error: ClientError) -> Item | None:
    """The item a refused conditional write saw (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""
    return deserialize(dict(error.response.get("Item", {}))) or None  # type: ignore[call-overload]


@contextmanager
def refused_as(refusal: Exception) -> Iterator[None]:
    """Raises `refusal` instead of a failed write condition; any other error goes through."""
    try:
        yield
    except ClientError as error:
        if is_conditional_failure(error):
            raise refusal from error
        raise


def query_pages(client: DynamoDBClient, request: QueryInputTypeDef) -> Iterator[Item]:
    """Items of a query, page after page, lazily."""
    while True:
        response = client.query(**request)
        for image in response.get("Items", []):
            yield deserialize(image)
        last = response.get("LastEvaluatedKey")
        if not last:
            return
        request = {**request, "ExclusiveStartKey": last}


BATCH_GET_MAX_KEYS = 100
"""BatchGetItem takes at most 100 keys a call."""


def batch_get(
    client: DynamoDBClient,
    table: str,
    keys: Sequence[Item],
    *,
    max_attempts: int = 5,
    base_delay_seconds: float = 0.05,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[tuple[str, str], Item]:
    """The items at `keys` (pk and sk) that exist, by (pk, sk), read strongly consistent: an item an index
    already lists is never missed for a lagging replica. Keys DynamoDB returns unprocessed (throttled)
    are asked again with exponential backoff; still unread after `max_attempts`, they fail the call as a
    throttle, like any other."""
    found: dict[tuple[str, str], Item] = {}
    for start in range(0, len(keys), BATCH_GET_MAX_KEYS):
        pending: list[Any] = [serialize(key) for key in keys[start : start + BATCH_GET_MAX_KEYS]]
        for attempt in range(max_attempts):
            if attempt:
                sleep(base_delay_seconds * 2 ** (attempt - 1))
            response = client.batch_get_item(RequestItems={table: {"Keys": pending, "ConsistentRead": True}})
            for image in response.get("Responses", {}).get(table, []):
                item = deserialize(image)
                found[(str(item["pk"]), str(item["sk"]))] = item
            unprocessed = response.get("UnprocessedKeys", {}).get(table)
            pending = list(unprocessed["Keys"]) if unprocessed else []
            if not pending:
                break
        else:
            message = f"{len(pending)} keys of {table} still unprocessed after {max_attempts} tries"
            code = "ProvisionedThroughputExceededException"
            raise ClientError({"Error": {"Code": code, "Message": message}}, "BatchGetItem")
    return found
