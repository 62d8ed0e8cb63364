"""Watching a batch's DynamoDB writes from botocore's own events, whichever thread sends them: how many are
in flight at once (overall and per record), and refusing the write of a named record.

A write is in flight from `before-parameter-build` (botocore has the call's parameters) to `after-call` or
`after-call-error` (its answer, or its failure); both events carry the same per-call `context` dict.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

Register = Callable[[str, Callable[..., Any]], None]
"""`client.meta.events.register`, or `feedback_core.aws.listen` for the functions' clients."""

OPERATION = "dynamodb.UpdateItem"
MEETING_TIMEOUT_SECONDS = 30.0
"""Only a failing run waits this long: writes that are never in flight together never meet."""


def record_of(params: dict[str, Any]) -> tuple[str, str]:
    """(partition key, sort key) of an UpdateItem: one record."""
    key = params["Key"]
    return key["pk"]["S"], key["sk"]["S"]


class WritesInFlight:
    """Counts UpdateItems in flight. With `meet=n`, the first n writes wait for one another before they are
    sent (a barrier): unless n of them are in flight at once, they fail with `BrokenBarrierError`."""

    def __init__(self, register: Register, meet: int = 0) -> None:
        self.started = 0
        self.most = 0
        self.most_per_record = 0
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._meeting = threading.Barrier(meet) if meet else None
        self._to_meet = meet
        register(f"before-parameter-build.{OPERATION}", self._sent)
        register(f"after-call.{OPERATION}", self._answered)
        register(f"after-call-error.{OPERATION}", self._answered)

    def _sent(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        record = record_of(params)
        context["written_record"] = record
        with self._lock:
            self.started += 1
            self._in_flight[record] += 1
            self.most = max(self.most, self._in_flight.total())
            self.most_per_record = max(self.most_per_record, self._in_flight[record])
            meets = self._meeting is not None and self._to_meet > 0
            self._to_meet -= meets
        if meets and self._meeting is not None:
            self._meeting.wait(MEETING_TIMEOUT_SECONDS)

    def _answered(self, context: dict[str, Any], **_: Any) -> None:
        record = context.get("written_record")
        if record is not None:
            with self._lock:
                self._in_flight[record] -= 1


def throughput_exceeded(operation: str = "UpdateItem") -> ClientError:
    return ClientError(
        {
            "Error": {
                "Code": "ProvisionedThroughputExceededException",
                "Message": "The level of configured provisioned",
            }
        },
        operation,
    )


class RefusedWrites:
    """The next write of each named user's record fails with `fault` before it is sent (as DynamoDB's answer
    after the SDK's retries would), whichever thread sends it and in whatever order. Register it before a
    `WritesInFlight`: a refused write then never counts as in flight."""

    def __init__(self, register: Register, users: list[str], fault: Callable[[], Exception]) -> None:
        self.pending = list(users)
        self._fault = fault
        self._lock = threading.Lock()
        register(f"before-parameter-build.{OPERATION}", self._refuse)

    def _refuse(self, params: dict[str, Any], **_: Any) -> None:
        user = record_of(params)[1]
        with self._lock:
            refused = user in self.pending
            if refused:
                self.pending.remove(user)
        if refused:
            raise self._fault()
