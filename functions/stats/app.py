"""DynamoDB stream consumer: applies each batch to the exact counters in the Stats table, once."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from feedback_core import services
from feedback_core.observability import logger, metrics, tracer
from feedback_core.streams import apply_stats_batch


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return apply_stats_batch(event, services.stats_store())
