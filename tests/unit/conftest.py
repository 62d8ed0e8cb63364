"""Fixtures of the unit tier: a moto KMS with a P-256 signing key, and a clock tests move by hand."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support.clock import ManualClock


def new_key(kms: Any) -> str:
    return str(kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"])


@pytest.fixture
def kms() -> Iterator[Any]:
    """A KMS client in moto. A test counting calls asks for `aws_calls` after this fixture: moto's mock
    starts a new default session, which the counter must be registered on."""
    with mock_aws():
        yield boto3.client("kms")


@pytest.fixture
def key_id(kms: Any) -> str:
    return new_key(kms)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000)
