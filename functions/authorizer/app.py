"""HTTP API Lambda authorizer (payload 2.0, simple responses) for API-key routes.

An Authorization header that cannot hold a key (checked by shape, no AWS call) is denied here: API
Gateway answers 403 {"message": "Forbidden"}, caches the denial per header value, and no route function
runs. A well-shaped header is let through with the key's project and scopes (or `authenticated: false`
for an unknown or revoked key), so the route answers in the service's JSON format (401/403) and checks
the scope it needs itself.
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
from feedback_core.apikeys import bearer_secret
from feedback_core.observability import logger, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_source(data_class=APIGatewayAuthorizerEventV2)
def lambda_handler(event: APIGatewayAuthorizerEventV2, context: LambdaContext) -> dict[str, Any]:
    authorization = event.get_header_value("authorization")
    if bearer_secret(authorization) is None:
        logger.info("Authorization header is not an API key")
        return APIGatewayAuthorizerResponseV2(authorize=False).asdict()
    principal = services.api_key_store().authorize(authorization)
    logger.info("API key checked", extra={"authenticated": principal is not None})
    return APIGatewayAuthorizerResponseV2(authorize=True, context=authorizer_context(principal)).asdict()
