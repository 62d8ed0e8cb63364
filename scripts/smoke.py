"""Smoke test of a deployed feedback service: one feedback record's whole life over HTTP, as a client sees it.

Run it right after `sam deploy` (or against the local stack), with an API key of the stack:

    export FEEDBACK_API_KEY=fbk_...                       # scopes tokens:write and feedback:read
    make smoke API=https://abc123.execute-api.eu-west-1.amazonaws.com
    SMOKE_TOPIC_ARN=arn:aws:sns:...:feedback-feedback-events make smoke API=https://...

Each step prints one line, `ok   <step> (<seconds> s)` or `FAIL <step> (<seconds> s): <what and the response
body>`; the first failure stops the checks. Steps, in order:

  health                  GET /v1/health answers 200 {"status": "ok"}
  issue token             POST /v1/tokens (API key) for a fresh run `smoke-<random>`, user and agent
  subscribe to events     (with a topic) a temporary SQS queue subscribed to the stack's SNS topic
  submit feedback         POST /v1/feedback with the token: 201, version 1
  change feedback         POST /v1/feedback again: 200, version 2, the new values
  read it back            GET /v1/feedback/me: 200, the same record as the change returned
  list it                 GET /v1/feedback?agent=...&start=...&limit=10 (API key) finds version 2
                          (polled: the time index is eventually consistent)
  stats count it          GET /v1/stats?granularity=total&agent=... counts the changed vote
                          (polled: stats follow the table's stream)
  event arrives           (with a topic) the `Feedback Submitted` event of this run reaches the queue
  retract it              DELETE /v1/feedback/me: 204
  confirm it is gone      GET /v1/feedback/me: 404
  remove queue            (with a topic) unsubscribe and delete the temporary queue

Whatever happens, the script cleans up after itself: the temporary subscription and queue are removed, and
feedback it submitted but did not retract is retracted. Subscribers of the stack's bus and topic see the
run's Submitted, Updated and Retracted events (project of the key, agent and run `smoke-<random>`), and the
stats keep a row for that agent, at zero once retracted: give the smoke test a key of its own project
(`feedback-operator keys create --stack <stack> --project smoke --scopes tokens:write feedback:read`).

The event check needs boto3 and AWS credentials (the usual chain: AWS_PROFILE, environment, SSO, ...) that
may create, configure and delete SQS queues (sqs:CreateQueue, GetQueueAttributes, SetQueueAttributes,
ReceiveMessage, DeleteMessage, DeleteQueue) and subscribe to the topic (sns:Subscribe, Unsubscribe,
GetSubscriptionAttributes). The queue is made in the topic's region; AWS_ENDPOINT_URL points boto3 at
another endpoint, such as the local stack's AWS emulator (`aws_endpoint_url` in .local/credentials.json).

Environment: FEEDBACK_API_KEY (required), SMOKE_TOPIC_ARN (instead of --topic-arn).
Exit status: 0 when every step passed, 1 when one failed (one line on stderr says which and why),
2 for a usage error.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

API_KEY_ENV = "FEEDBACK_API_KEY"
TOPIC_ENV = "SMOKE_TOPIC_ARN"
TOPIC_ARN = re.compile(r"^arn:(?P<partition>[a-z-]+):sns:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):[\w-]+$")
SUBMITTED = "Feedback Submitted"
BODY_SHOWN = 600
T = TypeVar("T")


class StepFailed(Exception):
    """One step did not do what the service promises; `reason` is one line, `detail` what came back."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class UsageError(Exception):
    """The command line or the environment is incomplete (exit status 2)."""


@dataclass(frozen=True)
class Options:
    api: str
    api_key: str
    topic_arn: str | None
    timeout: float
    event_timeout: float
    request_timeout: float


def one_line(text: str, limit: int = BODY_SHOWN) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + " ..."


def answer(response: httpx.Response, expected: int) -> Any:
    """The JSON body of a response with the expected status, else StepFailed showing what came instead."""
    request = f"{response.request.method} {response.request.url.path}"
    if response.status_code != expected:
        raise StepFailed(
            f"{request} answered {response.status_code}, expected {expected}", one_line(response.text)
        )
    if expected == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as error:
        raise StepFailed(f"{request} answered {expected} without JSON", one_line(response.text)) from error


def poll(check: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T | None:
    """Calls check until it returns something (bounded by timeout); None if it never did."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a compact JWS, unverified (the smoke test only needs the project to filter events)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


class EventWatch:
    """A temporary SQS queue subscribed to the stack's SNS topic, to see one run's events arrive."""

    def __init__(self, topic_arn: str, name: str) -> None:
        import boto3  # noqa: PLC0415  (only the event check needs boto3)

        match = TOPIC_ARN.match(topic_arn)
        if match is None:  # checked with the options already
            raise ValueError(f"not an SNS topic ARN: {topic_arn}")
        self.topic_arn = topic_arn
        self.name = name
        session = boto3.session.Session(region_name=match["region"])
        self.sqs: SQSClient = session.client("sqs")
        self.sns: SNSClient = session.client("sns")
        self.queue_url: str | None = None
        self.subscription_arn: str | None = None

    def start(self, project: str | None, settle: float) -> str:
        """Creates the queue (SNS may send to it) and the subscription; returns what was set up."""
        self.queue_url = self.sqs.create_queue(
            QueueName=self.name,
            Attributes={"MessageRetentionPeriod": "600", "SqsManagedSseEnabled": "true"},
        )["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": self.topic_arn}},
                }
            ],
        }
        self.sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)})
        # Only this project's Submitted events (the message attributes publish_events sets); the run is
        # matched in the body below, so a filter policy that has not propagated yet does no harm.
        filter_policy: dict[str, list[str]] = {"event_type": ["Submitted"]}
        if project:
            filter_policy["project"] = [project]
        self.subscription_arn = self.sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes={"FilterPolicy": json.dumps(filter_policy), "FilterPolicyScope": "MessageAttributes"},
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        if poll(self._confirmed, settle) is None:
            raise StepFailed(
                f"the subscription of {queue_arn} to {self.topic_arn} stayed unconfirmed for {settle:g} s "
                "(is the topic in another account?)"
            )
        return f"queue {self.name}, filter {json.dumps(filter_policy, separators=(',', ':'))}"

    def _confirmed(self) -> bool | None:
        assert self.subscription_arn is not None
        attributes = self.sns.get_subscription_attributes(SubscriptionArn=self.subscription_arn)["Attributes"]
        return True if attributes.get("PendingConfirmation", "false") == "false" else None

    def wait_for(self, run_id: str, detail_type: str, timeout: float) -> dict[str, Any] | None:
        """The envelope of the run's first event of that type, or None if none came within timeout."""
        assert self.queue_url is not None
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=max(0, min(2, int(remaining))),
            ).get("Messages", [])
            for message in messages:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                envelope = self._envelope(message.get("Body", ""))
                detail = envelope.get("detail") if envelope else None
                if (
                    envelope is not None
                    and envelope.get("detail-type") == detail_type
                    and isinstance(detail, dict)
                    and detail.get("run_id") == run_id
                ):
                    return envelope
            if not messages:
                time.sleep(min(0.3, max(0.0, deadline - time.monotonic())))

    @staticmethod
    def _envelope(body: str) -> dict[str, Any] | None:
        """The event envelope of an SNS notification (or of a raw message)."""
        try:
            notification = json.loads(body)
            envelope = json.loads(notification["Message"]) if "Message" in notification else notification
        except (ValueError, TypeError, KeyError):
            return None
        return envelope if isinstance(envelope, dict) else None

    def close(self) -> list[str]:
        """Unsubscribes and deletes the queue; what could not be removed, for the user to remove."""
        left: list[str] = []
        if self.subscription_arn is not None:
            try:
                self.sns.unsubscribe(SubscriptionArn=self.subscription_arn)
                self.subscription_arn = None
            except Exception as error:
                left.append(f"subscription {self.subscription_arn} ({error})")
        if self.queue_url is not None:
            try:
                self.sqs.delete_queue(QueueUrl=self.queue_url)
                self.queue_url = None
            except Exception as error:
                left.append(f"queue {self.queue_url} ({error})")
        return left


class Smoke:
    """The steps, in order, against one API; state carried from step to step."""

    def __init__(self, options: Options) -> None:
        self.options = options
        suffix = secrets.token_hex(6)
        self.run_id = f"smoke-{suffix}"
        self.user_id = f"smoke-user-{suffix}"
        self.agent = f"smoke-{suffix}"
        self.queue_name = f"feedback-smoke-{suffix}"
        self.client = httpx.Client(
            base_url=options.api,
            timeout=options.request_timeout,
            headers={"User-Agent": "feedback-smoke/1"},
        )
        self.key_headers = {"Authorization": f"Bearer {options.api_key}"}
        self.token = ""
        self.project: str | None = None
        self.record: dict[str, Any] = {}
        self.submitted = False
        self.retracted = False
        self.watch: EventWatch | None = None
        self.passed = 0

    # ------------------------------------------------------------------------------------------ running

    def step(self, name: str, action: Callable[[], str | None]) -> None:
        started = time.monotonic()
        try:
            try:
                note = action()
            except httpx.HTTPError as error:
                url = error.request.url if _has_request(error) else self.options.api
                raise StepFailed(f"{type(error).__name__} on {url}: {error}") from error
        except StepFailed as failure:
            elapsed = time.monotonic() - started
            shown = f"{failure.reason}: {failure.detail}" if failure.detail else failure.reason
            print(f"FAIL {name} ({elapsed:.2f} s): {shown}", flush=True)
            failure.reason = f"{name}: {failure.reason}"
            raise
        elapsed = time.monotonic() - started
        self.passed += 1
        print(f"ok   {name} ({elapsed:.2f} s){': ' + note if note else ''}", flush=True)

    def run(self) -> StepFailed | None:
        """Every step, then the clean-up; the first failure (of a step or of the clean-up), if any."""
        failure: StepFailed | None = None
        try:
            self.checks()
        except StepFailed as error:
            failure = error
        finally:
            left = self.clean_up()
            self.client.close()
        if failure is None and left is not None:
            failure = left
        return failure

    def checks(self) -> None:
        self.step("health", self.health)
        self.step("issue token", self.issue_token)
        if self.options.topic_arn:
            self.step("subscribe to events", self.subscribe)
        self.step("submit feedback", self.submit)
        self.step("change feedback", self.change)
        self.step("read it back", self.read_back)
        self.step("list it", self.listed)
        self.step("stats count it", self.counted)
        if self.options.topic_arn:
            self.step("event arrives", self.event_arrives)
        else:
            print(f"skip event arrives: no --topic-arn (or {TOPIC_ENV}) given", flush=True)
        self.step("retract it", self.retract)
        self.step("confirm it is gone", self.gone)

    def clean_up(self) -> StepFailed | None:
        """Retracts feedback left behind by a failure, removes the queue; a failure if something stays."""
        failure: StepFailed | None = None
        if self.submitted and not self.retracted:
            try:
                self.step("clean up: retract the smoke feedback", self.retract)
            except StepFailed as error:
                failure = error
        if self.watch is not None:
            try:
                self.step("remove queue", self.remove_queue)
            except StepFailed as error:
                failure = failure or error
        return failure

    # ------------------------------------------------------------------------------------------- steps

    def health(self) -> str | None:
        body = answer(self.client.get("/v1/health"), 200)
        if not isinstance(body, dict) or body.get("status") != "ok":
            raise StepFailed("GET /v1/health did not say ok", one_line(json.dumps(body)))
        return None

    def issue_token(self) -> str | None:
        response = self.client.post(
            "/v1/tokens",
            headers=self.key_headers,
            json={
                "run_id": self.run_id,
                "user_id": self.user_id,
                "agent": self.agent,
                "session_id": self.run_id,
                "context": {"smoke": True},
                "ttl_seconds": 900,
            },
        )
        if response.status_code in (401, 403):
            raise StepFailed(
                f"the API refused {API_KEY_ENV} ({response.status_code}): use a key of this stack with the "
                "scopes tokens:write and feedback:read",
                one_line(response.text),
            )
        body = answer(response, 201)
        if not isinstance(body, dict) or not isinstance(body.get("feedback_token"), str):
            raise StepFailed("POST /v1/tokens gave no feedback_token", one_line(response.text))
        self.token = body["feedback_token"]
        project = token_claims(self.token).get("prj")
        self.project = project if isinstance(project, str) else None
        return f"run {self.run_id}, project {self.project or '?'}"

    def subscribe(self) -> str | None:
        assert self.options.topic_arn is not None
        try:
            self.watch = EventWatch(self.options.topic_arn, self.queue_name)
            return self.watch.start(self.project, settle=min(30.0, self.options.event_timeout))
        except ImportError as error:
            raise StepFailed(f"the event check needs boto3 ({error})") from error
        except StepFailed:
            raise
        except Exception as error:  # botocore's errors: credentials, permissions, endpoint
            raise StepFailed(f"could not subscribe a queue to {self.options.topic_arn}: {error}") from error

    def submit(self) -> str | None:
        response = self.client.post(
            "/v1/feedback",
            headers={"X-Feedback-Token": self.token},
            json={"outcome": "positive", "score": 7, "comment": "smoke test", "tags": ["smoke"]},
        )
        if response.status_code in (200, 201):
            self.submitted = True
        record = answer(response, 201)
        self.expect_record(record, outcome="positive", score=7, version=1)
        self.record = record
        return f"feedback_id {record['feedback_id']}"

    def change(self) -> str | None:
        response = self.client.post(
            "/v1/feedback",
            headers={"X-Feedback-Token": self.token},
            json={"outcome": "negative", "score": -3, "comment": "smoke test, changed"},
        )
        record = answer(response, 200)
        self.expect_record(record, outcome="negative", score=-3, version=2)
        if record.get("feedback_id") != self.record.get("feedback_id"):
            raise StepFailed("the change made another record", one_line(response.text))
        self.record = record
        return None

    def read_back(self) -> str | None:
        response = self.client.get("/v1/feedback/me", headers={"X-Feedback-Token": self.token})
        record = answer(response, 200)
        if not isinstance(record, dict):
            raise StepFailed("GET /v1/feedback/me gave no record", one_line(response.text))
        differing = sorted(
            name for name in set(record) | set(self.record) if record.get(name) != self.record.get(name)
        )
        if differing:
            raise StepFailed(
                f"GET /v1/feedback/me differs from what the change returned in {', '.join(differing)}",
                f"read {one_line(json.dumps(record))}; changed {one_line(json.dumps(self.record))}",
            )
        return None

    def listed(self) -> str | None:
        params = {"agent": self.agent, "start": self.record["created_at"], "limit": "10"}
        last: list[str] = [""]

        def check() -> dict[str, Any] | None:
            response = self.client.get("/v1/feedback", params=params, headers=self.key_headers)
            body = answer(response, 200)
            last[0] = response.text
            items = body.get("items") if isinstance(body, dict) else None
            for item in items or []:
                if (
                    isinstance(item, dict)
                    and item.get("feedback_id") == self.record["feedback_id"]
                    and item.get("version") == self.record["version"]
                ):
                    return item
            return None

        item = poll(check, self.options.timeout)
        if item is None:
            raise StepFailed(
                f"GET /v1/feedback did not list version {self.record['version']} of the record "
                f"within {self.options.timeout:g} s",
                f"last answer: {one_line(last[0])}",
            )
        if item != self.record:
            raise StepFailed(
                "GET /v1/feedback lists the record with other values",
                f"listed {one_line(json.dumps(item))}; changed {one_line(json.dumps(self.record))}",
            )
        return None

    def counted(self) -> str | None:
        day = str(self.record["created_at"])[:10]
        params = {"granularity": "total", "agent": self.agent, "start": day, "end": day}
        wanted = {"positive": 0, "negative": 1, "score_count": 1, "comments": 1}
        last: list[str] = [""]

        def check() -> dict[str, Any] | None:
            response = self.client.get("/v1/stats", params=params, headers=self.key_headers)
            body = answer(response, 200)
            last[0] = response.text
            total = body.get("total") if isinstance(body, dict) else None
            if isinstance(total, dict) and all(total.get(name) == value for name, value in wanted.items()):
                return total
            return None

        total = poll(check, self.options.timeout)
        if total is None:
            raise StepFailed(
                f"GET /v1/stats did not count the changed vote {wanted} within {self.options.timeout:g} s",
                f"last answer: {one_line(last[0])}",
            )
        return None

    def event_arrives(self) -> str | None:
        assert self.watch is not None
        try:
            envelope = self.watch.wait_for(self.run_id, SUBMITTED, self.options.event_timeout)
        except Exception as error:
            raise StepFailed(f"could not read the temporary queue: {error}") from error
        if envelope is None:
            raise StepFailed(
                f"no {SUBMITTED} event of run {self.run_id} arrived within {self.options.event_timeout:g} s"
            )
        detail = envelope["detail"]
        feedback = detail.get("feedback") or {}
        if feedback.get("outcome") != "positive" or detail.get("version") != 1 or not detail.get("event_id"):
            raise StepFailed(
                f"the {SUBMITTED} event does not carry version 1 of the record",
                one_line(json.dumps(envelope)),
            )
        return f"event_id {detail['event_id']}"

    def retract(self) -> str | None:
        response = self.client.delete("/v1/feedback/me", headers={"X-Feedback-Token": self.token})
        answer(response, 204)
        self.retracted = True
        return None

    def gone(self) -> str | None:
        answer(self.client.get("/v1/feedback/me", headers={"X-Feedback-Token": self.token}), 404)
        return None

    def remove_queue(self) -> str | None:
        assert self.watch is not None
        left = self.watch.close()
        if left:
            raise StepFailed(f"left behind, remove by hand: {'; '.join(left)}")
        return None

    # ------------------------------------------------------------------------------------------ checks

    @staticmethod
    def expect_record(record: Any, **expected: Any) -> None:
        if not isinstance(record, dict) or not isinstance(record.get("feedback_id"), str):
            raise StepFailed("the answer is not a feedback record", one_line(json.dumps(record)))
        wrong = {name: record.get(name) for name, value in expected.items() if record.get(name) != value}
        if wrong:
            raise StepFailed(f"the record has {wrong}, expected {expected}", one_line(json.dumps(record)))


def _has_request(error: httpx.HTTPError) -> bool:
    try:
        error.request  # noqa: B018  (raises RuntimeError when the error has no request)
    except RuntimeError:
        return False
    return True


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="smoke.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument(
        "--api",
        help="base URL of the stack's HTTP API: its ApiUrl output (https://<id>.execute-api.<region>."
        "amazonaws.com), or the local stack's endpoint",
    )
    root.add_argument(
        "--topic-arn",
        default=os.environ.get(TOPIC_ENV) or None,
        help=f"the stack's EventsTopicArn output, to watch an event arrive (default: ${TOPIC_ENV}; "
        "without it the event check is skipped)",
    )
    root.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the listing and the stats to show the record (default 30)",
    )
    root.add_argument(
        "--event-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the Feedback Submitted event (default 60)",
    )
    root.add_argument(
        "--request-timeout",
        type=float,
        default=15.0,
        help="seconds one HTTP request may take (default 15; the first calls may start cold functions)",
    )
    return root


def options_from(argv: Sequence[str] | None) -> Options:
    args = parser().parse_args(argv)
    if not args.api:
        raise UsageError("--api is required: the stack's ApiUrl output (make smoke API=https://...)")
    api = str(args.api).rstrip("/")
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", api):
        raise UsageError(f"--api must be an http(s) URL, not {args.api!r}")
    api_key = os.environ.get(API_KEY_ENV, "").strip()
    if not api_key:
        raise UsageError(
            f"{API_KEY_ENV} is not set: export an API key of the stack (feedback-operator keys create, see "
            "docs/DEPLOY.md)"
        )
    if args.topic_arn and not TOPIC_ARN.match(args.topic_arn):
        raise UsageError(f"--topic-arn / {TOPIC_ENV} is not an SNS topic ARN: {args.topic_arn!r}")
    if min(args.timeout, args.event_timeout, args.request_timeout) <= 0:
        raise UsageError("timeouts must be positive")
    return Options(
        api=api,
        api_key=api_key,
        topic_arn=args.topic_arn,
        timeout=args.timeout,
        event_timeout=args.event_timeout,
        request_timeout=args.request_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options = options_from(argv)
    except UsageError as error:
        print(f"smoke: {error}", file=sys.stderr)
        return 2
    smoke = Smoke(options)
    try:
        failure = smoke.run()
    except KeyboardInterrupt:
        print("smoke: interrupted", file=sys.stderr)
        return 130
    if failure is not None:
        print(f"smoke: FAIL {failure.reason}", file=sys.stderr)
        return 1
    print(f"smoke: all {smoke.passed} steps passed against {options.api} (run {smoke.run_id})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
