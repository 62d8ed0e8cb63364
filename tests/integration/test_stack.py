"""The moto harness (local/cloud.py): the template's resources really exist, as the template says."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from moto import mock_aws

from local.cloud import Stack, deploy_stack
from local.emulation import EMULATED_TYPES
from local.harness import api_definition

STACK_NAME = "feedback-harness"
PARAMETERS = {"TimeIndexShards": "3", "MaxUpdatesPerRecord": "7", "RetentionDays": "30"}
COMMON = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
# Each function gets exactly these variables (besides COMMON): least knowledge, like least privilege.
ENVIRONMENTS = {
    "IssueTokenFunction": {"TOKEN_KEY_ID", "TOKEN_ISSUER", "TOKEN_TTL_SECONDS", "SIGNING_MODE"},
    "SubmitFeedbackFunction": {
        "FEEDBACK_TABLE",
        "TOKEN_VERIFY_KEY_IDS",
        "TOKEN_ISSUER",
        "TOKEN_TTL_SECONDS",
        "RETENTION_DAYS",
        "TIME_INDEX_SHARDS",
        "MAX_UPDATES_PER_RECORD",
    },
    "QueryFunction": {"FEEDBACK_TABLE", "STATS_TABLE", "TIME_INDEX_SHARDS", "CURSOR_SECRET_ARN"},
    "AdminFunction": {"FEEDBACK_TABLE", "RETENTION_DAYS", "TIME_INDEX_SHARDS", "MAX_UPDATES_PER_RECORD"},
    "AuthorizerFunction": {"API_KEYS_TABLE"},
    "MetaFunction": {"TOKEN_VERIFY_KEY_IDS", "TOKEN_TTL_SECONDS"},
}
PUBLIC, API_KEY = "public", "api key"
ROUTES = {
    "POST /v1/tokens": ("IssueTokenFunction", API_KEY),
    "POST /v1/feedback": ("SubmitFeedbackFunction", PUBLIC),
    "GET /v1/feedback/me": ("SubmitFeedbackFunction", PUBLIC),
    "DELETE /v1/feedback/me": ("SubmitFeedbackFunction", PUBLIC),
    "GET /v1/feedback": ("QueryFunction", API_KEY),
    "GET /v1/runs/{run_id}/feedback": ("QueryFunction", API_KEY),
    "GET /v1/runs/{run_id}/feedback/{user_id}": ("QueryFunction", API_KEY),
    "GET /v1/stats": ("QueryFunction", API_KEY),
    "DELETE /v1/runs/{run_id}/feedback/{user_id}": ("AdminFunction", API_KEY),
    "DELETE /v1/users/{user_id}/feedback": ("AdminFunction", API_KEY),
    "PUT /v1/runs/{run_id}/feedback/{user_id}": ("AdminFunction", API_KEY),
    "POST /v1/feedback/batch": ("AdminFunction", API_KEY),
    "GET /.well-known/jwks.json": ("MetaFunction", PUBLIC),
    "GET /v1/openapi.json": ("MetaFunction", PUBLIC),
    "GET /v1/docs": ("MetaFunction", PUBLIC),
    "GET /v1/docs/{asset}": ("MetaFunction", PUBLIC),
    "GET /v1/widget.js": ("MetaFunction", PUBLIC),
    "GET /dashboard": ("MetaFunction", PUBLIC),
    "GET /dashboard/{asset}": ("MetaFunction", PUBLIC),
    "GET /v1/health": ("MetaFunction", PUBLIC),
}


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def stack(aws: None) -> Stack:
    return deploy_stack(stack_name=STACK_NAME, parameters=PARAMETERS)


def _key_schema(schema: list[Any]) -> dict[str, str]:
    return {part["KeyType"]: part["AttributeName"] for part in schema}


def test_feedback_table_indexes_stream_ttl_and_backups(stack: Stack) -> None:
    dynamodb = boto3.client("dynamodb")
    name = stack.outputs["FeedbackTableName"]
    assert name == stack.resources["FeedbackTable"]
    assert name.startswith(f"{STACK_NAME}-FeedbackTable-")  # no TableName: stacks can coexist
    table = dynamodb.describe_table(TableName=name)["Table"]

    assert _key_schema(table["KeySchema"]) == {"HASH": "pk", "RANGE": "sk"}
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {
        index["IndexName"]: (_key_schema(index["KeySchema"]), index["Projection"]["ProjectionType"])
        for index in table["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        "time-index": ({"HASH": "time_pk", "RANGE": "time_sk"}, "KEYS_ONLY"),
        "session-index": ({"HASH": "session_pk", "RANGE": "time_sk"}, "KEYS_ONLY"),
        "user-index": ({"HASH": "user_pk", "RANGE": "time_sk"}, "KEYS_ONLY"),
    }
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["LatestStreamArn"] == stack.outputs["FeedbackTableStreamArn"]
    assert table["DeletionProtectionEnabled"] is True

    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


@pytest.mark.parametrize(
    ("output", "key"),
    [("ApiKeysTableName", {"HASH": "key_hash"}), ("StatsTableName", {"HASH": "pk", "RANGE": "sk"})],
)
def test_other_tables(stack: Stack, output: str, key: dict[str, str]) -> None:
    dynamodb = boto3.client("dynamodb")
    table = dynamodb.describe_table(TableName=stack.outputs[output])["Table"]
    assert _key_schema(table["KeySchema"]) == key
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert not table.get("GlobalSecondaryIndexes")
    backups = dynamodb.describe_continuous_backups(TableName=stack.outputs[output])
    assert backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
        "PointInTimeRecoveryStatus"
    ] == ("ENABLED")


def test_token_key_signs_es256(stack: Stack) -> None:
    kms = boto3.client("kms")
    key_id = stack.outputs["TokenKeyId"]
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (metadata["KeySpec"], metadata["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    assert metadata["Arn"] == stack.outputs["TokenKeyArn"]
    assert kms.describe_key(KeyId=f"alias/{STACK_NAME}/token-signing")["KeyMetadata"]["KeyId"] == key_id

    message = b"header.claims"
    signature = kms.sign(KeyId=key_id, Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
    public_key = load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(signature["Signature"], message, ec.ECDSA(hashes.SHA256()))  # raises if invalid


def test_only_the_issuer_role_may_sign(stack: Stack) -> None:
    iam, kms = boto3.client("iam"), boto3.client("kms")
    policy = json.loads(kms.get_key_policy(KeyId=stack.outputs["TokenKeyId"], PolicyName="default")["Policy"])
    arn = {role: iam.get_role(RoleName=stack.resources[role])["Role"]["Arn"] for role in ("IssueTokenRole",)}

    def allowed(action: str) -> list[Any]:
        principals = []
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement["Effect"] == "Allow" and (action in actions or "kms:*" in actions):
                principals.append(statement["Principal"]["AWS"])
        return principals

    assert allowed("kms:Sign") == [arn["IssueTokenRole"]]
    assert not allowed("kms:CreateGrant")  # nobody can hand out Sign through a grant
    verifiers = [principal for found in allowed("kms:GetPublicKey") for principal in _as_list(found)]
    roles = {
        iam.get_role(RoleName=stack.resources[role])["Role"]["Arn"]
        for role in ("SubmitFeedbackRole", "MetaRole")
    }
    assert roles <= set(verifiers)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_function_environments(stack: Stack) -> None:
    outputs = stack.outputs
    environments = {function: stack.function_environment(function) for function in ENVIRONMENTS}
    for function, expected in ENVIRONMENTS.items():
        assert set(environments[function]) == COMMON | expected, function
        assert environments[function]["POWERTOOLS_SERVICE_NAME"] == "feedback"

    submit = environments["SubmitFeedbackFunction"]
    assert submit["FEEDBACK_TABLE"] == outputs["FeedbackTableName"]
    assert "TOKEN_KEY_ID" not in submit
    assert submit["TOKEN_VERIFY_KEY_IDS"] == outputs["TokenKeyId"]
    assert submit["TOKEN_ISSUER"] == STACK_NAME
    assert submit["TOKEN_TTL_SECONDS"] == "86400"  # the longest lifetime the issuer gives, refused beyond
    assert (submit["TIME_INDEX_SHARDS"], submit["MAX_UPDATES_PER_RECORD"], submit["RETENTION_DAYS"]) == (
        "3",
        "7",
        "30",
    )

    issuer = environments["IssueTokenFunction"]
    assert issuer["TOKEN_KEY_ID"] == outputs["TokenKeyId"]
    assert (issuer["TOKEN_TTL_SECONDS"], issuer["SIGNING_MODE"], issuer["TOKEN_ISSUER"]) == (
        "86400",
        "delegated",  # the default: one kms:Sign per certificate, not per token (docs/TOKENS.md)
        STACK_NAME,
    )

    query = environments["QueryFunction"]
    assert (query["FEEDBACK_TABLE"], query["STATS_TABLE"]) == (
        outputs["FeedbackTableName"],
        outputs["StatsTableName"],
    )
    assert query["CURSOR_SECRET_ARN"] == outputs["CursorSecretArn"]
    assert environments["AuthorizerFunction"]["API_KEYS_TABLE"] == outputs["ApiKeysTableName"]
    assert environments["MetaFunction"]["TOKEN_VERIFY_KEY_IDS"] == outputs["TokenKeyId"]


def test_cursor_secret_is_generated(stack: Stack) -> None:
    value = boto3.client("secretsmanager").get_secret_value(SecretId=stack.outputs["CursorSecretArn"])[
        "SecretString"
    ]
    assert len(value) == 64
    assert value.isalnum()  # ExcludePunctuation


def test_functions_share_the_layer_and_ship_their_folder(stack: Stack) -> None:
    layer = stack.resources["CoreLayer"]
    s3 = boto3.client("s3")
    for function, expected in ENVIRONMENTS.items():
        configuration = stack.function_configuration(function)
        assert (configuration["Runtime"], configuration["Handler"]) == ("python3.13", "app.lambda_handler")
        assert [item["Arn"] for item in configuration["Layers"]] == [layer], function
        assert expected  # every function of ENVIRONMENTS is checked
    code = s3.get_object(Bucket=stack.bucket, Key="SubmitFeedbackFunction.zip")["Body"].read()
    assert "app.py" in zipfile.ZipFile(io.BytesIO(code)).namelist()
    layer_zip = stack.template["Resources"]
    content = next(
        resource["Properties"]["Content"]
        for resource in layer_zip.values()
        if resource["Type"] == "AWS::Lambda::LayerVersion"
    )
    archive = zipfile.ZipFile(
        io.BytesIO(s3.get_object(Bucket=content["S3Bucket"], Key=content["S3Key"])["Body"].read())
    )
    assert {"feedback_core/__init__.py", "requirements.txt", "Makefile"} <= set(archive.namelist())
    assert not any("__pycache__" in name for name in archive.namelist())
    # Same content, same zip: the archive does not depend on file times.
    assert (
        hashlib.sha256(code).hexdigest()
        == hashlib.sha256(
            s3.get_object(Bucket=stack.bucket, Key="SubmitFeedbackFunction.zip")["Body"].read()
        ).hexdigest()
    )


def test_http_api_routes_and_authorizer(stack: Stack) -> None:
    api_id = stack.resources["FeedbackApi"]
    assert stack.outputs["ApiUrl"] == f"https://{api_id}.execute-api.us-east-1.amazonaws.com"
    by_arn = {stack.function_configuration(lid)["FunctionArn"]: lid for lid in ENVIRONMENTS}
    api = api_definition(stack, by_arn)  # integrations other than Lambda proxy, format 2.0, are refused
    routes = {route.key: route for route in api.routes}
    assert set(routes) == set(ROUTES)

    assert list(api.authorizers) == ["ApiKeyAuthorizer"]
    authorizer = api.authorizers["ApiKeyAuthorizer"]  # a Lambda REQUEST authorizer, or refused
    body = stack.resolved["FeedbackApi"]["Body"]
    settings = body["components"]["securitySchemes"]["ApiKeyAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert (settings["authorizerPayloadFormatVersion"], settings["enableSimpleResponses"]) == ("2.0", True)
    assert authorizer.identity_sources == ("$request.header.Authorization",)
    assert authorizer.ttl_seconds == 60
    assert authorizer.function == "AuthorizerFunction"

    for key, (function, auth) in ROUTES.items():
        assert (routes[key].authorizer is not None) == (auth == API_KEY), key
        assert routes[key].function == function, key

    assert api.cors is not None
    assert api.cors.allow_origins == ("http://localhost:3000", "http://127.0.0.1:3000")
    assert api.throttle is not None
    assert api.throttle.burst == 200
    (stage,) = [stack.resolved[lid] for lid in stack.resources_of_type("AWS::ApiGatewayV2::Stage")]
    assert stage["StageName"] == "$default"
    log_group = stack.resources["ApiAccessLogGroup"]
    assert stage["AccessLogSettings"]["DestinationArn"].endswith(f":log-group:{log_group}")
    assert json.loads(stage["AccessLogSettings"]["Format"])["status"] == "$context.status"


def test_alarms_notify_the_topic(stack: Stack) -> None:
    alarms = boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
    topic = stack.outputs["AlarmTopicArn"]
    watched = {
        (alarm["Namespace"], alarm["MetricName"], alarm["Dimensions"][0]["Value"])
        for alarm in alarms
        if alarm["AlarmActions"] == [topic]
    }
    for function in ENVIRONMENTS:
        for metric in ("Errors", "Throttles"):
            assert ("AWS/Lambda", metric, stack.resources[function]) in watched
    assert ("AWS/ApiGateway", "5xx", stack.resources["FeedbackApi"]) in watched
    attributes = boto3.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["KmsMasterKeyId"] == stack.resources["AlarmTopicKey"]
    assert json.loads(attributes["Policy"])["Statement"][0]["Principal"] == {
        "Service": "cloudwatch.amazonaws.com"
    }


SMALL_ACCOUNT_CONCURRENCY = 10
"""New AWS accounts often start with a Lambda concurrency limit of 10. Lambda refuses a reservation that
leaves fewer than 100 unreserved executions (https://docs.aws.amazon.com/lambda/latest/dg/
configuration-concurrency.html), which moto does not enforce: checked here on the deployed functions."""
MIN_UNRESERVED_CONCURRENCY = 100


def test_defaults_deploy_on_an_account_with_a_small_concurrency_limit(aws: None) -> None:
    lambda_ = boto3.client("lambda")
    default = deploy_stack(stack_name="feedback-defaults")
    functions = [physical for logical, physical in default.resources.items() if logical.endswith("Function")]
    reserved = sum(
        lambda_.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions", 0)
        for name in functions
    )
    assert SMALL_ACCOUNT_CONCURRENCY - reserved >= min(MIN_UNRESERVED_CONCURRENCY, SMALL_ACCOUNT_CONCURRENCY)
    assert reserved == 0


def test_issue_token_concurrency_is_reserved_on_request(aws: None) -> None:
    lambda_ = boto3.client("lambda")
    reserved = deploy_stack(stack_name="feedback-reserved", parameters={"IssueTokenConcurrency": "50"})
    answer = lambda_.get_function_concurrency(FunctionName=reserved.resources["IssueTokenFunction"])
    assert answer["ReservedConcurrentExecutions"] == 50


def test_previous_token_keys_stay_verifiable(aws: None) -> None:
    stack = deploy_stack(
        stack_name="feedback-rotated", parameters={"PreviousTokenKeyIds": "old-key-1,old-key-2"}
    )
    current = stack.outputs["TokenKeyId"]
    for function in ("SubmitFeedbackFunction", "MetaFunction"):
        assert (
            stack.function_environment(function)["TOKEN_VERIFY_KEY_IDS"] == f"{current},old-key-1,old-key-2"
        )
    iam = boto3.client("iam")
    for role in ("SubmitFeedbackRole", "MetaRole"):
        document: Any = iam.get_role_policy(RoleName=stack.resources[role], PolicyName="previous-token-keys")
        statement = document["PolicyDocument"]["Statement"][0]
        assert statement["Action"] == "kms:GetPublicKey"
    assert "TOKEN_VERIFY_KEY_IDS" not in stack.function_environment("IssueTokenFunction")


def test_every_emulated_resource_is_reported(stack: Stack) -> None:
    emulated_types = {stack.template["Resources"][logical_id]["Type"] for logical_id in stack.emulated}
    template_types = {resource["Type"] for resource in stack.template["Resources"].values()}
    assert emulated_types == template_types & set(EMULATED_TYPES)
    assert all(logical_id in stack.resources for logical_id in stack.emulated)
    assert not any(key.startswith("MotoHarness") for key in stack.outputs)
