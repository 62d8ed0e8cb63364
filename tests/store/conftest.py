"""Every store test runs twice: on moto and on DynamoDB Local (real DynamoDB semantics)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.tables import create_tables_from_template

ClientFactory = Callable[[], Any]


@pytest.fixture(params=["moto", pytest.param("ddblocal", marks=pytest.mark.ddblocal)])
def dynamodb_client_factory(request: pytest.FixtureRequest) -> Iterator[ClientFactory]:
    """Makes DynamoDB clients of the default boto3 session (so AwsCalls counts them) for one backend."""
    if request.param == "moto":
        with mock_aws():
            yield lambda: boto3.client("dynamodb")
    else:
        endpoint = request.getfixturevalue("ddb_local").endpoint_url
        yield lambda: boto3.client("dynamodb", endpoint_url=endpoint)


@pytest.fixture
def feedback_tables(dynamodb_client_factory: ClientFactory) -> tuple[Any, dict[str, str]]:
    """Fresh tables created from template.yaml's own definitions: (client, logical id → table name)."""
    client = dynamodb_client_factory()
    return client, create_tables_from_template(client, prefix=f"t{uuid.uuid4().hex[:8]}")
