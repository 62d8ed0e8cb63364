"""`feedbackctl events tail` (`make events`) prints one readable line per event, from the bus queue and the
SNS queue alike."""

from __future__ import annotations

import json

import pytest

from feedbackctl.events import envelope, summary

pytestmark = pytest.mark.sdk

DETAIL = {
    "event_id": "e1",
    "sequence": "7",
    "project": "demo",
    "run_id": "run-1",
    "user_id": "alice",
    "version": 2,
    "actor": "user",
    "previous": {"outcome": "positive"},
}
ENVELOPE = {"source": "feedback.service", "detail-type": "Feedback Retracted", "time": "t", "detail": DETAIL}


def test_bus_message_is_the_envelope() -> None:
    body = json.dumps({"id": "x", "account": "1", **ENVELOPE})
    line = summary("bus", body)
    assert line.startswith("[bus] Feedback Retracted")
    assert "project=demo run=run-1 user=alice outcome=positive version=2 actor=user event_id=e1" in line


def test_sns_notification_carries_the_envelope_and_attributes() -> None:
    notification = {
        "Type": "Notification",
        "Message": json.dumps(ENVELOPE),
        "MessageAttributes": {"event_type": {"Type": "String", "Value": "Retracted"}},
    }
    event, attributes = envelope("sns", json.dumps(notification))
    assert event == ENVELOPE
    assert attributes == {"event_type": "Retracted"}
    assert summary("sns", json.dumps(notification)).endswith("attributes=event_type:Retracted")


def test_unreadable_messages_are_printed_as_they_are() -> None:
    assert summary("bus", "not json") == "[bus] not json"
