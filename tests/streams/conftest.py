"""A feedback table (from template.yaml) with its stream, a bus and a topic, each draining into SQS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from tests.streams.pipeline import Pipeline, make_pipeline


@pytest.fixture(params=["moto", pytest.param("ddblocal", marks=pytest.mark.ddblocal)])
def pipeline(request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    endpoint = request.getfixturevalue("ddb_local").endpoint_url if request.param == "ddblocal" else None
    with mock_aws():
        yield make_pipeline(endpoint)
