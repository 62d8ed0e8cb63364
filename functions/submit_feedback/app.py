"""Public feedback routes, authenticated by the feedback token: submit, read and retract one's own."""

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedback_core import feedback, services
from feedback_core.errors import NotFound
from feedback_core.fields import PathIdentifier
from feedback_core.http import FeedbackResolver, json_response
from feedback_core.models import FeedbackSubmission
from feedback_core.observability import logger, metrics, tracer
from feedback_core.settings import FeedbackTableSettings, TokenVerifySettings

app = FeedbackResolver(requires=(FeedbackTableSettings, TokenVerifySettings))

TokenHeader = Annotated[str | None, Header(alias="x-feedback-token", description="The feedback token")]
UserParam = Annotated[PathIdentifier | None, Query(description="Only for tokens with no user bound")]


@app.post("/v1/feedback", summary="Submit or change the caller's feedback on the token's run")
@tracer.capture_method
def submit_feedback(
    submission: Annotated[FeedbackSubmission, Body()],
    token: TokenHeader = None,
    if_match: Annotated[str | None, Header(alias="if-match")] = None,
) -> Response[Any]:
    claims = feedback.verify_token(services.token_verifier(), token, submission.feedback_token)
    expected_version = feedback.parse_if_match(if_match)
    record, created = feedback.submit(services.feedback_store(), claims, submission, expected_version)
    metrics.add_metric(
        name="FeedbackCreated" if created else "FeedbackUpdated", unit=MetricUnit.Count, value=1
    )
    status = HTTPStatus.CREATED if created else HTTPStatus.OK
    return json_response(status, record, {"ETag": f'"{record.version}"'})


@app.get("/v1/feedback/me", summary="The caller's current feedback on the token's run")
@tracer.capture_method
def read_own_feedback(token: TokenHeader = None, user_id: UserParam = None) -> Response[Any]:
    claims = feedback.verify_token(services.token_verifier(), token)
    record = feedback.read_own(services.feedback_store(), claims, user_id)
    if record is None:
        raise NotFound("no feedback yet")
    return json_response(HTTPStatus.OK, record, {"ETag": f'"{record.version}"'})


@app.delete("/v1/feedback/me", summary="Retract the caller's feedback on the token's run")
@tracer.capture_method
def retract_own_feedback(token: TokenHeader = None, user_id: UserParam = None) -> Response[Any]:
    claims = feedback.verify_token(services.token_verifier(), token)
    feedback.retract_own(services.feedback_store(), claims, user_id)
    metrics.add_metric(name="FeedbackRetracted", unit=MetricUnit.Count, value=1)
    return Response(status_code=HTTPStatus.NO_CONTENT)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
