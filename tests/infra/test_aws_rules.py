"""Rules of AWS that neither moto nor cfn-lint check, applied to the template itself."""

from __future__ import annotations

import re

from local.template import load_template

HTTP_API_LOG_VARIABLES = {
    "accountId",
    "apiId",
    "authorizer.error",
    "authorizer.principalId",
    "awsEndpointRequestId",
    "awsEndpointRequestId2",
    "dataProcessed",
    "domainName",
    "domainPrefix",
    "error.message",
    "error.messageString",
    "error.responseType",
    "extendedRequestId",
    "httpMethod",
    "identity.accountId",
    "identity.caller",
    "identity.cognitoAuthenticationProvider",
    "identity.cognitoAuthenticationType",
    "identity.cognitoIdentityId",
    "identity.cognitoIdentityPoolId",
    "identity.principalOrgId",
    "identity.sourceIp",
    "identity.user",
    "identity.userAgent",
    "identity.userArn",
    "integration.error",
    "integration.integrationStatus",
    "integration.latency",
    "integration.requestId",
    "integration.status",
    "integrationErrorMessage",
    "integrationLatency",
    "integrationStatus",
    "path",
    "protocol",
    "requestId",
    "requestTime",
    "requestTimeEpoch",
    "responseLatency",
    "responseLength",
    "routeKey",
    "stage",
    "status",
}
"""The `$context` variables HTTP APIs support in access logs, from "Customizing HTTP API access logs"
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html), besides
`authorizer.<key>` / `authorizer.claims.<key>` and the mutual-TLS `identity.clientCert.*`. REST-API-only
variables such as `$context.xrayTraceId` make the stage fail to deploy."""


def test_access_log_format_uses_only_http_api_variables() -> None:
    template = load_template()
    stage = template["Resources"]["FeedbackApi"]["Properties"]["AccessLogSettings"]["Format"]
    variables = set(re.findall(r"\$context\.([A-Za-z0-9_.]+)", stage))
    assert variables, "no access-log variables found"
    unsupported = {
        name
        for name in variables
        if name not in HTTP_API_LOG_VARIABLES and not name.startswith("identity.clientCert.")
    }
    assert not unsupported, f"not HTTP API access-log variables: {sorted(unsupported)}"
