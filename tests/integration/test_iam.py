"""Every function's IAM grants are exactly the AWS requests its code makes: no fewer (the first real
request would fail with AccessDenied) and no more (least privilege).

Nothing here lists what a function calls. The requests are observed:

1. **Drive.** Every function runs on the template deployed in moto (the ``Api`` harness, each with its
   own environment): every HTTP route, the authorizer with a valid and an unknown key, and both stream
   consumers on the stream's real records, including the paths only failures take when they call AWS
   (an expired record not yet removed by TTL is replaced, partial PutEvents/PublishBatch failures are
   retried, a batch is delivered twice). ``CallRecorder`` records every boto3 call made *while a
   handler runs* (any session: Powertools' parameters utility makes its own), with the function, the
   parameters and the line of project code that made it. Calls the test itself makes (creating a key,
   reading the stream) happen outside handlers and are not recorded.
2. **Prove the drive complete.** ``aws_call_sites`` finds, in the source, every place the code calls a
   client; each must have been reached (or be in ``OPERATOR_ONLY_SITES``), and every trigger the
   template gives a function (route, stream, authorizer) must have invoked it. A new call or route
   therefore fails this test until the scenario reaches it.
3. **Translate.** ``iam_requests`` turns each call into the requests IAM authorizes, by AWS's rules
   (``ACTION_OF``): the action defaults to ``<prefix>:<Operation>`` (the prefix is the client's signing
   name); ``PublishBatch`` is authorized as ``sns:Publish``; a ``TransactWriteItems`` as the
   ``PutItem``/``UpdateItem``/``DeleteItem``/``ConditionCheckItem`` of each item; a Query on an index
   needs the *index* ARN; KMS requests carry their condition keys (``kms:SigningAlgorithm`` ...).
4. **Read the grants** from the deployed stack: each function's role (from Lambda's configuration), its
   inline policies in IAM, its managed policies (from the template: moto ignores ``ManagedPolicyArns``),
   and the key policy of every KMS key. A KMS request is allowed if the key policy allows the role, or
   allows the account and the role's IAM policy allows it, as KMS decides.
5. **Compare**, per function: every request allowed; every grant (action x resource it covers among the
   account's resources, of a type the action acts on) used by a request, and no action/resource pair
   of a statement that covers nothing (GetItem on an index). Actions Lambda itself performs with the
   role are derived from the deployment (``_platform_requests``: reading the stream of an event source
   mapping, sending to its on-failure destination); the managed policies
   ``AWSLambdaBasicExecutionRole`` (logs:*) and ``AWSXRayDaemonWriteAccess`` (xray:*) are Lambda's own
   logging and tracing, outside this check (``PLATFORM_MANAGED_POLICIES``). Anything granted beyond the
   requests on purpose is in ``BROADER_BY_DESIGN`` with its reason.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import botocore.client
import botocore.session
import pytest
from botocore import xform_name
from moto import mock_aws

from feedback_core import services
from feedback_core.models import TokenRequest
from feedback_core.tokens import TokenIssuer
from local.cloud import Stack, deploy_stack
from local.functions import LocalFunction
from local.harness import Harness
from local.streams import StreamReader
from local.template import load_template
from tests.integration.api import FUNCTIONS, PARAMETERS, Api
from tests.integration.test_events import run_stream_functions
from tests.support.handlers import ROOT

# ---------------------------------------------------------------------------------------- AWS's rules

ACTION_OF: dict[tuple[str, str], str] = {
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsns.html (no action
    # of its own: a batch is authorized as sns:Publish)
    ("sns", "PublishBatch"): "sns:Publish",
    # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
}
"""IAM action of an API operation where it is not ``<prefix>:<Operation>`` (Service Authorization
Reference, "API operations ... and the IAM actions they authorize")."""

TRANSACTION_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
"""TransactWriteItems/TransactGetItems are authorized item by item, on each item's table
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html)."""

RESOURCE_TYPES_OF_ACTION: dict[str, frozenset[str]] = {
    "dynamodb:Query": frozenset({"table", "index"}),
    "dynamodb:Scan": frozenset({"table", "index"}),
    "dynamodb:DescribeStream": frozenset({"stream"}),
    "dynamodb:GetRecords": frozenset({"stream"}),
    "dynamodb:GetShardIterator": frozenset({"stream"}),
    "dynamodb:ListStreams": frozenset({"stream"}),
}
"""Resource types an action acts on, where it is not its service's one type below (Service Authorization
Reference: e.g. GetItem acts on a table, never on an index, so a GetItem grant on ``index/*`` grants
nothing)."""
RESOURCE_TYPE_OF_SERVICE = {
    "dynamodb": "table",
    "kms": "key",
    "secretsmanager": "secret",
    "sns": "topic",
    "sqs": "queue",
    "events": "event-bus",
}

STREAM_READ_ACTIONS = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)
"""What Lambda does with the function's role to poll a DynamoDB stream for an event source mapping
(https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html, "Execution role permissions")."""
DESTINATION_ACTIONS = {"sqs": "sqs:SendMessage", "sns": "sns:Publish"}
"""What Lambda does with the function's role to send a failed batch's record to an on-failure destination
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html)."""

PLATFORM_MANAGED_POLICIES = {
    "service-role/AWSLambdaBasicExecutionRole": "logs",
    "AWSXRayDaemonWriteAccess": "xray",
}
"""AWS managed policies used by Lambda itself, not by the code: writing the function's logs (logs:
CreateLogGroup/CreateLogStream/PutLogEvents) and sending its traces (xray:PutTraceSegments ...,
Tracing: Active). They are outside this check; the code must never call these services itself."""

# ------------------------------------------------------------------------------ documented exceptions

BROADER_BY_DESIGN: dict[tuple[str, str], str] = {
    ("previous-token-keys", "kms:GetPublicKey"): (
        "PreviousTokenKeyIds is a list of key ids; CloudFormation cannot turn each into an ARN "
        "(Fn::Join takes no intrinsic delimiter), so the verifiers may read the public key of any key "
        "in the account and region. A public key is public; the key policies of the retired keys decide."
    ),
}
"""(policy name, action) -> why that grant covers resources no code path uses."""

OPERATOR_ONLY_SITES: dict[tuple[str, str], str] = {
    ("layers/core/feedback_core/apikeys.py", "ApiKeyStore.create"): (
        "feedback-operator keys create, with the operator's credentials: no function creates API keys"
    ),
    ("layers/core/feedback_core/apikeys.py", "ApiKeyStore.revoke"): (
        "feedback-operator keys revoke, with the operator's credentials: no function revokes API keys"
    ),
}
"""Client calls in the shared package that no function makes (so no role may allow them)."""

# ------------------------------------------------------------------------------------------ recording

CODE_ROOTS = (ROOT / "layers" / "core" / "feedback_core", ROOT / "functions")
COMPREHENSION_SCOPE = re.compile(r"\.<locals>\.<(?:listcomp|dictcomp|setcomp)>")
"""Python < 3.12 runs comprehensions in frames of their own; 3.12 inlines them (PEP 709)."""


@dataclass(frozen=True)
class Site:
    """A place in the project's code that calls AWS: file, enclosing function, client method."""

    path: str
    function: str
    method: str

    def __str__(self) -> str:
        return f"{self.path}:{self.function} ({self.method})"


@dataclass
class Call:
    function: str
    service: str
    prefix: str
    operation: str
    params: Mapping[str, Any]
    site: Site


def _site(frame: FrameType | None, operation: str) -> Site:
    """The innermost frame of project code: the line that called the client (or Powertools)."""
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if any(path.is_relative_to(root) for root in CODE_ROOTS):
            function = COMPREHENSION_SCOPE.sub("", frame.f_code.co_qualname)
            return Site(path.relative_to(ROOT).as_posix(), function, xform_name(operation))
        frame = frame.f_back
    return Site("<not the project's code>", "", xform_name(operation))


def _trigger(event: Mapping[str, Any]) -> str:
    """What invoked a handler: "authorizer" (an API Gateway authorizer request), the route key of an
    HTTP API request, or the event source of stream records."""
    if event.get("type") == "REQUEST":
        return "authorizer"
    if "routeKey" in event:
        return str(event["routeKey"])
    sources = {record.get("eventSource") for record in event.get("Records", [])}
    return ",".join(sorted(str(source) for source in sources)) or "?"


@dataclass
class CallRecorder:
    """Records every boto3 call made while one of the functions' handlers runs, by function."""

    calls: list[Call] = field(default_factory=list)
    triggers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    """Per function, what invoked it: the route key, "authorizer", or the event source of the records."""
    _running: str | None = None
    _previous: str | None = None
    pending_failures: list[tuple[str, str]] = field(default_factory=list)

    def fail_one_entry_once(self, service: str, operation: str) -> None:
        """The next answer of this batch operation reports its first entry as failed (throttled), as AWS
        does under load, so the code's retry of failed entries runs."""
        self.pending_failures.append((service, operation))

    def of(self, function: str) -> list[Call]:
        return [call for call in self.calls if call.function == function]

    @contextmanager
    def installed(self, registry: dict[str, Any], functions: Iterable[str]) -> Iterator[CallRecorder]:
        original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009
        recorder = self

        def recorded(client: Any, operation: str, params: Any) -> Any:
            function = recorder._running
            if function is None:
                return original(client, operation, params)
            model = client.meta.service_model
            recorder.calls.append(
                Call(
                    function=function,
                    service=model.service_name,
                    prefix=model.signing_name,
                    operation=operation,
                    params=params,
                    site=_site(sys._getframe(1), operation),
                )
            )
            response = original(client, operation, params)
            if (model.service_name, operation) in recorder.pending_failures:
                recorder.pending_failures.remove((model.service_name, operation))
                _fail_first_entry(model.service_name, operation, response)
            return response

        originals = {name: registry[FUNCTIONS[name]] for name in functions}
        for name, function in originals.items():
            registry[FUNCTIONS[name]] = _Recorded(function, self, name)
        setattr(botocore.client.BaseClient, "_make_api_call", recorded)  # noqa: B010 (the one hook)
        try:
            yield self
        finally:
            setattr(botocore.client.BaseClient, "_make_api_call", original)  # noqa: B010
            registry.update({FUNCTIONS[name]: function for name, function in originals.items()})


@dataclass
class _Recorded:
    """The function, its invocations attributed to it by the recorder."""

    function: LocalFunction
    recorder: CallRecorder | None = None
    function_name: str = ""

    @property
    def arn(self) -> str:
        return self.function.arn

    @property
    def environment(self) -> dict[str, str] | None:
        return self.function.environment

    def invoke(self, event: Any) -> Any:
        recorder = self.recorder
        assert recorder is not None
        name = self.function_name
        assert recorder._running is None, f"{name} invoked while {recorder._running} runs"
        if recorder._previous != name:
            services.reset()  # in Lambda, nothing another function cached is in this function's process
        recorder._previous = name
        recorder.triggers[name].add(_trigger(event))
        recorder._running = name
        try:
            return self.function.invoke(event)
        finally:
            recorder._running = None


def _fail_first_entry(service: str, operation: str, response: dict[str, Any]) -> None:
    if (service, operation) == ("events", "PutEvents"):
        response["Entries"][0] = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
        response["FailedEntryCount"] = response.get("FailedEntryCount", 0) + 1
    elif (service, operation) == ("sns", "PublishBatch"):
        entry = response["Successful"].pop(0)
        response.setdefault("Failed", []).append(
            {"Id": entry["Id"], "Code": "Throttled", "SenderFault": False}
        )
    else:
        raise NotImplementedError(f"no partial failure for {service}:{operation}")


# --------------------------------------------------------------------------------- call sites in code


def _code_files() -> list[Path]:
    return sorted([*CODE_ROOTS[0].glob("*.py"), *CODE_ROOTS[1].glob("*/app.py")])


def _client_factories_and_services() -> tuple[set[str], set[str]]:
    """Functions of the code that return an AWS client, and the services of every client made
    (`boto3.client(...)`, or a botocore session's `create_client(...)`)."""
    factories, services = set(), set()
    for path in _code_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Return) and re.search(
                        r"boto3\.client\(|\.create_client\(", ast.unparse(inner)
                    ):
                        factories.add(node.name)
            if isinstance(node, ast.Call) and (
                ast.unparse(node.func) in {"boto3.client", "boto3.resource"}
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "create_client")
            ):
                argument = node.args[0] if node.args else None
                assert isinstance(argument, ast.Constant), f"{path}: boto3 client of a computed service"
                services.add(str(argument.value))
    return factories, services


POWERTOOLS_PARAMETERS = {"get_secret": ("secretsmanager", "get_secret_value")}
"""Powertools' parameters utility: the client call each of its functions makes."""


class _CallSites(ast.NodeVisitor):
    """Calls ``<client>.<operation>(...)``: an operation of a service the code makes clients for, on a
    receiver named like the code's clients (``..client``, ``.._kms``) or returned by a client factory;
    and Powertools' ``parameters.get_*``."""

    def __init__(self, path: str, tree: ast.Module, operations: set[str], factories: set[str]) -> None:
        self.path, self.operations, self.factories = path, operations, factories
        self.scope: list[str] = []
        self.sites: set[Site] = set()
        self.parameters = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "aws_lambda_powertools.utilities"
            for alias in node.names
            if alias.name == "parameters"
        }

    def _scoped(self, name: str, node: ast.AST, *, function: bool) -> None:
        self.scope.append(name)
        if function:
            self.scope.append("<locals>")
        self.generic_visit(node)
        del self.scope[-2 if function else -1 :]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scoped(node.name, node, function=False)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node.name, node, function=True)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._scoped(node.name, node, function=True)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scoped("<lambda>", node, function=True)

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> None:
        self._scoped("<genexpr>", node, function=True)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute):
            receiver, method = node.func.value, node.func.attr
            named_client = re.search(r"(?:client|kms)$", ast.unparse(receiver)) is not None
            made_client = isinstance(receiver, ast.Call) and ast.unparse(receiver.func).split(".")[-1] in (
                self.factories
            )
            if method in self.operations and (named_client or made_client):
                self._add(method)
            elif ast.unparse(receiver) in self.parameters and method.startswith("get"):
                assert method in POWERTOOLS_PARAMETERS, f"{self.path}: map parameters.{method} to its call"
                self._add(POWERTOOLS_PARAMETERS[method][1])
        self.generic_visit(node)

    def _add(self, method: str) -> None:
        scope = self.scope[:-1] if self.scope and self.scope[-1] == "<locals>" else self.scope
        self.sites.add(Site(self.path, ".".join(scope) or "<module>", method))


def aws_call_sites() -> set[Site]:
    """Every place in the functions and the shared package that calls an AWS client."""
    factories, services = _client_factories_and_services()
    session = botocore.session.get_session()
    operations = {
        xform_name(operation)
        for service in services
        for operation in session.get_service_model(service).operation_names
    }
    sites: set[Site] = set()
    for path in _code_files():
        tree = ast.parse(path.read_text())
        visitor = _CallSites(path.relative_to(ROOT).as_posix(), tree, operations, factories)
        visitor.visit(tree)
        sites |= visitor.sites
    return sites


# ------------------------------------------------------------------------------------ IAM requests


@dataclass(frozen=True)
class Request:
    """One authorization IAM makes: an action on a resource, with the request's condition keys."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        extra = "".join(f" [{key}={value}]" for key, value in self.context)
        return f"{self.action} on {self.resource}{extra}"


@dataclass(frozen=True)
class Account:
    partition: str
    region: str
    id: str

    @classmethod
    def of(cls, arn: str) -> Account:
        _, partition, _, region, account, _ = arn.split(":", 5)
        return cls(partition, region, account)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.id}:{resource}"

    @property
    def root(self) -> str:
        return f"arn:{self.partition}:iam::{self.id}:root"


def _dynamodb_arn(account: Account, table: str, index: str | None = None) -> str:
    arn = table if table.startswith("arn:") else account.arn("dynamodb", f"table/{table}")
    return f"{arn}/index/{index}" if index else arn


def iam_requests(call: Call, account: Account) -> list[Request]:
    """The IAM authorizations AWS makes for one API call."""
    params, operation = call.params, call.operation
    action = ACTION_OF.get((call.service, operation), f"{call.prefix}:{operation}")
    if call.service == "dynamodb":
        if operation in {"TransactWriteItems", "TransactGetItems"}:
            requests = []
            for item in params["TransactItems"]:
                ((kind, body),) = item.items()
                requests.append(
                    Request(TRANSACTION_ITEM_ACTIONS[kind], _dynamodb_arn(account, body["TableName"]))
                )
            return requests
        if operation in {"BatchGetItem", "BatchWriteItem"}:
            return [Request(action, _dynamodb_arn(account, table)) for table in params["RequestItems"]]
        return [Request(action, _dynamodb_arn(account, params["TableName"], params.get("IndexName")))]
    if call.service == "kms":
        key = params["KeyId"]
        if "alias/" in key:
            key = boto3.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"]
        resource = key if key.startswith("arn:") else account.arn("kms", f"key/{key}")
        context = tuple(
            (f"kms:{name}", str(params[name]))
            for name in ("SigningAlgorithm", "MessageType")
            if name in params
        )
        return [Request(action, resource, context)]
    if call.service == "secretsmanager":
        secret = params["SecretId"]
        if not secret.startswith("arn:"):
            secret = boto3.client("secretsmanager").describe_secret(SecretId=secret)["ARN"]
        return [Request(action, secret)]
    if call.service == "sns":
        return [Request(action, params["TopicArn"])]
    if call.service == "events" and operation == "PutEvents":
        buses = {entry.get("EventBusName", "default") for entry in params["Entries"]}
        return [
            Request(action, bus if bus.startswith("arn:") else account.arn("events", f"event-bus/{bus}"))
            for bus in sorted(buses)
        ]
    if call.service == "sqs":
        return [Request(action, account.arn("sqs", params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]))]
    raise NotImplementedError(
        f"{call.service}:{operation} (from {call.site}): add its resource rule to iam_requests, from the "
        "Service Authorization Reference"
    )


def resource_type(arn: str) -> str:
    service, resource = arn.split(":", 5)[2], arn.split(":", 5)[5]
    if service == "dynamodb":  # table/<name>, table/<name>/index/<index>, table/<name>/stream/<label>
        parts = resource.split("/")
        return "table" if len(parts) == 2 else parts[2]
    if service == "kms":
        return resource.split("/", 1)[0]
    if service == "events":
        return resource.split("/", 1)[0]
    return RESOURCE_TYPE_OF_SERVICE[service]


def acts_on(action: str, arn: str) -> bool:
    service = action.split(":", 1)[0]
    if service not in RESOURCE_TYPE_OF_SERVICE:
        raise NotImplementedError(f"resource types of {action}: add them to RESOURCE_TYPES_OF_ACTION")
    types = RESOURCE_TYPES_OF_ACTION.get(action, frozenset({RESOURCE_TYPE_OF_SERVICE[service]}))
    return arn.split(":", 3)[2] == service and resource_type(arn) in types


# -------------------------------------------------------------------------------------------- grants


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _as_list(value: Any) -> list[Any]:
    """A policy element that is one value or a list of them, as a list."""
    return list(value) if isinstance(value, list) else [value]


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in _as_list(value))


@dataclass(frozen=True)
class Statement:
    origin: str
    """Where it is: ``<role> policy <name> <Sid or #n>`` or ``key policy <key id> <Sid>``."""
    policy: str
    """The name of its policy (``key policy`` for a key's)."""
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: tuple[str, ...] = ()
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @classmethod
    def parse(
        cls, document: Mapping[str, Any], policy: str, origin: str, this_key: str | None = None
    ) -> list[Statement]:
        statements = []
        for number, raw in enumerate(_as_list(document["Statement"])):
            unsupported = {"NotAction", "NotResource", "NotPrincipal"} & set(raw)
            assert not unsupported, f"{origin}: {unsupported} is not evaluated here; extend Statement"
            principals: tuple[str, ...] = ()
            if "Principal" in raw:
                principal = raw["Principal"]
                principals = (
                    ("*",)
                    if principal == "*"
                    else tuple(f"{kind}:{p}" for kind, value in principal.items() for p in _as_tuple(value))
                )
            resources = _as_tuple(raw.get("Resource", "*"))
            if this_key is not None:  # in a key policy, "*" is the key itself
                resources = tuple(this_key if r == "*" else r for r in resources)
            conditions = tuple(
                (operator, key, tuple(str(v) for v in _as_tuple(values)))
                for operator, entries in (raw.get("Condition") or {}).items()
                for key, values in entries.items()
            )
            statements.append(
                cls(
                    origin=f"{origin} {raw.get('Sid') or f'#{number}'}",
                    policy=policy,
                    effect=raw["Effect"],
                    actions=_as_tuple(raw["Action"]),
                    resources=resources,
                    principals=principals,
                    conditions=conditions,
                )
            )
        return statements

    def covers(self, action: str, resource: str) -> bool:
        return any(_wildcard(p, action, ignore_case=True) for p in self.actions) and any(
            _wildcard(p, resource) for p in self.resources
        )

    def applies(self, request: Request) -> bool:
        if not self.covers(request.action, request.resource):
            return False
        context = dict(request.context)
        for operator, key, values in self.conditions:
            if operator != "StringEquals":
                raise NotImplementedError(f"{self.origin}: condition {operator} is not evaluated here")
            if context.get(key) not in values:
                return False
        return True

    def names(self, *principals: str) -> bool:
        return (
            "*" in self.principals
            or "AWS:*" in self.principals
            or any(f"AWS:{principal}" in self.principals for principal in principals)
        )


@dataclass
class Role:
    function: str
    logical_id: str
    arn: str
    statements: list[Statement]
    """Its IAM policies' statements (inline and customer managed), platform managed policies aside."""
    platform_policies: list[str]
    """The names of its PLATFORM_MANAGED_POLICIES."""


@dataclass
class Deployment:
    """The grants, the resources and Lambda's own requests of a deployed stack, read from AWS (moto)."""

    stack: Stack
    account: Account
    roles: dict[str, Role]
    key_policies: dict[str, list[Statement]]
    """Statements of every KMS key's policy, by key ARN."""
    inventory: set[str]
    """ARNs of the account's tables, indexes, streams, keys, secrets, topics, queues and buses."""
    platform: dict[str, set[Request]]
    """Per function, what Lambda does with its role for its event source mappings."""

    @classmethod
    def read(cls, stack: Stack) -> Deployment:
        account = Account.of(stack.outputs["TokenKeyArn"])
        kms = boto3.client("kms")
        key_policies = {}
        for key in kms.list_keys()["Keys"]:
            document = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
            key_policies[key["KeyArn"]] = Statement.parse(
                document, "key policy", f"key policy {key['KeyId']}", this_key=key["KeyArn"]
            )
        roles = {function: _role(stack, function) for function in FUNCTIONS}
        platform = {function: _platform_requests(stack, function) for function in FUNCTIONS}
        return cls(stack, account, roles, key_policies, _inventory(key_policies), platform)

    def allowing(self, function: str, request: Request) -> list[str]:
        """The statements that allow the request to the function's role, as AWS evaluates them (an
        explicit Deny wins; a KMS key's policy must allow the role itself, or the account and then the
        role's IAM policy too). Empty: AccessDenied."""
        role = self.roles[function]
        identity = [s for s in role.statements if s.applies(request)]
        key_policy = self.key_policies.get(request.resource) if request.action.startswith("kms:") else None
        if request.action.startswith("kms:") and key_policy is None:
            raise AssertionError(f"{request}: not a key of this account, so its key policy is unknown")
        account = (self.account.root, self.account.id)
        in_key = [s for s in key_policy or [] if s.applies(request) and s.names(role.arn, *account)]
        if any(s.effect == "Deny" for s in identity + in_key):
            return []
        identity_allows = [s.origin for s in identity if s.effect == "Allow"]
        if key_policy is None:
            return identity_allows
        direct = [s.origin for s in in_key if s.effect == "Allow" and s.names(role.arn)]
        delegates = any(s.effect == "Allow" and s.names(*account) for s in in_key)
        return direct + (identity_allows if delegates else [])

    def grants(self, function: str) -> list[Statement]:
        """The Allow statements that name the function's role: its IAM policies and key policies."""
        role = self.roles[function]
        in_key_policies = [
            s
            for statements in self.key_policies.values()
            for s in statements
            if s.effect == "Allow" and s.names(role.arn)
        ]
        return [s for s in role.statements if s.effect == "Allow"] + in_key_policies

    def covered(self, statement: Statement) -> set[tuple[str, str]]:
        """(action, resource) pairs the statement allows among this account's resources."""
        pairs = set()
        for pattern in statement.actions:
            for action in _actions_matching(pattern):
                for arn in self.inventory:
                    if acts_on(action, arn) and statement.covers(action, arn):
                        pairs.add((action, arn))
        return pairs


def _policy_document(document: Any) -> Mapping[str, Any]:
    """moto's CloudFormation stores a role's ``Policies`` as the Python repr of the dict, not JSON."""
    if isinstance(document, str):
        try:
            return dict(json.loads(document))
        except json.JSONDecodeError:
            return dict(ast.literal_eval(document))
    return dict(document)


def _role(stack: Stack, function: str) -> Role:
    iam = boto3.client("iam")
    configuration = stack.function_configuration(FUNCTIONS[function])
    for setting in ("VpcConfig", "DeadLetterConfig", "KMSKeyArn", "FileSystemConfigs"):
        value = configuration.get(setting)
        assert not value or (isinstance(value, dict) and not any(value.values())), (
            f"{function} has {setting}: Lambda then needs more actions of the role; add them to "
            "_platform_requests"
        )
    arn = configuration["Role"]
    name = arn.rsplit("/", 1)[-1]
    logical_id = next(lid for lid, physical in stack.resources.items() if physical == name)
    statements: list[Statement] = []
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = _policy_document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
        statements += Statement.parse(document, policy, f"{logical_id} policy {policy}")
    managed = [
        item["Fn::Sub"] if isinstance(item, dict) else str(item)
        for item in stack.template["Resources"][logical_id]["Properties"].get("ManagedPolicyArns", [])
    ]
    for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        managed.append(attached["PolicyArn"])
    platform = []
    for policy_arn in managed:
        aws_managed = re.fullmatch(
            r"arn:[^:]+:iam::aws:policy/(.+)", policy_arn.replace("${AWS::Partition}", "aws")
        )
        if aws_managed and aws_managed[1] in PLATFORM_MANAGED_POLICIES:
            platform.append(aws_managed[1])
            continue
        assert not aws_managed, f"{logical_id}: AWS managed policy {policy_arn} is not evaluated here"
        version = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
        managed_document = iam.get_policy_version(PolicyArn=policy_arn, VersionId=version)["PolicyVersion"]
        statements += Statement.parse(
            _policy_document(managed_document["Document"]), policy_arn, f"{logical_id} {policy_arn}"
        )
    return Role(function, logical_id, arn, statements, platform)


def _platform_requests(stack: Stack, function: str) -> set[Request]:
    """What Lambda itself does with the role: read the stream of each event source mapping and send
    failed batches' records to its on-failure destination."""
    name = stack.resources[FUNCTIONS[function]]
    requests = set()
    for mapping in boto3.client("lambda").list_event_source_mappings(FunctionName=name)[
        "EventSourceMappings"
    ]:
        source = mapping["EventSourceArn"]
        assert ":dynamodb:" in source and "/stream/" in source, f"{function}: event source {source}"
        requests |= {Request(action, source) for action in STREAM_READ_ACTIONS}
        destination = mapping.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination:
            service = destination.split(":")[2]
            requests.add(Request(DESTINATION_ACTIONS[service], destination))
    return requests


def _inventory(key_policies: Mapping[str, Any]) -> set[str]:
    dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
    arns = set(key_policies)
    for table in dynamodb.list_tables()["TableNames"]:
        description = dynamodb.describe_table(TableName=table)["Table"]
        arns.add(description["TableArn"])
        for index in [
            *description.get("GlobalSecondaryIndexes", []),
            *description.get("LocalSecondaryIndexes", []),
        ]:
            arns.add(
                index.get("IndexArn") or f"{description['TableArn']}/index/{index['IndexName']}"
            )  # moto: no IndexArn
        if description.get("LatestStreamArn"):
            arns.add(description["LatestStreamArn"])
    arns |= {secret["ARN"] for secret in boto3.client("secretsmanager").list_secrets()["SecretList"]}
    arns |= {topic["TopicArn"] for topic in boto3.client("sns").list_topics()["Topics"]}
    for url in sqs.list_queues().get("QueueUrls", []):
        arns.add(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )
    arns |= {bus["Arn"] for bus in boto3.client("events").list_event_buses()["EventBuses"]}
    return arns


def _actions_matching(pattern: str) -> set[str]:
    """The IAM actions a pattern names: itself, or for a wildcard every operation of the service (and the
    permission-only actions this module knows) that it matches."""
    if "*" not in pattern and "?" not in pattern:
        return {pattern}
    prefix = pattern.split(":", 1)[0]
    clients = {"dynamodb": ("dynamodb", "dynamodbstreams")}.get(prefix, (prefix,))
    session = botocore.session.get_session()
    known = {
        f"{prefix}:{op}" for client in clients for op in session.get_service_model(client).operation_names
    }
    known |= {*ACTION_OF.values(), *TRANSACTION_ITEM_ACTIONS.values()}
    return {action for action in known if _wildcard(pattern, action, ignore_case=True)}


# -------------------------------------------------------------------------------------------- audit


@dataclass
class Audit:
    deployment: Deployment
    recorder: CallRecorder
    functions: tuple[str, ...]

    def requests(self, function: str) -> set[Request]:
        return {
            request
            for call in self.recorder.of(function)
            for request in iam_requests(call, self.deployment.account)
        }

    def actions(self, function: str) -> set[str]:
        return {request.action for request in self.requests(function)}

    def denied(self) -> list[str]:
        """Requests no statement allows: each would fail with AccessDenied in AWS."""
        problems = []
        for function in self.functions:
            for request in sorted(self.requests(function) | self.deployment.platform[function], key=str):
                if not self.deployment.allowing(function, request):
                    role = self.deployment.roles[function].logical_id
                    problems.append(f"{function} ({role}) is denied {request}")
        return problems

    def unused(self) -> list[str]:
        """Grants no request of the function uses, outside BROADER_BY_DESIGN."""
        problems = []
        for function in self.functions:
            used = {
                (r.action, r.resource) for r in self.requests(function) | self.deployment.platform[function]
            }
            role = self.deployment.roles[function].logical_id
            for statement in self.deployment.grants(function):
                for action_pattern in statement.actions:
                    for resource_pattern in statement.resources:
                        if not self.deployment.covered(
                            replace(statement, actions=(action_pattern,), resources=(resource_pattern,))
                        ):
                            problems.append(
                                f"{function} ({role}): {statement.origin} allows {action_pattern} on "
                                f"{resource_pattern}: no resource there of a type the action acts on"
                            )
                for action, arn in sorted(self.deployment.covered(statement) - used):
                    if (statement.policy, action) in BROADER_BY_DESIGN:
                        continue
                    problems.append(
                        f"{function} ({role}): {statement.origin} allows {action} on {arn}, unused"
                    )
        return problems

    def summary(self) -> str:
        lines = []
        for function in self.functions:
            calls = sorted({f"{c.service}:{c.operation}" for c in self.recorder.of(function)})
            actions = sorted(self.actions(function))
            platform = sorted({r.action for r in self.deployment.platform[function]})
            lines.append(f"{function}: calls {calls} -> actions {actions}; Lambda itself: {platform}")
        return "\n".join(lines)


def template_triggers() -> dict[str, set[str]]:
    """Per function, what the template invokes it with: its HTTP API routes, "aws:dynamodb" for a
    stream, "authorizer" for an HTTP API's Lambda authorizer (in ``_trigger``'s terms)."""
    resources = load_template()["Resources"]
    triggers: dict[str, set[str]] = {}
    for function, logical_id in FUNCTIONS.items():
        triggers[function] = set()
        for event in (resources[logical_id]["Properties"].get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                triggers[function].add(
                    f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}"
                )
            elif event["Type"] == "DynamoDB":
                triggers[function].add("aws:dynamodb")
            else:
                raise NotImplementedError(f"{logical_id}: {event['Type']} events are not driven here")
    by_logical_id = {logical_id: function for function, logical_id in FUNCTIONS.items()}
    for api in resources.values():
        if api["Type"] == "AWS::Serverless::HttpApi":
            for authorizer in ((api["Properties"].get("Auth") or {}).get("Authorizers") or {}).values():
                triggers[by_logical_id[authorizer["FunctionArn"]["Fn::GetAtt"][0]]].add("authorizer")
    return triggers


# ----------------------------------------------------------------------------------------- scenario


@pytest.fixture
def recorder(harness: Harness) -> Iterator[CallRecorder]:
    """Installed inside the strict AWS layer (``strict_aws``, set up first), removed before it."""
    with CallRecorder().installed(harness.functions, FUNCTIONS) as installed:
        yield installed


def _expire(stack: Stack, project: str, run_id: str, user_id: str) -> None:
    """An expired record that TTL has not deleted yet (TTL lags by up to days)."""
    boto3.client("dynamodb").update_item(
        TableName=stack.outputs["FeedbackTableName"],
        Key={"pk": {"S": f"{project}#{run_id}"}, "sk": {"S": user_id}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )


def drive_every_path(api: Api, recorder: CallRecorder) -> None:
    stack = api.stack
    reader = StreamReader(boto3.client("dynamodbstreams"), stack.outputs["FeedbackTableStreamArn"])
    key = api.create_key("acme", "tokens:write", "feedback:read", "feedback:write")

    # authorizer (valid and unknown key) and issue_token
    alice = api.token(key, run_id="run-1", user_id="alice", session_id="s-1", agent="bot")
    unbound = api.token(key, run_id="run-2")
    assert api.call("query", "list_feedback", key="fbk_" + "A" * 43, query={}).status == 401

    # submit_feedback: create, update at a version, read, retract; an expired record replaced
    assert api.submit(alice, {"outcome": "positive", "score": 3, "comment": "fine"}).status == 201
    assert api.submit(alice, {"outcome": "negative"}, headers={"if-match": '"1"'}).status == 200
    own = {"x-feedback-token": alice}
    assert api.call("submit_feedback", "read_own_feedback", headers=own).status == 200
    assert api.submit(unbound, {"outcome": "positive", "user_id": "bob"}).status == 201
    _expire(stack, "acme", "run-2", "bob")
    assert api.submit(unbound, {"outcome": "negative", "user_id": "bob"}).status == 201
    bob = {"x-feedback-token": unbound}
    assert (
        api.call("submit_feedback", "retract_own_feedback", headers=bob, query={"user_id": "bob"}).status
        == 204
    )
    assert api.submit(unbound, {"outcome": "positive", "user_id": "carol", "comment": "ok"}).status == 201

    # the stream: both consumers; the first PutEvents and PublishBatch answers report a failed entry
    recorder.fail_one_entry_once("events", "PutEvents")
    recorder.fail_one_entry_once("sns", "PublishBatch")
    run_stream_functions(api, reader, stats_deliveries=2)
    # (every batch reported no failure: the failed entries were retried and delivered)
    assert not recorder.pending_failures, "the publisher never called PutEvents/PublishBatch"

    # query: every listing (each index), a second page, one record, stats
    for filters in ({}, {"user_id": "alice"}, {"session_id": "s-1"}, {"outcome": "negative", "agent": "bot"}):
        assert api.call("query", "list_feedback", key=key, query=filters).status == 200
    first = api.call("query", "list_feedback", key=key, query={"limit": "1"})
    assert first.body["next_cursor"]
    after = {"limit": "1", "cursor": first.body["next_cursor"]}
    assert api.call("query", "list_feedback", key=key, query=after).status == 200
    run = {"run_id": "run-1"}
    assert api.call("query", "list_run_feedback", key=key, path_params=run, query={}).status == 200
    one = {"run_id": "run-1", "user_id": "alice"}
    assert api.call("query", "read_user_run_feedback", key=key, path_params=one).status == 200
    assert api.call("query", "read_stats", key=key, query={"granularity": "total"}).status == 200

    # admin: remove one record, erase a user (and an admin delete of a record already gone)
    carol = {"run_id": "run-2", "user_id": "carol"}
    assert api.call("admin", "remove_feedback", key=key, path_params=carol).status == 204
    assert api.call("admin", "remove_feedback", key=key, path_params=carol).status == 404
    erased = api.call("admin", "erase_user_feedback", key=key, path_params={"user_id": "alice"})
    assert erased.status == 200
    assert erased.body["deleted"] == 1
    # admin: backend writes, one record (created, updated, an expired one replaced) and a batch
    dave = {"run_id": "run-3", "user_id": "dave"}
    for status in (201, 200):
        body = {"outcome": "positive", "session_id": "s-2"}
        assert api.call("admin", "write_feedback", key=key, path_params=dave, body=body).status == status
    _expire(stack, "acme", "run-3", "dave")
    assert api.call("admin", "write_feedback", key=key, path_params=dave, body={"score": 1}).status == 201
    items = [{"run_id": "run-3", "user_id": "erin", "outcome": "negative"}, {"run_id": "run-3", "score": 1}]
    written = api.call("admin", "write_feedback_batch", key=key, body={"items": items})
    assert [result["status"] for result in written.body["results"]] == ["created", "error"]
    run_stream_functions(api, reader, stats_deliveries=2)  # removals and erasures are events too

    # meta: every route (only the JWKS needs AWS)
    for sample, params in [
        ("jwks", None),
        ("openapi", None),
        ("docs", None),
        ("docs_asset", {"asset": "init.js"}),
        ("health", None),
        ("widget", None),
        ("dashboard", None),
        ("dashboard_asset", {"asset": "dashboard.js"}),
    ]:
        fields: dict[str, Any] = {"headers": {"accept-encoding": None}}
        if params:
            fields["path_params"] = params
        assert api.call("meta", sample, **fields).status == 200


# -------------------------------------------------------------------------------------------- tests


def test_each_role_allows_exactly_what_its_function_calls(api: Api, recorder: CallRecorder) -> None:
    drive_every_path(api, recorder)
    deployment = Deployment.read(api.stack)
    audit = Audit(deployment, recorder, tuple(FUNCTIONS))
    print(audit.summary())  # shown with the failure, or with -s

    # the scenario is complete: every trigger of every function, every place the code calls AWS
    for function, triggers in template_triggers().items():
        missing = sorted(triggers - recorder.triggers[function])
        assert triggers and not missing, f"{function} never invoked by {missing or 'anything'}"
    reached = {call.site for call in recorder.calls}
    in_code = aws_call_sites()
    operator_only = {site for site in in_code if (site.path, site.function) in OPERATOR_ONLY_SITES}
    unreached = sorted(map(str, in_code - reached - operator_only))
    assert not unreached, (
        f"AWS calls in the code that no function made here: {unreached}; drive them in "
        "drive_every_path, or list them in OPERATOR_ONLY_SITES with the reason"
    )
    unseen = sorted(map(str, reached - in_code))
    assert not unseen, f"calls the functions made that aws_call_sites does not find: {unseen}; extend it"
    assert not operator_only & reached, f"a function made an operator-only call: {operator_only & reached}"
    platform_services = set(PLATFORM_MANAGED_POLICIES.values())
    assert not [c for c in recorder.calls if c.prefix in platform_services], "code calls logs/xray itself"

    # every managed policy is Lambda's own logging and tracing
    for function, role in deployment.roles.items():
        assert sorted(role.platform_policies) == sorted(PLATFORM_MANAGED_POLICIES), function

    # the resources the functions reach are encrypted with AWS managed keys, whose key policies let
    # any principal of the account use them through the service: no kms:GenerateDataKey*/Decrypt needed
    _assert_aws_managed_encryption(api.stack, audit)

    # requests ⊆ grants: nothing the code does is denied
    assert not audit.denied(), "\n".join(audit.denied())
    # grants ⊆ requests: nothing granted that no code path uses
    assert not audit.unused(), "\n".join(audit.unused())


def _assert_aws_managed_encryption(stack: Stack, audit: Audit) -> None:
    keys = {
        "AWS::SNS::Topic": "KmsMasterKeyId",
        "AWS::SQS::Queue": "KmsMasterKeyId",
        "AWS::SecretsManager::Secret": "KmsKeyId",
    }
    reached = {
        request.resource
        for function in audit.functions
        for request in audit.requests(function) | audit.deployment.platform[function]
    }
    for logical_id, resource in stack.template["Resources"].items():
        properties = resource.get("Properties") or {}
        if resource["Type"] == "AWS::DynamoDB::Table":
            key = (properties.get("SSESpecification") or {}).get("KMSMasterKeyId")
        elif resource["Type"] in keys:
            key = properties.get(keys[resource["Type"]])
        else:
            continue
        physical = stack.resources[logical_id].rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        if any(physical in arn for arn in reached):
            assert key is None or str(key).startswith("alias/aws/"), (
                f"{logical_id} is encrypted with {key}: the functions that use it need kms:GenerateDataKey* "
                "and kms:Decrypt on that key; add them to the requests derived here"
            )


def test_only_the_issuer_role_can_sign_tokens(stack: Stack) -> None:
    deployment = Deployment.read(stack)
    key_arn = stack.outputs["TokenKeyArn"]
    sign = Request(
        "kms:Sign", key_arn, (("kms:MessageType", "RAW"), ("kms:SigningAlgorithm", "ECDSA_SHA_256"))
    )
    signers = sorted(function for function in FUNCTIONS if deployment.allowing(function, sign))
    assert signers == ["issue_token"]

    # ... whatever IAM policy a role is given: the key policy lets no one but the issuer sign, and gives
    # the account (whose IAM policies could pass it on) nothing that signs or hands out signing
    statements = deployment.key_policies[key_arn]
    signing = [s for s in statements if s.effect == "Allow" and s.covers("kms:Sign", key_arn)]
    assert [s.principals for s in signing] == [(f"AWS:{deployment.roles['issue_token'].arn}",)]
    for action in ("kms:Sign", "kms:CreateGrant", "kms:PutKeyPolicy"):
        holders = [s for s in statements if s.effect == "Allow" and s.covers(action, key_arn)]
        assert all(not s.names("*") for s in holders), action
        if action != "kms:PutKeyPolicy":  # the account administers the key, and may change its policy
            assert not [s for s in holders if s.names(deployment.account.root, deployment.account.id)], action
    for function, role in deployment.roles.items():
        role.statements.append(
            Statement("any IAM policy", "any", "Allow", ("kms:*",), ("*",))
        )  # an over-broad IAM policy on every role
        assert bool(deployment.allowing(function, sign)) == (function == "issue_token"), function
    assert not boto3.client("kms").list_grants(KeyId=key_arn)["Grants"]


def test_retired_token_keys_are_read_as_granted() -> None:
    """With PreviousTokenKeyIds, the verifiers read retired keys' public keys through the conditional
    IAM policy (the retired key's own policy delegates to the account); nothing else is added."""
    verifiers = ("submit_feedback", "meta")
    with mock_aws():
        kms = boto3.client("kms")
        retired = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        stack = deploy_stack(
            stack_name="feedback-rotated", parameters={**PARAMETERS, "PreviousTokenKeyIds": retired}
        )
        api = Api(Harness(stack).serve_api())
        old_token = TokenIssuer(kms, retired, stack.name, 3600).issue(
            "acme", TokenRequest(run_id="run-1", user_id="dana")
        )
        current_token = api.token(api.create_key("acme"), run_id="run-1", user_id="erin")
        with CallRecorder().installed(api.harness.functions, verifiers) as recorder:
            assert api.submit(old_token.feedback_token, {"outcome": "positive"}).status == 201
            assert api.submit(current_token, {"outcome": "negative"}).status == 201
            jwks = api.call("meta", "jwks")
        assert {key["kid"] for key in jwks.body["keys"]} == {retired, stack.outputs["TokenKeyId"]}
        audit = Audit(Deployment.read(stack), recorder, verifiers)
        retired_arn = audit.deployment.account.arn("kms", f"key/{retired}")
        for function in verifiers:
            read = Request("kms:GetPublicKey", retired_arn)
            assert read in audit.requests(function)
            assert audit.deployment.allowing(function, read) == [
                f"{audit.deployment.roles[function].logical_id} policy previous-token-keys #0"
            ]
        assert not audit.denied(), "\n".join(audit.denied())
        # no KMS grant is wider than these reads but the one in BROADER_BY_DESIGN (the verifiers' table
        # grants are used by paths this short scenario does not take: see the test above)
        unused = [line for line in audit.unused() if "kms:" in line]
        assert not unused, "\n".join(unused)
