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
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: str) -> datetime:
    """Parses an ISO 8601 date or date-time; naive values are taken as UTC."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
