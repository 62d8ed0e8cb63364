"""DynamoDB idioms every table of the service shares: the value codec, conditional writes, record
expiry, paginated queries and stream images."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

Item = dict[str, Any]

LIVE_CONDITION = "(attribute_not_exists(#expires_at) OR #expires_at > :now_epoch)"
"""True of an item that has not expired; needs `live_placeholders`. TTL deletion lags by up to days, so
an expired item is treated as gone."""

DYNAMODB_NUMBERS = Context(
    Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)
"""DynamoDB's number range and precision (boto3's own context): a number it would round is refused."""


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
    return {key: attribute_value(to_dynamo(value)) for key, value in item.items()}


def deserialize(image: dict[str, Any]) -> Item:
    return {key: from_dynamo(plain_value(value)) for key, value in image.items()}


# The value codec follows boto3's TypeSerializer/TypeDeserializer (boto3.dynamodb.types), written here
# because importing any boto3 module imports all of boto3 (its resource layer, s3transfer and
# multiprocessing): botocore's clients are all the service uses, and boto3 would be a third of a cold
# start. Binary values come back as bytes.


def _number(value: int | Decimal) -> str:
    number = str(DYNAMODB_NUMBERS.create_decimal(value))
    if number in ("Infinity", "-Infinity", "NaN", "sNaN"):
        raise TypeError("Infinity and NaN not supported")
    return number


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def attribute_value(value: Any) -> AttributeValueTypeDef:
    """A Python value as a DynamoDB AttributeValue (None, bool, int/Decimal, str, bytes, sets of one of
    those kinds, mappings, lists and tuples); TypeError for anything else, floats included."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if _is_number(value):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Set):
        if all(_is_number(member) for member in value):
            return {"NS": [_number(member) for member in value]}
        if all(isinstance(member, str) for member in value):
            return {"SS": list(value)}
        if all(isinstance(member, bytes | bytearray) for member in value):
            return {"BS": [bytes(member) for member in value]}
    if isinstance(value, Mapping):
        return {"M": {key: attribute_value(member) for key, member in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [attribute_value(member) for member in value]}
    raise TypeError(f"Unsupported type {type(value)} for value {value!r}")


def plain_value(attribute: Mapping[str, Any]) -> Any:
    """A DynamoDB AttributeValue as a Python value; numbers are Decimals."""
    if not attribute:
        raise TypeError("Value must be a nonempty dictionary whose key is a valid dynamodb type.")
    kind, value = next(iter(attribute.items()))
    if kind == "NULL":
        return None
    if kind in ("S", "BOOL", "B"):
        return value
    if kind == "N":
        return DYNAMODB_NUMBERS.create_decimal(value)
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {DYNAMODB_NUMBERS.create_decimal(member) for member in value}
    if kind == "BS":
        return set(value)
    if kind == "M":
        return {key: plain_value(member) for key, member in value.items()}
    if kind == "L":
        return [plain_value(member) for member in value]
    raise TypeError(f"Dynamodb type {kind} is not supported")


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
