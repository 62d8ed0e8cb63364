"""What a cold start imports: each function, imported in a fresh interpreter as Lambda would (the layer and
the function's folder on the path, LAMBDA_TASK_ROOT set), loads only what its routes use. Tracing off
loads no X-Ray SDK; tracing on still traces with Powertools' real Tracer.

Only what is imported is asserted here; how long it takes is measured by `make bench` (bench/run.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py"))
NEVER_WITHOUT_TRACING = ("aws_xray_sdk",)
NEVER = ("boto3", "s3transfer", "multiprocessing", "pydantic_settings")
"""No function imports boto3 (its clients are botocore's; boto3 would bring s3transfer and multiprocessing)
or a settings library (settings are plain pydantic models)."""
NOT_PATCHED = ("requests", "httpx", "sqlite3", "aws_xray_sdk.ext.requests", "aws_xray_sdk.ext.httpx")
"""Libraries installed here that the X-Ray SDK would patch, and import: the Tracer patches botocore only."""
_API = ("access", "aws", "errors", "http", "models", "observability", "services", "token_limits")
_STREAM = ("aws", "clock", "dynamo", "errors", "events", "models", "observability", "records", "services")
FEEDBACK_CORE_AT_IMPORT = {
    "admin": {*_API, "admin", "backend", "clock", "feedback"},
    "authorizer": {*_API, "apikeys", "clock", "dynamo"} - {"http"},
    "issue_token": {*_API, "feedback"},
    "meta": {"aws", "errors", "http", "observability", "services", "static_files"},
    "publish_events": {*_STREAM, "stats", "streams", "token_limits"},
    "query": {*_API, "dynamo", "queries", "stats"},
    "stats": {*_STREAM, "stats", "streams", "token_limits"},
    "submit_feedback": {*_API, "feedback"},
}
"""The shared package's modules each function imports at a cold start (besides fields and settings,
which every one needs; the meta function builds no model): the rest (token verification, the stores,
the cursor codec, the publisher) is imported by the first request that uses it, through services."""
EVERY_FUNCTION = {"fields", "settings"}
NOT_FOR = {
    "submit_feedback": (
        "aws_lambda_powertools.utilities.parameters",
        "feedback_core.events",
        "feedback_core.stats",
        "feedback_core.apikeys",
        "feedback_core.cursor",
    ),
    "issue_token": (
        "aws_lambda_powertools.utilities.parameters",
        "feedback_core.events",
        "feedback_core.stats",
        "feedback_core.apikeys",
        "feedback_core.store",
        "feedback_core.cursor",
    ),
    "admin": ("aws_lambda_powertools.utilities.parameters", "feedback_core.events", "feedback_core.stats"),
    "authorizer": (
        "aws_lambda_powertools.utilities.parameters",
        "aws_lambda_powertools.event_handler",
        "feedback_core.events",
        "feedback_core.store",
    ),
    "meta": (
        "aws_lambda_powertools.utilities.parameters",
        "feedback_core.events",
        "feedback_core.stats",
        "feedback_core.store",
    ),
}
"""Modules a function's routes never use (the heavy ones: Powertools' parameters utility pulls in
AppConfig and boto3's resource layer)."""


def lambda_environment(function: str, **extra: str) -> dict[str, str]:
    """A Lambda-like environment for a function, with no real credentials."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "POWERTOOLS_"))
    }
    environment.pop("_X_AMZN_TRACE_ID", None)
    environment.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": function,
            "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
            "POWERTOOLS_SERVICE_NAME": "feedback",
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "layers" / "core"), str(ROOT / "functions" / function)]
            ),
            **extra,
        }
    )
    return environment


def run_python(function: str, code: str, *arguments: str, **extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        env=lambda_environment(function, **extra),
        cwd=ROOT / "functions" / function,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def imported_after_import(function: str, **extra: str) -> set[str]:
    code = "import json, sys\nimport app\nprint(json.dumps(sorted(sys.modules)))"
    return set(json.loads(run_python(function, code, **extra)))


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules or any(m.startswith(f"{name}.") for m in modules)]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_tracing_off_loads_no_xray_sdk_and_nothing_the_routes_never_use(function: str) -> None:
    modules = imported_after_import(function, POWERTOOLS_TRACE_DISABLED="true")
    assert "app" in modules
    assert _loaded(modules, (*NEVER_WITHOUT_TRACING, *NEVER, *NOT_FOR.get(function, ()))) == []
    shared = {name.split(".")[1] for name in modules if name.startswith("feedback_core.")}
    assert shared == FEEDBACK_CORE_AT_IMPORT[function] | EVERY_FUNCTION


@pytest.mark.parametrize("function", ["submit_feedback", "publish_events"])
def test_tracing_on_builds_a_tracer_that_patches_botocore_only(function: str) -> None:
    code = (
        "import json, sys\nimport app\nfrom feedback_core.observability import tracer\n"
        "assert tracer.get() is not None\nprint(json.dumps(sorted(sys.modules)))"
    )
    modules = set(json.loads(run_python(function, code)))
    assert "aws_xray_sdk.ext.botocore.patch" in modules
    assert _loaded(modules, (*NEVER, *NOT_PATCHED, *NOT_FOR.get(function, ()))) == []


def test_the_list_covers_every_function() -> None:
    assert set(NOT_FOR) <= set(FUNCTIONS) == set(FEEDBACK_CORE_AT_IMPORT)
    assert {"submit_feedback", "query", "stats", "publish_events"} <= set(FUNCTIONS)


LAMBDA_CONTEXT = """
class LambdaContext:
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def __init__(self, name):
        self.function_name = name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
"""
"""What a child interpreter passes its handler as Lambda's context."""


def test_the_first_submit_imports_no_pyjwt_and_no_boto3() -> None:
    """The token check parses and verifies tokens itself; PyJWT is for the JWKS route only."""
    code = (
        LAMBDA_CONTEXT
        + """
import base64, json, sys
import app
from botocore.stub import Stubber
from feedback_core import aws

event = json.loads(sys.argv[1])
kms, dynamodb = Stubber(aws.kms()), Stubber(aws.dynamodb())
kms.add_response("get_public_key", {"KeyId": sys.argv[2], "PublicKey": base64.b64decode(sys.argv[3])})
dynamodb.add_response("update_item", {})
kms.activate()
dynamodb.activate()

response = app.lambda_handler(event, LambdaContext("SubmitFeedbackFunction"))
assert response["statusCode"] == 201, response
print(json.dumps(sorted(sys.modules)))
"""
    )
    event, key_id, der = _valid_submit()
    modules = set(
        json.loads(
            run_python(
                "submit_feedback",
                code,
                json.dumps(event),
                key_id,
                der,
                POWERTOOLS_TRACE_DISABLED="true",
                TOKEN_VERIFY_KEY_IDS=key_id,
                TOKEN_ISSUER="tests",
                FEEDBACK_TABLE="feedback",
            ).splitlines()[-1]
        )
    )
    assert "feedback_core.tokens" in modules  # the token was checked
    assert _loaded(modules, ("jwt", *NEVER)) == []


def _valid_submit() -> tuple[dict[str, object], str, str]:
    """An API Gateway event of a valid submit, its token signed by a key made in moto, and that key's
    id and DER public key (base64)."""
    import base64  # noqa: PLC0415

    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    from feedback_core.models import TokenRequest  # noqa: PLC0415
    from feedback_core.tokens import TokenIssuer  # noqa: PLC0415

    event = json.loads((ROOT / "events" / "http_submit_feedback.json").read_text())
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        token = TokenIssuer(kms, key_id, "tests", 3600).issue("tests", TokenRequest(run_id="run-1"))
        der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    event["headers"]["x-feedback-token"] = token.feedback_token
    return event, key_id, base64.b64encode(der).decode()


TRACED_CALL = (
    LAMBDA_CONTEXT
    + """
import json, sys
import app
from aws_lambda_powertools import Tracer
from feedback_core.observability import tracer

class Recording:
    ip, port = "127.0.0.1", 2000
    def __init__(self):
        self.names = []
    def send_entity(self, entity):
        self.names.append(entity.name)
    def set_daemon_address(self, address):
        pass

real = tracer.get()
assert type(real) is Tracer and not real.disabled, real
from aws_xray_sdk.core import xray_recorder
emitter = Recording()
xray_recorder.configure(emitter=emitter)
event = json.loads(sys.argv[1])
response = app.lambda_handler(event, LambdaContext("meta"))
print(json.dumps({"status": response["statusCode"], "segments": emitter.names}))
"""
)


@pytest.mark.parametrize("disabled", [None, "false"])
def test_tracing_on_traces_with_powertools_real_tracer(disabled: str | None) -> None:
    extra = {"_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}
    if disabled is not None:
        extra["POWERTOOLS_TRACE_DISABLED"] = disabled
    event = (ROOT / "events" / "http_health.json").read_text()
    result = json.loads(run_python("meta", TRACED_CALL, event, **extra).splitlines()[-1])
    assert result == {"status": 200, "segments": ["## lambda_handler"]}


TRACED_AWS_CALL = """
import json
import app
from botocore.stub import Stubber
from feedback_core import aws
from feedback_core.observability import tracer

class Recording:
    def __init__(self):
        self.names = []
    def send_entity(self, entity):
        self.names.append(entity.name)
        self.names.extend(child.name for child in getattr(entity, "subsegments", ()))
    def set_daemon_address(self, address):
        pass

from aws_xray_sdk.core import xray_recorder
emitter = Recording()
xray_recorder.configure(emitter=emitter)

@tracer.capture_method
def read_one():
    client = aws.dynamodb()
    with Stubber(client) as stubber:
        stubber.add_response("get_item", {})
        client.get_item(TableName="t", Key={"pk": {"S": "p"}})

read_one()
print(json.dumps(emitter.names))
"""


def test_a_traced_aws_call_records_a_subsegment() -> None:
    """The Tracer patches botocore only, and that still traces the service's AWS calls."""
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    names = json.loads(
        run_python("submit_feedback", TRACED_AWS_CALL, _X_AMZN_TRACE_ID=trace).splitlines()[-1]
    )
    assert names == ["dynamodb", "## __main__.read_one"]
