"""A counter of the AWS API calls a request costs (the tests' assertions and the bench's report)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3

from feedback_core import aws


class AwsCalls:
    """Counts the AWS API calls made by clients created after it starts: the functions' (feedback_core's
    botocore session, and the sessions after a reset) and those of the default boto3 session."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        if boto3.DEFAULT_SESSION is None:  # moto's mock_aws drops it; boto3.client() would make a new one
            boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call.*.*", self._record)  # type: ignore[union-attr]
        aws.listen("before-call.*.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name))

    def reset(self) -> None:
        self.calls.clear()

    def count(self, service: str | None = None) -> int:
        return sum(1 for name, _ in self.calls if service is None or name == service)

    def operations(self) -> Counter[str]:
        return Counter(f"{service}:{operation}" for service, operation in self.calls)
