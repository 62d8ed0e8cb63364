"""HTTP API Lambda authorizer (payload 2.0, simple responses) for API-key routes.

It always lets the request through with the key's project and scopes (or `authenticated: false`), so the
route answers in the service's JSON error format (401/403) and checks the scope it needs itself.
"""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerResponseV2,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from feedback_core import services
from feedback_core.access import authorizer_context
from feedback_core.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_source(data_class=APIGatewayAuthorizerEventV2)
def lambda_handler(event: APIGatewayAuthorizerEventV2, context: LambdaContext) -> dict[str, Any]:
    principal = services.api_key_store().authorize(event.get_header_value("authorization"))
    logger.info("API key checked", extra={"authenticated": principal is not None})
    return APIGatewayAuthorizerResponseV2(authorize=True, context=authorizer_context(principal)).asdict()
