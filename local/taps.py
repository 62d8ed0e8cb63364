"""What the local stack gives its users beside the API: the event taps (queues receiving every event of the
bus and every message of the topic, read by ``make events``) and ``credentials.json``."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from local.cloud import Stack

log = logging.getLogger("local.taps")

EVENTS_QUEUE = "feedback-events-local"
SNS_QUEUE = "feedback-sns-local"
EVENTS_RULE = "feedback-local-every-event"


def create_event_taps(stack: Stack, sqs: Any, events: Any, sns: Any) -> dict[str, str]:
    """The taps' queues, subscribed to the stack's bus and topic; named as credentials.json gives them."""
    taps = dict.fromkeys(("event_bus_name", "events_topic_arn", "events_queue_url", "sns_queue_url"), "")

    def queue(name: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(url), str(attributes["QueueArn"])

    bus = stack.outputs.get("EventBusName")
    if bus:
        url, arn = queue(EVENTS_QUEUE)
        events.put_rule(
            Name=EVENTS_RULE,
            EventBusName=bus,
            EventPattern=json.dumps({"account": [arn.split(":")[4]]}),  # every event on the bus
            Description="local stack: every event to the feedback-events-local queue",
        )
        events.put_targets(Rule=EVENTS_RULE, EventBusName=bus, Targets=[{"Id": "local-queue", "Arn": arn}])
        taps |= {"event_bus_name": bus, "events_queue_url": url}
    else:
        log.warning("the stack has no EventBusName output: no %s queue", EVENTS_QUEUE)
    topic = stack.outputs.get("EventsTopicArn")
    if topic:
        url, arn = queue(SNS_QUEUE)
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        taps |= {"events_topic_arn": topic, "sns_queue_url": url}
    else:
        log.warning("the stack has no EventsTopicArn output: no %s queue", SNS_QUEUE)
    return taps | {"events_queue": EVENTS_QUEUE, "sns_queue": SNS_QUEUE}


def write_credentials(path: Path, document: dict[str, Any]) -> None:
    """Readable by the owner only (it holds an API key), and replaced whole (a reader never sees half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    temporary.replace(path)
