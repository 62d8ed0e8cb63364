"""boto3 clients, created once per process and reused across invocations.

Endpoints follow the standard AWS configuration (e.g. AWS_ENDPOINT_URL), so the same code talks to AWS,
to moto or to DynamoDB Local.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_sns import SNSClient

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
)


@lru_cache(maxsize=1)
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_CONFIG)


@lru_cache(maxsize=1)
def kms() -> KMSClient:
    return boto3.client("kms", config=_CONFIG)


@lru_cache(maxsize=1)
def eventbridge() -> EventBridgeClient:
    return boto3.client("events", config=_CONFIG)


@lru_cache(maxsize=1)
def sns() -> SNSClient:
    return boto3.client("sns", config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests switch between emulators)."""
    for factory in (dynamodb, kms, eventbridge, sns):
        factory.cache_clear()
