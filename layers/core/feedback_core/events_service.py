"""The event publisher (EventBridge bus and SNS topic), built once per process."""

from __future__ import annotations

from functools import lru_cache

from feedback_core import aws
from feedback_core.events import Publisher
from feedback_core.settings import Settings, get_settings


def publisher() -> Publisher:
    return _publisher(get_settings())


@lru_cache(maxsize=8)
def _publisher(settings: Settings) -> Publisher:
    return Publisher(aws.eventbridge(), aws.sns(), settings.event_bus_name, settings.topic_arn)


def reset() -> None:
    _publisher.cache_clear()
