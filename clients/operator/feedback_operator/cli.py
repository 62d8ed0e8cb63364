"""`feedback-operator keys create|revoke`: manage API keys of a stack, with AWS credentials.

The ApiKeys table is found from the stack's outputs (or given directly); only the key's SHA-256 is stored,
and the key itself is printed once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import TypeAdapter, ValidationError

from feedback_core.apikeys import ApiKeyStore
from feedback_core.errors import ServiceError
from feedback_core.fields import ALL_SCOPES, ProjectName

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient

API_KEYS_OUTPUT = "ApiKeysTableName"


def _session(args: argparse.Namespace) -> boto3.session.Session:
    return boto3.session.Session(profile_name=args.profile, region_name=args.region)


def _dynamodb(args: argparse.Namespace) -> DynamoDBClient:
    return _session(args).client("dynamodb", endpoint_url=args.endpoint_url)


def _cloudformation(args: argparse.Namespace) -> CloudFormationClient:
    return _session(args).client("cloudformation", endpoint_url=args.endpoint_url)


def api_keys_table(args: argparse.Namespace) -> str:
    if args.table:
        return str(args.table)
    stacks = _cloudformation(args).describe_stacks(StackName=args.stack)["Stacks"]
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])}
    if API_KEYS_OUTPUT not in outputs:
        raise SystemExit(
            f"stack {args.stack} has no output {API_KEYS_OUTPUT}; is it a feedback service stack?"
        )
    return outputs[API_KEYS_OUTPUT]


def create_key(args: argparse.Namespace) -> int:
    try:
        project = TypeAdapter(ProjectName).validate_python(args.project)
    except ValidationError:
        print(
            "project must be 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit",
            file=sys.stderr,
        )
        return 2
    store = ApiKeyStore(_dynamodb(args), api_keys_table(args))
    secret, key = store.create(project, args.scopes, args.name)
    print(
        json.dumps(
            {"api_key": secret, "key_hash": key.key_hash, "project": key.project, "scopes": key.scopes}
        )
    )
    print("Store this key now: it is not kept and cannot be shown again.", file=sys.stderr)
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    ApiKeyStore(_dynamodb(args), api_keys_table(args)).revoke(args.key_hash)
    print(f"revoked {args.key_hash}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="feedback-operator", description=__doc__)
    target = argparse.ArgumentParser(add_help=False)
    where = target.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="CloudFormation stack name of the deployed service")
    where.add_argument("--table", help="ApiKeys table name, instead of --stack")
    target.add_argument("--region", help="AWS region (default: your AWS configuration)")
    target.add_argument("--profile", help="AWS profile")
    target.add_argument("--endpoint-url", help="AWS endpoint (e.g. the local stack's emulator)")
    commands = root.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", parents=[target], help="create an API key and print it once")
    create.add_argument("--project", required=True)
    create.add_argument("--scopes", nargs="+", choices=ALL_SCOPES, default=list(ALL_SCOPES))
    create.add_argument("--name", default="", help="a label to recognise the key by")
    create.set_defaults(handler=create_key)
    revoke = keys.add_parser("revoke", parents=[target], help="revoke an API key by its hash")
    revoke.add_argument("key_hash")
    revoke.set_defaults(handler=revoke_key)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except (ClientError, BotoCoreError, ServiceError) as error:
        print(f"feedback-operator: {error}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    raise SystemExit(main())
