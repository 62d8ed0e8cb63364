"""Lambda's part for the template's DynamoDB stream event source mappings: one poller per mapping.

Each mapping has its own shard iterators (two functions consuming one stream read it independently,
as Lambda does) and honours the mapping's settings as deployed:

- ``BatchSize`` and ``MaximumBatchingWindowInSeconds``: a shard's batch is sent when it is full, or
  when its oldest record has waited that long; records are polled four times a second;
- ``FunctionResponseTypes: [ReportBatchItemFailures]``: the records before the lowest reported
  sequence number are done, the batch is retried from it; an empty, null or unknown item identifier
  fails the whole batch;
- a function error retries the whole batch; with ``BisectBatchOnFunctionError`` the batch is split
  in two first (a split does not count as a retry, as in Lambda);
- ``MaximumRetryAttempts`` (-1: until the record is too old) and ``MaximumRecordAgeInSeconds``:
  past them the batch is discarded and, with ``DestinationConfig.OnFailure``, Lambda's invocation
  record (``DDBStreamBatchInfo`` with the shard and sequence range) goes to the SQS queue or SNS
  topic, and the shard moves on: a poison record never blocks it;
- ``TumblingWindowInSeconds``: the event carries ``shardId``, ``eventSourceARN``, ``window``,
  ``state`` (what the function returned last in this window), ``isFinalInvokeForWindow`` and
  ``isWindowTerminatedEarly``; a batch never spans two windows (windows are aligned on multiples of
  the window length, by each record's ``ApproximateCreationDateTime``), and once a window has ended
  the function gets a final invocation with no records.

Not emulated: ``ParallelizationFactor`` (one batch per shard at a time), ``FilterCriteria``, retry
back-off beyond a short doubling delay, and the parent-before-child order across resharding.
"""

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

POLL_INTERVAL_SECONDS = 0.25
"""Lambda polls each shard of a DynamoDB stream four times a second."""
SHARD_DISCOVERY_SECONDS = 1.0
"""How often each poller looks for new shards (DescribeStream)."""
MAX_BUFFERED_RECORDS = 10_000
_RETRY_DELAY_SECONDS = (0.1, 0.2, 0.4, 0.8, 1.0)


FailureSender = Callable[[str, dict[str, Any]], None]
"""``(destination ARN, invocation record)``: delivers an OnFailure record (SQS queue or SNS topic)."""


@dataclass(frozen=True)
class MappingConfig:
    """The settings of one ``AWS::Lambda::EventSourceMapping`` that the poller honours."""

    logical_id: str
    function_name: str
    event_source_arn: str
    batch_size: int = 100
    batching_window_seconds: float = 0
    starting_position: str = "TRIM_HORIZON"
    report_batch_item_failures: bool = False
    bisect_on_error: bool = False
    maximum_retry_attempts: int = -1
    maximum_record_age_seconds: int = -1
    tumbling_window_seconds: int = 0
    on_failure: str | None = None
    enabled: bool = True

    @classmethod
    def from_properties(cls, logical_id: str, properties: Mapping[str, Any]) -> MappingConfig:
        """From the mapping's CloudFormation properties (resolved; numbers may be strings)."""

        def number(name: str, default: int) -> int:
            value = properties.get(name)
            return default if value is None or value == "" else int(value)

        on_failure = ((properties.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        return cls(
            logical_id=logical_id,
            function_name=str(properties["FunctionName"]),
            event_source_arn=str(properties["EventSourceArn"]),
            batch_size=number("BatchSize", 100),
            batching_window_seconds=float(number("MaximumBatchingWindowInSeconds", 0)),
            starting_position=str(properties.get("StartingPosition") or "TRIM_HORIZON"),
            report_batch_item_failures="ReportBatchItemFailures"
            in (properties.get("FunctionResponseTypes") or []),
            bisect_on_error=str(properties.get("BisectBatchOnFunctionError", False)).lower() == "true",
            maximum_retry_attempts=number("MaximumRetryAttempts", -1),
            maximum_record_age_seconds=number("MaximumRecordAgeInSeconds", -1),
            tumbling_window_seconds=number("TumblingWindowInSeconds", 0),
            on_failure=str(on_failure) if on_failure else None,
            enabled=str(properties.get("Enabled", True)).lower() != "false",
        )


@dataclass
class _Buffered:
    record: dict[str, Any]
    received: float
    """When the poller got it (monotonic)."""

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
    segments: deque[int] = field(default_factory=deque)
    """Pending batch sizes after bisections (the halves still to send)."""
    attempts: int = 0
    """Consecutive failed invocations of the batch starting at the buffer's head."""
    retry_at: float = 0.0
    checkpoint: str | None = None
    window_start: int | None = None
    window_state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Counters:
    """What a poller did (for tests and the shutdown log)."""

    invocations: int = 0
    records_done: int = 0
    failures_sent: int = 0


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
        poll_interval: float = POLL_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``stream_arn`` overrides the mapping's ARN (the same table's stream in DynamoDB Local);
        ``checkpoints`` resume shards after a sequence number; ``on_checkpoint(mapping, shard, seq)``
        is told whenever a shard's records up to ``seq`` are done; ``swept`` (the TTL sweeper's
        deletions) marks their REMOVE records with DynamoDB's TTL ``userIdentity`` as they are read."""
        self.config = config
        self.function = function
        self.stream_arn = stream_arn or config.event_source_arn
        self.reader = StreamReader(
            streams,
            self.stream_arn,
            starting_position=config.starting_position,
            start_after=dict(checkpoints or {}),
            rediscover_seconds=SHARD_DISCOVERY_SECONDS,
        )
        self.send_failure = send_failure
        self.on_checkpoint = on_checkpoint
        self.swept = swept
        self.counters = Counters()
        self._clock = clock
        self._shards: dict[str, _Shard] = {}
        super().__init__(f"poller-{config.logical_id}", poll_interval, immediately=True)

    # -- one round

    def tick(self) -> None:
        self.poll_once()

    def poll_once(self) -> None:
        """Reads new records, then sends each shard the batches that are due."""
        if not self.config.enabled:
            return
        buffered = sum(len(shard.buffer) for shard in self._shards.values())
        if buffered < MAX_BUFFERED_RECORDS:
            now = self._clock()
            for shard_id, records in self.reader.poll().items():
                if self.swept is not None:
                    self.swept.stamp(self.stream_arn, records)
                shard = self._shards.setdefault(shard_id, _Shard(shard_id))
                shard.buffer.extend(_Buffered(record, now) for record in records)
        for shard in list(self._shards.values()):
            while not self.stopping and self._process(shard):
                pass

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
        self.counters.invocations += 1
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
        config = self.config
        shard.attempts += 1
        retries = shard.attempts - 1
        if config.maximum_retry_attempts >= 0 and retries >= config.maximum_retry_attempts:
            self._discard(shard, batch, "RetryAttemptsExhausted", function_error=function_error)
            return
        if self._too_old(batch[0]):
            self._discard(shard, batch, "RecordAgeExceeded", function_error=function_error)
            return
        delay = _RETRY_DELAY_SECONDS[min(retries, len(_RETRY_DELAY_SECONDS) - 1)]
        shard.retry_at = self._clock() + delay
        log.warning(
            "%s: batch from %s failed (attempt %d); retrying",
            config.logical_id,
            batch[0].sequence,
            shard.attempts,
        )

    def _discard(
        self, shard: _Shard, batch: list[_Buffered], condition: str, *, function_error: bool
    ) -> None:
        """Skips the batch; sends Lambda's invocation record to the OnFailure destination."""
        config = self.config
        record = self.failure_record(shard.shard_id, batch, condition, function_error, shard.attempts or 1)
        log.error(
            "%s: discarding %d record(s) %s..%s (%s)",
            config.logical_id,
            len(batch),
            batch[0].sequence,
            batch[-1].sequence,
            condition,
        )
        if config.on_failure and self.send_failure is not None:
            self.send_failure(config.on_failure, record)
            self.counters.failures_sent += 1
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
                self.counters.records_done += count
            if self.on_checkpoint is not None:
                self.on_checkpoint(self.config.logical_id, shard.shard_id, last.sequence)
        shard.attempts = 0
        shard.retry_at = 0.0
        if shard.segments and not keep_segments:
            shard.segments.popleft()

    def failure_record(
        self, shard_id: str, batch: list[_Buffered], condition: str, function_error: bool, invokes: int
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
                "approximateInvokeCount": invokes,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": _iso(time.time(), milliseconds=True),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
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

    # -- tumbling windows

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
            "window": {
                "start": _iso(start),
                "end": _iso(start + self.config.tumbling_window_seconds),
            },
            "state": dict(shard.window_state),
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": False,
        }

    def _final_invoke(self, shard: _Shard) -> bool:
        """The window's last invocation (no records); then the next window starts with an empty state."""
        event = self._window_event(shard, [], final=True)
        self.counters.invocations += 1
        try:
            self.function.invoke(event)
        except FunctionError:
            log.error("%s: final invocation of window %s failed", self.config.logical_id, event["window"])
        shard.window_start = None
        shard.window_state = {}
        return True

    # -- inspection

    def checkpoints(self) -> dict[str, str]:
        """The last sequence number done per shard."""
        return {shard_id: shard.checkpoint for shard_id, shard in self._shards.items() if shard.checkpoint}


def _iso(epoch: float, *, milliseconds: bool = False) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    if milliseconds:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sqs_or_sns_sender(sqs: Any, sns: Any) -> FailureSender:
    """Delivers OnFailure records as Lambda does: an SQS message, or an SNS notification."""
    urls: dict[str, str] = {}

    def send(destination: str, record: dict[str, Any]) -> None:
        body = json.dumps(record)
        parts = destination.split(":")
        if parts[2] == "sqs":
            if destination not in urls:
                urls[destination] = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])[
                    "QueueUrl"
                ]
            sqs.send_message(QueueUrl=urls[destination], MessageBody=body)
        elif parts[2] == "sns":
            sns.publish(TopicArn=destination, Message=body)
        else:
            log.error("OnFailure destination %s is not emulated (SQS and SNS are)", destination)

    return send
