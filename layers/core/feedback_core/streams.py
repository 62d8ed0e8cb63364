"""The two stream consumers' batch logic: publish events, and apply stats exactly once."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from feedback_core.events import FeedbackEvent, Publisher, build_event
from feedback_core.observability import logger, metrics
from feedback_core.stats import StatsStore


def publish_batch(
    event: dict[str, Any], context: LambdaContext, publisher: Publisher, detail_level: str
) -> dict[str, Any]:
    """Builds one event per record (Powertools BatchProcessor isolates records that cannot be parsed),
    publishes them in batches, and reports every record that is not delivered everywhere."""
    built: dict[str, tuple[str, FeedbackEvent]] = {}

    def build(record: DynamoDBStreamRecordModel) -> None:
        feedback_event = build_event(record, detail_level)
        if feedback_event is not None:
            built[record.eventID] = (record.dynamodb.SequenceNumber, feedback_event)

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, model=DynamoDBStreamRecordModel)
    with processor(records=event.get("Records", []), handler=build, lambda_context=context):
        processor.process()
    failures = {str(item["itemIdentifier"]) for item in processor.response()["batchItemFailures"]}
    undelivered = publisher.publish([feedback_event for _, feedback_event in built.values()])
    failures |= {built[event_id][0] for event_id in undelivered}
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=len(built) - len(undelivered))
    if failures:
        logger.warning("records not delivered", extra={"sequence_numbers": sorted(failures, key=int)})
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in sorted(failures, key=int)]}


def apply_stats_batch(event: dict[str, Any], store: StatsStore) -> dict[str, Any]:
    """Applies the batch to the counters. Lambda's tumbling-window event names the shard (`shardId`),
    which keys the checkpoint. A record that cannot be parsed stops the batch there: the records before
    it are applied and it is reported, so Lambda retries from it and, past MaximumRetryAttempts, sends
    it to the failure destination without blocking the shard. Records the store could not apply (its
    retries ran out) are reported the same way, from the first of them: never acknowledged unapplied
    (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html)."""
    shard_id = event.get("shardId")
    if not shard_id:
        raise ValueError("stats needs the shard id: set TumblingWindowInSeconds on the event source mapping")
    parsed: list[DynamoDBStreamRecordModel] = []
    unreadable: str | None = None
    for raw in event.get("Records", []):
        try:
            parsed.append(DynamoDBStreamRecordModel.model_validate(raw))
        except ValidationError:
            unreadable = str((raw.get("dynamodb") or {}).get("SequenceNumber", ""))
            logger.exception("unreadable stream record", extra={"sequence_number": unreadable})
            break
    outcome = store.apply(shard_id, parsed)
    metrics.add_metric(name="StatsRecordsApplied", unit=MetricUnit.Count, value=outcome.applied)
    metrics.add_metric(name="StatsTransactionConflicts", unit=MetricUnit.Count, value=outcome.conflicts)
    # Lambda resumes from the lowest reported sequence number, so the earliest failure is the one to report.
    retry_from = outcome.unapplied_from or unreadable
    if outcome.unapplied_from is not None:
        logger.warning(
            "stats records left for Lambda to retry",
            extra={
                "shard_id": shard_id,
                "sequence_number": outcome.unapplied_from,
                "applied": outcome.applied,
            },
        )
    return {
        "state": {},
        "batchItemFailures": [{"itemIdentifier": retry_from}] if retry_from is not None else [],
    }
