"""Measures the request paths through the in-process harness (the template in moto, the gateway and the
real functions), the local stack's start and submit throughput over HTTP, and the functions' cold imports.

Absolute times depend on the machine and on moto standing in for AWS, so the report gives per-request
AWS call counts (what a request costs) and times relative to one another, taken in one run.
`make bench` writes the results into docs/BENCHMARKS.md (between the markers) and prints them.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

from bench.lambda_site import lambda_site
from local.aws_calls import AwsCalls
from local.gateway import HttpRequest, HttpResponse
from local.harness import Harness, in_process
from local.process import running
from local.template import load_template

ROUNDS = 300
STARTS = 3
COLD_RUNS = 11
CLIENTS = 8
THROUGHPUT_SECONDS = 20.0
ROOT = Path(__file__).resolve().parents[1]
REPORT = "docs/BENCHMARKS.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
# The template's defaults, but for the API's throttling, which the bench's request rate would trip.
UNTHROTTLED = {"ThrottlingBurstLimit": "1000000", "ThrottlingRateLimit": "1000000"}
PROCESS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


Result = tuple[float, float, float]
Row = tuple[int, Callable[[int], HttpResponse]]
"""(the status every request of the row must get, the request for round i)."""


def measure(rows: dict[str, Row], calls: AwsCalls, rounds: int) -> dict[str, Result]:
    """Per row: (median ms, p95 ms, AWS calls per request). The rows are interleaved: each round sends
    every row's request once, in order (a row may rely on an earlier row's request of its round), after
    a warm-up round, so that the machine's drift falls on every row alike and the ratios hold."""
    times: dict[str, list[float]] = {name: [] for name in rows}
    counted = dict.fromkeys(rows, 0)
    for index in range(-1, rounds):
        for name, (expected, action) in rows.items():
            before = calls.count()
            start = time.perf_counter()
            status = action(index).status
            elapsed = (time.perf_counter() - start) * 1000
            assert status == expected, (name, index, status)
            if index >= 0:
                times[name].append(elapsed)
                counted[name] += calls.count() - before
    results = {}
    for name, row_times in times.items():
        row_times.sort()
        results[name] = (
            statistics.median(row_times),
            row_times[max(int(len(row_times) * 0.95) - 1, 0)],
            counted[name] / rounds,
        )
    return results


def request(
    harness: Harness, method: str, path: str, headers: dict[str, str], body: Any = None
) -> HttpResponse:
    """One request through the gateway (authorizer, route, function), without a socket."""
    payload = json.dumps(body).encode() if body is not None else b""
    path, _, query = path.partition("?")
    fields = [*headers.items(), ("content-type", "application/json")] if payload else list(headers.items())
    return harness.handle(HttpRequest(method, path, query, fields, payload))


def run(rounds: int) -> dict[str, Result]:
    from feedback_core import services  # noqa: PLC0415 (its logger reads the environment main() set)

    with in_process("feedback-bench", UNTHROTTLED) as harness:
        boto3.setup_default_session()  # the counted session, for the clients built from here on
        services.reset()
        calls = AwsCalls()
        with contextlib.redirect_stdout(io.StringIO()):  # the handlers' metric lines
            return measure(request_rows(harness, rounds), calls, rounds)


def request_rows(harness: Harness, rounds: int) -> dict[str, Row]:
    from feedback_core.apikeys import ApiKeyStore  # noqa: PLC0415
    from feedback_core.aws import dynamodb  # noqa: PLC0415

    scopes = ("tokens:write", "feedback:read", "feedback:write")
    key, _ = ApiKeyStore(dynamodb(), harness.table_names["ApiKeysTable"]).create("bench", scopes)  # type: ignore[arg-type]
    with_key = {"authorization": f"Bearer {key}"}

    def issue(run_id: str, **extra: Any) -> str:
        response = request(
            harness, "POST", "/v1/tokens", with_key, {"run_id": run_id, "user_id": "u", **extra}
        )
        assert response.status == 201, response.body
        return str(response.json()["feedback_token"])

    tokens = [issue(f"run-{i}") for i in range(-1, rounds)]
    expired = issue("x", ttl_seconds=1)
    forged = tokens[0][:-6] + ("AAAAAA" if not tokens[0].endswith("AAAAAA") else "BBBBBB")
    time.sleep(1.1)

    def submit(token: str, outcome: str) -> HttpResponse:
        return request(harness, "POST", "/v1/feedback", {"x-feedback-token": token}, {"outcome": outcome})

    def token(index: int) -> str:
        return tokens[index + 1]  # round -1 is the warm-up

    return {
        "issue a token (POST /v1/tokens, 201)": (
            201,
            lambda i: request(harness, "POST", "/v1/tokens", with_key, {"run_id": f"r{i}"}),
        ),
        "first submit of a record (POST /v1/feedback, 201)": (
            201,
            lambda i: request(
                harness,
                "POST",
                "/v1/feedback",
                {"x-feedback-token": token(i)},
                {"outcome": "positive", "score": 3},
            ),
        ),
        "change a vote (POST /v1/feedback, 200)": (200, lambda i: submit(token(i), "negative")),
        "read own feedback (GET /v1/feedback/me, 200)": (
            200,
            lambda i: request(harness, "GET", "/v1/feedback/me", {"x-feedback-token": token(i)}),
        ),
        "list 20, newest first (GET /v1/feedback, 200)": (
            200,
            lambda i: request(harness, "GET", "/v1/feedback?limit=20", with_key),
        ),
        "expired token refused (POST /v1/feedback, 401)": (401, lambda i: submit(expired, "positive")),
        "forged token refused (POST /v1/feedback, 401)": (401, lambda i: submit(forged, "positive")),
    }


VERIFY_BATCH = 200


def token_verify_ratio(rounds: int) -> tuple[float, float]:
    """(our verifications per second / raw `cryptography` ES256 verifications of the same signing input
    and signature, our microseconds per token): batches of each, alternated, the median of each side."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    from feedback_core.models import TokenRequest  # noqa: PLC0415
    from feedback_core.tokens import PublicKeys, TokenIssuer, TokenVerifier, key_id_of  # noqa: PLC0415

    with mock_aws():
        kms = boto3.client("kms")
        key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        request = TokenRequest(run_id="run-1", user_id="user-1", agent="bench", context={"model": "m"})
        token = TokenIssuer(kms, key_id, "bench", 3600).issue("bench", request).feedback_token
        keys = PublicKeys(kms, frozenset({key_id}))
        verifier = TokenVerifier(keys, "bench", 3600)
        verifier.verify(token)  # the public key is cached from here on: no AWS call below
        public_key = keys.get(key_id_of(key_id))
    header, claims, _ = token.split(".")
    signing_input = f"{header}.{claims}".encode()
    der = _der_signature(token)
    ours, bare = [], []
    for _ in range(max(rounds // 20, 5)):
        start = time.perf_counter()
        for _ in range(VERIFY_BATCH):
            verifier.verify(token)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(VERIFY_BATCH):
            public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        bare.append(time.perf_counter() - start)
    return statistics.median(bare) / statistics.median(ours), statistics.median(ours) / VERIFY_BATCH * 1e6


WARM_TABLE = "bench-feedback"


WarmSubmit = dict[str, float]
"""Median µs of a warm submit per variant: "ours", "bare" and "floor"."""


def warm_submit(rounds: int) -> WarmSubmit:
    """Median µs of three handlers answering the same API Gateway event with the same single DynamoDB
    UpdateItem (the others replay the parameters ours sent first), answered by botocore's Stubber in this
    process, called in turn after warm-up rounds:
    - ours: the submit function's handler (token verification with the public key cached, request
      validation, the write's expression, metrics, logging);
    - bare: an APIGatewayHttpResolver route that parses the body and writes;
    - floor: the bare route with what no submit can skip: Powertools' request validation of the same
      body model and token header, and the token's ES256 signature checked by `cryptography`."""
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types  # noqa: PLC0415
    from botocore.stub import Stubber  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import load_der_public_key  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    from feedback_core import aws, services  # noqa: PLC0415
    from feedback_core.models import TokenRequest  # noqa: PLC0415
    from feedback_core.settings import function_environment  # noqa: PLC0415
    from feedback_core.tokens import TokenIssuer  # noqa: PLC0415
    from local.functions import import_file  # noqa: PLC0415

    event = json.loads((ROOT / "events" / "http_submit_feedback.json").read_text())
    context = LambdaContextStandIn()
    with mock_aws():
        services.reset()
        kms = aws.kms()
        key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        public_key = load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        request = TokenRequest(run_id="run-1", user_id="user-1")
        event["headers"]["x-feedback-token"] = (
            TokenIssuer(kms, key_id, "bench", 3600).issue("bench", request).feedback_token
        )
        environment = {"FEEDBACK_TABLE": WARM_TABLE, "TOKEN_VERIFY_KEY_IDS": key_id, "TOKEN_ISSUER": "bench"}
        submit = import_file("bench_submit_feedback", ROOT / "functions" / "submit_feedback" / "app.py")
        client = aws.dynamodb()
        written: list[dict[str, Any]] = []
        client.meta.events.register(
            "before-parameter-build.dynamodb.UpdateItem",
            lambda params, **_: written.append(dict(params)) if not written else None,
        )
        bare = APIGatewayHttpResolver()

        @bare.post("/v1/feedback")
        def bare_submit() -> Response[str]:
            body = bare.current_event.json_body
            client.update_item(**written[0])  # the very UpdateItem our submit sent
            return Response(201, content_types.APPLICATION_JSON, json.dumps({"outcome": body["outcome"]}))

        floor = _floor_resolver(public_key, lambda: client.update_item(**written[0]))

        def ours() -> dict[str, Any]:
            with function_environment(environment):
                return submit.lambda_handler(event, context)  # type: ignore[no-any-return]

        handlers: dict[str, Callable[[], dict[str, Any]]] = {
            "ours": ours,
            "bare": lambda: bare.resolve(event, context),  # type: ignore[arg-type]
            "floor": lambda: floor.resolve(event, context),
        }
        with Stubber(aws.dynamodb()) as stubber, contextlib.redirect_stdout(io.StringIO()):
            times: dict[str, list[float]] = {name: [] for name in handlers}
            for index in range(-10, rounds):  # ten warm-up rounds (the public key is fetched in the first)
                for name, call in handlers.items():
                    stubber.add_response("update_item", {})
                    start = time.perf_counter()
                    status = call()["statusCode"]
                    elapsed = time.perf_counter() - start
                    assert status == 201, (name, status)
                    if index >= 0:
                        times[name].append(elapsed)
            stubber.assert_no_pending_responses()
    services.reset()
    return {name: statistics.median(values) * 1e6 for name, values in times.items()}


def _floor_resolver(public_key: Any, write: Callable[[], Any]) -> Any:
    """The warm submit's floor: a route validating the submit's body model and token header with
    Powertools, checking the token's ES256 signature with `cryptography`, then writing."""
    from typing import Annotated  # noqa: PLC0415

    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types  # noqa: PLC0415
    from aws_lambda_powertools.event_handler.openapi.params import Body, Header  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    from feedback_core.models import FeedbackSubmission  # noqa: PLC0415

    floor = APIGatewayHttpResolver(enable_validation=True)

    def floor_submit(submission: FeedbackSubmission, token: str) -> Response[str]:
        public_key.verify(_der_signature(token), token.rpartition(".")[0].encode(), ec.ECDSA(hashes.SHA256()))
        write()
        return Response(201, content_types.APPLICATION_JSON, json.dumps({"outcome": submission.outcome}))

    # The annotations as objects: this module's are strings (PEP 563), which the resolver would resolve
    # in the module's namespace, where these local imports are not.
    floor_submit.__annotations__ = {
        "submission": Annotated[FeedbackSubmission, Body()],
        "token": Annotated[str, Header(alias="x-feedback-token")],
        "return": Response[str],
    }
    floor.post("/v1/feedback")(floor_submit)
    return floor


class LambdaContextStandIn:
    function_name = "SubmitFeedbackFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:SubmitFeedbackFunction"
    aws_request_id = "00000000-0000-0000-0000-000000000000"


def _der_signature(token: str) -> bytes:
    """The token's signature as `cryptography` takes it (DER), decoded without the service's checks."""
    from feedback_core.jws import der_signature  # noqa: PLC0415

    segment = token.rsplit(".", 1)[1]
    return der_signature(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def local_startup_seconds(starts: int) -> list[float]:
    """Seconds from launching the local stack (as `make run` does) to a healthy /v1/health, per start."""
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(starts):
            began = time.monotonic()
            with running(Path(tmp), f"start-{start}"):
                seconds.append(time.monotonic() - began)
    return seconds


@dataclass
class Throughput:
    seconds: float
    submits: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.submits / self.seconds


THROUGHPUT_SETUPS = {"DynamoDB Local (default)": ()}


def local_submit_throughput(seconds: float, *options: str, clients: int = CLIENTS) -> Throughput:
    """First submits (one new record each) from ``clients`` concurrent HTTP clients to one local stack."""
    parameters = [arg for name, value in UNTHROTTLED.items() for arg in ("--parameter", f"{name}={value}")]
    with (
        tempfile.TemporaryDirectory() as tmp,
        running(Path(tmp), "throughput", "--quiet", *options, *parameters) as stack,
    ):
        key = stack.credentials()["api_key"]
        result = Throughput(seconds)
        lock = threading.Lock()
        deadline = time.monotonic() + seconds

        def client(number: int) -> None:
            with httpx.Client(base_url=stack.endpoint, timeout=30) as http:
                issued = http.post(
                    "/v1/tokens",
                    headers={"Authorization": f"Bearer {key}"},
                    json={"run_id": f"load-{number}"},
                )
                token = issued.json()["feedback_token"]
                index = 0
                while time.monotonic() < deadline:
                    body = {"outcome": "positive", "user_id": f"user-{number}-{index}"}
                    response = http.post("/v1/feedback", headers={"X-Feedback-Token": token}, json=body)
                    with lock:
                        if response.status_code == 201:
                            result.submits += 1
                        else:
                            result.errors.append(f"{response.status_code} {response.text[:200]}")
                    index += 1

        threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return result


TRACING_ON_IMPORT = "import app\nfrom feedback_core.observability import tracer\ntracer.get()"
"""A function's cold import with tracing on, including the Tracer its first traced call builds."""
BOTO3_IMPORT = "import boto3"


def _template_value(value: Any, parameters: dict[str, Any], name: str) -> str:
    """An environment value of the template: a parameter's default for a `Ref` to one, else a dummy."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
        return str(parameters[value["Ref"]].get("Default", f"dummy-{name.lower()}"))
    return str(value) if isinstance(value, str | int | float) else f"dummy-{name.lower()}"


def lambda_environments() -> dict[str, tuple[Path, dict[str, str], bool]]:
    """Per function folder: (folder, the environment Lambda gives it, whether the template traces it);
    the import path is Lambda's (`bench/lambda_site.py`), for interpreters started by `_seconds`."""
    site = lambda_site()
    template = load_template()
    parameters = template.get("Parameters") or {}
    defaults = (template.get("Globals") or {}).get("Function") or {}
    functions = {}
    for logical_id, declared in template["Resources"].items():
        if declared.get("Type") != "AWS::Serverless::Function":
            continue
        properties = declared["Properties"]
        folder = ROOT / properties["CodeUri"]
        variables = {
            **((defaults.get("Environment") or {}).get("Variables") or {}),
            **((properties.get("Environment") or {}).get("Variables") or {}),
        }
        environment = {name: _template_value(value, parameters, name) for name, value in variables.items()}
        environment.update(
            {
                "PATH": os.environ.get("PATH", ""),
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_SESSION_TOKEN": "bench",
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_LAMBDA_FUNCTION_NAME": logical_id,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", defaults["MemorySize"])),
                "LAMBDA_TASK_ROOT": str(folder),
                "PYTHONPATH": os.pathsep.join(site.path_for(folder)),
            }
        )
        tracing = properties.get("Tracing", defaults.get("Tracing")) == "Active"
        functions[folder.name] = (folder, environment, tracing)
    return dict(sorted(functions.items()))


_WITHOUT_SHUTDOWN = "\nimport os as _os, sys as _sys\n_sys.stdout.flush()\n_os._exit(0)\n"


def _seconds(code: str, folder: Path, environment: dict[str, str], *arguments: str) -> float:
    """CPU seconds (user and system) of a fresh interpreter running ``code``: a cold import is CPU-bound
    once the files are cached, and unlike the wall clock its CPU time hardly moves with the other
    processes of a shared machine. `-S`: no site-packages of this virtualenv, only PYTHONPATH. The
    interpreter ends with `os._exit` once ``code`` is done: a cold start never shuts the interpreter down,
    and tearing down every module took longer than a first request (tens of ms for a function)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(  # noqa: S603 (our code)
        [sys.executable, "-S", "-c", code + _WITHOUT_SHUTDOWN, *arguments],
        cwd=folder,
        env=environment,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


ColdImport = tuple[float, float]
"""(median CPU seconds of a function's cold import, its median divided by that of `import boto3`)."""


FLOOR = "floor: the libraries alone"
FLOOR_IMPORT = """
import botocore.session
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Body
app = APIGatewayHttpResolver(enable_validation=True)
Logger(service="floor"), Metrics(namespace="floor")
"""
"""What every API function imports before any code of the service: botocore (its AWS client), Powertools'
resolver with request validation (pydantic), Logger and Metrics."""
FLOOR_TRACED = (
    FLOOR_IMPORT + 'from aws_lambda_powertools import Tracer\nTracer(patch_modules=("botocore",))\n'
)


def cold_imports(runs: int = COLD_RUNS) -> dict[str, dict[str, ColdImport]]:
    """Per function and tracing (as the template sets it, and off): each run a fresh interpreter imports
    the function, then another imports boto3 alone in the same environment, so drift hits both. The
    FLOOR row imports only the libraries every function is built on (in the submit function's setup)."""
    environments = lambda_environments()
    functions = {
        name: (folder, environment, traced, TRACING_ON_IMPORT, "import app")
        for name, (folder, environment, traced) in environments.items()
    }
    functions[FLOOR] = (*environments["submit_feedback"], FLOOR_TRACED, FLOOR_IMPORT)
    results: dict[str, dict[str, ColdImport]] = {}
    for name, (folder, environment, traced, traced_code, code_off) in functions.items():
        setups = {
            "template": (environment if traced else {**environment, "POWERTOOLS_TRACE_DISABLED": "true"}),
            "off": {**environment, "POWERTOOLS_TRACE_DISABLED": "true"},
        }
        results[name] = {}
        for setup, env in setups.items():
            code = traced_code if setup == "template" and traced else code_off
            _seconds(code, folder, env)  # the first run reads the files from disk
            handler, boto3_alone = [], []
            for _ in range(runs):
                handler.append(_seconds(code, folder, env))
                boto3_alone.append(_seconds(BOTO3_IMPORT, folder, env))
            median = statistics.median(handler)
            results[name][setup] = (median, median / statistics.median(boto3_alone))
    return results


FIRST_SUBMIT = """
import base64, json, sys
import app
from botocore.stub import Stubber
from feedback_core import aws

class Context:
    function_name = "SubmitFeedbackFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:SubmitFeedbackFunction"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

given = json.loads(sys.argv[1])
kms, dynamodb = Stubber(aws.kms()), Stubber(aws.dynamodb())
kms.add_response("get_public_key", {"KeyId": given["key_id"], "PublicKey": base64.b64decode(given["der"])})
dynamodb.add_response("update_item", {})
kms.activate()
dynamodb.activate()
response = app.lambda_handler(given["event"], Context())
assert response["statusCode"] == 201, response
"""
"""A cold start of the submit function to its first answer: import, then one valid submit (one
kms:GetPublicKey and one UpdateItem, answered by botocore's Stubber)."""
BARE_FIRST_WRITE = """
import boto3
from botocore.stub import Stubber
client = boto3.client("dynamodb")
with Stubber(client) as stubber:
    stubber.add_response("update_item", {})
    client.update_item(TableName="t", Key={"pk": {"S": "p"}}, UpdateExpression="SET n = :n",
                       ExpressionAttributeValues={":n": {"N": "1"}})
"""
"""The least a Lambda function that writes can do: import boto3, make a client, one UpdateItem."""


def first_submit_arguments() -> tuple[str, dict[str, str]]:
    """(the child's argument: a valid token's event and the public key, the variables naming that key),
    from a key made in moto."""
    from moto import mock_aws  # noqa: PLC0415

    from feedback_core.models import TokenRequest  # noqa: PLC0415
    from feedback_core.tokens import TokenIssuer  # noqa: PLC0415

    event = json.loads((ROOT / "events" / "http_submit_feedback.json").read_text())
    with mock_aws():
        kms = boto3.client("kms")
        key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        token = TokenIssuer(kms, key_id, "bench", 3600).issue("bench", TokenRequest(run_id="run-1"))
        der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    event["headers"]["x-feedback-token"] = token.feedback_token
    given = {"event": event, "key_id": key_id, "der": base64.b64encode(der).decode()}
    return json.dumps(given), {"TOKEN_VERIFY_KEY_IDS": key_id, "TOKEN_ISSUER": "bench"}


FirstRequest = tuple[float, float, float]
"""(median seconds of a cold start to the first submit's answer, that / `import boto3`, the bare
function's first write / `import boto3`)."""


def cold_first_submit(runs: int = COLD_RUNS) -> dict[str, FirstRequest]:
    """Per tracing setup (as the template sets it, and off): fresh interpreters running FIRST_SUBMIT,
    BARE_FIRST_WRITE and `import boto3` in turn, in the submit function's environment."""
    argument, variables = first_submit_arguments()
    folder, environment, traced = lambda_environments()["submit_feedback"]
    environment = {**environment, **variables}
    setups = {
        "template": {**environment, "_X_AMZN_TRACE_ID": TRACE_HEADER}
        if traced
        else {**environment, "POWERTOOLS_TRACE_DISABLED": "true"},
        "off": {**environment, "POWERTOOLS_TRACE_DISABLED": "true"},
    }
    results = {}
    for setup, env in setups.items():
        ours, bare, boto3_alone = [], [], []
        _seconds(FIRST_SUBMIT, folder, env, argument)
        for _ in range(runs):
            ours.append(_seconds(FIRST_SUBMIT, folder, env, argument))
            bare.append(_seconds(BARE_FIRST_WRITE, folder, env))
            boto3_alone.append(_seconds(BOTO3_IMPORT, folder, env))
        base = statistics.median(boto3_alone)
        results[setup] = (
            statistics.median(ours),
            statistics.median(ours) / base,
            statistics.median(bare) / base,
        )
    return results


TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
"""What Lambda sets in a traced invocation (the X-Ray SDK reads the facade segment from it)."""


@dataclass
class Measurements:
    rounds: int
    results: dict[str, Result]
    startup: list[float]
    throughput: dict[str, Throughput]
    verify: tuple[float, float]
    warm_submit: WarmSubmit
    cold_runs: int
    cold: dict[str, dict[str, ColdImport]]
    first_submit: dict[str, FirstRequest]


def report(measured: Measurements) -> str:
    results, startup, cold, throughput = (
        measured.results,
        measured.startup,
        measured.cold,
        measured.throughput,
    )
    base = results["change a vote (POST /v1/feedback, 200)"][0]
    lines = [
        f"Measured by `make bench` on {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores; requests through the gateway in-process (authorizer, route, function) on "
        f"the template's defaults without throttling, AWS emulated by moto; {measured.rounds} rounds, each "
        f"sending every row's request once (rows interleaved), each answer's status asserted; the "
        f"reference (a vote change) took {base:.1f} ms median here.",
        "",
        "| request | AWS calls per request | median time relative to a vote change | p95 / median |",
        "|---|---|---|---|",
    ]
    for name, (median, p95, per_request) in results.items():
        lines.append(f"| {name} | {per_request:.2f} | {median / base:.2f} | {p95 / median:.2f} |")
    lines += [
        "",
        f"Local stack (`make run` with dependencies installed): healthy `GET /v1/health` after "
        f"{statistics.median(startup):.1f} s (median of {len(startup)} starts; "
        f"{', '.join(f'{value:.1f}' for value in startup)} s).",
        "",
        f"Local stack submit throughput over HTTP, {CLIENTS} concurrent clients, each submit a new record "
        f"(every answer 201 or the row fails), stream consumers running:",
        "",
        "| DynamoDB of the local stack | submits/s | submits | errors |",
        "|---|---|---|---|",
        *(
            f"| {name} | {row.per_second:.0f} | {row.submits} in {row.seconds:g} s | {len(row.errors)} |"
            for name, row in throughput.items()
        ),
        "",
        f"Token verification: {measured.verify[0]:.2f}x the verifications per second of a bare "
        f"`cryptography` ES256 verify of the same signing input and signature ({measured.verify[1]:.0f} µs "
        f"per token: split, strict decoding, header, claims, times, then the signature; batches of "
        f"{VERIFY_BATCH} alternated, medians).",
        "",
        "Warm submit in-process: the same API Gateway event answered with the same single UpdateItem "
        "(botocore's Stubber answers it) by three handlers called in turn after warm-up rounds, "
        f"{measured.rounds} calls each; medians. *Bare*: a Powertools `APIGatewayHttpResolver` route that "
        "parses the body and writes. *Floor*: that route with what no submit can skip, Powertools' request "
        "validation of the same body model and token header and the token's ES256 signature checked by "
        "`cryptography`. *Ours*: the submit function's handler (besides the floor's work: the token's "
        "claims and times, the conditional write's expression, the record returned, logging, metrics).",
        "",
        "| warm submit | median | relative to bare |",
        "|---|---|---|",
        *(
            f"| {name} | {micros:.0f} µs | {micros / measured.warm_submit['bare']:.2f}x |"
            for name, micros in measured.warm_submit.items()
        ),
        "",
        f"Cold import of each function (Lambda's init phase before the handler runs): a fresh interpreter "
        f"(`-S`) with Lambda's import path (the function's folder, the layer's requirements, the runtime's "
        f"boto3: bench/lambda_site.py) and the template's environment (dummy values), its CPU time "
        f"(user + system, steadier than the wall clock on a shared machine), median "
        f"of {measured.cold_runs} runs, divided by the median of "
        f'`python -c "import boto3"` run alternately in the same environment. With tracing on (the '
        f"template's `Tracing: Active`), the "
        f"time includes building Powertools' Tracer, which the first traced call would otherwise do. The "
        f"last row imports only the libraries every API function is built on, none of the service's code: "
        f"botocore, Powertools' resolver with request validation (pydantic), Logger and Metrics, and with "
        f"tracing on the Tracer.",
        "",
        "| function | tracing as the template sets it | tracing off (POWERTOOLS_TRACE_DISABLED) |",
        "|---|---|---|",
    ]
    for name, setups in cold.items():
        cells = [f"{ratio:.2f}x ({seconds * 1000:.0f} ms CPU)" for seconds, ratio in setups.values()]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    first = measured.first_submit
    lines += [
        "",
        "A cold start to the first answer, so that nothing moved from the import into the first request "
        "hides there: the submit function imported, then one valid submit (public key fetched, one "
        "UpdateItem; botocore's Stubber answers), against the same `import boto3`; for scale, the least a "
        "function that writes does (import boto3, make a DynamoDB client, one UpdateItem):",
        "",
        "| cold start to the first answer | tracing as the template sets it | tracing off |",
        "|---|---|---|",
        "| submit_feedback, import + first valid submit | "
        + " | ".join(f"{ratio:.2f}x ({seconds * 1000:.0f} ms CPU)" for seconds, ratio, _ in first.values())
        + " |",
        "| bare function: import boto3 + client + one UpdateItem | "
        + " | ".join(f"{bare:.2f}x" for _, _, bare in first.values())
        + " |",
    ]
    return "\n".join(lines)


def write_report(table: str) -> None:
    with open(REPORT) as handle:
        document = handle.read()
    pattern = re.compile(re.escape(BEGIN) + ".*" + re.escape(END), re.DOTALL)
    with open(REPORT, "w") as handle:
        handle.write(pattern.sub(f"{BEGIN}\n{table}\n{END}", document))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--rounds",
        type=int,
        default=ROUNDS,
        help=f"rounds, each sending every row's request once (default {ROUNDS})",
    )
    parser.add_argument(
        "--starts", type=int, default=STARTS, help=f"local stack starts timed (default {STARTS})"
    )
    parser.add_argument(
        "--cold-runs", type=int, default=COLD_RUNS, help=f"cold imports per function (default {COLD_RUNS})"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=THROUGHPUT_SECONDS,
        help=f"throughput run length (default {THROUGHPUT_SECONDS:g})",
    )
    parser.add_argument(
        "--print-only", action="store_true", help=f"print the results without writing {REPORT}"
    )
    args = parser.parse_args(argv)
    os.environ.update(PROCESS_ENVIRONMENT)
    throughput = {
        name: local_submit_throughput(args.seconds, *options) for name, options in THROUGHPUT_SETUPS.items()
    }
    measured = Measurements(
        rounds=args.rounds,
        results=run(args.rounds),
        startup=local_startup_seconds(args.starts),
        throughput=throughput,
        verify=token_verify_ratio(args.rounds),
        warm_submit=warm_submit(args.rounds),
        cold_runs=args.cold_runs,
        cold=cold_imports(args.cold_runs),
        first_submit=cold_first_submit(args.cold_runs),
    )
    table = report(measured)
    print(table)
    for name, row in throughput.items():
        if row.errors:
            print(
                f"throughput row {name} failed: {len(row.errors)} answers were not 201, e.g. {row.errors[0]}"
            )
            return 1
    if not args.print_only:
        write_report(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
