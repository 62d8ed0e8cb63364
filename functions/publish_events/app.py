"""DynamoDB stream consumer: publishes every feedback change to the EventBridge bus and the SNS topic."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from feedback_core import services
from feedback_core.observability import logger, metrics, tracer
from feedback_core.settings import EventSettings, load_settings
from feedback_core.streams import publish_batch


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    detail_level = load_settings(EventSettings).event_detail
    return publish_batch(event, context, services.publisher(), detail_level)
