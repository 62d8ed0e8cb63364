"""Deploys ``template.yaml`` into moto (a server in this process, or ``mock_aws``): the SAM transform, the
code zips in S3, then moto's CloudFormation, with what moto lacks made up for by :mod:`local.emulation`."""

from __future__ import annotations

import functools
import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import boto3

from local import emulation
from local.template import ROOT, Template, load_template, parameter_values, text

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient


# Properties that point at local folders; `sam package` uploads them, so does deploy_stack.
_CODE_PROPERTIES = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}
_ZIP_EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
_ZIP_EXCLUDED_SUFFIXES = (".pyc", ".egg-info")


def code_locations(template: Mapping[str, Any]) -> dict[str, Path]:
    locations: dict[str, Path] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        prop = _CODE_PROPERTIES.get(resource.get("Type", ""))
        value = (resource.get("Properties") or {}).get(prop) if prop else None
        if isinstance(value, str) and not value.startswith("s3://"):
            locations[logical_id] = (ROOT / value).resolve()
    return locations


def transform_template(template: Template, bucket: str, parameters: Mapping[str, Any]) -> Template:
    """The SAM template as plain CloudFormation, its code expected at ``s3://<bucket>/<logical id>.zip``.
    A ``CommaDelimitedList`` parameter is passed as a list, or SAM would make one comma-joined origin."""
    from samtranslator.translator.transform import transform  # type: ignore[import-untyped]  # noqa: PLC0415

    document = json.loads(json.dumps(template))
    for logical_id in code_locations(document):
        resource = document["Resources"][logical_id]
        resource["Properties"][_CODE_PROPERTIES[resource["Type"]]] = f"s3://{bucket}/{logical_id}.zip"
    no_managed_policies = SimpleNamespace(load=dict)  # no iam:ListPolicies: the template names them by ARN
    transformed: Template = transform(document, parameter_values(document, parameters), no_managed_policies)
    return transformed


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


class Clients:
    """boto3 clients of the default session, all sent to ``endpoint_url`` (a moto server) when given,
    whatever ``AWS_ENDPOINT_URL_<SERVICE>`` says (the functions' DynamoDB is DynamoDB Local)."""

    def __init__(self, *, endpoint_url: str | None = None) -> None:
        client: Any = functools.partial(boto3.session.Session().client, endpoint_url=endpoint_url)

        self.cloudformation: CloudFormationClient = client("cloudformation")
        self.s3: S3Client = client("s3")
        self.kms: KMSClient = client("kms")
        self.lambda_: LambdaClient = client("lambda")
        self.dynamodb: DynamoDBClient = client("dynamodb")
        self.secretsmanager: SecretsManagerClient = client("secretsmanager")
        self.sns: SNSClient = client("sns")
        self.cloudwatch: Any = client("cloudwatch")  # no stubs installed


@dataclass
class Stack:
    """A deployed stack: its outputs, its resources' physical ids and the functions' configuration."""

    name: str
    outputs: dict[str, str]
    resources: dict[str, str]  # physical ids, also by SAM ids (CoreLayer)
    template: Template = field(repr=False)  # after the SAM transform
    bucket: str  # the code zips, ``<logical id>.zip``
    emulated: dict[str, str]  # logical id -> why it was not created by moto's CloudFormation
    clients: Clients = field(repr=False)
    code: dict[str, Path] = field(repr=False)  # code folder of each function and layer
    resolved: dict[str, dict[str, Any]] = field(repr=False)
    """Properties of emulated resources (and those moto ignores of others), intrinsics resolved by moto."""

    def resources_of_type(self, resource_type: str) -> list[str]:
        resources = self.template["Resources"].items()
        return [logical_id for logical_id, resource in resources if resource.get("Type") == resource_type]

    @property
    def event_source_mappings(self) -> dict[str, dict[str, Any]]:
        """Resolved properties of the event source mappings, for whoever plays Lambda's part."""
        mappings = self.resources_of_type(emulation.EVENT_SOURCE_MAPPING)
        return {logical_id: self.resolved.get(logical_id, {}) for logical_id in mappings}

    def function_environment(self, logical_id: str) -> dict[str, str]:
        return environment_of(self.function_configuration(logical_id))

    def function_configuration(self, logical_id: str) -> dict[str, Any]:
        return dict(self.clients.lambda_.get_function_configuration(FunctionName=self.resources[logical_id]))


def environment_of(configuration: Mapping[str, Any]) -> dict[str, str]:
    """The environment variables of a GetFunctionConfiguration answer, as Lambda stores them (all strings)."""
    variables = configuration.get("Environment", {}).get("Variables", {})
    return {name: text(value) for name, value in variables.items()}


def deploy_stack(
    clients: Clients | None = None,
    stack_name: str = "feedback-test",
    parameters: Mapping[str, Any] | None = None,
    *,
    on_created: emulation.CreatedHook | None = None,
) -> Stack:
    """Deploys the template into moto. ``parameters``: strings, or a list for a ``CommaDelimitedList``.
    ``on_created`` may replace each resource created before the stack (a persisted KMS key, restored)."""
    clients = clients or Clients()
    parameters = dict(parameters or {})
    source = load_template()

    bucket = re.sub(r"[^a-z0-9-]", "-", f"{stack_name.lower()}-artifacts")[:63].strip("-")
    clients.s3.create_bucket(Bucket=bucket)  # in us-east-1, which takes no LocationConstraint
    code = code_locations(source)
    for logical_id, folder in code.items():
        clients.s3.put_object(Bucket=bucket, Key=f"{logical_id}.zip", Body=zip_directory(folder))

    transformed = transform_template(source, bucket, parameters)
    deployment = emulation.Deployment(clients, stack_name, transformed, on_created)
    moto_template = deployment.prepare()

    cloudformation = clients.cloudformation
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(moto_template),
        Parameters=[
            {"ParameterKey": key, "ParameterValue": ",".join(value) if isinstance(value, list) else value}
            for key, value in parameter_values(source, parameters).items()
            if key in parameters
        ],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    description = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if description["StackStatus"] != "CREATE_COMPLETE":
        raise emulation.DeployError(
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
    outputs = {
        key: value for key, value in outputs.items() if not key.startswith(emulation.HIDDEN_OUTPUT_PREFIX)
    }
    emulated = {
        logical_id: emulation.EMULATED_TYPES[kind].reason for logical_id, kind in deployment.emulated.items()
    }
    return Stack(
        stack_name, outputs, resources, transformed, bucket, emulated, clients, code, deployment.resolved
    )


def _sam_aliases(source: Mapping[str, Any], resources: Mapping[str, str]) -> dict[str, str]:
    """SAM renames some resources (a LayerVersion gets a content hash suffix): keep the SAM id too."""
    aliases: dict[str, str] = {}
    for logical_id in set(source.get("Resources") or {}) - set(resources):
        pattern = re.compile(rf"{re.escape(logical_id)}[0-9a-f]{{10}}")
        renamed = [name for name in resources if pattern.fullmatch(name)]
        if len(renamed) == 1:
            aliases[logical_id] = resources[renamed[0]]
    return aliases
