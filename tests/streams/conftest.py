"""A feedback table (from template.yaml) with its stream, a bus and a topic, each draining into SQS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from tests.ddblocal.conftest import ddb_local, ddblocal_runtime
from tests.streams.pipeline import Pipeline, make_pipeline

__all__ = ["ddb_local", "ddblocal_runtime"]  # the session's DynamoDB Local, shared with tests/ddblocal


@pytest.fixture(params=["moto", pytest.param("ddblocal", marks=pytest.mark.ddblocal)])
def pipeline(request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    endpoint = request.getfixturevalue("ddb_local").endpoint_url if request.param == "ddblocal" else None
    with mock_aws():
        yield make_pipeline(endpoint)
