"""What moto 5.2's CloudFormation lacks for the template, made up for with service API calls.

A type moto cannot create faithfully (``EMULATED_TYPES``) is removed from the template; if its literal
properties suffice it is created before the stack, and references to it become literals. Its properties,
and those moto ignores of other types (``APPLIED_AFTERWARDS``), become hidden ``Fn::ToJsonString``
outputs that moto resolves; after the stack they are applied, and kept in ``Stack.resolved``. A type in
neither list and unknown to moto is an error, so a new resource is never silently dropped.

Not reproduced, having no observable effect in moto (tests/infra checks the template for them):
Lambda ``Architectures``, ``TracingConfig`` and ``LoggingConfig`` (dropped, and no moto API sets them),
IAM ``ManagedPolicyArns`` (moto loads no AWS managed policy), DynamoDB ``SSESpecification``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from local.template import REGION, Template, TemplateError, text

if TYPE_CHECKING:
    from local.cloud import Clients

HIDDEN_OUTPUT_PREFIX = "MotoHarnessProperties"
EVENT_SOURCE_MAPPING = "AWS::Lambda::EventSourceMapping"
_SUB_REFERENCE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.([A-Za-z0-9.]+))?\}")


class DeployError(RuntimeError):
    """moto's CloudFormation did not create the stack."""


@dataclass(frozen=True)
class Physical:
    """What references to a resource resolve to: ``Ref`` and each ``Fn::GetAtt`` attribute."""

    ref: str
    attributes: Mapping[str, str] = field(default_factory=dict)


Properties = Mapping[str, Any]


@dataclass(frozen=True)
class Emulation:
    """``create``: before the stack, from literal properties, then ``configure`` with them resolved;
    ``create_after``: after the stack (the stack cannot reference it), from resolved properties."""

    reason: str
    create: Callable[[Deployment, str, Properties], Physical] | None = None
    configure: Callable[[Deployment, Physical, Properties], None] | None = None
    create_after: Callable[[Deployment, str, Properties], Physical] | None = None


CreatedHook = Callable[["Clients", str, str, Physical], "Physical | None"]
"""``(clients, logical id, resource type, physical) -> replacement or None``: see ``deploy_stack``."""


class Deployment:
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

    def prepare(self) -> Template:
        """The template for moto: emulated resources removed and references to them made literal."""
        from moto.cloudformation.parsing import get_model_map  # noqa: PLC0415 (only with moto)

        document: Template = json.loads(json.dumps(self.template))
        resources: dict[str, Any] = document["Resources"]
        for logical_id, resource in resources.items():
            kind = resource["Type"]
            if kind in EMULATED_TYPES:
                self.emulated[logical_id] = kind
            elif kind not in get_model_map():
                raise TemplateError(
                    f"{logical_id}: moto's CloudFormation does not support {kind}; add an Emulation for it "
                    "to EMULATED_TYPES in local/emulation.py"
                )
        hidden: dict[str, Any] = {}
        for logical_id, kind in self.emulated.items():
            resource = hidden[logical_id] = resources.pop(logical_id)
            create = EMULATED_TYPES[kind].create
            if create is not None:
                physical = create(self, logical_id, resource.get("Properties") or {})
                if self.on_created is not None:
                    physical = self.on_created(self.clients, logical_id, kind, physical) or physical
                self.created[logical_id] = physical
        for logical_id, resource in resources.items():
            applied = APPLIED_AFTERWARDS.get(resource["Type"], {})
            kept = {key: value for key, value in (resource.get("Properties") or {}).items() if key in applied}
            if resource["Type"] == EVENT_SOURCE_MAPPING:
                hidden[logical_id] = resource
            elif kept:
                hidden[logical_id] = {**resource, "Properties": kept}

        document = cast("Template", _substitute(document, self.created))
        outputs = document.setdefault("Outputs", {})
        for logical_id, resource in _substitute(hidden, self.created).items():
            value = {"Fn::ToJsonString": resource.get("Properties") or {}}
            outputs[f"{HIDDEN_OUTPUT_PREFIX}{logical_id}"] = {"Value": value}
        _numbers_as_strings(document)
        return document

    def finish(self, outputs: Mapping[str, str], resources: Mapping[str, str]) -> dict[str, str]:
        """Applies the resolved hidden properties; returns the physical ids of emulated resources."""
        physical_ids = {logical_id: physical.ref for logical_id, physical in self.created.items()}
        for key, value in outputs.items():
            if not key.startswith(HIDDEN_OUTPUT_PREFIX):
                continue
            logical_id = key.removeprefix(HIDDEN_OUTPUT_PREFIX)
            properties = self.resolved[logical_id] = _without_none(json.loads(value))
            if logical_id in self.emulated:
                emulation = EMULATED_TYPES[self.emulated[logical_id]]
                if logical_id in self.created and emulation.configure is not None:
                    emulation.configure(self, self.created[logical_id], properties)
                elif emulation.create_after is not None:
                    physical_ids[logical_id] = emulation.create_after(self, logical_id, properties).ref
                continue
            kind = str(self.template["Resources"][logical_id]["Type"])
            for name, apply in APPLIED_AFTERWARDS.get(kind, {}).items():
                if name in properties:
                    apply(self, resources[logical_id], properties[name])
            if kind == EVENT_SOURCE_MAPPING:
                _detach_event_source_mapping(self.clients, resources[logical_id])
        return physical_ids

    def generated_name(self, logical_id: str) -> str:
        """A CloudFormation-style physical name: ``<stack>-<logical id>-<random suffix>``."""
        return f"{self.stack_name}-{logical_id}-{uuid.uuid4().hex[:12].upper()}"


def _substitute(node: Any, literals: Mapping[str, Physical]) -> Any:
    """``node`` with every Ref, Fn::GetAtt and Fn::Sub reference to ``literals`` replaced by its value (the
    forms SAM's output has: ``Fn::GetAtt [name, attribute]``, and references in a ``Fn::Sub`` string)."""
    if isinstance(node, list):
        return [_substitute(value, literals) for value in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((function, args),) = node.items()
        if function == "Ref" and args in literals:
            return literals[args].ref
        if function == "Fn::GetAtt" and args[0] in literals:
            return literals[args[0]].attributes[args[1]]
        if function == "Fn::Sub" and isinstance(args, str):

            def replace(match: re.Match[str]) -> str:
                physical = literals.get(match[1])
                if physical is None:
                    return match[0]
                return physical.attributes[match[2]] if match[2] else physical.ref

            return {"Fn::Sub": _SUB_REFERENCE.sub(replace, args)}
    return {key: _substitute(value, literals) for key, value in node.items()}


def _numbers_as_strings(document: dict[str, Any]) -> None:
    """moto resolves ``Ref`` to a Number parameter to an int (CloudFormation: a string), which makes
    ``Fn::Equals [!Ref N, "0"]`` false for 0 and puts ints into Lambda environments: declared String."""
    for declaration in (document.get("Parameters") or {}).values():
        if declaration.get("Type") == "Number":
            declaration["Type"] = "String"
            declaration.pop("MinValue", None)
            declaration.pop("MaxValue", None)
            declaration["Default"] = text(declaration["Default"])
            if "AllowedValues" in declaration:
                declaration["AllowedValues"] = [text(value) for value in declaration["AllowedValues"]]


def _without_none(value: Any) -> Any:
    """Drops what ``Ref: AWS::NoValue`` left behind (moto resolves it to null)."""
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value if item is not None]
    return value


def _create_kms_key(deployment: Deployment, logical_id: str, properties: Properties) -> Physical:
    # Created from its literal properties; the others (Description) are only known once the stack is.
    key = deployment.clients.kms.create_key(
        KeySpec=properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
        KeyUsage=properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
    )["KeyMetadata"]
    return Physical(ref=key["KeyId"], attributes={"Arn": key["Arn"], "KeyId": key["KeyId"]})


def _configure_kms_key(deployment: Deployment, key: Physical, properties: Properties) -> None:
    kms = deployment.clients.kms
    kms.put_key_policy(KeyId=key.ref, PolicyName="default", Policy=json.dumps(properties["KeyPolicy"]))
    kms.update_key_description(KeyId=key.ref, Description=properties["Description"])
    if text(properties.get("EnableKeyRotation", False)) == "true":
        kms.enable_key_rotation(KeyId=key.ref)


def _create_secret(deployment: Deployment, logical_id: str, properties: Properties) -> Physical:
    secrets = deployment.clients.secretsmanager
    # GenerateSecretString's fields are GetRandomPassword's parameters.
    value = secrets.get_random_password(**properties["GenerateSecretString"])["RandomPassword"]
    arn = secrets.create_secret(Name=deployment.generated_name(logical_id), SecretString=value)["ARN"]
    return Physical(ref=arn, attributes={"Id": arn})


def _configure_secret(deployment: Deployment, secret: Physical, properties: Properties) -> None:
    secrets = deployment.clients.secretsmanager
    secrets.update_secret(SecretId=secret.ref, Description=properties["Description"])


def _create_layer(deployment: Deployment, logical_id: str, properties: Properties) -> Physical:
    layer = deployment.clients.lambda_.publish_layer_version(
        LayerName=properties["LayerName"],
        Description=properties["Description"],
        Content={"S3Bucket": properties["Content"]["S3Bucket"], "S3Key": properties["Content"]["S3Key"]},
        CompatibleRuntimes=properties["CompatibleRuntimes"],
        CompatibleArchitectures=properties["CompatibleArchitectures"],
    )
    return Physical(ref=layer["LayerVersionArn"], attributes={"LayerVersionArn": layer["LayerVersionArn"]})


def _create_http_api(deployment: Deployment, logical_id: str, properties: Properties) -> Physical:
    """An id only: the local gateway serves the API from its resolved properties (``Stack.resolved``)."""
    api_id = uuid.uuid4().hex[:10]
    endpoint = f"https://{api_id}.execute-api.{REGION}.amazonaws.com"
    return Physical(ref=api_id, attributes={"ApiId": api_id, "ApiEndpoint": endpoint})


def _create_alarm(deployment: Deployment, logical_id: str, properties: Properties) -> Physical:
    """The alarm's properties are PutMetricAlarm's parameters."""
    name = deployment.generated_name(logical_id)
    deployment.clients.cloudwatch.put_metric_alarm(AlarmName=name, **properties)
    return Physical(ref=name)


def _create_topic_policy(deployment: Deployment, logical_id: str, properties: Properties) -> Physical:
    policy = json.dumps(properties["PolicyDocument"])
    for topic in properties["Topics"]:
        deployment.clients.sns.set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=policy
        )
    return Physical(ref=deployment.generated_name(logical_id))


def _apply_ttl(deployment: Deployment, table: str, specification: Properties) -> None:
    enabled = text(specification.get("Enabled", False)) == "true"
    attribute = str(specification["AttributeName"])
    deployment.clients.dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"AttributeName": attribute, "Enabled": enabled}
    )


def _apply_point_in_time_recovery(deployment: Deployment, table: str, specification: Properties) -> None:
    enabled = text(specification.get("PointInTimeRecoveryEnabled", False)) == "true"
    deployment.clients.dynamodb.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": enabled}
    )


def _apply_layers(deployment: Deployment, function_name: str, layers: list[str]) -> None:
    deployment.clients.lambda_.update_function_configuration(FunctionName=function_name, Layers=layers)


EMULATED_TYPES: dict[str, Emulation] = {
    "AWS::KMS::Key": Emulation(
        "moto's CloudFormation ignores KeySpec and KeyUsage and stores KeyPolicy unserialized (DescribeKey "
        "fails): CreateKey, then PutKeyPolicy with the resolved policy",
        create=_create_kms_key,
        configure=_configure_kms_key,
    ),
    "AWS::SecretsManager::Secret": Emulation(
        "not in moto's CloudFormation: CreateSecret, its value from GetRandomPassword",
        create=_create_secret,
        configure=_configure_secret,
    ),
    "AWS::Lambda::LayerVersion": Emulation(
        "moto's CloudFormation layer has no physical id (Ref yields no ARN) and drops "
        "CompatibleArchitectures: PublishLayerVersion",
        create=_create_layer,
    ),
    "AWS::ApiGatewayV2::Api": Emulation(
        "not in moto's CloudFormation; served by the local gateway from its resolved OpenAPI body",
        create=_create_http_api,
    ),
    "AWS::ApiGatewayV2::Stage": Emulation(
        "not in moto's CloudFormation; its resolved throttling is the local gateway's",
        create_after=lambda deployment, logical_id, properties: Physical(ref=properties["StageName"]),
    ),
    "AWS::CloudWatch::Alarm": Emulation(
        "not in moto's CloudFormation: PutMetricAlarm", create_after=_create_alarm
    ),
    "AWS::SNS::TopicPolicy": Emulation(
        "not in moto's CloudFormation: SetTopicAttributes(Policy)", create_after=_create_topic_policy
    ),
}

# Properties moto's CloudFormation ignores, applied to the physical id once the stack exists.
APPLIED_AFTERWARDS: dict[str, dict[str, Callable[[Deployment, str, Any], None]]] = {
    "AWS::DynamoDB::Table": {
        "TimeToLiveSpecification": _apply_ttl,
        "PointInTimeRecoverySpecification": _apply_point_in_time_recovery,
    },
    "AWS::Lambda::Function": {"Layers": _apply_layers},
}


def _detach_event_source_mapping(clients: Clients, mapping_id: str) -> None:
    """Keeps a stream mapping listed in moto's Lambda but unhooked from moto's table, which would invoke the
    function (in Docker) and *empty the shard* on every write: whoever reads ``Stack.event_source_mappings``
    plays Lambda's part. No API does this: moto's in-process backend is edited."""
    from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415 (only with moto)

    mapping = clients.lambda_.get_event_source_mapping(UUID=mapping_id)
    # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>: the template's are DynamoDB streams.
    _, _, _, region, account, table = mapping["EventSourceArn"].split(":", 5)
    backend = dynamodb_backends[account][region].get_table(table.split("/")[1])
    backend.lambda_event_source_mappings.pop(str(mapping["FunctionArn"]), None)
