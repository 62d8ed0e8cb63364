"""Time helpers: one timestamp format everywhere (ISO 8601 UTC with milliseconds)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""Returns epoch seconds; injected so tests can move time (e.g. past a token's or record's expiry)."""


def system_clock() -> float:
    """The real time, looked up at each call (so a test can move `time.time`)."""
    return time.time()


def iso_timestamp(epoch_seconds: float) -> str:
    """2026-11-23T08:00:00.123Z"""
    return iso_format(datetime.fromtimestamp(epoch_seconds, tz=UTC))


def iso_format(moment: datetime) -> str:
    """An aware datetime in the service's format, 2026-11-23T08:00:00.123Z (sub-milliseconds dropped)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
