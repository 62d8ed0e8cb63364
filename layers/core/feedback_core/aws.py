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
    from mypy_boto3_kms import KMSClient

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


def reset_clients() -> None:
    """Forget cached clients (tests switch between emulators)."""
    dynamodb.cache_clear()
    kms.cache_clear()
