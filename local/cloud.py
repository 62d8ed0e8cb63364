"""Deploys ``template.yaml`` into moto: the service's real resources, created by CloudFormation.

Used by the local stack (``make run``: moto server in-process) and by the tests (``mock_aws``).
``deploy_stack`` runs the SAM transform (``samtranslator``), uploads zips of every function and layer
folder to S3 and creates the stack with moto's CloudFormation, so everything runs on the tables, key,
secret and function configurations that the template itself defines::

    with mock_aws():
        stack = deploy_stack(stack_name="feedback-it", parameters={"TimeIndexShards": "3"})
        table = stack.outputs["FeedbackTableName"]
        environment = stack.function_environment("SubmitFeedbackFunction")

    # against a moto server instead (the local stack):
    stack = deploy_stack(Clients(endpoint_url="http://127.0.0.1:5123"), stack_name="feedback-local")

moto 5.2's CloudFormation does not support every resource type and property the template uses. Each
gap is worked around here, and each workaround is listed in ``EMULATED_TYPES`` (resource types
created through their service APIs instead), in ``_APPLIED_AFTERWARDS`` (properties moto ignores,
applied with API calls once the stack exists) or in ``NOT_REPRODUCED`` (properties with no effect in
moto). A resource type in none of these lists and unknown to moto is an error, so a new resource
cannot be silently dropped. Event source mappings are created, but unhooked from moto's DynamoDB
(see ``_detach_event_source_mapping``): whoever reads the stream plays Lambda's part. Two more
differences are corrected for parameters:

- moto resolves ``Ref`` to a ``Number`` parameter to an int (CloudFormation: a string), so Number
  parameters are declared as String for moto (see ``_numbers_as_strings``);
- the SAM transform gets ``CommaDelimitedList`` values as lists, as CloudFormation passes them
  (see ``transform_template``).

How emulation works, for a resource type moto cannot create faithfully:

1. Before the stack: the resource is removed from the template. If it can be created from its
   literal properties (KMS key, secret, HTTP API, layer), it is created through its service API
   and every ``Ref``/``Fn::GetAtt``/``Fn::Sub`` reference to it in the template is replaced by the
   real id or attribute.
2. Its properties become a hidden stack output (``Fn::ToJsonString``), so moto resolves every
   intrinsic function in them exactly as it does for the rest of the template (parameters,
   conditions, ``Fn::GetAtt`` of roles and functions, ...). The same is done for the ignored
   properties of supported resources.
3. After the stack: the resolved properties are applied (key policy, routes, alarms, TTL, ...) and
   the hidden outputs are dropped from ``Stack.outputs``. They stay available, resolved, in
   ``Stack.resolved`` (the local gateway reads the HTTP API's OpenAPI body there, the stream pollers
   the event source mappings).
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import boto3

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"

Template = dict[str, Any]

# Properties that point at local folders; `sam package` uploads them, so does deploy_stack.
_CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}
# Files and folders never shipped in a code zip.
_ZIP_EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
_ZIP_EXCLUDED_SUFFIXES = (".pyc", ".egg-info")

_HIDDEN_OUTPUT_PREFIX = "MotoHarnessProperties"
EVENT_SOURCE_MAPPING = "AWS::Lambda::EventSourceMapping"
_CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.([A-Za-z0-9.]+))?\}")

# Properties that have no observable effect in moto, so the harness does not reproduce them.
# (tests/infra checks the template itself for them.)
NOT_REPRODUCED: dict[str, dict[str, str]] = {
    "AWS::Lambda::Function": {
        "Architectures": "moto's CloudFormation drops it and no moto API can set it afterwards",
        "TracingConfig": "moto's CloudFormation drops it and no moto API can set it afterwards",
        "LoggingConfig": "moto's CloudFormation drops it and no moto API can set it afterwards",
    },
    "AWS::IAM::Role": {
        "ManagedPolicyArns": "moto's CloudFormation ignores it, and moto does not load AWS managed policies",
    },
    "AWS::DynamoDB::Table": {
        "SSESpecification": "encryption at rest is not emulated by moto",
    },
}


class TemplateError(ValueError):
    """The template uses something this harness cannot reproduce in moto."""


class DeployError(RuntimeError):
    """moto's CloudFormation did not create the stack."""


# --------------------------------------------------------------------------------------- template


def load_template(path: str | os.PathLike[str] = TEMPLATE_PATH) -> Template:
    """The template as plain dicts and lists, with short-form tags as CloudFormation sees them.

    cfn-lint's decoder turns ``!Ref X`` into ``{"Ref": "X"}``, ``!Sub`` into ``{"Fn::Sub": ...}`` and
    so on. Its node types are converted to plain ``dict``/``list``/``str``, so callers may edit the
    result freely.
    """
    from cfnlint.decode import cfn_yaml  # type: ignore[import-untyped]  # noqa: PLC0415 (slow import)

    decoded = cfn_yaml.load(str(path))
    plain: Template = json.loads(json.dumps(decoded))
    return plain


def code_locations(template: Mapping[str, Any], base: Path = ROOT) -> dict[str, Path]:
    """Local code folders of the template's functions and layers, by logical id."""
    locations: dict[str, Path] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        prop = _CODE_PROPERTIES.get(resource.get("Type", ""))
        value = (resource.get("Properties") or {}).get(prop) if prop else None
        if isinstance(value, str) and not value.startswith("s3://"):
            locations[logical_id] = (base / value).resolve()
    return locations


def transform_template(
    template: Mapping[str, Any], bucket: str, parameters: Mapping[str, Any] | None = None
) -> Template:
    """The SAM template as plain CloudFormation, its code expected at ``s3://<bucket>/<logical id>.zip``.

    ``parameters`` are the stack's parameter values. They are passed to the transform as
    CloudFormation does: strings, and lists for ``CommaDelimitedList`` parameters (given or default).
    Without that, SAM would resolve e.g. ``AllowOrigins: !Ref AllowedOrigins`` to one
    comma-joined string instead of a list of origins.
    """
    from samtranslator.translator.transform import transform  # type: ignore[import-untyped]  # noqa: PLC0415

    if not (os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")):
        raise RuntimeError("samtranslator needs a region: set AWS_DEFAULT_REGION (e.g. us-east-1)")

    document = json.loads(json.dumps(template))
    for logical_id in code_locations(document):
        resource = document["Resources"][logical_id]
        resource["Properties"][_CODE_PROPERTIES[resource["Type"]]] = f"s3://{bucket}/{logical_id}.zip"
    values = _transform_parameter_values(document, parameters or {})
    transformed: Template = transform(document, values, _NoManagedPolicies())
    return transformed


class _NoManagedPolicies:
    """samtranslator's managed-policy loader, without IAM: the template names managed policies by ARN,
    so no policy name ever needs looking up (the real loader would call iam:ListPolicies)."""

    def load(self) -> dict[str, str]:
        return {}


def _transform_parameter_values(template: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, declaration in (template.get("Parameters") or {}).items():
        if name in given:
            value: Any = given[name]
        elif "Default" in declaration:
            value = declaration["Default"]
        else:
            continue
        if declaration.get("Type") == "CommaDelimitedList" and not isinstance(value, list):
            value = [part.strip() for part in str(value).split(",")]
        values[name] = value if isinstance(value, list) else _text(value)
    return values


def _text(value: Any) -> str:
    """A scalar as CloudFormation passes it around (booleans lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def zip_directory(path: Path) -> bytes:
    """A zip of the folder's files (relative paths, fixed timestamps), without caches and build debris."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(path)
            if file.is_dir() or any(
                part in _ZIP_EXCLUDED_DIRS or part.endswith(_ZIP_EXCLUDED_SUFFIXES) for part in relative.parts
            ):
                continue
            info = zipfile.ZipInfo(relative.as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, file.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ clients


_ClientSource: TypeAlias = boto3.session.Session | Mapping[str, Any] | None
SessionOrClients: TypeAlias = "boto3.session.Session | Mapping[str, Any] | Clients | None"


class Clients:
    """boto3 clients from a session, or from a mapping of service name to client (services missing
    from the mapping get clients of a new boto3 session, as does ``None``).

    ``endpoint_url`` sends every client this object creates to one endpoint (a moto server), whatever
    ``AWS_ENDPOINT_URL_<SERVICE>`` variables say: the deployment must reach moto's DynamoDB even when
    the functions' DynamoDB is DynamoDB Local.
    """

    def __init__(self, source: _ClientSource = None, *, endpoint_url: str | None = None) -> None:
        self._given: Mapping[str, Any] = source if isinstance(source, Mapping) else {}
        self._session = source if isinstance(source, boto3.session.Session) else boto3.session.Session()
        self._endpoint_url = endpoint_url
        self._cache: dict[str, Any] = {}

    def get(self, service: str) -> Any:
        if service not in self._cache:
            client: Any = self._given.get(service)
            if client is None:
                options = {"endpoint_url": self._endpoint_url} if self._endpoint_url else {}
                client = self._session.client(service, **options)  # type: ignore[call-overload]
            self._cache[service] = client
        return self._cache[service]

    @property
    def region(self) -> str:
        return str(self.get("cloudformation").meta.region_name)

    @property
    def cloudformation(self) -> CloudFormationClient:
        return cast("CloudFormationClient", self.get("cloudformation"))

    @property
    def s3(self) -> S3Client:
        return cast("S3Client", self.get("s3"))

    @property
    def kms(self) -> KMSClient:
        return cast("KMSClient", self.get("kms"))

    @property
    def lambda_(self) -> LambdaClient:
        return cast("LambdaClient", self.get("lambda"))

    @property
    def dynamodb(self) -> DynamoDBClient:
        return cast("DynamoDBClient", self.get("dynamodb"))

    @property
    def secretsmanager(self) -> SecretsManagerClient:
        return cast("SecretsManagerClient", self.get("secretsmanager"))

    # (No stubs for these two are installed: boto3-stubs' extras in pyproject.toml do not include them.)
    @property
    def apigatewayv2(self) -> Any:
        return self.get("apigatewayv2")

    @property
    def cloudwatch(self) -> Any:
        return self.get("cloudwatch")

    @property
    def sns(self) -> SNSClient:
        return cast("SNSClient", self.get("sns"))


# -------------------------------------------------------------------------------------------- stack


@dataclass
class Stack:
    """A deployed stack: its outputs, its resources' physical ids and the functions' configuration."""

    name: str
    outputs: dict[str, str]
    resources: dict[str, str]
    """Physical id by logical id (the ids of the transformed template, plus SAM ids such as CoreLayer)."""
    template: Template = field(repr=False)
    """The CloudFormation template that was deployed (after the SAM transform)."""
    bucket: str = ""
    """The S3 bucket holding the code zips (``<logical id>.zip``)."""
    emulated: dict[str, str] = field(default_factory=dict)
    """Logical ids of resources created through service APIs instead of moto's CloudFormation, with why."""
    clients: Clients = field(default_factory=Clients, repr=False)
    code: dict[str, Path] = field(default_factory=dict, repr=False)
    """Local code folder of each function and layer (``CodeUri``/``ContentUri``), by SAM logical id."""
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    """Properties of the emulated resources (and the properties moto ignores of the others), by logical
    id, with every intrinsic function resolved by moto's CloudFormation."""

    def resources_of_type(self, resource_type: str) -> list[str]:
        """Logical ids of the deployed template's resources of one type, in template order."""
        return [
            logical_id
            for logical_id, resource in self.template["Resources"].items()
            if resource.get("Type") == resource_type
        ]

    @property
    def event_source_mappings(self) -> dict[str, dict[str, Any]]:
        """The template's ``AWS::Lambda::EventSourceMapping`` properties (resolved), by logical id.

        moto lists them, but does not act on them (see ``_detach_event_source_mapping``): whoever
        plays Lambda's part (the local stack's pollers, or a test) reads them here.
        """
        return {
            logical_id: self.resolved.get(logical_id, {})
            for logical_id in self.resources_of_type(EVENT_SOURCE_MAPPING)
        }

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The function's environment variables, as Lambda stores them (all strings)."""
        configuration = self.clients.lambda_.get_function_configuration(
            FunctionName=self.resources[logical_id]
        )
        variables = configuration.get("Environment", {}).get("Variables", {})
        return {name: _text(value) for name, value in variables.items()}

    def function_configuration(self, logical_id: str) -> dict[str, Any]:
        """Lambda's GetFunctionConfiguration answer for one of the template's functions."""
        return dict(self.clients.lambda_.get_function_configuration(FunctionName=self.resources[logical_id]))


def deploy_stack(
    session_or_clients: SessionOrClients = None,
    stack_name: str = "feedback-test",
    parameters: Mapping[str, Any] | None = None,
    *,
    template_path: str | os.PathLike[str] = TEMPLATE_PATH,
    on_created: CreatedHook | None = None,
) -> Stack:
    """Deploys the template (in moto: call it inside ``mock_aws()``, or pass clients of a moto server)
    and returns the created stack.

    ``session_or_clients`` is a boto3 session, a mapping ``{"kms": client, ...}`` or a :class:`Clients`;
    by default the clients come from a new default session. ``parameters`` are stack parameter values
    (strings, or a list for a ``CommaDelimitedList``); the template's defaults apply to the others.
    ``on_created(clients, logical_id, resource_type, physical)`` is called for each resource created
    through its service API before the stack, and may return a replacement (the local stack restores
    a persisted KMS key there, so that tokens issued before a restart stay valid).
    """
    clients = session_or_clients if isinstance(session_or_clients, Clients) else Clients(session_or_clients)
    parameters = dict(parameters or {})
    source = load_template(template_path)

    bucket = _artifact_bucket(clients, stack_name)
    code = code_locations(source, Path(template_path).resolve().parent)
    for logical_id, folder in code.items():
        clients.s3.put_object(Bucket=bucket, Key=f"{logical_id}.zip", Body=zip_directory(folder))

    transformed = transform_template(source, bucket, parameters)
    deployment = _Deployment(clients, stack_name, transformed, on_created)
    moto_template = deployment.prepare()

    cloudformation = clients.cloudformation
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(moto_template),
        Parameters=[
            {
                "ParameterKey": key,
                "ParameterValue": ",".join(value) if isinstance(value, list) else _text(value),
            }
            for key, value in parameters.items()
        ],
        Capabilities=cast("Any", _CAPABILITIES),
    )
    description = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if description["StackStatus"] != "CREATE_COMPLETE":
        raise DeployError(
            f"{stack_name}: {description['StackStatus']} {description.get('StackStatusReason', '')}"
        )

    outputs = {item["OutputKey"]: item.get("OutputValue", "") for item in description.get("Outputs", [])}
    resources = {
        item["LogicalResourceId"]: item["PhysicalResourceId"]
        for item in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
        if item.get("LogicalResourceId") and item.get("PhysicalResourceId")
    }
    resources |= deployment.finish(outputs, resources)
    resources |= _sam_aliases(source, resources)
    return Stack(
        name=stack_name,
        outputs={key: value for key, value in outputs.items() if not key.startswith(_HIDDEN_OUTPUT_PREFIX)},
        resources=resources,
        template=transformed,
        bucket=bucket,
        emulated={
            logical_id: EMULATED_TYPES[kind].reason for logical_id, kind in deployment.emulated.items()
        },
        clients=clients,
        code=code,
        resolved=deployment.resolved,
    )


def _artifact_bucket(clients: Clients, stack_name: str) -> str:
    bucket = re.sub(r"[^a-z0-9-]", "-", f"{stack_name.lower()}-artifacts")[:63].strip("-")
    region = clients.region
    if region == "us-east-1":
        clients.s3.create_bucket(Bucket=bucket)
    else:
        clients.s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": cast("Any", region)}
        )
    return bucket


def _sam_aliases(source: Mapping[str, Any], resources: Mapping[str, str]) -> dict[str, str]:
    """SAM renames some resources (a LayerVersion gets a content hash suffix): keep the SAM id too."""
    aliases: dict[str, str] = {}
    for logical_id in source.get("Resources") or {}:
        if logical_id in resources:
            continue
        renamed = [
            name for name in resources if re.fullmatch(rf"{re.escape(logical_id)}[0-9a-f]{{10}}", name)
        ]
        if len(renamed) == 1:
            aliases[logical_id] = resources[renamed[0]]
    return aliases


# ------------------------------------------------------------------------------- moto work-arounds


@dataclass(frozen=True)
class Physical:
    """What references to a resource resolve to: ``Ref`` and each ``Fn::GetAtt`` attribute."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Emulation:
    """How to create a resource type through its service API (``create``: before the stack, from
    literal properties; ``configure``: after the stack, with every intrinsic resolved)."""

    reason: str
    create: Callable[[_Deployment, str, Mapping[str, Any]], Physical] | None = None
    configure: Callable[[_Deployment, str, Mapping[str, Any], Physical | None], Physical | None] | None = None


CreatedHook = Callable[["Clients", str, str, "Physical"], "Physical | None"]
"""``(clients, logical id, resource type, physical) -> replacement or None``: see ``deploy_stack``."""


class _Deployment:
    """One stack being deployed: rewrites the template for moto and applies what moto leaves out."""

    def __init__(
        self, clients: Clients, stack_name: str, template: Template, on_created: CreatedHook | None = None
    ) -> None:
        self.clients = clients
        self.stack_name = stack_name
        self.template = template
        self.on_created = on_created
        self.emulated: dict[str, str] = {}
        self.created: dict[str, Physical] = {}
        self.resolved: dict[str, dict[str, Any]] = {}

    # ---- before the stack

    def prepare(self) -> Template:
        """The template for moto: emulated resources removed and references to them made literal."""
        document: Template = json.loads(json.dumps(self.template))
        resources: dict[str, Any] = document["Resources"]
        supported = _moto_resource_types()
        for logical_id, resource in resources.items():
            kind = resource["Type"]
            if kind in EMULATED_TYPES:
                self.emulated[logical_id] = kind
            elif kind not in supported:
                raise TemplateError(
                    f"{logical_id}: moto's CloudFormation does not support {kind}; add an Emulation for it "
                    "to EMULATED_TYPES in local/cloud.py"
                )
        hidden: dict[str, Any] = {}
        for logical_id, kind in self.emulated.items():
            resource = resources.pop(logical_id)
            emulation = EMULATED_TYPES[kind]
            if emulation.create is not None:
                if "Condition" in resource:
                    raise TemplateError(f"{logical_id}: conditional {kind} resources are not supported here")
                physical = emulation.create(self, logical_id, resource.get("Properties") or {})
                if self.on_created is not None:
                    physical = self.on_created(self.clients, logical_id, kind, physical) or physical
                self.created[logical_id] = physical
            hidden[logical_id] = resource
        for logical_id, resource in resources.items():
            if resource["Type"] in _RECORDED_TYPES:
                hidden[logical_id] = resource
                continue
            applied = _APPLIED_AFTERWARDS.get(resource["Type"], {})
            properties = {
                key: value for key, value in (resource.get("Properties") or {}).items() if key in applied
            }
            if properties:
                hidden[logical_id] = {**resource, "Properties": properties}

        self._check_references(document)
        document = cast("Template", _substitute(document, self.created))
        document["Outputs"] = document.get("Outputs") or {}
        for logical_id, resource in _substitute(hidden, self.created).items():
            output: dict[str, Any] = {"Value": {"Fn::ToJsonString": resource.get("Properties") or {}}}
            if "Condition" in resource:
                output["Condition"] = resource["Condition"]
            document["Outputs"][f"{_HIDDEN_OUTPUT_PREFIX}{logical_id}"] = output
        for resource in resources.values():
            _drop_dependencies(resource, set(self.emulated))
        _numbers_as_strings(document)
        return document

    def _check_references(self, document: Mapping[str, Any]) -> None:
        """Emulated resources created after the stack cannot be referenced by the stack's resources."""
        late = {logical_id for logical_id in self.emulated if logical_id not in self.created}
        for name in _referenced_ids(document) & late:
            raise TemplateError(
                f"{name} ({self.emulated[name]}) is emulated after the stack but is referenced"
            )

    # ---- after the stack

    def finish(self, outputs: Mapping[str, str], resources: Mapping[str, str]) -> dict[str, str]:
        """Applies the resolved hidden properties; returns the physical ids of emulated resources."""
        physical_ids = {logical_id: physical.ref for logical_id, physical in self.created.items()}
        for key, value in outputs.items():
            if not key.startswith(_HIDDEN_OUTPUT_PREFIX):
                continue
            logical_id = key.removeprefix(_HIDDEN_OUTPUT_PREFIX)
            properties = _without_none(json.loads(value))
            self.resolved[logical_id] = properties
            kind = self.emulated.get(logical_id)
            if kind is not None:
                configure = EMULATED_TYPES[kind].configure
                if configure is not None:
                    physical = configure(self, logical_id, properties, self.created.get(logical_id))
                    if physical is not None:
                        physical_ids[logical_id] = physical.ref
                continue
            kind = str(self.template["Resources"][logical_id]["Type"])
            for name, apply in _APPLIED_AFTERWARDS.get(kind, {}).items():
                if name in properties:
                    apply(self, resources[logical_id], properties[name])
            if kind == EVENT_SOURCE_MAPPING:
                _detach_event_source_mapping(self.clients, resources[logical_id])
        return physical_ids

    def generated_name(self, logical_id: str, limit: int = 255) -> str:
        """A CloudFormation-style physical name: ``<stack>-<logical id>-<random suffix>``."""
        suffix = uuid.uuid4().hex[:12].upper()
        return f"{self.stack_name}-{logical_id}"[: limit - len(suffix) - 1] + f"-{suffix}"


def _moto_resource_types() -> frozenset[str]:
    """Resource types moto's CloudFormation can create (its model registry)."""
    from moto.cloudformation.parsing import get_model_map  # noqa: PLC0415

    return frozenset(get_model_map())


def _referenced_ids(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("Ref"), str):
            found.add(node["Ref"])
        attribute = node.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute:
            found.add(str(attribute[0]))
        elif isinstance(attribute, str):
            found.add(attribute.split(".", 1)[0])
        sub = node.get("Fn::Sub")
        text = sub[0] if isinstance(sub, list) and sub else sub
        if isinstance(text, str):
            found |= {match.group(1) for match in _SUB_REFERENCE.finditer(text)}
        for value in node.values():
            found |= _referenced_ids(value)
    elif isinstance(node, list):
        for value in node:
            found |= _referenced_ids(value)
    return found


def _substitute(node: Any, literals: Mapping[str, Physical]) -> Any:
    """``node`` with every Ref, Fn::GetAtt and Fn::Sub reference to ``literals`` replaced by its value."""
    if isinstance(node, list):
        return [_substitute(value, literals) for value in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ref = node.get("Ref")
        if isinstance(ref, str) and ref in literals:
            return literals[ref].ref
        attribute = node.get("Fn::GetAtt")
        if attribute is not None:
            name, _, attr = (
                (attribute[0], "", attribute[1]) if isinstance(attribute, list) else attribute.partition(".")
            )
            if name in literals:
                return _attribute(literals[name], name, attr)
        sub = node.get("Fn::Sub")
        if sub is not None:
            text, variables = (sub[0], sub[1]) if isinstance(sub, list) else (sub, {})
            variables = _substitute(variables, literals)

            def replace(match: re.Match[str]) -> str:
                name, attr = match.group(1), match.group(2)
                if name in variables or name not in literals:
                    return match.group(0)
                return literals[name].ref if attr is None else _attribute(literals[name], name, attr)

            text = _SUB_REFERENCE.sub(replace, text)
            return {"Fn::Sub": [text, variables] if variables else text}
    return {key: _substitute(value, literals) for key, value in node.items()}


def _attribute(physical: Physical, name: str, attribute: str) -> str:
    try:
        return physical.attributes[attribute]
    except KeyError:
        raise TemplateError(f"Fn::GetAtt {name}.{attribute} is not emulated") from None


def _drop_dependencies(resource: dict[str, Any], removed: set[str]) -> None:
    depends = resource.get("DependsOn")
    if depends is None:
        return
    kept = [name for name in ([depends] if isinstance(depends, str) else depends) if name not in removed]
    if kept:
        resource["DependsOn"] = kept
    else:
        del resource["DependsOn"]


def _numbers_as_strings(document: dict[str, Any]) -> None:
    """Declares Number parameters as String.

    CloudFormation resolves ``Ref`` to a Number parameter to a *string*; moto resolves it to an int,
    which makes ``Fn::Equals [!Ref N, "0"]`` false for 0 and puts ints into Lambda environments.
    """
    for declaration in (document.get("Parameters") or {}).values():
        if declaration.get("Type") == "Number":
            declaration["Type"] = "String"
            for key in ("MinValue", "MaxValue"):
                declaration.pop(key, None)
            if "Default" in declaration:
                declaration["Default"] = _text(declaration["Default"])
            if "AllowedValues" in declaration:
                declaration["AllowedValues"] = [_text(value) for value in declaration["AllowedValues"]]


def _without_none(value: Any) -> Any:
    """Drops what ``Ref: AWS::NoValue`` left behind (moto resolves it to null)."""
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value if item is not None]
    return value


def _literal(logical_id: str, properties: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A property that must be known before the stack exists (no intrinsic function)."""
    value = properties.get(name, default)
    if isinstance(value, dict) and any(key == "Ref" or key.startswith("Fn::") for key in value):
        raise TemplateError(f"{logical_id}.{name} must be a literal for the moto harness, not {value}")
    return value


def _integers(values: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """Numeric properties resolved from (string) parameters, as the API wants them."""
    return {key: int(value) if key in names else value for key, value in values.items()}


# ---- KMS keys


def _create_kms_key(deployment: _Deployment, logical_id: str, properties: Mapping[str, Any]) -> Physical:
    key = deployment.clients.kms.create_key(
        KeySpec=_literal(logical_id, properties, "KeySpec", "SYMMETRIC_DEFAULT"),
        KeyUsage=_literal(logical_id, properties, "KeyUsage", "ENCRYPT_DECRYPT"),
        Description=f"{deployment.stack_name} {logical_id}",
    )["KeyMetadata"]
    return Physical(ref=key["KeyId"], attributes={"Arn": key["Arn"], "KeyId": key["KeyId"]})


def _configure_kms_key(
    deployment: _Deployment, logical_id: str, properties: Mapping[str, Any], physical: Physical | None
) -> None:
    assert physical is not None
    kms = deployment.clients.kms
    kms.put_key_policy(KeyId=physical.ref, PolicyName="default", Policy=json.dumps(properties["KeyPolicy"]))
    if "Description" in properties:
        kms.update_key_description(KeyId=physical.ref, Description=properties["Description"])
    if _text(properties.get("EnableKeyRotation", False)) == "true":
        kms.enable_key_rotation(KeyId=physical.ref)
    if _text(properties.get("Enabled", True)) == "false":
        kms.disable_key(KeyId=physical.ref)


# ---- Secrets Manager


_PASSWORD_OPTIONS = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExcludeLowercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


def _create_secret(deployment: _Deployment, logical_id: str, properties: Mapping[str, Any]) -> Physical:
    secrets = deployment.clients.secretsmanager
    generate = _literal(logical_id, properties, "GenerateSecretString")
    if generate is not None:
        options = {key: generate[key] for key in _PASSWORD_OPTIONS if key in generate}
        value = secrets.get_random_password(**options)["RandomPassword"]
        if "SecretStringTemplate" in generate:
            value = json.dumps(
                json.loads(generate["SecretStringTemplate"]) | {generate["GenerateStringKey"]: value}
            )
    else:
        value = _literal(logical_id, properties, "SecretString", "")
    name = _literal(logical_id, properties, "Name") or deployment.generated_name(logical_id, 256)
    arn = secrets.create_secret(Name=name, SecretString=value)["ARN"]
    return Physical(ref=arn, attributes={"Id": arn})


def _configure_secret(
    deployment: _Deployment, logical_id: str, properties: Mapping[str, Any], physical: Physical | None
) -> None:
    assert physical is not None
    if "Description" in properties:
        deployment.clients.secretsmanager.update_secret(
            SecretId=physical.ref, Description=properties["Description"]
        )


# ---- Lambda layers


def _create_layer(deployment: _Deployment, logical_id: str, properties: Mapping[str, Any]) -> Physical:
    content = _literal(logical_id, properties, "Content")
    options: dict[str, Any] = {
        key: properties[key]
        for key in ("CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo")
        if key in properties
    }
    layer = deployment.clients.lambda_.publish_layer_version(
        LayerName=_literal(logical_id, properties, "LayerName") or deployment.generated_name(logical_id, 140),
        Description=str(_literal(logical_id, properties, "Description", "")),
        Content={"S3Bucket": content["S3Bucket"], "S3Key": content["S3Key"]},
        **options,
    )
    return Physical(ref=layer["LayerVersionArn"], attributes={"LayerVersionArn": layer["LayerVersionArn"]})


def _apply_layers(deployment: _Deployment, function_name: str, layers: list[str]) -> None:
    deployment.clients.lambda_.update_function_configuration(FunctionName=function_name, Layers=layers)


# ---- HTTP API


_CORS_KEYS = {
    "allowOrigins": "AllowOrigins",
    "allowHeaders": "AllowHeaders",
    "allowMethods": "AllowMethods",
    "exposeHeaders": "ExposeHeaders",
    "allowCredentials": "AllowCredentials",
    "maxAge": "MaxAge",
}


def _create_http_api(deployment: _Deployment, logical_id: str, properties: Mapping[str, Any]) -> Physical:
    if "Body" not in properties:
        raise TemplateError(
            f"{logical_id}: only APIs defined by an OpenAPI Body (as SAM generates) are emulated"
        )
    api = deployment.clients.apigatewayv2.create_api(Name=deployment.stack_name, ProtocolType="HTTP")
    endpoint = f"https://{api['ApiId']}.execute-api.{deployment.clients.region}.amazonaws.com"
    return Physical(ref=api["ApiId"], attributes={"ApiId": api["ApiId"], "ApiEndpoint": endpoint})


def _configure_http_api(
    deployment: _Deployment, logical_id: str, properties: Mapping[str, Any], physical: Physical | None
) -> None:
    """Routes and integrations from the OpenAPI body, then the Lambda authorizers, route auth and CORS."""
    assert physical is not None
    client = deployment.clients.apigatewayv2
    body: dict[str, Any] = properties["Body"]
    client.reimport_api(ApiId=physical.ref, Body=json.dumps(body))

    authorizers: dict[str, str] = {}
    for name, scheme in (body.get("components", {}).get("securitySchemes") or {}).items():
        settings = scheme.get("x-amazon-apigateway-authorizer")
        if not settings or settings.get("type") != "request":
            raise TemplateError(f"{logical_id}: authorizer {name} is not a Lambda REQUEST authorizer")
        identity = settings.get("identitySource", [])
        created = client.create_authorizer(
            ApiId=physical.ref,
            Name=name,
            AuthorizerType="REQUEST",
            AuthorizerUri=settings["authorizerUri"],
            AuthorizerPayloadFormatVersion=settings.get("authorizerPayloadFormatVersion", "2.0"),
            EnableSimpleResponses=bool(settings.get("enableSimpleResponses", False)),
            AuthorizerResultTtlInSeconds=int(settings.get("authorizerResultTtlInSeconds", 0)),
            IdentitySource=[identity] if isinstance(identity, str) else list(identity),
        )
        authorizers[name] = created["AuthorizerId"]

    routes = {route["RouteKey"]: route["RouteId"] for route in client.get_routes(ApiId=physical.ref)["Items"]}
    for path, operations in (body.get("paths") or {}).items():
        for method, operation in operations.items():
            names = [name for requirement in operation.get("security", []) for name in requirement]
            authorizer = next((authorizers[name] for name in names if name in authorizers), None)
            if authorizer is not None:
                client.update_route(
                    ApiId=physical.ref,
                    RouteId=routes[f"{method.upper()} {path}"],
                    AuthorizationType="CUSTOM",
                    AuthorizerId=authorizer,
                )

    cors = body.get("x-amazon-apigateway-cors")
    update: dict[str, Any] = {"Name": str(body.get("info", {}).get("title", deployment.stack_name))}
    if "description" in body.get("info", {}):
        update["Description"] = body["info"]["description"]
    if cors:
        update["CorsConfiguration"] = {
            _CORS_KEYS[key]: value for key, value in cors.items() if key in _CORS_KEYS
        }
    client.update_api(ApiId=physical.ref, **update)


def _configure_http_api_stage(
    deployment: _Deployment, logical_id: str, properties: Mapping[str, Any], physical: Physical | None
) -> Physical:
    options: dict[str, Any] = {
        key: properties[key] for key in ("AutoDeploy", "StageVariables", "Description") if key in properties
    }
    if "DefaultRouteSettings" in properties:
        settings = properties["DefaultRouteSettings"]
        options["DefaultRouteSettings"] = {
            key: int(value)
            if key == "ThrottlingBurstLimit"
            else float(value)
            if key == "ThrottlingRateLimit"
            else value
            for key, value in settings.items()
        }
    if "AccessLogSettings" in properties:
        options["AccessLogSettings"] = dict(properties["AccessLogSettings"])
    if "Tags" in properties:
        options["Tags"] = dict(properties["Tags"])
    stage = deployment.clients.apigatewayv2.create_stage(
        ApiId=properties["ApiId"], StageName=properties["StageName"], **options
    )
    return Physical(ref=stage["StageName"])


# ---- CloudWatch alarms and SNS topic policies


_ALARM_OPTIONS = (
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


def _configure_alarm(
    deployment: _Deployment, logical_id: str, properties: Mapping[str, Any], physical: Physical | None
) -> Physical:
    name = properties.get("AlarmName") or deployment.generated_name(logical_id)
    options = {key: properties[key] for key in _ALARM_OPTIONS if key in properties}
    options = _integers(options, "Period", "EvaluationPeriods", "DatapointsToAlarm")
    if "Threshold" in options:
        options["Threshold"] = float(options["Threshold"])
    deployment.clients.cloudwatch.put_metric_alarm(AlarmName=name, **options)
    return Physical(ref=name)


def _configure_topic_policy(
    deployment: _Deployment, logical_id: str, properties: Mapping[str, Any], physical: Physical | None
) -> Physical:
    for topic in properties["Topics"]:
        deployment.clients.sns.set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(properties["PolicyDocument"])
        )
    return Physical(ref=deployment.generated_name(logical_id))


# ---- DynamoDB properties moto's CloudFormation ignores


def _apply_ttl(deployment: _Deployment, table: str, specification: Mapping[str, Any]) -> None:
    deployment.clients.dynamodb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={
            "AttributeName": str(specification["AttributeName"]),
            "Enabled": _text(specification.get("Enabled", False)) == "true",
        },
    )


def _apply_point_in_time_recovery(
    deployment: _Deployment, table: str, specification: Mapping[str, Any]
) -> None:
    enabled = _text(specification.get("PointInTimeRecoveryEnabled", False)) == "true"
    deployment.clients.dynamodb.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled}
    )


EMULATED_TYPES: dict[str, Emulation] = {
    "AWS::KMS::Key": Emulation(
        reason="moto's CloudFormation creates every key as SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT (KeySpec and "
        "KeyUsage ignored) and stores KeyPolicy unserialized, which breaks DescribeKey: created with "
        "CreateKey, then PutKeyPolicy with the resolved policy",
        create=_create_kms_key,
        configure=_configure_kms_key,
    ),
    "AWS::SecretsManager::Secret": Emulation(
        reason="not supported by moto's CloudFormation: created with CreateSecret, the value generated "
        "with GetRandomPassword from GenerateSecretString",
        create=_create_secret,
        configure=_configure_secret,
    ),
    "AWS::Lambda::LayerVersion": Emulation(
        reason="moto's CloudFormation layer has no physical id (Ref yields no ARN) and drops "
        "CompatibleArchitectures: published with PublishLayerVersion",
        create=_create_layer,
    ),
    "AWS::ApiGatewayV2::Api": Emulation(
        reason="not supported by moto's CloudFormation: created with CreateApi, then ReimportApi of the "
        "resolved OpenAPI body (routes, integrations), CreateAuthorizer, UpdateRoute and CORS",
        create=_create_http_api,
        configure=_configure_http_api,
    ),
    "AWS::ApiGatewayV2::Stage": Emulation(
        reason="not supported by moto's CloudFormation: created with CreateStage",
        configure=_configure_http_api_stage,
    ),
    "AWS::CloudWatch::Alarm": Emulation(
        reason="not supported by moto's CloudFormation: created with PutMetricAlarm",
        configure=_configure_alarm,
    ),
    "AWS::SNS::TopicPolicy": Emulation(
        reason="not supported by moto's CloudFormation: applied with SetTopicAttributes(Policy)",
        configure=_configure_topic_policy,
    ),
}

# Properties of supported resource types that moto's CloudFormation ignores, applied after the stack:
# {resource type: {property: apply(deployment, physical id, resolved value)}}.
_APPLIED_AFTERWARDS: dict[str, dict[str, Callable[[_Deployment, str, Any], None]]] = {
    "AWS::DynamoDB::Table": {
        "TimeToLiveSpecification": _apply_ttl,
        "PointInTimeRecoverySpecification": _apply_point_in_time_recovery,
    },
    "AWS::Lambda::Function": {"Layers": _apply_layers},
}

# Resource types moto creates, whose properties are also kept, resolved, in ``Stack.resolved``.
_RECORDED_TYPES = frozenset({EVENT_SOURCE_MAPPING})


# ---- Lambda event source mappings


def _detach_event_source_mapping(clients: Clients, mapping_id: str) -> None:
    """Keeps a DynamoDB stream mapping listed in moto's Lambda, but stops moto from acting on it.

    On every write to the table, moto invokes the mapped function (in Docker) and then *empties the
    stream shard*, so no other reader would ever see a record. The local stack's pollers play
    Lambda's part instead, so the mapping is unhooked from moto's table. moto offers no API for
    this: its in-process backend is edited, so the stack must be deployed in this process
    (``mock_aws`` or a ``ThreadedMotoServer``).
    """
    from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415 (only with moto)

    mapping = clients.lambda_.get_event_source_mapping(UUID=mapping_id)
    source = str(mapping.get("EventSourceArn", ""))
    match = re.fullmatch(r"arn:[^:]+:dynamodb:([^:]+):(\d{12}):table/([^/]+)/stream/.+", source)
    if match is None:
        raise TemplateError(
            f"event source mapping {mapping_id}: only DynamoDB streams are supported, not {source!r}"
        )
    region, account, table_name = match.groups()
    try:
        table = dynamodb_backends[account][region].get_table(table_name)
    except Exception as exc:  # moto raises its own ResourceNotFound
        raise DeployError(
            f"table {table_name} is not in this process's moto backend: deploy a stack with event "
            "source mappings in-process (mock_aws or ThreadedMotoServer)"
        ) from exc
    table.lambda_event_source_mappings.pop(str(mapping["FunctionArn"]), None)
