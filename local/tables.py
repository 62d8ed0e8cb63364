"""The template's tables created from their own properties in any DynamoDB (DynamoDB Local, or moto in
tests), so the key schema, indexes, stream and TTL are those that deploy."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from local.template import TEMPLATE_PATH, Resolver, TemplateError, load_template, text

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Table properties of the template not passed to CreateTable, each with why. Any other untranslated
# property is an error, so a new one is never silently lost.
IGNORED_TABLE_PROPERTIES: dict[str, str] = {
    "TableName": "replaced by <prefix>-<LogicalId>, so that tests and stacks can share one database",
    "PointInTimeRecoverySpecification": "UpdateContinuousBackups is unknown to DynamoDB Local",
    "SSESpecification": "no encryption at rest in DynamoDB Local (and its key is a resource of the stack)",
    "DeletionProtectionEnabled": "tests delete their tables",
}
_TRANSLATED = {"KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode"}
_TRANSLATED |= {"ProvisionedThroughput", "StreamSpecification", "TimeToLiveSpecification"}


def table_resources(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    resources = template["Resources"].items()
    return {str(name): resource for name, resource in resources if resource["Type"] == "AWS::DynamoDB::Table"}


def create_tables_from_template(
    client: DynamoDBClient,
    template_path: str | os.PathLike[str] = TEMPLATE_PATH,
    *,
    prefix: str = "local",
    parameters: Mapping[str, Any] | None = None,
    exist_ok: bool = False,
) -> dict[str, str]:
    """Creates every table of the template as ``<prefix>-<LogicalId>``, intrinsic functions resolved with
    ``parameters`` over the defaults; ``exist_ok`` keeps existing tables (a persistent database).
    Returns ``{logical id: table name}`` once every table is ACTIVE."""
    template = load_template(template_path)
    resolver = Resolver(template, parameters, stack_name=prefix)
    names: dict[str, str] = {}
    for logical_id, resource in table_resources(template).items():
        # Ignored properties are dropped before resolving: they may reference other resources.
        given = resource.get("Properties") or {}
        properties = resolver.resolve({k: v for k, v in given.items() if k not in IGNORED_TABLE_PROPERTIES})
        name = f"{prefix}-{logical_id}"
        try:
            client.create_table(**table_request(logical_id, properties, name))
        except client.exceptions.ResourceInUseException:
            if not exist_ok:
                raise
        # DynamoDB Local and moto create a table and its indexes ACTIVE; AWS would take a while.
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        ttl = properties.get("TimeToLiveSpecification") or {}
        if text(ttl.get("Enabled", False)) == "true":
            status = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]["TimeToLiveStatus"]
            if status not in {"ENABLED", "ENABLING"}:  # on already when an existing table is kept
                attribute = str(ttl["AttributeName"])
                client.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
                )
        names[logical_id] = name
    return names


def table_request(logical_id: str, properties: Mapping[str, Any], table_name: str) -> dict[str, Any]:
    """CreateTable arguments for one table's resolved properties (TTL is a separate call)."""
    unknown = set(properties) - _TRANSLATED - set(IGNORED_TABLE_PROPERTIES)
    if unknown:
        raise TemplateError(
            f"{logical_id}: properties {sorted(unknown)} are neither translated nor listed in "
            "IGNORED_TABLE_PROPERTIES (local/tables.py)"
        )
    billing = properties.get("BillingMode", "PROVISIONED")  # CloudFormation's default
    provisioned = billing == "PROVISIONED"
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if provisioned:
        request["ProvisionedThroughput"] = _throughput(properties["ProvisionedThroughput"])
    if properties.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = [
            _index(i, provisioned) for i in properties["GlobalSecondaryIndexes"]
        ]
    if properties.get("StreamSpecification"):
        # CloudFormation enables a stream by its view type alone; the API wants both fields.
        view = properties["StreamSpecification"]["StreamViewType"]
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    return request


def _index(index: Mapping[str, Any], provisioned: bool) -> dict[str, Any]:
    unknown = set(index) - {"IndexName", "KeySchema", "Projection", "ProvisionedThroughput"}
    if unknown:
        raise TemplateError(f"index {index.get('IndexName')}: unsupported properties {sorted(unknown)}")
    result = {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
    if provisioned and "ProvisionedThroughput" in index:
        result["ProvisionedThroughput"] = _throughput(index["ProvisionedThroughput"])
    return result


def _throughput(value: Mapping[str, Any]) -> dict[str, int]:
    return {key: int(value[key]) for key in ("ReadCapacityUnits", "WriteCapacityUnits")}
