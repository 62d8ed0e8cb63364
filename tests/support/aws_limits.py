"""AWS's request limits, enforced on every boto3 call a test makes: moto and DynamoDB Local accept what AWS
rejects (a 5 KB KMS message, a 1 MB PutEvents, a 39-digit number), so each call goes through ``check``
first, which raises the ``ClientError`` AWS would (each limit cites its AWS page). Faults AWS produces
under load (a ``TransactionConflict``) can be injected with ``StrictAws.inject``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import botocore.client
from botocore.exceptions import ClientError

KMS_MAX_RAW_MESSAGE = 4096
"""https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html (Message: up to 4096 bytes)."""
EVENTS_MAX_ENTRIES = 10
EVENTS_MAX_REQUEST_BYTES = 256 * 1024
"""https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html and
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html (entry size formula)."""
SNS_MAX_BATCH_ENTRIES = 10
SNS_MAX_PAYLOAD_BYTES = 256 * 1024
"""https://docs.aws.amazon.com/sns/latest/api/API_PublishBatch.html (10 entries; 262,144 bytes in all)."""
DYNAMODB_MAX_TRANSACTION_ITEMS = 100
DYNAMODB_MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
"""https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html"""
DYNAMODB_MAX_ITEM_BYTES = 400 * 1024
DYNAMODB_MAX_NUMBER_DIGITS = 38
"""https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html (item size 400 KB;
numbers: up to 38 digits of precision, magnitude 1E-130 to 9.99E+125)."""
LAMBDA_MAX_RESPONSE_BYTES = 6 * 1024 * 1024
"""https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html (synchronous response 6 MB)."""


Refusal = tuple[str, str]
"""An AWS error code and message."""


def _refuse(operation: str, code: str, message: str, extra: Mapping[str, Any] | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}, **(extra or {})}
    return ClientError(response, operation)  # type: ignore[arg-type]


def _too_long(member: str, limit: int) -> Refusal:
    return "ValidationException", (
        f"1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must have "
        f"length less than or equal to {limit}"
    )


def _utf8(value: Any) -> int:
    return len(str(value).encode("utf-8", "surrogatepass"))


def dynamodb_value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one AttributeValue (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
    CapacityUnitCalculations.html): strings their UTF-8 length, numbers about one byte per two significant
    digits plus one, binary its length, null and booleans one byte, lists and maps 3 bytes plus one per
    element plus the elements."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return _utf8(inner)
    if kind == "N":
        return (len(_significant_digits(inner)) + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("NULL", "BOOL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(dynamodb_value_size({kind[0]: item}) for item in inner)
    if kind == "L":
        return 3 + sum(1 + dynamodb_value_size(item) for item in inner)
    if kind == "M":
        return 3 + sum(1 + _utf8(name) + dynamodb_value_size(item) for name, item in inner.items())
    return 0


def dynamodb_item_size(item: Mapping[str, Any]) -> int:
    return sum(_utf8(name) + dynamodb_value_size(value) for name, value in item.items())


def _significant_digits(number: str) -> str:
    """The digits that carry precision: no leading or trailing zeros (exact, no rounding context)."""
    digits = "".join(str(digit) for digit in Decimal(number).as_tuple().digits)
    return digits.strip("0") or "0"


def _numbers(value: Any) -> Iterator[str]:
    """Every N (and NS member) inside AttributeValues, however deeply nested."""
    if isinstance(value, Mapping):
        for kind, inner in value.items():
            if kind == "N" and isinstance(inner, str):
                yield inner
            elif kind == "NS" and isinstance(inner, list):
                yield from inner
            else:
                yield from _numbers(inner)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def event_entry_size(entry: Mapping[str, Any]) -> int:
    """PutEvents entry size: 14 bytes for Time if given, plus the UTF-8 bytes of Source, DetailType,
    Detail and each Resource (https://docs.aws.amazon.com/eventbridge/latest/userguide/
    eb-putevent-size.html)."""
    size = 14 if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        if entry.get(name) is not None:
            size += _utf8(entry[name])
    return size + sum(_utf8(resource) for resource in entry.get("Resources", []))


def sns_message_size(entry: Mapping[str, Any]) -> int:
    """Message bytes plus each attribute's name, type and value bytes (the SNS payload size)."""
    size = _utf8(entry.get("Message", ""))
    for name, attribute in (entry.get("MessageAttributes") or {}).items():
        value = attribute.get("StringValue") or attribute.get("BinaryValue") or ""
        size += (
            _utf8(name)
            + _utf8(attribute.get("DataType", ""))
            + (len(value) if isinstance(value, bytes) else _utf8(value))
        )
    return size


def _kms_sign(params: Mapping[str, Any]) -> Refusal | None:
    message = params.get("Message", b"")
    if params.get("MessageType", "RAW") == "RAW" and len(message) > KMS_MAX_RAW_MESSAGE:
        return _too_long("message", KMS_MAX_RAW_MESSAGE)
    return None


def _put_events(params: Mapping[str, Any]) -> Refusal | None:
    entries = params.get("Entries", [])
    if len(entries) > EVENTS_MAX_ENTRIES:
        return _too_long("entries", EVENTS_MAX_ENTRIES)
    if sum(event_entry_size(entry) for entry in entries) > EVENTS_MAX_REQUEST_BYTES:
        return "ValidationException", "Total size of the entries in the request is over the limit."
    return None


def _publish_batch(params: Mapping[str, Any]) -> Refusal | None:
    entries = params.get("PublishBatchRequestEntries", [])
    if len(entries) > SNS_MAX_BATCH_ENTRIES:
        return "TooManyEntriesInBatchRequest", "The batch request contains more entries than permissible."
    if sum(sns_message_size(entry) for entry in entries) > SNS_MAX_PAYLOAD_BYTES:
        return "BatchRequestTooLong", "The length of all the messages put together is more than the limit."
    return None


def _publish(params: Mapping[str, Any]) -> Refusal | None:
    if sns_message_size(params) > SNS_MAX_PAYLOAD_BYTES:
        return "InvalidParameter", "Invalid parameter: Message too long"
    return None


def _dynamodb_values(params: Mapping[str, Any]) -> Refusal | None:
    values = {key: params.get(key) for key in ("Item", "Key", "ExpressionAttributeValues", "TransactItems")}
    if any(len(_significant_digits(number)) > DYNAMODB_MAX_NUMBER_DIGITS for number in _numbers(values)):
        return "ValidationException", "Attempting to store more than 38 significant digits in a Number"
    if "Item" in params and dynamodb_item_size(params["Item"]) > DYNAMODB_MAX_ITEM_BYTES:
        return "ValidationException", "Item size has exceeded the maximum allowed size"
    return None


def _transact_write(params: Mapping[str, Any]) -> Refusal | None:
    items = params.get("TransactItems", [])
    if len(items) > DYNAMODB_MAX_TRANSACTION_ITEMS:
        return _too_long("transactItems", DYNAMODB_MAX_TRANSACTION_ITEMS)
    if len(json.dumps(items, default=str).encode()) > DYNAMODB_MAX_TRANSACTION_BYTES:
        return "ValidationException", "Transaction request cannot be larger than 4 MB"
    refusals = (_dynamodb_values(action) for entry in items for action in entry.values())
    return next((refusal for refusal in refusals if refusal), None)


CHECKS: dict[tuple[str, str], Callable[[Mapping[str, Any]], Refusal | None]] = {
    ("kms", "Sign"): _kms_sign,
    ("events", "PutEvents"): _put_events,
    ("sns", "PublishBatch"): _publish_batch,
    ("sns", "Publish"): _publish,
    ("dynamodb", "TransactWriteItems"): _transact_write,
    **{("dynamodb", name): _dynamodb_values for name in ("PutItem", "UpdateItem", "DeleteItem", "GetItem")},
}


def check(service: str, operation: str, params: Mapping[str, Any]) -> ClientError | None:
    """The error AWS would answer this request with because of a limit, or None."""
    rule = CHECKS.get((service, operation))
    refusal = rule(params) if rule else None
    return _refuse(operation, *refusal) if refusal else None


def transaction_conflict(items: int) -> ClientError:
    """What DynamoDB answers when another transaction touched one of the items at the same time."""
    reasons = [{"Code": "None"} for _ in range(items)]
    reasons[0] = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
    return _refuse(
        "TransactWriteItems",
        "TransactionCanceledException",
        "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
        {"CancellationReasons": reasons},
    )


@dataclass
class StrictAws:
    """Patches every boto3 client of the process to check AWS's limits before each call."""

    faults: dict[tuple[str, str], list[Callable[[Mapping[str, Any]], ClientError]]] = field(
        default_factory=dict
    )
    refusals: list[tuple[str, str, str]] = field(default_factory=list)

    def inject(
        self, service: str, operation: str, fault: Callable[[Mapping[str, Any]], ClientError], times: int = 1
    ) -> None:
        """The next `times` calls of the operation fail with `fault(params)` instead of reaching AWS."""
        self.faults.setdefault((service, operation), []).extend([fault] * times)

    @contextmanager
    def installed(self) -> Iterator[StrictAws]:
        original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009
        strict = self

        def checked_call(client: Any, operation: str, params: Any) -> Any:
            service = client.meta.service_model.service_name
            pending = strict.faults.get((service, operation))
            if pending:
                raise pending.pop(0)(params)
            refusal = check(service, operation, params)
            if refusal is not None:
                strict.refusals.append((service, operation, refusal.response["Error"]["Code"]))
                raise refusal
            return original(client, operation, params)

        setattr(botocore.client.BaseClient, "_make_api_call", checked_call)  # noqa: B010 (private hook)
        try:
            yield self
        finally:
            setattr(botocore.client.BaseClient, "_make_api_call", original)  # noqa: B010
