"""Lambda's part for the template's DynamoDB stream event source mappings, one poller per mapping, with
the settings the template uses (what is honoured and what is not: docs/LOCAL.md, "The stream pollers")."""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from local.functions import FunctionError, Invocable
from local.streams import StreamReader
from local.worker import PeriodicWorker

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

    from local.ttl import SweptItems

log = logging.getLogger("local.pollers")

POLL_INTERVAL_SECONDS = 0.25  # Lambda polls each shard of a DynamoDB stream four times a second
SHARD_DISCOVERY_SECONDS = 1.0
MAX_BUFFERED_RECORDS = 10_000
_RETRY_DELAY_SECONDS = (0.1, 0.2, 0.4, 0.8, 1.0)

FailureSender = Callable[[str, dict[str, Any]], None]
"""``(destination ARN, invocation record)``: delivers an OnFailure record."""


@dataclass(frozen=True)
class MappingConfig:
    """The settings of one ``AWS::Lambda::EventSourceMapping`` that the poller honours."""

    logical_id: str
    function_name: str
    event_source_arn: str
    batch_size: int = 100
    batching_window_seconds: float = 0
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_seconds: int = -1
    tumbling_window_seconds: int = 0
    on_failure: str | None = None

    @classmethod
    def from_properties(cls, logical_id: str, properties: Mapping[str, Any]) -> MappingConfig:
        """From the mapping's CloudFormation properties (resolved; numbers may be strings)."""

        def number(name: str, default: int) -> int:
            return int(properties.get(name, default))

        on_failure = ((properties.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        return cls(
            logical_id=logical_id,
            function_name=str(properties["FunctionName"]),
            event_source_arn=str(properties["EventSourceArn"]),
            batch_size=number("BatchSize", 100),
            batching_window_seconds=float(number("MaximumBatchingWindowInSeconds", 0)),
            report_batch_item_failures="ReportBatchItemFailures"
            in (properties.get("FunctionResponseTypes") or []),
            bisect_on_error=str(properties.get("BisectBatchOnFunctionError", False)).lower() == "true",
            maximum_retry_attempts=number("MaximumRetryAttempts", -1),
            maximum_record_age_seconds=number("MaximumRecordAgeInSeconds", -1),
            tumbling_window_seconds=number("TumblingWindowInSeconds", 0),
            on_failure=str(on_failure) if on_failure else None,
        )


@dataclass
class _Buffered:
    record: dict[str, Any]
    received: float  # monotonic

    @property
    def sequence(self) -> str:
        return str(self.record["dynamodb"]["SequenceNumber"])

    @property
    def created(self) -> float:
        """Epoch seconds the record was written (ApproximateCreationDateTime), else now."""
        value = self.record["dynamodb"].get("ApproximateCreationDateTime")
        return float(value) if isinstance(value, int | float) else time.time()


@dataclass
class _Shard:
    shard_id: str
    buffer: deque[_Buffered] = field(default_factory=deque)
    segments: deque[int] = field(default_factory=deque)  # the halves still to send after bisections
    attempts: int = 0  # consecutive failed invocations of the batch at the buffer's head
    retry_at: float = 0.0
    checkpoint: str | None = None
    window_start: int | None = None
    window_state: dict[str, Any] = field(default_factory=dict)


class StreamPoller(PeriodicWorker):
    """Polls one stream for one mapping and invokes its function; run it with :meth:`start`."""

    def __init__(
        self,
        config: MappingConfig,
        function: Invocable,
        streams: DynamoDBStreamsClient,
        *,
        stream_arn: str | None = None,
        send_failure: FailureSender | None = None,
        checkpoints: Mapping[str, str] | None = None,
        on_checkpoint: Callable[[str, str, str], None] | None = None,
        swept: SweptItems | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``stream_arn`` overrides the mapping's (DynamoDB Local's stream of the same table);
        ``checkpoints`` resume shards after a sequence number, ``on_checkpoint(mapping, shard, seq)`` hears
        of each shard's progress; ``swept`` stamps the TTL sweeper's REMOVE records as DynamoDB would."""
        self.config = config
        self.function = function
        self.stream_arn = stream_arn or config.event_source_arn
        self.reader = StreamReader(streams, self.stream_arn, dict(checkpoints or {}), SHARD_DISCOVERY_SECONDS)
        self.send_failure = send_failure
        self.on_checkpoint = on_checkpoint
        self.swept = swept
        self.records_done = 0
        self._clock = clock
        self._shards: dict[str, _Shard] = {}
        super().__init__(f"poller-{config.logical_id}", POLL_INTERVAL_SECONDS)

    def poll_once(self) -> None:
        """Reads new records, then sends each shard the batches that are due."""
        buffered = sum(len(shard.buffer) for shard in self._shards.values())
        if buffered < MAX_BUFFERED_RECORDS:
            now = self._clock()
            for shard_id, records in self.reader.poll().items():
                if self.swept is not None:
                    self.swept.stamp(self.stream_arn, records)
                shard = self._shards.setdefault(shard_id, _Shard(shard_id))
                shard.buffer.extend(_Buffered(record, now) for record in records)
        for shard in list(self._shards.values()):
            while not self.stopping.is_set() and self._process(shard):
                pass

    tick = poll_once

    def _process(self, shard: _Shard) -> bool:
        """Sends one due batch (or final window invocation) of this shard; False when nothing is due."""
        config = self.config
        now = self._clock()
        if config.tumbling_window_seconds and self._window_over(shard):
            return self._final_invoke(shard)
        if not shard.buffer or now < shard.retry_at:
            return False
        size = shard.segments[0] if shard.segments else config.batch_size
        batch = list(shard.buffer)[: min(size, config.batch_size)]
        if config.tumbling_window_seconds:
            window = self._window_of(batch[0])
            if shard.window_start is not None and window != shard.window_start:
                return self._final_invoke(shard)  # the previous window ends before this one starts
            batch = [item for item in batch if self._window_of(item) == window]
            shard.window_start = window
        full = len(batch) >= size or len(batch) < len(shard.buffer)
        if not full and now - batch[0].received < config.batching_window_seconds and not shard.attempts:
            return False
        if self._too_old(batch[0]):
            self._discard(shard, batch, "RecordAgeExceeded", function_error=False)
            return True
        self._invoke(shard, batch)
        return True

    def _invoke(self, shard: _Shard, batch: list[_Buffered]) -> None:
        config = self.config
        event: dict[str, Any] = {"Records": [item.record for item in batch]}
        if config.tumbling_window_seconds:
            event = self._window_event(shard, event["Records"], final=False)
        try:
            result = self.function.invoke(event)
        except FunctionError:
            if config.bisect_on_error and len(batch) > 1:
                half = math.ceil(len(batch) / 2)
                if shard.segments:
                    shard.segments.popleft()
                shard.segments.extendleft([len(batch) - half, half])
                log.warning("%s: function error, batch of %d split in two", config.logical_id, len(batch))
                return
            self._failed(shard, batch, function_error=True)
            return
        if config.tumbling_window_seconds and isinstance(result, dict):
            state = result.get("state")
            shard.window_state = dict(state) if isinstance(state, dict) else {}
        failed_from = self._first_failure(result, batch) if config.report_batch_item_failures else None
        if failed_from is None:
            self._done(shard, len(batch))
            return
        if failed_from > 0:
            self._done(shard, failed_from, keep_segments=True)
            if shard.segments:
                shard.segments[0] = max(1, shard.segments[0] - failed_from)
        self._failed(shard, batch[failed_from:], function_error=False)

    def _first_failure(self, result: Any, batch: list[_Buffered]) -> int | None:
        """Index in the batch of the lowest reported failure; 0 if the report fails the whole batch."""
        failures = result.get("batchItemFailures") if isinstance(result, dict) else None
        if not failures:
            return None
        positions = {item.sequence: index for index, item in enumerate(batch)}
        indexes: list[int] = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not identifier or str(identifier) not in positions:
                return 0  # Lambda treats an empty, null or unknown identifier as a failed batch
            indexes.append(positions[str(identifier)])
        return min(indexes)

    def _failed(self, shard: _Shard, batch: list[_Buffered], *, function_error: bool) -> None:
        shard.attempts += 1
        retries = shard.attempts - 1
        if 0 <= self.config.maximum_retry_attempts <= retries:
            self._discard(shard, batch, "RetryAttemptsExhausted", function_error=function_error)
        elif self._too_old(batch[0]):
            self._discard(shard, batch, "RecordAgeExceeded", function_error=function_error)
        else:
            shard.retry_at = self._clock() + _RETRY_DELAY_SECONDS[min(retries, len(_RETRY_DELAY_SECONDS) - 1)]
            log.warning("%s: batch from %s failed (attempt %d)", self.name, batch[0].sequence, shard.attempts)

    def _discard(
        self, shard: _Shard, batch: list[_Buffered], condition: str, *, function_error: bool
    ) -> None:
        """Skips the batch; sends Lambda's invocation record to the OnFailure destination."""
        log.error(
            "%s: %d record(s) from %s discarded (%s)", self.name, len(batch), batch[0].sequence, condition
        )
        destination = self.config.on_failure
        if destination and self.send_failure is not None:
            self.send_failure(destination, self.failure_record(shard, batch, condition, function_error))
        self._done(shard, len(batch), discarded=True)

    def _done(
        self, shard: _Shard, count: int, *, keep_segments: bool = False, discarded: bool = False
    ) -> None:
        last = None
        for _ in range(count):
            last = shard.buffer.popleft()
        if last is not None:
            shard.checkpoint = last.sequence
            if not discarded:
                self.records_done += count
            if self.on_checkpoint is not None:
                self.on_checkpoint(self.config.logical_id, shard.shard_id, last.sequence)
        shard.attempts = 0
        shard.retry_at = 0.0
        if shard.segments and not keep_segments:
            shard.segments.popleft()

    def failure_record(
        self, shard: _Shard, batch: list[_Buffered], condition: str, function_error: bool
    ) -> dict[str, Any]:
        """Lambda's OnFailure invocation record for a discarded stream batch."""
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            response["functionError"] = "Unhandled"
        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function.arn,
                "condition": condition,
                "approximateInvokeCount": shard.attempts or 1,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": _iso(time.time(), "milliseconds"),
            "DDBStreamBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": batch[0].sequence,
                "endSequenceNumber": batch[-1].sequence,
                "approximateArrivalOfFirstRecord": _iso(batch[0].created),
                "approximateArrivalOfLastRecord": _iso(batch[-1].created),
                "batchSize": len(batch),
                "streamArn": self.stream_arn,
            },
        }

    def _too_old(self, item: _Buffered) -> bool:
        age = self.config.maximum_record_age_seconds
        return age >= 0 and time.time() - item.created > age

    def _window_of(self, item: _Buffered) -> int:
        length = self.config.tumbling_window_seconds
        return int(item.created // length) * length

    def _window_over(self, shard: _Shard) -> bool:
        if shard.window_start is None or shard.attempts:
            return False
        return time.time() >= shard.window_start + self.config.tumbling_window_seconds

    def _window_event(self, shard: _Shard, records: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
        start = shard.window_start if shard.window_start is not None else 0
        return {
            "Records": records,
            "shardId": shard.shard_id,
            "eventSourceARN": self.stream_arn,
            "window": {"start": _iso(start), "end": _iso(start + self.config.tumbling_window_seconds)},
            "state": dict(shard.window_state),
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": False,
        }

    def _final_invoke(self, shard: _Shard) -> bool:
        """The window's last invocation (no records); then the next window starts with an empty state."""
        event = self._window_event(shard, [], final=True)
        try:
            self.function.invoke(event)
        except FunctionError:
            log.error("%s: final invocation of window %s failed", self.config.logical_id, event["window"])
        shard.window_start = None
        shard.window_state = {}
        return True

    def checkpoints(self) -> dict[str, str]:
        return {shard_id: shard.checkpoint for shard_id, shard in self._shards.items() if shard.checkpoint}


def _iso(epoch: float, timespec: str = "seconds") -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def sqs_sender(sqs: Any) -> FailureSender:
    """Delivers OnFailure records to an SQS queue, as Lambda does."""

    def send(destination: str, record: dict[str, Any]) -> None:
        _, _, _, _, account, name = destination.split(":")
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))

    return send
