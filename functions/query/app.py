"""Read routes for the product team (API key with feedback:read)."""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedback_core import queries, services
from feedback_core.access import require_scope
from feedback_core.errors import NotFound
from feedback_core.http import FeedbackResolver, RunId, UserId, json_response
from feedback_core.models import ListQuery, PageQuery, Principal
from feedback_core.observability import logger, metrics, tracer
from feedback_core.settings import CursorSettings, FeedbackTableSettings, StatsTableSettings
from feedback_core.stats import StatsQuery

app = FeedbackResolver(requires=(CursorSettings, FeedbackTableSettings, StatsTableSettings))


def _reader() -> Principal:
    return require_scope(app.current_event.request_context.authorizer.get_lambda, "feedback:read")


def _query_string() -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


@app.get("/v1/feedback", summary="List feedback, newest first, with filters and a cursor")
@tracer.capture_method
def list_feedback() -> Response[Any]:
    principal = _reader()
    query = ListQuery.model_validate(_query_string())
    page = queries.list_feedback(services.feedback_store(), services.cursor_codec(), principal, query)
    return json_response(HTTPStatus.OK, page)


@app.get("/v1/runs/<run_id>/feedback", summary="Every user's feedback on one run")
@tracer.capture_method
def list_run_feedback(run_id: RunId) -> Response[Any]:
    principal = _reader()
    query = PageQuery.model_validate(_query_string())
    page = queries.list_run(
        services.feedback_store(),
        services.cursor_codec(),
        principal,
        run_id,
        limit=query.limit,
        cursor=query.cursor,
    )
    return json_response(HTTPStatus.OK, page)


@app.get("/v1/runs/<run_id>/feedback/<user_id>", summary="One user's feedback on one run")
@tracer.capture_method
def read_user_run_feedback(run_id: RunId, user_id: UserId) -> Response[Any]:
    principal = _reader()
    record = queries.read_user_run(services.feedback_store(), principal, run_id, user_id)
    if record is None:
        raise NotFound("no feedback from this user on this run")
    return json_response(HTTPStatus.OK, record)


@app.get("/v1/stats", summary="Exact counts and score means per UTC day, or in total")
@tracer.capture_method
def read_stats() -> Response[Any]:
    principal = _reader()
    query = StatsQuery.model_validate(_query_string())
    stats = queries.read_stats(services.stats_store(), principal, query)
    return json_response(HTTPStatus.OK, stats)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
