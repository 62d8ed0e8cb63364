"""DynamoDB Local tier: real DynamoDB semantics (conditions, transactions, indexes, streams). Required:
without Java or the jar it fails; ``FEEDBACK_SKIP_DDBLOCAL=1`` skips it on purpose."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import pytest

from local.ddblocal import DynamoDBLocal
from local.tables import create_tables_from_template
from tests.conftest import Runtime

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["Runtime", "Tables"]


class Tables(NamedTuple):
    client: DynamoDBClient
    names: dict[str, str]


@pytest.fixture
def ddb_tables(ddb_local: DynamoDBLocal) -> Iterator[Tables]:
    """Fresh tables from the template, named ``<unique prefix>-<LogicalId>``; deleted afterwards."""
    client = ddb_local.client()
    names = create_tables_from_template(client, prefix=f"t{uuid.uuid4().hex[:12]}")
    yield Tables(client, names)
    for name in names.values():
        client.delete_table(TableName=name)
