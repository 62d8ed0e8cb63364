"""Deletion routes for the product team (API key with feedback:write)."""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedback_core import admin, services
from feedback_core.access import require_scope
from feedback_core.http import FeedbackResolver, RunId, UserId, json_response
from feedback_core.models import Principal
from feedback_core.observability import logger, metrics, tracer
from feedback_core.settings import FeedbackTableSettings

app = FeedbackResolver(requires=(FeedbackTableSettings,))


def _writer() -> Principal:
    return require_scope(app.current_event.request_context.authorizer.get_lambda, "feedback:write")


@app.delete("/v1/runs/<run_id>/feedback/<user_id>", summary="Remove one user's feedback on one run")
@tracer.capture_method
def remove_feedback(run_id: RunId, user_id: UserId) -> Response[Any]:
    admin.remove(services.feedback_store(), _writer(), run_id, user_id)
    metrics.add_metric(name="FeedbackRemoved", unit=MetricUnit.Count, value=1)
    return Response(status_code=HTTPStatus.NO_CONTENT)


@app.delete("/v1/users/<user_id>/feedback", summary="Erase all of one user's feedback in the project")
@tracer.capture_method
def erase_user_feedback(user_id: UserId) -> Response[Any]:
    result = admin.erase_user(
        services.feedback_store(), _writer(), user_id, app.lambda_context.get_remaining_time_in_millis
    )
    metrics.add_metric(name="FeedbackErased", unit=MetricUnit.Count, value=result.deleted)
    return json_response(HTTPStatus.OK if result.complete else HTTPStatus.ACCEPTED, result)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
