"""The publisher's JSON and its sizes as AWS counts them, for any event."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from feedback_core.events import (
    MAX_ENTRIES_PER_CALL,
    FeedbackEvent,
    Publisher,
    batches,
    put_events_entry_size,
    sns_entry_size,
    wire_json,
)
from tests.support.aws_limits import event_entry_size, sns_message_size

any_text = st.text(st.characters(codec=None, exclude_categories=()))  # lone surrogates and U+FFFF too
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_wire_json_is_the_same_json_in_utf8_safe_for_sqs(value: Any) -> None:
    text = wire_json(value)
    assert json.loads(text) == value
    text.encode("utf-8")  # no lone surrogate left raw
    assert not any(char in text for char in "\ufffe\uffff")
    assert len(text.encode()) <= len(json.dumps(value).encode())  # never larger than \u escapes


@given(st.dictionaries(any_text, json_values, max_size=5), st.sampled_from(["Submitted", "Erased"]))
def test_entry_sizes_follow_the_documented_formulas(detail: dict[str, Any], kind: str) -> None:
    """Written apart from the strict layer's formulas (tests/support/aws_limits.py); they agree."""
    event = FeedbackEvent(
        detail_type=f"Feedback {kind}",
        time="2026-11-23T08:00:00Z",
        detail=detail | {"event_id": "e", "project": "acme", "feedback": {"outcome": "positive"}},
    )
    publisher = Publisher(None, None, "bus", "arn:topic")  # type: ignore[arg-type]
    bus = publisher._bus_entry(event)
    topic = publisher._topic_entry(event)
    assert bus.size == put_events_entry_size(bus.entry) == event_entry_size(bus.entry)
    assert topic.size == sns_entry_size(topic.entry) == sns_message_size(topic.entry)
    assert bus.size == 14 + len(b"feedback.service") + len(event.detail_type) + len(
        wire_json(event.detail).encode()
    )


@given(st.lists(st.integers(min_value=0, max_value=1000), max_size=60), st.integers(1000, 5000))
def test_batches_keep_order_and_both_limits(sizes: list[int], max_bytes: int) -> None:
    calls = list(batches(list(enumerate(sizes)), lambda item: item[1], max_bytes))
    assert [item for call in calls for item in call] == list(enumerate(sizes))
    for call in calls:
        assert 1 <= len(call) <= MAX_ENTRIES_PER_CALL
        assert sum(size for _, size in call) <= max_bytes
