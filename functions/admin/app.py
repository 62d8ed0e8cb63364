"""Write routes for the product team (API key with feedback:write): write feedback for a user, one record
or a batch; remove one record; erase a user's records."""

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedback_core import admin, backend, services
from feedback_core.access import require_scope
from feedback_core.feedback import parse_if_match
from feedback_core.http import FeedbackResolver, RunId, UserId, json_response
from feedback_core.models import BackendFeedback, FeedbackBatch, Principal
from feedback_core.observability import logger, metrics, tracer
from feedback_core.settings import FeedbackTableSettings

BATCH_ROUTE = "POST /v1/feedback/batch"
MAX_BATCH_BODY_BYTES = 1024 * 1024
"""A batch of 100 items carries up to 100 single requests' bodies; beyond this, send smaller batches."""

app = FeedbackResolver(requires=(FeedbackTableSettings,), body_limits={BATCH_ROUTE: MAX_BATCH_BODY_BYTES})


def _writer() -> Principal:
    return require_scope(app.current_event.request_context.authorizer.get_lambda, "feedback:write")


@app.put("/v1/runs/<run_id>/feedback/<user_id>", summary="Write one user's feedback on one run")
@tracer.capture_method
def write_feedback(
    run_id: RunId,
    user_id: UserId,
    feedback: Annotated[BackendFeedback, Body()],
    if_match: Annotated[str | None, Header(alias="if-match")] = None,
) -> Response[Any]:
    principal = _writer()
    expected_version = parse_if_match(if_match)
    record, created = backend.write(
        services.feedback_store(), principal, run_id, user_id, feedback, expected_version=expected_version
    )
    metrics.add_metric(
        name="BackendFeedbackCreated" if created else "BackendFeedbackUpdated", unit=MetricUnit.Count, value=1
    )
    status = HTTPStatus.CREATED if created else HTTPStatus.OK
    return json_response(status, record, {"ETag": f'"{record.version}"'})


@app.post("/v1/feedback/batch", summary="Write up to 100 users' feedback, each item on its own")
@tracer.capture_method
def write_feedback_batch(batch: Annotated[FeedbackBatch, Body()]) -> Response[Any]:
    result = backend.write_batch(
        services.feedback_store(),
        _writer(),
        batch.items,
        app.lambda_context.get_remaining_time_in_millis,
        workers=backend.BATCH_WORKERS,
    )
    metrics.add_metric(name="BackendFeedbackCreated", unit=MetricUnit.Count, value=result.created)
    metrics.add_metric(name="BackendFeedbackUpdated", unit=MetricUnit.Count, value=result.updated)
    metrics.add_metric(name="BackendFeedbackFailed", unit=MetricUnit.Count, value=result.failed)
    return json_response(HTTPStatus.OK, result.model_dump(mode="json", exclude_none=True))


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
