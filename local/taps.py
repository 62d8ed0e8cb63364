"""The event taps: queues receiving every event of the bus and every message of the topic (make events)."""

from __future__ import annotations

import json
import logging
from typing import Any

from local.cloud import Stack
from local.template import REGION
from local.worker import PeriodicWorker

log = logging.getLogger("local.taps")

EVENTS_QUEUE = "feedback-events-local"
SNS_QUEUE = "feedback-sns-local"
EVENTS_RULE = "feedback-local-every-event"


def create_event_taps(stack: Stack, sqs: Any, events: Any, sns: Any) -> dict[str, str]:
    """The taps' queues, subscribed to the stack's bus and topic; named as credentials.json gives them."""

    def queue(name: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        return str(url), str(attributes["QueueArn"])

    bus, topic = stack.outputs["EventBusName"], stack.outputs["EventsTopicArn"]
    events_url, arn = queue(EVENTS_QUEUE)
    events.put_rule(
        Name=EVENTS_RULE,
        EventBusName=bus,
        EventPattern=json.dumps({"account": [arn.split(":")[4]]}),  # every event on the bus
        Description="local stack: every event to the feedback-events-local queue",
    )
    events.put_targets(Rule=EVENTS_RULE, EventBusName=bus, Targets=[{"Id": "local-queue", "Arn": arn}])
    sns_url, arn = queue(SNS_QUEUE)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return {
        "event_bus_name": bus,
        "events_topic_arn": topic,
        "events_queue_url": events_url,
        "sns_queue_url": sns_url,
        "events_queue": EVENTS_QUEUE,
        "sns_queue": SNS_QUEUE,
    }


MAX_UNREAD_TAP_MESSAGES = 100


class TapTrimmer(PeriodicWorker):
    """Keeps each tap queue to its newest :data:`MAX_UNREAD_TAP_MESSAGES` unread messages, in moto's
    in-process backend: moto's SendMessage takes time linear in the queue's length (and applies the
    retention period only when someone receives), so an unread tap would slow every event delivery."""

    def __init__(self, queue_urls: list[str], interval: float = 1.0) -> None:
        super().__init__("tap-trimmer", interval)
        self.queues = [url.rsplit("/", 2)[-2:] for url in queue_urls]  # (account, name)
        self.dropped = 0

    def tick(self) -> None:
        from moto.sqs.models import sqs_backends  # noqa: PLC0415 (only with moto in this process)

        for account, name in self.queues:
            queue = sqs_backends[account][REGION].queues.get(name)
            if queue is None:
                continue
            excess = len(queue._messages) - MAX_UNREAD_TAP_MESSAGES
            if excess > 0:
                del queue._messages[:excess]  # in place: a message moto appends meanwhile stays
                if not self.dropped:
                    log.info("%s keeps its newest %d unread events", name, MAX_UNREAD_TAP_MESSAGES)
                self.dropped += excess
