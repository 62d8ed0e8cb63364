"""The event publisher (EventBridge bus and SNS topic), built once per process."""

from __future__ import annotations

from functools import lru_cache

from feedback_core import aws
from feedback_core.events import Publisher
from feedback_core.settings import get_settings


@lru_cache(maxsize=1)
def publisher() -> Publisher:
    settings = get_settings()
    return Publisher(aws.eventbridge(), aws.sns(), settings.event_bus_name, settings.topic_arn)


def reset() -> None:
    publisher.cache_clear()
