"""POST /v1/tokens: a backend (API key with tokens:write) gets a feedback token for one run."""

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedback_core import feedback, services
from feedback_core.access import require_scope
from feedback_core.http import FeedbackResolver, json_response
from feedback_core.models import TokenRequest
from feedback_core.observability import logger, metrics, tracer
from feedback_core.settings import TokenIssueSettings

app = FeedbackResolver(requires=(TokenIssueSettings,))


@app.post("/v1/tokens", summary="Issue a feedback token for one run (and optionally one user)")
@tracer.capture_method
def issue_token(request: Annotated[TokenRequest, Body()]) -> Response[Any]:
    principal = require_scope(app.current_event.request_context.authorizer.get_lambda, "tokens:write")
    token = feedback.issue_token(services.token_issuer(), principal, request)
    metrics.add_metric(name="TokensIssued", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.CREATED, token)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
